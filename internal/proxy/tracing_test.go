package proxy

import (
	"net/http"
	"regexp"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// With tracing on, both legs send the upstream the trace context of the
// proxy's client span, a child of the request's span, in place of
// whatever the client sent (in any case, or named in Connection); the span
// records the upstream's status.
func TestTracingReplacesTheClientsTraceContext(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tr := tracing.FromProvider(tp)
		up, seen := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
		var parent trace.SpanContext
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, cfg: Config{Tracer: tr},
			wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, span := tr.Start(r.Context(), "server", trace.SpanKindServer)
					defer span.End()
					parent = span.SpanContext()
					h.ServeHTTP(w, r.WithContext(ctx))
				})
			}})
		resp, body := g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close, Traceparent\r\n"+
			"TRACEPARENT: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"+
			"traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n"+
			"Tracestate: forged=1\r\n\r\n")
		if resp.StatusCode != http.StatusTeapot {
			t.Fatalf("status %d (%s)", resp.StatusCode, body)
		}
		got := receive(t, seen)
		tps := got.Header.Values("Traceparent")
		if len(tps) != 1 {
			t.Fatalf("upstream Traceparent %q, want one", tps)
		}
		m := traceparentRE.FindStringSubmatch(tps[0])
		if m == nil || m[1] != parent.TraceID().String() {
			t.Fatalf("upstream Traceparent %q, want the request span's trace %s", tps[0], parent.TraceID())
		}
		if ts := got.Header.Values("Tracestate"); len(ts) != 0 {
			t.Errorf("upstream Tracestate %q: the client's reached it", ts)
		}
		var client sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindClient {
				client = s
			}
		}
		if client == nil {
			t.Fatal("no client span")
		}
		if client.SpanContext().SpanID().String() != m[2] {
			t.Errorf("upstream parent %s, want the client span %s", m[2], client.SpanContext().SpanID())
		}
		if client.Parent().SpanID() != parent.SpanID() {
			t.Errorf("client span's parent %s, want the request's span %s", client.Parent().SpanID(), parent.SpanID())
		}
		if client.Name() != "GET /orders" {
			t.Errorf("client span name %q", client.Name())
		}
		attrs := map[string]string{}
		for _, a := range client.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["http.response.status_code"] != "418" || attrs["url.full"] != up.URL+"/1" {
			t.Errorf("client span attributes %v", attrs)
		}
		if client.Status().Code != codes.Error {
			t.Errorf("client span status %v, want an error for a 4xx (client spans)", client.Status())
		}
	})
}

// With tracing off, the client's trace context passes untouched, as any
// header: the upstream joins the frontend's trace.
func TestTracingOffPassesTheTraceContext(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\nTraceparent: "+tp+"\r\nTracestate: a=1\r\n\r\n")
		got := receive(t, seen)
		if v := got.Header.Values("Traceparent"); len(v) != 1 || v[0] != tp {
			t.Errorf("upstream Traceparent %q, want the client's", v)
		}
		if v := got.Header.Get("Tracestate"); v != "a=1" {
			t.Errorf("upstream Tracestate %q, want the client's", v)
		}
	})
}

// A failed upstream request ends its span as an error with the failure's
// kind.
func TestTracingUpstreamFailure(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		rec := tracetest.NewSpanRecorder()
		tr := tracing.FromProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		rt := ordersRoute(mustURL(t, "http://"+testkit.ClosedAddr(t)))
		g := newGateway(t, rt, setup{leg: leg, cfg: Config{Tracer: tr}})
		resp, _ := g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans, want 1", len(spans))
		}
		s := spans[0]
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if _, answered := attrs["http.response.status_code"]; s.Status().Code != codes.Error || attrs["error.type"] != "connect" || answered {
			t.Errorf("span status %v attributes %v, want an error of kind connect and no upstream status", s.Status(), attrs)
		}
	})
}
