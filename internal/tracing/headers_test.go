package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// A header name that is not an HTTP token ("x api key", or the common slip
// "Authorization: Bearer=abc") or a value with a control character (%0A)
// is refused by Validate: the gateway would start and every export would
// then fail (net/http refuses the header). (Found by the second review.)
func TestInvalidHeaderNamesAreRefused(t *testing.T) {
	for _, h := range []string{"x api key=abc", "api-key=abc%0Adef", "Authorization: Bearer=abc"} {
		t.Run(h, func(t *testing.T) {
			c := Config{Endpoint: "http://127.0.0.1:1", Headers: h}
			if err := c.Validate(); err != nil {
				return // refused up front: fine
			}
			recv := tracingtest.Start(t)
			m := NewMetrics(prometheus.NewRegistry())
			tr, err := New(context.Background(), Config{Endpoint: recv.HTTPEndpoint, Headers: h, Metrics: m})
			if err != nil {
				return
			}
			_, s := tr.Start(context.Background(), "x", trace.SpanKindServer)
			s.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = tr.Shutdown(ctx)
			if f := testutil.ToFloat64(m.spans.WithLabelValues("failure")); f > 0 {
				t.Errorf("headers %q passed Validate, and every export fails (%v spans lost)", h, f)
			}
		})
	}
}
