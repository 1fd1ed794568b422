package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

// A collector that is slow (here: it holds every export until the test has
// recorded its burst) lets the batch processor's queue (2,048) fill up,
// and the SDK drops every span beyond it, silently. The spans recorded are
// counted (obo_gateway_trace_spans_ended_total): once the queue drains,
// those neither exported nor failed are the ones dropped. (Found by the
// second review.)
func TestQueueDropsAreVisible(t *testing.T) {
	hold := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-hold
		w.WriteHeader(http.StatusOK)
	}))
	defer slow.Close()
	m := NewMetrics(prometheus.NewRegistry())
	tr, err := New(context.Background(), Config{Endpoint: slow.URL, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for range n {
		_, s := tr.Start(context.Background(), "GET /orders", trace.SpanKindServer)
		s.End()
	}
	close(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ok := testutil.ToFloat64(m.spans.WithLabelValues("success"))
	failed := testutil.ToFloat64(m.spans.WithLabelValues("failure"))
	if ended := testutil.ToFloat64(m.ended); ended != n {
		t.Errorf("%v spans counted as ended, want the %d recorded", ended, n)
	}
	// At most one batch (512) in the exporter and the queue (2,048) survive
	// a burst the collector holds back: the rest were dropped, and show.
	if ok+failed > 2048+512 || ok+failed == 0 {
		t.Errorf("exported %v, failed %v of %d: want the queue's and one batch's at most, and some", ok, failed, n)
	}
}
