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
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// A collector's partial success (HTTP 200, 1 of 10 spans rejected) comes
// back from the exporter as an error: 1 lost and 9 stored, not 10 lost.
// (Found by the second review.)
func TestPartialSuccessIsNotCountedAsTotalLoss(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "one span too old"}})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	m := NewMetrics(prometheus.NewRegistry())
	tr, err := New(context.Background(), Config{Endpoint: srv.URL, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_, s := tr.Start(context.Background(), "x", trace.SpanKindServer)
		s.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
	ok, failed := testutil.ToFloat64(m.spans.WithLabelValues("success")), testutil.ToFloat64(m.spans.WithLabelValues("failure"))
	if failed != 1 || ok != 9 {
		t.Errorf("collector stored 9 of 10 spans; counted success %v, failure %v", ok, failed)
	}
}
