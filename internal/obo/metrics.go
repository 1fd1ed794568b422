package obo

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
)

// Metrics are the OBO exchange metrics. A nil *Metrics records nothing.
type Metrics struct {
	exchanges *prometheus.CounterVec
	duration  prometheus.Histogram
	notAfter  prometheus.Gauge
	reloads   *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		notAfter: f.NewGauge(prometheus.GaugeOpts{
			Name: "obo_gateway_certificate_not_after_timestamp_seconds",
			Help: "Unix time at which the gateway's credential certificate (the one in use) expires.",
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_certificate_reloads_total",
			Help: "Reloads of a changed credential certificate from disk, by result (success, failure).",
		}, []string{"result"}),
		exchanges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_obo_exchanges_total",
			Help: "On-Behalf-Of exchanges, by route, result (success or the failure class) and error code (AADSTSnnnn, http_nnn, timeout, network).",
		}, []string{"route", "result", "error_code"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "obo_gateway_obo_exchange_duration_seconds",
			Help:    "Duration of On-Behalf-Of exchanges (MSAL call, including its cache).",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

func (m *Metrics) certificate(c *Certificate) {
	if m != nil && c != nil {
		m.notAfter.Set(float64(c.Leaf().NotAfter.Unix()))
	}
}

func (m *Metrics) certificateReload(result string) {
	if m != nil {
		m.reloads.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) exchanged(ctx context.Context, route, result, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.exchanges.WithLabelValues(route, result, code).Inc()
	metrics.Observe(ctx, m.duration, d.Seconds())
}
