package tracing

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
)

// The gateway's own span attributes (semantic conventions name the rest).
const (
	AttrRoute             = attribute.Key("obo_gateway.route")
	AttrTokenCache        = attribute.Key("obo_gateway.token.cache")   // verified-token cache: hit, miss
	AttrTokenVersion      = attribute.Key("obo_gateway.token.version") // 1.0, 2.0
	AttrTokenKeyID        = attribute.Key("obo_gateway.token.kid")
	AttrTokenRefusal      = attribute.Key("obo_gateway.token.refusal") // why the token was refused (auth.Reason*)
	AttrClientID          = attribute.Key("obo_gateway.client.id")     // azp/appid: the calling application
	AttrTenantID          = attribute.Key("obo_gateway.tenant.id")
	AttrGrant             = attribute.Key("obo_gateway.grant") // the scope or role that satisfied the route
	AttrTokenSource       = attribute.Key("obo_gateway.downstream.token_source")
	AttrDownstreamRes     = attribute.Key("obo_gateway.downstream.resource")
	AttrEntraErrorCode    = attribute.Key("obo_gateway.entra.error_code")     // AADSTS code
	AttrEntraCorrelation  = attribute.Key("obo_gateway.entra.correlation_id") // Entra's correlation_id
	AttrEntraTraceID      = attribute.Key("obo_gateway.entra.trace_id")       // Entra's trace_id (not an OpenTelemetry one)
	AttrEntraRequestID    = attribute.Key("obo_gateway.entra.request_id")     // x-ms-request-id
	AttrEntraClientReqID  = attribute.Key("obo_gateway.entra.client_request_id")
	AttrRefused           = attribute.Key("obo_gateway.refused") // the gateway's refusal reason
	AttrShed              = attribute.Key("obo_gateway.shed")    // the limit that shed the request
	AttrUpstreamErrorKind = attribute.Key("obo_gateway.upstream.error")
)

// maxAttr bounds the strings from requests put on spans (paths, URLs,
// Host, User-Agent, request IDs). The SDK's span limits bound every
// attribute too (spanLimits), a backstop.
const maxAttr = 512

// Clean is s as a span attribute may carry it: valid UTF-8 (OTLP encodes
// attributes as protobuf strings: one invalid byte fails the export of the
// whole batch, every other request's spans with it) and at most maxAttr
// bytes, cut on a character boundary. Every string a client or an upstream
// controls goes through it.
func Clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxAttr {
		return s
	}
	n := maxAttr
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Method is the span-safe method: the known ones, else "_OTHER" (span
// names must stay few).
func Method(m string) string {
	if metrics.StandardMethod(m) {
		return m
	}
	return "_OTHER" // the semantic conventions' word
}

// Middleware starts the server span of each request, continuing the
// frontend's W3C trace context, puts it in the request context (where
// OpenTelemetry keeps it, so that the spans of the handlers, and of the
// calls MSAL makes, are its children), records its IDs in the access log,
// and ends it with the status the access log records. Put it right inside
// reqlog.Middleware. A nil t returns next unchanged.
func Middleware(t *Tracer) func(http.Handler) http.Handler {
	if t == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method := Method(r.Method)
			ctx := t.Extract(r.Context(), r.Header)
			ctx, span := t.t.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer))
			if span.IsRecording() {
				// Only for a sampled request: the attributes of one that is
				// not would be made and dropped.
				span.SetAttributes(serverAttrs(r, method)...)
			}
			rec := reqlog.From(w)
			rec.SetTrace(span.SpanContext())
			returned := false
			defer func() {
				if !span.IsRecording() {
					span.End()
					return
				}
				status := http.StatusOK
				if rec != nil {
					status = rec.Status(returned)
					if s := rec.Refused(); s != "" {
						span.SetAttributes(AttrRefused.String(s))
					}
					if s := rec.Shed(); s != "" {
						span.SetAttributes(AttrShed.String(s))
					}
					span.SetAttributes(semconv.HTTPResponseBodySize(int(rec.BytesWritten())))
				}
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
				if status >= 500 {
					// Server spans: only 5xx are the server's errors.
					span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
					span.SetStatus(codes.Error, "")
				}
				span.End()
			}()
			next.ServeHTTP(w, r.WithContext(ctx))
			returned = true
		})
	}
}

// serverAttrs are the semantic-convention attributes of r's server span.
func serverAttrs(r *http.Request, method string) []attribute.KeyValue {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLScheme(scheme),
		semconv.URLPath(Clean(reqlog.RedactPath(r.URL.Path))),
		semconv.NetworkProtocolVersion(protocolVersion(r)),
	}
	if host, port := splitHost(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(Clean(host)))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.NetworkPeerAddress(ip))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(Clean(ua)))
	}
	return attrs
}

func protocolVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}

// splitHost is the host and port of a Host header (port 0 when absent).
func splitHost(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// Transport returns next wrapped to record a client span for each request
// made under a recorded span: the gateway's calls to Entra on behalf of a
// sampled request (MSAL's token requests). Requests without a span in
// their context (the background refresh of the signing keys, the readiness
// probe) are not traced: they would each start a trace of their own. The URL's query is
// left out; the body (which carries the assertion) is never read. A nil t
// returns next.
func Transport(t *Tracer, next http.RoundTripper) http.RoundTripper {
	if t == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, next: next}
}

type transport struct {
	t    *Tracer
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !trace.SpanFromContext(req.Context()).IsRecording() {
		// Outside a request, or in one that is not sampled.
		return tr.next.RoundTrip(req)
	}
	method := Method(req.Method)
	u := req.URL
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(method),
		semconv.URLFull(Clean(u.Scheme + "://" + u.Host + u.EscapedPath())),
		semconv.ServerAddress(Clean(u.Hostname())),
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			attrs = append(attrs, semconv.ServerPort(n))
		}
	} else if u.Scheme == "https" {
		attrs = append(attrs, semconv.ServerPort(443))
	}
	if id := req.Header.Get("client-request-id"); id != "" {
		attrs = append(attrs, AttrEntraClientReqID.String(Clean(id)))
	}
	ctx, span := tr.t.t.Start(req.Context(), Clean(method+" "+u.EscapedPath()), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	resp, err := tr.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetAttributes(semconv.ErrorType(err))
		span.SetStatus(codes.Error, "request failed")
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if id := resp.Header.Get("x-ms-request-id"); id != "" {
		attrs = append(attrs[:0], AttrEntraRequestID.String(Clean(id)))
		span.SetAttributes(attrs...)
	}
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that holds a span (the *Context methods of slog.Logger): the
// request path's error lines. A record that already has them (the access
// log writes its own) is left alone by not being logged with the span's
// context.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
