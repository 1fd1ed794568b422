package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// The client's tracestate, as the W3C propagator parses it (32 members of
// up to 256+256 bytes: ~16 KiB), would be copied into the trace_state of
// the server span and of every span under it; over gRPC, 300 such spans in
// one batch exceed the collector's 4 MiB message limit and the whole batch
// (an honest request's span with it) is refused. Extract drops a
// tracestate beyond 512 bytes. (Found by the second review.)
func TestHugeTracestateDoesNotLoseTheBatchOverGRPC(t *testing.T) {
	recv := tracingtest.Start(t)
	tr, err := New(context.Background(), Config{Endpoint: recv.GRPCEndpoint, Protocol: ProtocolGRPC})
	if err != nil {
		t.Fatal(err)
	}
	h := reqlog.Middleware(slog.New(slog.DiscardHandler))(Middleware(tr)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/orders/good", nil))

	var members []string
	for i := range 32 {
		members = append(members, fmt.Sprintf("k%02d%s=%s", i, strings.Repeat("a", 250), strings.Repeat("v", 256)))
	}
	ts := strings.Join(members, ",")
	if len(ts) < 16000 {
		t.Fatalf("tracestate of %d bytes", len(ts))
	}
	for i := range 300 {
		r := httptest.NewRequest(http.MethodGet, "/orders/evil", nil)
		r.Header.Set("traceparent", fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))
		r.Header.Set("tracestate", ts)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdownErr := tr.Shutdown(ctx)
	spans, ok := recv.WaitFor(3*time.Second, func(s []tracingtest.Span) bool {
		for _, sp := range s {
			if sp.Attrs["url.path"] == "/orders/good" {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("the honest request's span was lost with a batch of spans carrying the client's 16 KiB tracestate (%d spans received; shutdown: %v)", len(spans), shutdownErr)
	}
}
