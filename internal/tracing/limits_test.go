package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// The span limits' backstop: an attribute of 40 KiB (had any escaped
// Clean) in each of 150 spans of one batch would exceed the collector's
// gRPC message limit (4 MiB by default), and the whole batch, with every
// honest span in it, would be refused. The SDK cuts each to 1 KiB.
func TestLargeAttributesDoNotLoseTheBatchOverGRPC(t *testing.T) {
	recv := tracingtest.Start(t)
	tr, err := New(context.Background(), Config{Endpoint: recv.GRPCEndpoint, Protocol: ProtocolGRPC})
	if err != nil {
		t.Fatal(err)
	}
	_, honest := tr.Start(context.Background(), "honest", trace.SpanKindServer)
	honest.End()
	long := "http://upstream/orders/" + strings.Repeat("a", 40<<10)
	for range 150 {
		_, s := tr.Start(context.Background(), "GET /orders", trace.SpanKindClient, attribute.String("url.full", long))
		s.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
	if !recv.WaitForSpan(3*time.Second, "honest") {
		t.Error("the honest span was lost with the oversized batch")
	}
}
