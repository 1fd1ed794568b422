package metrics

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry("v1.2.3")
	want := `
# HELP obo_gateway_build_info Build information; always 1.
# TYPE obo_gateway_build_info gauge
obo_gateway_build_info{goversion="` + runtime.Version() + `",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "obo_gateway_build_info"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		// process_* metrics exist only where procfs does (Linux); go_* everywhere.
		if n == 0 && (strings.HasPrefix(name, "go_") || runtime.GOOS == "linux") {
			t.Errorf("%s missing: the Go and process collectors must be registered", name)
		}
	}
	n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "obo_gateway_build_info")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("obo_gateway_build_info is on the default registry")
	}
}

// newHTTP returns HTTP metrics on a fresh registry.
func newHTTP(t *testing.T) (*HTTP, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return NewHTTP(reg), reg
}

// do serves one request through m.Middleware(route).
func do(t *testing.T, m *HTTP, route, method string, h http.HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Middleware(route)(h).ServeHTTP(rec, httptest.NewRequest(method, "/orders/1?q=x", nil))
	return rec
}

func TestMiddlewareCountsRequests(t *testing.T) {
	m, reg := newHTTP(t)
	do(t, m, "orders", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {})
	do(t, m, "orders", http.MethodGet, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	do(t, m, "orders", http.MethodPost, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	do(t, m, "unmatched", http.MethodGet, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	do(t, m, "orders", "PROPFIND", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) })
	do(t, m, "orders", "BREW", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) })

	want := `
# HELP obo_gateway_http_requests_total Requests answered, by route, method and status code.
# TYPE obo_gateway_http_requests_total counter
obo_gateway_http_requests_total{code="200",method="GET",route="orders"} 2
obo_gateway_http_requests_total{code="201",method="POST",route="orders"} 1
obo_gateway_http_requests_total{code="405",method="OTHER",route="orders"} 2
obo_gateway_http_requests_total{code="404",method="GET",route="unmatched"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "obo_gateway_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration, "obo_gateway_http_request_duration_seconds"); n != 2 {
		t.Errorf("duration series = %d, want 2 (orders, unmatched)", n)
	}
	if got := testkit.HistogramCount(t, reg, "obo_gateway_http_request_duration_seconds", map[string]string{"route": "orders"}); got != 5 {
		t.Errorf("duration observations for orders = %d, want 5", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestMethodLabel(t *testing.T) {
	for _, tc := range []struct{ method, want string }{
		{http.MethodGet, "GET"}, {http.MethodHead, "HEAD"}, {http.MethodPost, "POST"},
		{http.MethodPut, "PUT"}, {http.MethodPatch, "PATCH"}, {http.MethodDelete, "DELETE"},
		{http.MethodOptions, "OPTIONS"}, {http.MethodConnect, "CONNECT"}, {http.MethodTrace, "TRACE"},
		{"get", "OTHER"}, {"PROPFIND", "OTHER"}, {"", "OTHER"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			if got := method(tc.method); got != tc.want {
				t.Errorf("method(%q) = %q, want %q", tc.method, got, tc.want)
			}
		})
	}
}

func TestMiddlewareInFlight(t *testing.T) {
	m, _ := newHTTP(t)
	gauge := m.inFlight.WithLabelValues("orders")
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(t, m, "orders", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
		})
	}()
	<-entered
	if got := testutil.ToFloat64(gauge); got != 1 {
		t.Errorf("in flight during the request = %v, want 1", got)
	}
	close(release)
	<-done
	if got := testutil.ToFloat64(gauge); got != 0 {
		t.Errorf("in flight after the request = %v, want 0", got)
	}
}

