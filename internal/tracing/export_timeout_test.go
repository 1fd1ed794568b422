package tracing

import (
	"context"
	"net"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// tracing.timeout bounds one export, retries included. Over http/protobuf
// the exporter's own timeout bounds one HTTP attempt only, and a timed-out
// attempt is retried after 5 s, 10 s, … (while the batch processor's only
// export goroutine is blocked and its queue fills): the gateway's exporter
// wrapper bounds the whole export. (Found by the second review.)
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
	exp, err := Config{Endpoint: "http://" + ln.Addr().String(), Timeout: 300 * time.Millisecond}.exporter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	spans := tracetest.SpanStubs{{Name: "x"}}.Snapshots()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	w := &watchedExporter{SpanExporter: exp, timeout: 300 * time.Millisecond}
	err = w.ExportSpans(ctx, []sdktrace.ReadOnlySpan(spans))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("one export with tracing.timeout=300ms took %v (stopped only by the caller's 4s deadline): %v", took.Round(time.Millisecond), err)
	}
}
