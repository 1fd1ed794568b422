package redisl2

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Operations and results: the metrics' bounded label values.
const (
	opGet = "get"
	opSet = "set"

	resultHit           = "hit"           // get: found and decrypted
	resultMiss          = "miss"          // get: not in Redis
	resultUndecryptable = "undecryptable" // get: found, but unknown key ID, failed authentication or malformed; a miss to the caller
	resultStored        = "stored"        // set: stored
	resultError         = "error"         // Redis did not answer in time, or answered with an error
	resultSkipped       = "skipped"       // breaker open: Redis not asked
)

// Metrics are the L2 cache metrics. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the metrics on reg:
//
//	obo_gateway_token_cache_l2_requests_total{op="get|set",result="hit|miss|undecryptable|stored|error|skipped"}
//	obo_gateway_token_cache_l2_duration_seconds{op="get|set"}
//
// It panics if they are already registered on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_token_cache_l2_requests_total",
			Help: "Requests to the shared (Redis) token cache, by operation (get, set) and result (hit, miss, undecryptable, stored, error, skipped).",
		}, []string{"op", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "obo_gateway_token_cache_l2_duration_seconds",
			Help:    "Time spent on requests that reached the shared (Redis) token cache, by operation; calls skipped by the open breaker are not observed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"}),
	}
	// Pre-create the series operators alert on, so they exist at zero.
	for _, r := range []string{resultHit, resultMiss, resultUndecryptable, resultError, resultSkipped} {
		m.requests.WithLabelValues(opGet, r)
	}
	for _, r := range []string{resultStored, resultError, resultSkipped} {
		m.requests.WithLabelValues(opSet, r)
	}
	m.duration.WithLabelValues(opGet)
	m.duration.WithLabelValues(opSet)
	return m
}

func (m *Metrics) request(op, result string) {
	if m != nil {
		m.requests.WithLabelValues(op, result).Inc()
	}
}

func (m *Metrics) observe(op string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(op).Observe(d.Seconds())
	}
}
