package tokencache

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/obo-gateway/obo-gateway/internal/lru"
)

// Metrics are the OBO token cache's metrics. A nil *Metrics records nothing.
type Metrics struct {
	reg       prometheus.Registerer
	lookups   *prometheus.CounterVec
	l1Hit     prometheus.Counter
	l1Miss    prometheus.Counter
	evictions *prometheus.CounterVec
	shares    prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		reg: reg,
		lookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_token_cache_requests_total",
			Help: "Downstream-token cache lookups, by level (l1 in memory, l2 shared) and result (hit, miss, error, set_error).",
		}, []string{"level", "result"}),
		evictions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_token_cache_evictions_total",
			Help: "Entries removed from the in-memory token cache, by reason (capacity, expired).",
		}, []string{"reason"}),
		shares: f.NewCounter(prometheus.CounterOpts{
			Name: "obo_gateway_token_cache_shared_exchanges_total",
			Help: "Requests whose cache miss was answered by an exchange shared with concurrent requests (the one that started it included).",
		}),
	}
	m.l1Hit = m.lookups.WithLabelValues("l1", "hit")
	m.l1Miss = m.lookups.WithLabelValues("l1", "miss")
	m.evictions.WithLabelValues("capacity")
	m.evictions.WithLabelValues("expired")
	return m
}

// observe exports the cache's size.
func (m *Metrics) observe(c *lru.LRU[Entry]) {
	if m == nil {
		return
	}
	f := promauto.With(m.reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "obo_gateway_token_cache_entries",
		Help: "Downstream tokens held in the in-memory cache.",
	}, func() float64 { return float64(c.Len()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "obo_gateway_token_cache_bytes",
		Help: "Estimated memory held by the in-memory token cache.",
	}, func() float64 { return float64(c.Bytes()) })
}

// observeExchanges exports the exchanges in progress and waiting.
func (m *Metrics) observeExchanges(s *semaphore) {
	if m == nil {
		return
	}
	f := promauto.With(m.reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "obo_gateway_obo_exchanges_in_progress",
		Help: "On-Behalf-Of exchanges with Entra ID in progress, bounded by limits.max_concurrent_exchanges.",
	}, func() float64 { return float64(s.inProgress()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "obo_gateway_obo_exchanges_queued",
		Help: "On-Behalf-Of exchanges waiting for a place, bounded by limits.max_queued_exchanges.",
	}, func() float64 { return float64(s.queued()) })
}

func (m *Metrics) lookup(level, result string) {
	if m == nil {
		return
	}
	switch {
	case level == "l1" && result == "hit":
		m.l1Hit.Inc() // the hot path: no label lookup
	case level == "l1" && result == "miss":
		m.l1Miss.Inc()
	default:
		m.lookups.WithLabelValues(level, result).Inc()
	}
}

func (m *Metrics) evicted(reason string) {
	if m != nil {
		m.evictions.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) shared() {
	if m != nil {
		m.shares.Inc()
	}
}
