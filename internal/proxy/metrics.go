package proxy

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
)

// Metrics are the upstream request metrics, labelled by route name only.
// A nil *Metrics records nothing.
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	claims   *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg. It panics if they are already
// registered there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "obo_gateway_upstream_request_duration_seconds",
			Help:    "Time from sending an upstream request to receiving its response headers, by route. Failed requests are counted in obo_gateway_upstream_errors_total instead.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_upstream_errors_total",
			Help: "Upstream requests that got no response, by route and kind (timeout, connect, canceled by the client, other).",
		}, []string{"route", "kind"}),
		claims: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_upstream_claims_challenges_total",
			Help: "Upstream 401 claims challenges, by route and result: retried (new token, request replayed), retried_still_refused, passed_body (not replayable), passed_exchange_failed, passed_retry_failed, shed (no exchange place: answered 503), unavailable (the identity provider throttles or fails: answered 503).",
		}, []string{"route", "result"}),
	}
}

func (m *Metrics) claimsChallenge(route, result string) {
	if m != nil {
		m.claims.WithLabelValues(route, result).Inc()
	}
}

// addRoute pre-creates a route's series, so they exist at zero.
func (m *Metrics) addRoute(route string) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(route)
	for _, k := range []string{kindTimeout, kindConnect, kindCanceled, kindOther} {
		m.errors.WithLabelValues(route, k)
	}
	for _, r := range []string{"retried", "retried_still_refused", "passed_body", "passed_exchange_failed", "passed_retry_failed", "shed", "unavailable"} {
		m.claims.WithLabelValues(route, r)
	}
}

func (m *Metrics) observe(ctx context.Context, route string, d time.Duration) {
	if m != nil {
		metrics.Observe(ctx, m.duration.WithLabelValues(route), d.Seconds())
	}
}

func (m *Metrics) failed(route, kind string) {
	if m != nil {
		m.errors.WithLabelValues(route, kind).Inc()
	}
}
