// Package tracing is the gateway's OpenTelemetry tracing: the tracer
// provider and its OTLP exporter (gRPC or HTTP), the W3C trace context
// taken from the frontend and given to the upstream, the server span of a
// request, client spans for calls to Entra, and what joins logs and metrics
// to traces (trace and span IDs in log lines, exemplars).
//
// Tracing is off unless an OTLP endpoint is configured: then a *Tracer is
// nil, every method of a nil *Tracer does nothing, and the request path
// pays for no span, context or header.
//
// Spans never carry a token, a secret or a claim set: identifiers only
// (client application, tenant, key ID, route, status codes, Entra's
// correlation IDs).
package tracing

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// The OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// The samplers (OTEL_TRACES_SAMPLER), as the OpenTelemetry specification
// names them.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Config is the tracing configuration, with the meaning of the standard
// OTEL_* variables (config.Tracing, which the gateway reads them into).
type Config struct {
	// Endpoint is the OTLP base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT):
	// for http/protobuf, "/v1/traces" is appended to its path.
	Endpoint string
	// TracesEndpoint is the traces endpoint used as it is
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); it wins over Endpoint.
	TracesEndpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTP (the default).
	Protocol string
	// Headers are sent with every export: "key=value,key2=value2",
	// values percent-encoded (OTEL_EXPORTER_OTLP_HEADERS). They may hold
	// a credential: never logged.
	Headers string
	// Timeout bounds one export; default 10s.
	Timeout time.Duration
	// Insecure sends gRPC without TLS to an endpoint without a scheme
	// (an http:// endpoint is plaintext anyway).
	Insecure bool
	// CAFile holds PEM CA certificates trusted for the collector's TLS,
	// besides the system's (OTEL_EXPORTER_OTLP_CERTIFICATE).
	CAFile string
	// Compression is "gzip" or "none" (the default).
	Compression string
	// Sampler is one of the Sampler* names; default
	// SamplerParentBasedAlwaysOn. SamplerArg is the ratio of the ratio
	// samplers, 0 to 1 (default 1).
	Sampler    string
	SamplerArg string
	// ServiceName is service.name; default "obo-gateway".
	ServiceName string
	// ServiceVersion is service.version.
	ServiceVersion string
	// ResourceAttributes are more resource attributes, "key=value,..."
	// (OTEL_RESOURCE_ATTRIBUTES), e.g. deployment.environment.name=prod.
	ResourceAttributes string
	// ClientCertificate and ClientKey are PEM files of the certificate the
	// gateway presents to a collector that asks for one (mutual TLS),
	// OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY.
	ClientCertificate, ClientKey string

	// Logger receives a warning when exports fail (at most one a minute);
	// nil discards. Metrics counts the spans exported and lost; nil counts
	// nothing.
	Logger  *slog.Logger
	Metrics *Metrics
}

// Enabled reports whether c configures an exporter: an endpoint is set.
func (c Config) Enabled() bool { return c.Endpoint != "" || c.TracesEndpoint != "" }

// SettingError is a bad setting of a Config: Setting names its field as
// the configuration file does (endpoint, protocol, sampler, …).
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Validate checks c without building anything: the errors are
// *SettingError, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(setting string, err error) { errs = append(errs, &SettingError{Setting: setting, Err: err}) }
	if _, err := c.protocol(); err != nil {
		bad("protocol", err)
	} else if c.Enabled() {
		if _, _, err := c.endpoint(); err != nil {
			setting := "endpoint"
			if c.TracesEndpoint != "" {
				setting = "traces_endpoint"
			}
			bad(setting, err)
		}
	}
	if _, err := c.sampler(); err != nil {
		setting := "sampler"
		if errors.Is(err, errSamplerArg) {
			setting = "sampler_arg"
		}
		bad(setting, err)
	}
	if err := CheckHeaders(c.Headers); err != nil {
		bad("headers", err)
	}
	if _, err := ParseHeaders(c.ResourceAttributes); err != nil {
		bad("resource_attributes", err)
	}
	switch c.Compression {
	case "", "none", "gzip":
	default:
		bad("compression", fmt.Errorf("%q: want gzip or none", c.Compression))
	}
	if c.Timeout < 0 {
		bad("timeout", errors.New("must not be negative"))
	}
	if (c.ClientCertificate == "") != (c.ClientKey == "") {
		bad("client_certificate", errors.New("client_certificate and client_key go together"))
	}
	return errors.Join(errs...)
}

