package proxy

import (
	"bytes"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	// userToken is the user's token, shaped like a JWT. It must never reach
	// an upstream.
	userToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJhcGk6Ly9nYXRld2F5In0.c2lnbmF0dXJlLW9mLXRoZS11c2Vy"
	// downstreamToken is what the OBO middleware obtained for the upstream.
	downstreamToken = "downstream-token-for-orders"
	requestID       = "req-0123456789abcdef"
)

// recorded is what an upstream received.
type recorded struct {
	Method     string
	RequestURI string
	Proto      string
	Header     http.Header
	Body       string
	Dump       string // the whole request as the upstream read it
}

// newUpstream starts a loopback upstream that records every request on the
// returned channel, then serves it with h (nil: 200 "ok").
func newUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, <-chan recorded) {
	t.Helper()
	seen := make(chan recorded, 64)
	srv := httptest.NewServer(recordingHandler(seen, h))
	t.Cleanup(srv.Close)
	return srv, seen
}

func recordingHandler(seen chan<- recorded, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true) // reads and restores the body
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		seen <- recorded{
			Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto,
			Header: r.Header.Clone(), Body: string(body), Dump: string(dump),
		}
		if h == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		h(w, r)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// gateway is a Proxy handler behind a loopback server that plays the auth
// and OBO middleware: it puts the user's token (as the secret) and the
// downstream token in the request context, and gives the proxy the access
// log's writer.
type gateway struct {
	URL      string
	Addr     string
	client   *http.Client
	reg      *prometheus.Registry
	metrics  *Metrics
	logs     *testkit.SyncBuffer
	outcomes chan reqlog.Upstream
}

type setup struct {
	cfg     Config       // Logger and Metrics are set by newGateway
	token   string       // the upstream token; "" means downstreamToken
	noToken bool         // do not call SetUpstreamToken
	tweak   func(*Proxy) // runs before Handler
	// wrap, when set, wraps the proxy's handler, as the edge's middleware
	// does in the gateway (body bounds, deadlines).
	wrap func(http.Handler) http.Handler
}

func newGateway(t *testing.T, rt Route, s setup) *gateway {
	t.Helper()
	g := &gateway{
		reg:      prometheus.NewRegistry(),
		logs:     &testkit.SyncBuffer{},
		outcomes: make(chan reqlog.Upstream, 64),
	}
	g.metrics = NewMetrics(g.reg)
	cfg := s.cfg
	cfg.Metrics = g.metrics
	cfg.Logger = slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Transport == nil {
		tr := NewTransport(TransportConfig{})
		t.Cleanup(tr.CloseIdleConnections)
		cfg.Transport = tr
	}
	p := New(cfg)
	if s.tweak != nil {
		s.tweak(p)
	}
	var h http.Handler = p.Handler(rt)
	if s.wrap != nil {
		h = s.wrap(h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := &Forward{}
		f.SetSecret(userToken)
		switch {
		case s.token != "":
			f.SetUpstreamToken(s.token)
		case !s.noToken:
			f.SetUpstreamToken(downstreamToken)
		}
		ctx := NewContext(reqid.NewContext(r.Context(), requestID), f)
		lw := reqlog.NewWriter(w) // as the access log gives it
		defer func() {
			select {
			case g.outcomes <- lw.Upstream():
			default:
			}
		}()
		h.ServeHTTP(lw, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	g.Addr = srv.Listener.Addr().String()
	g.client = srv.Client()
	g.client.Timeout = 30 * time.Second // a failsafe: no test waits on it
	return g
}

// outcome returns what the proxy reported to the access log's writer for
// the next request the gateway finished.
func (g *gateway) outcome(t *testing.T) reqlog.Upstream {
	t.Helper()
	select {
	case o := <-g.outcomes:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway handler did not finish")
		return reqlog.Upstream{}
	}
}

// do sends req and returns the response with its body read.
func (g *gateway) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func (g *gateway) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g.do(t, req)
}

// raw writes a raw HTTP/1.1 request to the gateway and reads the response.
func (g *gateway) raw(t *testing.T, request string) (*http.Response, string) {
	t.Helper()
	return testkit.RawHTTP(t, g.Addr, request)
}

// receive returns the next request an upstream recorded.
func receive(t *testing.T, seen <-chan recorded) recorded {
	t.Helper()
	select {
	case r := <-seen:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream received nothing")
		return recorded{}
	}
}

// assertNothingReceived fails if the upstream recorded a request.
func assertNothingReceived(t *testing.T, seen <-chan recorded) {
	t.Helper()
	select {
	case r := <-seen:
		t.Errorf("the upstream received %s %s, want nothing", r.Method, r.RequestURI)
	default:
	}
}

// quietLog discards a test server's own error log.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// fakeClock hands out timers the test fires by hand.
type fakeClock struct{ timers chan *fakeTimer }

func newFakeClock() *fakeClock { return &fakeClock{timers: make(chan *fakeTimer, 16)} }

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	ft := &fakeTimer{d: d, f: f}
	c.timers <- ft
	return ft
}

func (c *fakeClock) next(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case ft := <-c.timers:
		return ft
	case <-time.After(30 * time.Second):
		t.Fatal("no timer was started")
		return nil
	}
}

// fakeTimer behaves like a *time.Timer from time.AfterFunc: once stopped
// it never fires, and once fired Stop reports false.
type fakeTimer struct {
	d time.Duration
	f func()

	mu      sync.Mutex
	stopped bool
	fired   bool
}

func (ft *fakeTimer) Stop() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	active := !ft.stopped && !ft.fired
	ft.stopped = true
	return active
}

// fire runs the timer's function unless it was stopped or already fired,
// and reports whether it ran.
func (ft *fakeTimer) fire() bool {
	ft.mu.Lock()
	if ft.stopped || ft.fired {
		ft.mu.Unlock()
		return false
	}
	ft.fired = true
	ft.mu.Unlock()
	ft.f()
	return true
}

func (ft *fakeTimer) wasStopped() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.stopped
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
