package tracing

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

// tracing.timeout bounds one export, retries included. Over http/protobuf
// the exporter's own timeout bounds one HTTP attempt only, and a timed-out
// attempt is retried after 5 s, 10 s, … (while the batch processor's only
// export goroutine is blocked and its queue fills): the batch processor's
// export timeout bounds the whole export. (Found by the second review.)
func TestHTTPTimeoutBoundsOneExport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // a collector that accepts and never answers
		}
	}()
	m := NewMetrics(prometheus.NewRegistry())
	tr, err := New(context.Background(), Config{Endpoint: "http://" + ln.Addr().String(), Timeout: 300 * time.Millisecond, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Start(context.Background(), "x", trace.SpanKindServer)
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	_ = tr.Shutdown(ctx) // exports the one span
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("one export with tracing.timeout=300ms took %v (stopped only by the caller's 4s deadline)", took.Round(time.Millisecond))
	}
	if lost := testutil.ToFloat64(m.spans.WithLabelValues("failure")); lost != 1 {
		t.Errorf("%v spans counted lost, want the 1 the timed-out export held", lost)
	}
}