var errSamplerArg = errors.New("bad sampler argument")

// protocol is c's protocol, ProtocolHTTP by default.
func (c Config) protocol() (string, error) {
	switch c.Protocol {
	case "":
		return ProtocolHTTP, nil
	case ProtocolGRPC, ProtocolHTTP:
		return c.Protocol, nil
	}
	return "", fmt.Errorf("%q: want %s or %s (http/json is not supported)", c.Protocol, ProtocolGRPC, ProtocolHTTP)
}

// endpoint is the exporter's URL and protocol.
func (c Config) endpoint() (*url.URL, string, error) {
	proto, err := c.protocol()
	if err != nil {
		return nil, "", err
	}
	raw, exact := c.TracesEndpoint, true
	if raw == "" {
		raw, exact = c.Endpoint, false
	}
	if raw == "" {
		return nil, proto, errors.New("no OTLP endpoint")
	}
	if !strings.Contains(raw, "://") && proto == ProtocolGRPC {
		// gRPC endpoints are often written host:port: TLS unless Insecure.
		scheme := "https"
		if c.Insecure {
			scheme = "http"
		}
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, proto, errors.New("want an http:// or https:// URL without credentials, e.g. http://otel-collector:4318")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, proto, fmt.Errorf("%s://%s/…: want no query or fragment", u.Scheme, u.Host)
	}
	if proto == ProtocolHTTP && !exact {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u, proto, nil
}

// sampler builds the configured sampler.
func (c Config) sampler() (sdktrace.Sampler, error) {
	ratio := 1.0
	if c.SamplerArg != "" {
		r, err := strconv.ParseFloat(c.SamplerArg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("%w %q: want a ratio from 0 to 1", errSamplerArg, c.SamplerArg)
		}
		ratio = r
	}
	switch c.Sampler {
	case "", SamplerParentBasedAlwaysOn:
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case SamplerAlwaysOn:
		return sdktrace.AlwaysSample(), nil
	case SamplerAlwaysOff:
		return sdktrace.NeverSample(), nil
	case SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, fmt.Errorf("%q: want one of %s, %s, %s, %s, %s, %s", c.Sampler,
		SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio,
		SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio)
}

// ParseHeaders reads "key=value,key2=value2" with percent-encoded values,
// the form of OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES.
// Errors never quote a value (it may be a credential).
func ParseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d: want key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): the value is not percent-encoded correctly", i+1, k)
		}
		out[k] = dv
	}
	return out, nil
}

// CheckHeaders checks that s parses and that each entry is an HTTP
// header a request may carry: a token name, a value without control
// characters (else every export would fail). Errors name the entry by its
// position, never its name or value (a misplaced '=' could put a secret in
// either).
func CheckHeaders(s string) error {
	if _, err := ParseHeaders(s); err != nil {
		return err
	}
	for i, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dv, _ := url.PathUnescape(strings.TrimSpace(v))
		if !httpguts.ValidHeaderFieldName(strings.TrimSpace(k)) {
			return fmt.Errorf("entry %d: the name is not a valid HTTP header name", i+1)
		}
		if !httpguts.ValidHeaderFieldValue(dv) {
			return fmt.Errorf("entry %d: the value holds characters an HTTP header cannot", i+1)
		}
	}
	return nil
}

// Tracer makes the gateway's spans. A nil *Tracer is tracing off.
type Tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
	// shutdown flushes and stops the provider (nil for one made by
	// FromProvider: its owner shuts it down).
	shutdown func(context.Context) error
}

