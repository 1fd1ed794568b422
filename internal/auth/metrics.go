package auth

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the token-validation metrics. A nil *Metrics records nothing.
type Metrics struct {
	validations    *prometheus.CounterVec
	validCached    prometheus.Counter
	keyRefreshes   *prometheus.CounterVec
	keys           prometheus.Gauge
	lastKeyRefresh prometheus.Gauge
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		validations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_token_validations_total",
			Help: "Inbound bearer tokens validated, by result (valid; invalid; unavailable: could not be checked now, answered 503; refused: valid but not enough for the route) and reason (of refusal; \"cached\" for a valid token found in the verified-token cache).",
		}, []string{"result", "reason"}),
		keyRefreshes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_signing_key_refreshes_total",
			Help: "Fetches of the tenant's signing keys, by result (success, failure).",
		}, []string{"result"}),
		keys: f.NewGauge(prometheus.GaugeOpts{
			Name: "obo_gateway_signing_keys",
			Help: "Number of signing keys held.",
		}),
		lastKeyRefresh: f.NewGauge(prometheus.GaugeOpts{
			Name: "obo_gateway_signing_keys_last_refresh_timestamp_seconds",
			Help: "Unix time of the last successful fetch of the signing keys.",
		}),
	}
	// Pre-create the series operators alert on, so they exist at zero.
	m.validations.WithLabelValues("valid", "")
	m.validCached = m.validations.WithLabelValues("valid", "cached")
	for _, r := range []Reason{ReasonMissing, ReasonMalformed, ReasonExpired, ReasonSignature, ReasonAudience, ReasonIssuer, ReasonUnknownKey, ReasonTokenKind} {
		m.validations.WithLabelValues("invalid", string(r))
	}
	for _, r := range []Reason{ReasonKeysNotReady, ReasonKeysRefreshFailed} {
		m.validations.WithLabelValues("unavailable", string(r))
	}
	m.keyRefreshes.WithLabelValues("success")
	m.keyRefreshes.WithLabelValues("failure")
	return m
}

func (m *Metrics) validated(result string, reason Reason) {
	if m != nil {
		m.validations.WithLabelValues(result, string(reason)).Inc()
	}
}

// validatedCached counts a token found in the verified-token cache.
func (m *Metrics) validatedCached() {
	if m != nil {
		m.validCached.Inc()
	}
}

func (m *Metrics) keysRefreshed(n int, at time.Time) {
	if m != nil {
		for _, r := range []Reason{ReasonKeysNotReady, ReasonKeysRefreshFailed} {
			m.validations.WithLabelValues("unavailable", string(r))
		}
		m.keyRefreshes.WithLabelValues("success").Inc()
		m.keys.Set(float64(n))
		m.lastKeyRefresh.Set(float64(at.Unix()))
	}
}

func (m *Metrics) keysRefreshFailed() {
	if m != nil {
		m.keyRefreshes.WithLabelValues("failure").Inc()
	}
}
