package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	proxy    *Proxy
	reg      *prometheus.Registry
	metrics  *Metrics
	logs     *testkit.SyncBuffer
	outcomes chan reqlog.Upstream
	dialed   map[Leg]*atomic.Int32 // connections each leg opened (or tried to)
}

// legs are the two ways to an upstream. The behaviour tests run on both:
// an upstream, and a client, must not be able to tell which one carried a
// request.
var legs = []Leg{LegStandard, LegFast}

// forEachLeg runs f as one subtest per leg, named by it.
func forEachLeg(t *testing.T, f func(t *testing.T, leg Leg)) {
	t.Helper()
	for _, leg := range legs {
		t.Run(string(leg), func(t *testing.T) { f(t, leg) })
	}
}

type setup struct {
	cfg     Config       // Logger and Metrics are set by newGateway
	token   string       // the upstream token; "" means downstreamToken
	noToken bool         // do not call SetUpstreamToken
	tweak   func(*Proxy) // runs before Handler
	// wrap, when set, wraps the proxy's handler, as the edge's middleware
	// does in the gateway (body bounds, deadlines).
	wrap func(http.Handler) http.Handler
	// leg, when set, is the route's leg (its Route.Leg otherwise). The
	// gateway fails the test if the other leg opens a connection, so that
	// a test cannot pass on the leg it does not mean to test.
	leg Leg
	// crossLeg lets the route's leg hand requests to the other one, as
	// the fast leg does upgrades and requests with trailers.
	crossLeg bool
}

func newGateway(t *testing.T, rt Route, s setup) *gateway {
	t.Helper()
	g := &gateway{
		reg:      prometheus.NewRegistry(),
		logs:     &testkit.SyncBuffer{},
		outcomes: make(chan reqlog.Upstream, 64),
	}
	g.metrics = NewMetrics(g.reg)
	g.dialed = map[Leg]*atomic.Int32{LegStandard: new(atomic.Int32), LegFast: new(atomic.Int32)}
	cfg := s.cfg
	cfg.Metrics = g.metrics
	cfg.Logger = slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Transport == nil {
		tr := NewTransport(TransportConfig{})
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			g.dialed[LegStandard].Add(1)
			return dial(ctx, network, addr)
		}
		t.Cleanup(tr.CloseIdleConnections)
		cfg.Transport = tr
	}
	if cfg.Fast.Dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		cfg.Fast.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			g.dialed[LegFast].Add(1)
			return d.DialContext(ctx, network, addr)
		}
	}
	if s.leg != LegAuto {
		rt.Leg = s.leg
	}
	p := New(cfg)
	g.proxy = p
	t.Cleanup(p.CloseIdleConnections)
	if s.tweak != nil {
		s.tweak(p)
	}
	var h http.Handler = p.Handler(rt)
	if !s.crossLeg {
		want, other := LegStandard, LegFast
		if p.fastLegFor(rt) {
			want, other = LegFast, LegStandard
		}
		t.Cleanup(func() {
			if n := g.dialed[other].Load(); n > 0 {
				t.Errorf("the %s leg opened %d connections on a route of the %s leg", other, n, want)
			}
		})
	}
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

// dials returns the connections leg opened, or tried to.
func (g *gateway) dials(leg Leg) int { return int(g.dialed[leg].Load()) }

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

// newCountingUpstream is newUpstream that also counts the connections it
// accepted.
func newCountingUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, <-chan recorded, *atomic.Int32) {
	t.Helper()
	seen := make(chan recorded, 64)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(recordingHandler(seen, h))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, seen, &conns
}

// rawUpstream is a loopback upstream that speaks HTTP/1.1 by hand. It sees
// a request's head as it was written on the wire, and answers whatever a
// test writes: what net/http's server would not send (an answer nobody
// asked for, an HTTP/1.0 body, a 100 Continue unasked), or nothing (a
// connection closed before answering).
type rawUpstream struct {
	URL      string
	accepted atomic.Int32    // connections accepted
	seen     chan rawRequest // every request read
	ended    chan int        // connection numbers, as each one ends
}

// rawRequest is one request a rawUpstream read.
type rawRequest struct {
	Conn int           // its connection's number, from 1, in the order accepted
	N    int           // its number on that connection, from 1
	Head string        // the request line and header lines, as written
	Req  *http.Request // parsed from Head; Body holds the body
	Body string        // the body, de-chunked
	// Trailers are those after a chunked body.
	Trailers http.Header
}

// rawAnswer answers one request on conn; false closes the connection
// after it.
type rawAnswer func(conn net.Conn, rq rawRequest) bool

func newRawUpstream(t *testing.T, answer rawAnswer) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{URL: "http://" + ln.Addr().String(), seen: make(chan rawRequest, 256), ended: make(chan int, 256)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(u.accepted.Add(1))
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.serve(c, n, answer)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return u
}

func (u *rawUpstream) serve(c net.Conn, n int, answer rawAnswer) {
	defer func() {
		c.Close()
		u.ended <- n
	}()
	br := bufio.NewReader(c)
	for i := 1; ; i++ {
		rq, err := readRawRequest(br, c)
		if err != nil {
			return
		}
		rq.Conn, rq.N = n, i
		u.seen <- rq
		if !answer(c, rq) {
			return
		}
	}
}

// readRawRequest reads one request, keeping its head as written. It
// answers Expect: 100-continue on w, as a server that wants the body does.
func readRawRequest(br *bufio.Reader, w io.Writer) (rawRequest, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return rawRequest{}, err
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String())))
	if err != nil {
		return rawRequest{}, err
	}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		if _, err := io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return rawRequest{}, err
		}
	}
	var body []byte
	var trailers http.Header
	switch {
	case len(req.TransferEncoding) > 0:
		if body, err = io.ReadAll(httputil.NewChunkedReader(br)); err != nil {
			return rawRequest{}, err
		}
		h, err := textproto.NewReader(br).ReadMIMEHeader() // up to the blank line
		if err != nil {
			return rawRequest{}, err
		}
		trailers = http.Header(h)
	case req.ContentLength > 0:
		body = make([]byte, req.ContentLength)
		if _, err := io.ReadFull(br, body); err != nil {
			return rawRequest{}, err
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return rawRequest{Head: head.String(), Req: req, Body: string(body), Trailers: trailers}, nil
}

// rawOK answers rq 200 with body and its Content-Length (the length
// alone to a HEAD).
func rawOK(conn net.Conn, rq rawRequest, body string) bool {
	head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if rq.Req.Method == http.MethodHead {
		body = ""
	}
	_, err := io.WriteString(conn, head+body)
	return err == nil
}

// nextEnded returns the number of the next connection the raw upstream saw
// end.
func (u *rawUpstream) nextEnded(t *testing.T) int {
	t.Helper()
	select {
	case n := <-u.ended:
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("no upstream connection ended")
		return 0
	}
}

// receive returns the next request the raw upstream read.
func (u *rawUpstream) receive(t *testing.T) rawRequest {
	t.Helper()
	select {
	case rq := <-u.seen:
		return rq
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream received nothing")
		return rawRequest{}
	}
}

// received drains the requests the raw upstream has read so far.
func (u *rawUpstream) received() []rawRequest {
	var out []rawRequest
	for {
		select {
		case rq := <-u.seen:
			out = append(out, rq)
		default:
			return out
		}
	}
}