// instrumentation is the tracer's instrumentation scope.
const instrumentation = "github.com/obo-gateway/obo-gateway"

// New builds the tracer provider, its batching OTLP exporter and the W3C
// trace-context propagator. It contacts nothing: the exporter connects
// when it first exports, and a collector that is down loses spans, never
// requests. It returns nil, nil when c is not Enabled.
func New(ctx context.Context, c Config) (*Tracer, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	exp, err := c.exporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	sampler, _ := c.sampler()
	res, err := c.resource()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// A backstop behind Clean: no attribute value beyond 1 KiB, whatever
	// sets it (the SDK cuts on a character boundary).
	limits := sdktrace.NewSpanLimits()
	if limits.AttributeValueLengthLimit <= 0 || limits.AttributeValueLengthLimit > 1024 {
		limits.AttributeValueLengthLimit = 1024
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The batch processor bounds each export, its retries included (the
	// HTTP exporter's own timeout bounds one attempt only).
	batcher := sdktrace.NewBatchSpanProcessor(&watchedExporter{SpanExporter: exp, m: c.Metrics, log: log},
		sdktrace.WithExportTimeout(c.timeout()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(countingProcessor{SpanProcessor: batcher, m: c.Metrics}),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
		sdktrace.WithRawSpanLimits(limits),
	)
	t := FromProvider(tp)
	t.shutdown = tp.Shutdown
	proto, _ := c.protocol()
	log.Info("tracing on: spans exported over OTLP", "protocol", proto, "sampler", cmp.Or(c.Sampler, SamplerParentBasedAlwaysOn))
	return t, nil
}

// FromProvider is a Tracer on a provider made elsewhere (tests, benchmarks).
func FromProvider(tp trace.TracerProvider) *Tracer {
	return &Tracer{t: tp.Tracer(instrumentation), prop: propagation.TraceContext{}}
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// exporter builds the OTLP exporter of c's protocol. Transport security is
// always set here, from the endpoint's scheme and c: the exporters also read
// the OTEL_* variables of the process themselves, before these options, and
// what they read (a CA, an insecure flag) must not contradict the
// configuration the gateway validated.
func (c Config) exporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	u, proto, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	headers, _ := ParseHeaders(c.Headers)
	timeout := c.timeout()
	var tlsConf *tls.Config // nil: plain text (an http:// endpoint)
	if u.Scheme == "https" {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pool, err := pki.SystemRootsWith(c.CAFile)
			if err != nil {
				return nil, &SettingError{Setting: "ca_file", Err: err}
			}
			tlsConf.RootCAs = pool
		}
		if c.ClientCertificate != "" {
			pair, err := tls.LoadX509KeyPair(c.ClientCertificate, c.ClientKey)
			if err != nil {
				return nil, &SettingError{Setting: "client_certificate", Err: err}
			}
			tlsConf.Certificates = []tls.Certificate{pair}
		}
	}
	if proto == ProtocolGRPC {
		creds := insecure.NewCredentials()
		if tlsConf != nil {
			creds = credentials.NewTLS(tlsConf)
		}
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL(u.String()), otlptracegrpc.WithTLSCredentials(creds),
			otlptracegrpc.WithHeaders(headers), otlptracegrpc.WithTimeout(timeout),
		}
		if c.Compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	compression := otlptracehttp.NoCompression
	if c.Compression == "gzip" {
		compression = otlptracehttp.GzipCompression
	}
	return otlptracehttp.New(ctx,
		// The URL sets the host, the path and, from the scheme, whether TLS
		// is used; the TLS configuration (nil for http://) replaces any the
		// exporter read from the environment.
		otlptracehttp.WithEndpointURL(u.String()), otlptracehttp.WithTLSClientConfig(tlsConf),
		otlptracehttp.WithHeaders(headers), otlptracehttp.WithTimeout(timeout),
		otlptracehttp.WithCompression(compression),
	)
}

// timeout is the bound on one export: Timeout, 10s by default.
func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// resource is the process's resource: the SDK's own attributes
// (telemetry.sdk.*), c's attributes, then service.name and service.version.
// The SDK's environment detector is left out: OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME are the configuration's, read once, into c.
func (c Config) resource() (*resource.Resource, error) {
	attrs, err := ParseHeaders(c.ResourceAttributes)
	if err != nil {
		return nil, fmt.Errorf("resource attributes: %w", err)
	}
	var kvs []attribute.KeyValue
	for k, v := range attrs {
		kvs = append(kvs, attribute.String(k, v))
	}
	name := c.ServiceName
	if name == "" {
		name = "obo-gateway"
	}
	kvs = append(kvs, semconv.ServiceName(name))
	if c.ServiceVersion != "" {
		kvs = append(kvs, semconv.ServiceVersion(c.ServiceVersion))
	}
	return resource.New(context.Background(), resource.WithTelemetrySDK(),
		resource.WithSchemaURL(semconv.SchemaURL), resource.WithAttributes(kvs...))
}

// noSpan is what a nil Tracer starts: the no-op span.
var noSpan = trace.SpanFromContext(context.Background())

// Start starts a span of kind under ctx's span. On a nil Tracer it returns
// ctx and a no-op span, and allocates nothing. Under a local span that is
// not recorded (the request was not sampled) it returns ctx and that span:
// whichever sampler is configured, the child of an unsampled span is not
// sampled either, and the trace context (its IDs, its flags) is the
// parent's, so nothing is lost by not making a span no one records.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noSpan
	}
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		if sc := parent.SpanContext(); sc.IsValid() && !sc.IsRemote() {
			return ctx, parent
		}
	}
	return t.t.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// On reports whether tracing is on.
