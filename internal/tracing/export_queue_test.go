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

// A collector that is slow (here: it takes 1 s to accept each export) lets
// the batch processor's queue (2,048) fill up under a burst, and the SDK
// drops every span beyond it, silently. The spans recorded are counted
// (obo_gateway_trace_spans_ended_total): once the queue drains, those
// neither exported nor failed are the ones dropped. (Found by the second
// review.)
func TestQueueDropsAreVisible(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(time.Second)
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ok := testutil.ToFloat64(m.spans.WithLabelValues("success"))
	failed := testutil.ToFloat64(m.spans.WithLabelValues("failure"))
	ended := testutil.ToFloat64(m.ended)
	if ended != n {
		t.Errorf("%v spans counted as ended, want the %d recorded", ended, n)
	}
	if ok+failed >= n {
		t.Skipf("the queue did not fill on this run (exported %v of %d): nothing to see", ok+failed, n)
	}
	t.Logf("ended %v, exported %v, failed %v: %v dropped by the full queue, visible as ended − exported", ended, ok, failed, ended-ok-failed)
}
