package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
)

func TestValidateNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       Config
		setting string // "" = valid
		notIn   string // must not appear in the error
	}{
		{name: "off", c: Config{}},
		{name: "http", c: Config{Endpoint: "http://collector:4318"}},
		{name: "grpc host:port", c: Config{Endpoint: "collector:4317", Protocol: ProtocolGRPC, Insecure: true}},
		{name: "every sampler", c: Config{Endpoint: "https://c", Sampler: SamplerParentBasedTraceIDRatio, SamplerArg: "0.25"}},
		{name: "json protocol", c: Config{Endpoint: "http://c", Protocol: "http/json"}, setting: "protocol"},
		{name: "no scheme over http", c: Config{Endpoint: "collector:4318"}, setting: "endpoint"},
		{name: "ftp", c: Config{Endpoint: "ftp://c"}, setting: "endpoint"},
		{name: "credentials in the URL", c: Config{Endpoint: "https://user:hunter2@c"}, setting: "endpoint", notIn: "hunter2"},
		{name: "traces endpoint with a query", c: Config{TracesEndpoint: "https://c/v1/traces?key=hunter2"}, setting: "traces_endpoint", notIn: "hunter2"},
		{name: "unknown sampler", c: Config{Endpoint: "http://c", Sampler: "probabilistic"}, setting: "sampler"},
		{name: "ratio above 1", c: Config{Endpoint: "http://c", Sampler: SamplerTraceIDRatio, SamplerArg: "2"}, setting: "sampler_arg"},
		{name: "ratio not a number", c: Config{Endpoint: "http://c", SamplerArg: "half"}, setting: "sampler_arg"},
		{name: "headers without =", c: Config{Endpoint: "http://c", Headers: "api-key"}, setting: "headers"},
		{name: "headers badly encoded", c: Config{Endpoint: "http://c", Headers: "api-key=hunter2%zz"}, setting: "headers", notIn: "hunter2"},
		{name: "resource attributes", c: Config{Endpoint: "http://c", ResourceAttributes: "=x"}, setting: "resource_attributes"},
		{name: "compression", c: Config{Endpoint: "http://c", Compression: "zstd"}, setting: "compression"},
		{name: "negative timeout", c: Config{Endpoint: "http://c", Timeout: -1}, setting: "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.setting == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != tc.setting {
				t.Fatalf("Validate = %v, want a problem of %s", err, tc.setting)
			}
			if tc.notIn != "" && strings.Contains(err.Error(), tc.notIn) {
				t.Errorf("the error quotes a secret: %v", err)
			}
			if _, err := New(context.Background(), tc.c); err == nil {
				t.Error("New accepted what Validate refused")
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		c         Config
		url       string
		protocol  string
		wantError bool
	}{
		{c: Config{Endpoint: "http://c:4318"}, url: "http://c:4318/v1/traces", protocol: ProtocolHTTP},
		{c: Config{Endpoint: "http://c:4318/otlp/"}, url: "http://c:4318/otlp/v1/traces", protocol: ProtocolHTTP},
		{c: Config{Endpoint: "http://c:4318", TracesEndpoint: "https://t/custom"}, url: "https://t/custom", protocol: ProtocolHTTP},
		{c: Config{Endpoint: "c:4317", Protocol: ProtocolGRPC}, url: "https://c:4317", protocol: ProtocolGRPC},
		{c: Config{Endpoint: "c:4317", Protocol: ProtocolGRPC, Insecure: true}, url: "http://c:4317", protocol: ProtocolGRPC},
		{c: Config{Endpoint: "http://c:4317", Protocol: ProtocolGRPC}, url: "http://c:4317", protocol: ProtocolGRPC},
	} {
		u, proto, err := tc.c.endpoint()
		if err != nil {
			t.Errorf("%+v: %v", tc.c, err)
			continue
		}
		if u.String() != tc.url || proto != tc.protocol {
			t.Errorf("%+v: %s %s, want %s %s", tc.c, u, proto, tc.url, tc.protocol)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	got, err := ParseHeaders(" api-key = s%20cret ,x-tenant=a=b,, ")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["api-key"] != "s cret" || got["x-tenant"] != "a=b" {
		t.Errorf("ParseHeaders = %q", got)
	}
}

func TestNewIsOffWithoutAnEndpoint(t *testing.T) {
	tr, err := New(context.Background(), Config{Sampler: SamplerAlwaysOn})
	if err != nil || tr != nil {
		t.Fatalf("New = %v, %v; want nil, nil", tr, err)
	}
	if tr.On() {
		t.Error("a nil Tracer is on")
	}
	// A nil Tracer costs nothing on the request path.
	ctx := context.Background()
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Start(ctx, "x", trace.SpanKindInternal)
		if span.IsRecording() || c != ctx {
			t.Fatal("a nil Tracer started a span")
		}
		span.End()
		if tr.Extract(ctx, h) != ctx {
			t.Fatal("a nil Tracer read the trace context")
		}
	})
	if allocs != 0 {
		t.Errorf("a nil Tracer allocates %v per call", allocs)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got := Middleware(nil)(next); reflect.ValueOf(got).Pointer() != reflect.ValueOf(next).Pointer() {
		t.Error("a nil Tracer's middleware is not the identity")
	}
	if Transport(nil, http.DefaultTransport) != http.DefaultTransport {
		t.Error("a nil Tracer's transport is not the identity")
	}
}

func TestNewAndShutdown(t *testing.T) {
	for _, c := range []Config{
		{Endpoint: "http://127.0.0.1:1", Compression: "gzip", ResourceAttributes: "deployment.environment.name=test", ServiceVersion: "1.2.3"},
		{Endpoint: "127.0.0.1:1", Protocol: ProtocolGRPC, Insecure: true, Headers: "api-key=x"},
	} {
		tr, err := New(context.Background(), c)
		if err != nil || tr == nil {
			t.Fatalf("New(%+v) = %v, %v", c, tr, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		cancel()
		_ = tr.Shutdown(ctx) // nothing to export; must not hang
	}
}

// recorder is a tracer whose spans end in a recorder.
func recorder(sampler sdktrace.Sampler) (*Tracer, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sampler))
	return FromProvider(tp), rec
}

func attrsOf(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes() {
		m[string(a.Key)] = a.Value.Emit()
	}
	return m
}

func TestMiddleware(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	for _, tc := range []struct {
		name        string
		traceparent string
		path        string
		status      int
		wantTrace   string // "" = a new trace
		wantError   bool
		wantSampled bool
	}{
		{name: "continues the frontend's trace", traceparent: "00-" + traceID + "-" + parent + "-01", path: "/orders/1", status: 200, wantTrace: traceID, wantSampled: true},
		{name: "the frontend's unsampled decision holds", traceparent: "00-" + traceID + "-" + parent + "-00", path: "/orders/1", status: 200, wantTrace: traceID},
		{name: "malformed: a new trace", traceparent: "00-" + traceID + "-" + parent, path: "/orders/1", status: 200, wantSampled: true},
		{name: "all-zero trace ID: a new trace", traceparent: "00-00000000000000000000000000000000-" + parent + "-01", path: "/", status: 200, wantSampled: true},
		{name: "5xx is an error", path: "/x", status: 502, wantError: true, wantSampled: true},
		{name: "4xx is not the server's error", path: "/x", status: 404, wantSampled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, rec := recorder(sdktrace.ParentBased(sdktrace.AlwaysSample()))
			var inner trace.SpanContext
			h := reqlog.Middleware(slog.New(slog.DiscardHandler))(Middleware(tr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner = trace.SpanContextFromContext(r.Context())
				w.WriteHeader(tc.status)
			})))
			req := httptest.NewRequest(http.MethodGet, tc.path+"?access_token=secret", nil)
			if tc.traceparent != "" {
				req.Header.Set("Traceparent", tc.traceparent)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if tc.wantTrace != "" && inner.TraceID().String() != tc.wantTrace {
				t.Errorf("trace %s, want %s", inner.TraceID(), tc.wantTrace)
			}
			if tc.wantTrace == "" && (inner.TraceID().String() == traceID || !inner.IsValid()) {
				t.Errorf("trace %s, want a new one", inner.TraceID())
			}
			if inner.IsSampled() != tc.wantSampled {
				t.Errorf("sampled %v, want %v", inner.IsSampled(), tc.wantSampled)
			}
			ended := rec.Ended()
			if !tc.wantSampled {
				if len(ended) != 0 {
					t.Errorf("an unsampled request recorded %d spans", len(ended))
				}
				return
			}
			if len(ended) != 1 {
				t.Fatalf("%d spans, want 1", len(ended))
			}
			s := ended[0]
			a := attrsOf(s)
			if s.SpanKind() != trace.SpanKindServer || a["http.response.status_code"] != strconv.Itoa(tc.status) {
				t.Errorf("span kind %v attributes %v", s.SpanKind(), a)
			}
			if (s.Status().Code == codes.Error) != tc.wantError {
				t.Errorf("status %v, want error %v", s.Status(), tc.wantError)
			}
			if strings.Contains(strings.Join(values(a), " "), "secret") {
				t.Errorf("the query reached the span: %v", a)
			}
			if tc.traceparent != "" && tc.wantTrace != "" && s.Parent().SpanID().String() != parent {
				t.Errorf("parent %s, want the frontend's %s", s.Parent().SpanID(), parent)
			}
		})
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// A token in the path is not put on the span, as it is not logged.
func TestMiddlewareRedactsTokensInThePath(t *testing.T) {
	tr, rec := recorder(sdktrace.AlwaysSample())
	h := Middleware(tr)(http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/orders/eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", nil))
	if p := attrsOf(rec.Ended()[0])["url.path"]; strings.Contains(p, "eyJ") {
		t.Errorf("url.path = %q", p)
	}
}

func TestTransportTracesOnlyUnderASpan(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") != "" {
			t.Error("the transport sent a trace context to Entra")
		}
		w.Header().Set("x-ms-request-id", "req-1")
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	tr, rec := recorder(sdktrace.AlwaysSample())
	c := &http.Client{Transport: Transport(tr, http.DefaultTransport)}

	// Background: no span, no trace.
	resp, err := c.Get(srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("a call without a parent span recorded %d spans", n)
	}

	ctx, parent := tr.Start(context.Background(), "downstream token", trace.SpanKindInternal)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/tenant/oauth2/v2.0/token?secret=1", strings.NewReader("assertion=eyJ"))
	req.Header.Set("client-request-id", "corr-1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	if client == nil || client.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("no client span under the parent: %v", rec.Ended())
	}
	a := attrsOf(client)
	if client.Name() != "POST /tenant/oauth2/v2.0/token" || a["http.response.status_code"] != "400" ||
		a[string(AttrEntraRequestID)] != "req-1" || a[string(AttrEntraClientReqID)] != "corr-1" || client.Status().Code != codes.Error {
		t.Errorf("client span %q %v %v", client.Name(), a, client.Status())
	}
	if strings.Contains(a["url.full"], "secret") {
		t.Errorf("url.full has the query: %s", a["url.full"])
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	tr, _ := recorder(sdktrace.AlwaysSample())
	ctx, span := tr.Start(context.Background(), "s", trace.SpanKindServer)
	log.InfoContext(ctx, "with")
	log.Info("without")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var with, without map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &with)
	_ = json.Unmarshal([]byte(lines[1]), &without)
	if with["trace_id"] != span.SpanContext().TraceID().String() || with["span_id"] != span.SpanContext().SpanID().String() || with["component"] != "x" {
		t.Errorf("line with a span: %v", with)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span has a trace_id: %v", without)
	}
}

func TestHeaders(t *testing.T) {
	tr, _ := recorder(sdktrace.AlwaysSample())
	if tp, ts := tr.Headers(context.Background()); tp != "" || ts != "" {
		t.Errorf("no span: %q %q", tp, ts)
	}
	ctx := tr.Extract(context.Background(), http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "Tracestate": {"a=1,b=2"},
	})
	ctx, span := tr.Start(ctx, "c", trace.SpanKindClient)
	defer span.End()
	tp, ts := tr.Headers(ctx)
	if tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-"+span.SpanContext().SpanID().String()+"-01" || ts != "a=1,b=2" {
		t.Errorf("Headers = %q %q", tp, ts)
	}
}

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"", "a=b", "a=b,c=d%20e", "=", "a=%zz", ",,,", "a==b", "k=v,k=w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseHeaders(s)
		if err != nil {
			if m != nil {
				t.Error("a map with an error")
			}
			return
		}
		for k := range m {
			if k == "" || strings.TrimSpace(k) != k {
				t.Errorf("key %q", k)
			}
		}
	})
}

// Under a request the frontend did not sample, no span is made or recorded,
// and the upstream still gets the trace context, unsampled.
func TestUnsampledRequestMakesNoSpans(t *testing.T) {
	tr, rec := recorder(sdktrace.ParentBased(sdktrace.AlwaysSample()))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var tp string
	var child trace.Span
	h := Middleware(tr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tr.Start(r.Context(), "downstream token", trace.SpanKindInternal)
		child = span
		span.End()
		tp, _ = tr.Headers(ctx)
	}))
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-00")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if child.IsRecording() || len(rec.Ended()) != 0 {
		t.Errorf("recorded %d spans of an unsampled request", len(rec.Ended()))
	}
	if !strings.HasPrefix(tp, "00-"+traceID+"-") || !strings.HasSuffix(tp, "-00") {
		t.Errorf("upstream traceparent %q, want trace %s, unsampled", tp, traceID)
	}
}
