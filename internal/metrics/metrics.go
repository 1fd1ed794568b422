// Package metrics holds the gateway's Prometheus registry and its HTTP
// metrics. The registry is created per process (never the global one) and
// passed to each package's NewMetrics.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
)

// NewRegistry returns a registry with the Go and process collectors and
// obo_gateway_build_info{version,goversion}.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "obo_gateway_build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "goversion"}).WithLabelValues(version, runtime.Version()).Set(1)
	return reg
}

// Handler serves the registry's metrics: the Prometheus text format, or
// OpenMetrics (with exemplars) to a scraper that asks for it.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
}

// HTTP are the per-route request metrics of the API listener.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// NewHTTP registers the request metrics on reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	f := promauto.With(reg)
	return &HTTP{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_http_requests_total",
			Help: "Requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "obo_gateway_http_request_duration_seconds",
			Help:    "Time to answer a request (until the handler returns), by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		inFlight: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "obo_gateway_http_requests_in_flight",
			Help: "Requests being answered, by route.",
		}, []string{"route"}),
	}
}

// Middleware records the requests of one route. route must be a bounded
// label (the route's name, or "unmatched"), never a path. A handler that
// writes nothing is counted as 200, as net/http answers; one that panics
// before writing is counted as 500 (reqlog.Writer.Status).
func (m *HTTP) Middleware(route string) func(http.Handler) http.Handler {
	inflight := m.inFlight.WithLabelValues(route)
	duration := m.duration.WithLabelValues(route)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			inflight.Inc()
			// The access log's writer when there is one (found through
			// any writer around it): the request is wrapped once, and both
			// count its status by one rule. Every write reaches it, so w
			// goes on unchanged.
			ww := reqlog.From(w)
			if ww == nil {
				ww = reqlog.NewWriter(w)
				w = ww
			}
			returned := false
			defer func() {
				inflight.Dec()
				Observe(r.Context(), duration, time.Since(start).Seconds())
				m.requests.WithLabelValues(route, method(r.Method), statusLabel(ww.Status(returned))).Inc()
			}()
			next.ServeHTTP(w, r)
			returned = true
		})
	}
}

// Observe observes v, with the trace and span IDs of ctx's span as an
// exemplar when that span is sampled: a histogram's bucket then links to
// one trace that landed in it. Exemplars reach Prometheus in the
// OpenMetrics exposition ([Handler] offers it), stored with
// --enable-feature=exemplar-storage.
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()})
			return
		}
	}
	o.Observe(v)
}

// statusLabels are the code labels of the valid status codes, made once:
// strconv.Itoa would allocate one per request.
var statusLabels = func() (l [600]string) {
	for c := 100; c < len(l); c++ {
		l[c] = strconv.Itoa(c)
	}
	return l
}()

func statusLabel(code int) string {
	if code >= 100 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}

// method bounds the method label to the standard methods.
func method(m string) string {
	if StandardMethod(m) {
		return m
	}
	return "OTHER"
}

// StandardMethod reports one of the nine methods of RFC 9110 and RFC 5789
// (PATCH): the ones a metric label or a span name may carry as they are.
func StandardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

// Refusals count the requests the gateway turns away itself, before any
// upstream sees them: refused (4xx) because they have no single meaning or
// are not allowed, and shed (503) because a limit was reached. A nil
// *Refusals records nothing.
type Refusals struct {
	refused *prometheus.CounterVec
	shed    *prometheus.CounterVec
}

// Reasons of refusal besides the path's (package urlpath's Reason values),
// label values of obo_gateway_http_refused_total.
const (
	ReasonMethod       = "method"         // TRACE, CONNECT or another method not accepted
	ReasonLookalike    = "path_lookalike" // a looser route's path that a lenient server reads as a stricter route's
	ReasonBodyTooLarge = "body_too_large" // over the route's max_body_bytes
	ReasonBodyTimeout  = "body_timeout"   // the body did not arrive within the body timeout
	ReasonBodyBroken   = "body_broken"    // the client broke off while sending its body
	ReasonUpgrade      = "upgrade"        // a WebSocket upgrade on a route that does not allow it
)

// The limits whose overflow is shed, the label values of
// obo_gateway_http_shed_total.
const (
	LimitConnections   = "connections"     // limits.max_connections
	LimitInFlight      = "in_flight"       // limits.max_in_flight
	LimitRouteInFlight = "route_in_flight" // routes[].max_in_flight
	LimitExchanges     = "exchanges"       // limits.max_concurrent_exchanges and its queue
)

// NewRefusals registers the refusal metrics on reg, with a series at zero
// for each reason and limit given, so that alerts see them before the first.
func NewRefusals(reg prometheus.Registerer, reasons []string) *Refusals {
	f := promauto.With(reg)
	m := &Refusals{
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_http_refused_total",
			Help: "Requests refused by the gateway's edge before routing or forwarding (a path with no single meaning, a method or upgrade not allowed, a body too large or too slow), by reason.",
		}, []string{"reason"}),
		shed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "obo_gateway_http_shed_total",
			Help: "Requests answered 503 because a limit was reached, by limit: connections, in_flight, route_in_flight, exchanges.",
		}, []string{"limit"}),
	}
	for _, r := range reasons {
		m.refused.WithLabelValues(r)
	}
	for _, l := range []string{LimitConnections, LimitInFlight, LimitRouteInFlight, LimitExchanges} {
		m.shed.WithLabelValues(l)
	}
	return m
}

// Refused counts a request refused for reason, a bounded label value.
func (m *Refusals) Refused(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

// Shed counts a request answered 503 because limit was reached.
func (m *Refusals) Shed(limit string) {
	if m != nil {
		m.shed.WithLabelValues(limit).Inc()
	}
}