func TestMiddlewarePanicIsNotCounted200(t *testing.T) {
	m, reg := newHTTP(t)
	func() {
		defer func() { _ = recover() }()
		do(t, m, "orders", http.MethodGet, func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	}()
	want := `
# HELP obo_gateway_http_requests_total Requests answered, by route, method and status code.
# TYPE obo_gateway_http_requests_total counter
obo_gateway_http_requests_total{code="500",method="GET",route="orders"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "obo_gateway_http_requests_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.inFlight.WithLabelValues("orders")); got != 0 {
		t.Errorf("in flight after a panic = %v, want 0", got)
	}
}

// TestMiddlewareKeepsFlusher serves server-sent events through the
// middleware over HTTP/1.1 and HTTP/2: the handler must see an http.Flusher,
// and each event must reach the client before the handler returns.
func TestMiddlewareKeepsFlusher(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
	}{
		{"HTTP/1.1", false},
		{"HTTP/2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newHTTP(t)
			release := make(chan struct{})
			flusher := make(chan bool, 1)
			h := m.Middleware("events")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, ok := w.(http.Flusher)
				flusher <- ok
				if !ok {
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: one\n\n")
				f.Flush()
				<-release
				_, _ = io.WriteString(w, "data: two\n\n")
			}))
			srv := httptest.NewUnstartedServer(h)
			if tc.http2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			defer close(release)

			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if want := tc.http2; (resp.ProtoMajor == 2) != want {
				t.Fatalf("proto = %s", resp.Proto)
			}
			if !<-flusher {
				t.Fatal("the ResponseWriter seen by the handler is not an http.Flusher")
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event = %q, %v; want it before the handler returns", line, err)
			}
		})
	}
}

func TestHandlerServesRegistry(t *testing.T) {
	reg := NewRegistry("test")
	m := NewHTTP(reg)
	do(t, m, "orders", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {})
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`obo_gateway_build_info{goversion="` + runtime.Version() + `",version="test"} 1`,
		`obo_gateway_http_requests_total{code="200",method="GET",route="orders"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// unwrapper is a middleware's writer that passes Unwrap (compression, a
// timeout), between the access log and the metrics.
type unwrapper struct{ http.ResponseWriter }

func (w unwrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The metrics find the access log's writer through any writer around it:
// what the handlers record reaches the access log, and the metrics count
// the status the access log logs.
func TestMiddlewareSharesTheAccessLogsWriter(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	reg := prometheus.NewRegistry()
	m := NewHTTP(reg)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.From(w).SetUser("oid-1", "tid-1")
		reqlog.From(w).SetShed("in_flight")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	between := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(unwrapper{w}, r) })
	}
	h := reqlog.Middleware(slog.New(slog.NewJSONHandler(logs, nil)))(between(m.Middleware("r")(inner)))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	if line := logs.Only(t, "request"); line["oid"] != "oid-1" || line["shed"] != "in_flight" || line["status"] != 503.0 {
		t.Errorf("access log = %v: the record went elsewhere", line)
	}
	if n := testkit.CounterValue(t, reg, "obo_gateway_http_requests_total", map[string]string{"route": "r", "method": "GET", "code": "503"}); n != 1 {
		t.Errorf("requests_total{code=503} = %v, want 1", n)
	}
}

// A request's duration carries its sampled span's IDs as an exemplar,
// which the OpenMetrics exposition shows; an unsampled or untraced request
// carries none.
func TestExemplars(t *testing.T) {
	reg := NewRegistry("test")
	m := NewHTTP(reg)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
		route := "unsampled"
		if sc.IsSampled() {
			route = "sampled"
		}
		h := m.Middleware(route)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(trace.ContextWithSpanContext(context.Background(), sc)))
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	var sampled, unsampled bool
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "obo_gateway_http_request_duration_seconds_bucket{") || !strings.Contains(line, " # {") {
			continue
		}
		if !strings.Contains(line, `trace_id="4bf92f3577b34da6a3ce929d0e0e4736"`) || !strings.Contains(line, `span_id="00f067aa0ba902b7"`) {
			t.Errorf("exemplar without the IDs: %s", line)
		}
		sampled = sampled || strings.Contains(line, `route="sampled"`)
		unsampled = unsampled || strings.Contains(line, `route="unsampled"`)
	}
	if !sampled || unsampled {
		t.Errorf("exemplar on the sampled request %v (want true), on the unsampled one %v (want false)", sampled, unsampled)
	}
	// Plain Prometheus text for a scraper that does not ask for OpenMetrics.
	rec = httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), " # {") {
		t.Error("exemplars in the text format")
	}
}