func (t *Tracer) On() bool { return t != nil }

// Extract is ctx with the remote span context of the W3C traceparent and
// tracestate headers in h, when they are valid (malformed ones are
// ignored: the request starts a new trace).
func (t *Tracer) Extract(ctx context.Context, h http.Header) context.Context {
	if t == nil {
		return ctx
	}
	if ts := h.Values("Tracestate"); len(ts) > 1 || (len(ts) == 1 && len(ts[0]) > maxTracestate) {
		// A tracestate the W3C parser would accept can reach 16 KiB and is
		// copied onto every span of the trace: beyond 512 bytes (what the
		// W3C asks a platform to propagate at least) it is dropped, as the
		// specification allows, and so is one sent in several lines.
		return t.prop.Extract(ctx, traceparentOnly{h})
	}
	return t.prop.Extract(ctx, propagation.HeaderCarrier(h))
}

// maxTracestate bounds the frontend's tracestate the gateway keeps.
const maxTracestate = 512

// traceparentOnly is a carrier of h's traceparent, without its tracestate.
type traceparentOnly struct{ h http.Header }

func (c traceparentOnly) Get(key string) string {
	if key == "traceparent" {
		return c.h.Get("Traceparent")
	}
	return ""
}
func (c traceparentOnly) Set(string, string) {}
func (c traceparentOnly) Keys() []string     { return []string{"traceparent"} }

// Headers are the W3C traceparent and tracestate values of sc, for the
// upstream request; both empty when sc is not valid.
func (t *Tracer) Headers(ctx context.Context) (traceparent, tracestate string) {
	if t == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	var c pair
	t.prop.Inject(ctx, &c)
	return c.traceparent, c.tracestate
}

// pair is a carrier of the two trace-context headers only: no map.
type pair struct{ traceparent, tracestate string }

func (p *pair) Get(key string) string {
	switch key {
	case "traceparent":
		return p.traceparent
	case "tracestate":
		return p.tracestate
	}
	return ""
}

func (p *pair) Set(key, value string) {
	switch key {
	case "traceparent":
		p.traceparent = value
	case "tracestate":
		p.tracestate = value
	}
}

func (p *pair) Keys() []string { return []string{"traceparent", "tracestate"} }
