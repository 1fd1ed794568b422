package tracing

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Metrics count the spans the exporter sent and those it lost. A nil
// *Metrics counts nothing.
type Metrics struct {
	spans *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg, with both results at 0, so
// that the series exist (and alerts can be written on them) with tracing
// off too.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{spans: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "obo_gateway_trace_spans_exported_total",
		Help: "Spans handed to the OTLP exporter, by result: success, or failure (the collector refused them or could not be reached: they are lost).",
	}, []string{"result"})}
	m.spans.WithLabelValues("success")
	m.spans.WithLabelValues("failure")
	return m
}

func (m *Metrics) exported(result string, n int) {
	if m != nil {
		m.spans.WithLabelValues(result).Add(float64(n))
	}
}

// watchedExporter counts what its exporter sends and loses, and says so in
// the gateway's log (the SDK reports a failed export only on the standard
// library's logger), at most once a minute.
type watchedExporter struct {
	sdktrace.SpanExporter
	m        *Metrics
	log      *slog.Logger
	lastWarn atomic.Int64 // unix nanoseconds of the last warning
}

// warnEvery bounds the export failures' log lines.
const warnEvery = time.Minute

func (e *watchedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		e.m.exported("success", len(spans))
		return nil
	}
	e.m.exported("failure", len(spans))
	now := time.Now().UnixNano()
	if last := e.lastWarn.Load(); now-last >= int64(warnEvery) && e.lastWarn.CompareAndSwap(last, now) {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		e.log.Warn("traces lost: the OTLP collector refused the export or cannot be reached (obo_gateway_trace_spans_exported_total{result=\"failure\"} counts them; this line is written at most once a minute)",
			"spans", len(spans), "error", msg)
	}
	return err
}
