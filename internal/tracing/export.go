package tracing

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Metrics count the spans recorded and what became of them. A nil
// *Metrics counts nothing.
type Metrics struct {
	ended prometheus.Counter
	spans *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg, at 0, so that the series exist
// (and alerts can be written on them) with tracing off too.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		ended: f.NewCounter(prometheus.CounterOpts{
			Name: "obo_gateway_trace_spans_ended_total",
			Help: "Spans recorded and handed to the batch queue. Those neither exported nor failed once the queue drains were dropped by the full queue.",
		}),
		spans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_trace_spans_exported_total",
			Help: "Spans the OTLP exporter sent, by result: success, or failure (the collector refused them or could not be reached: they are lost).",
		}, []string{"result"}),
	}
	m.spans.WithLabelValues("success")
	m.spans.WithLabelValues("failure")
	return m
}

func (m *Metrics) exported(result string, n int) {
	if m != nil && n > 0 {
		m.spans.WithLabelValues(result).Add(float64(n))
	}
}

// countingProcessor counts the spans that end before the batch processor
// takes them (or, its queue full, drops them without a word).
type countingProcessor struct {
	sdktrace.SpanProcessor
	m *Metrics
}

func (p countingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.m != nil {
		p.m.ended.Inc()
	}
	p.SpanProcessor.OnEnd(s)
}

// watchedExporter counts what its exporter sends and loses, and says so in
// the gateway's log, at most once a minute. It returns nil: the batch
// processor drops a batch whether it failed or not, and would only pass the
// error on to the SDK's process-wide handler, a second line for one loss.
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
	lost := len(spans)
	if n, ok := rejected(err); ok && n >= 0 && n <= int64(len(spans)) {
		// A partial success: the collector stored the others.
		lost = int(n)
	}
	e.m.exported("success", len(spans)-lost)
	e.m.exported("failure", lost)
	now := time.Now().UnixNano()
	if last := e.lastWarn.Load(); e.log != nil && now-last >= int64(warnEvery) && e.lastWarn.CompareAndSwap(last, now) {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		e.log.Warn("traces lost: the OTLP collector refused spans or cannot be reached (obo_gateway_trace_spans_exported_total{result=\"failure\"} counts them; this line is written at most once a minute)",
			"spans", lost, "error", msg)
	}
	return nil
}

// rejected is the number of spans a collector's partial success refused.
// The exporters report it as an error of their internal PartialSuccess
// type, whose RejectedItems field is read here by name.
func rejected(err error) (int64, bool) {
	for _, e := range unwrapAll(err) {
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct && v.Type().Name() == "PartialSuccess" {
			if f := v.FieldByName("RejectedItems"); f.IsValid() && f.CanInt() {
				return f.Int(), true
			}
		}
	}
	return 0, false
}

// unwrapAll is err and every error it wraps.
func unwrapAll(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(out) > 32 {
			return
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		default:
			walk(errors.Unwrap(e))
		}
	}
	walk(err)
	return out
}
