package proxy

import (
	"net"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// A request line of tens of KiB (max_header_bytes is 64KiB by default, and
// no path length limit applies) must not become a span attribute of that
// size: held in the batch queue (2,048 spans) and sent in export batches
// beyond a collector's message limit (gRPC: 4 MiB). url.full is bounded
// as the server span's url.path is.
func TestClientSpanURLFullIsBounded(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		rec := tracetest.NewSpanRecorder()
		tr := tracing.FromProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, cfg: Config{Tracer: tr}})
		long := "/orders/" + strings.Repeat("a", 40<<10)
		resp, body := g.raw(t, "GET "+long+" HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%s)", resp.StatusCode, body)
		}
		receive(t, seen)
		for _, s := range rec.Ended() {
			if s.SpanKind() != trace.SpanKindClient {
				continue
			}
			for _, a := range s.Attributes() {
				if a.Key == "url.full" && len(a.Value.AsString()) > 1024 {
					t.Errorf("url.full is %d bytes: a client-controlled attribute without bound", len(a.Value.AsString()))
				}
			}
		}
	})
}

// With tracing on, a WebSocket upgrade and a request with trailers take
// the standard leg even on a fast route; the client's traceparent and
// tracestate must not reach the upstream there either.
func TestTracingCrossLegReplacesTraceContext(t *testing.T) {
	const forged = "00-11111111111111111111111111111111-2222222222222222-01"
	for _, tc := range []struct {
		name, request string
	}{
		{"trailers", "POST /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n" +
			"traceparent: " + forged + "\r\ntracestate: forged=1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"2\r\nhi\r\n0\r\nX-Sum: 1\r\n\r\n"},
		{"websocket", "GET /orders/ws HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade, traceparent\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
			"TraceParent: " + forged + "\r\nTRACESTATE: forged=1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tr := tracing.FromProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
			up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
			rt := ordersRoute(mustURL(t, up.URL))
			rt.WebSocket = true
			rt.Leg = LegFast
			g := newGateway(t, rt, setup{leg: LegFast, crossLeg: true, cfg: Config{Tracer: tr}})
			g.raw(t, tc.request)
			rq := up.receive(t)
			head := strings.ToLower(rq.Head)
			if strings.Contains(head, "forged") || strings.Contains(head, "1111111111111111") {
				t.Errorf("the client's trace context reached the upstream:\n%s", rq.Head)
			}
			if n := strings.Count(head, "\ntraceparent:"); n != 1 {
				t.Errorf("%d traceparent headers upstream, want the gateway's one:\n%s", n, rq.Head)
			}
		})
	}
}
