package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// The fast leg's own machinery: its pool of kept-alive connections, their
// limits and their liveness, TLS. What both legs do alike is tested on
// both, in the other files.

// fastPool is the fast leg's pool for upstream (a base URL).
func (g *gateway) fastPool(t *testing.T, upstream string) *connPool {
	t.Helper()
	u := mustURL(t, upstream)
	g.proxy.poolsMu.Lock()
	defer g.proxy.poolsMu.Unlock()
	p := g.proxy.pools[u.Scheme+"://"+u.Host]
	if p == nil {
		t.Fatalf("no fast pool for %s", upstream)
	}
	return p
}

// waiting is the number of requests waiting for a connection (the bound of
// MaxConnsPerHost).
func (p *connPool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// waitUntil polls cond, which the pool offers no channel for, until it
// holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Sequential requests of every shape share one kept-alive connection:
// each answer is read to its end, exactly, and the connection serves the
// next.
func TestFastPoolReusesOneConnection(t *testing.T) {
	up, seen, conns := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part %d;", i)
				w.(http.Flusher).Flush()
			}
		case "/error":
			http.Error(w, "nope", http.StatusInternalServerError)
		default:
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s", r.Method, body)
		}
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast})
	for _, tc := range []struct {
		method, path, body string
		chunked            bool
		wantStatus         int
		want               string
	}{
		{method: "GET", path: "/a", want: "GET "},
		{method: "POST", path: "/a", body: "hello", want: "POST hello"},
		{method: "PUT", path: "/a", body: "streamed", chunked: true, want: "PUT streamed"},
		{method: "HEAD", path: "/a"},
		{method: "GET", path: "/204", wantStatus: http.StatusNoContent},
		{method: "GET", path: "/big", want: strings.Repeat("x", 100<<10)},
		{method: "GET", path: "/chunked", want: "part 0;part 1;part 2;"},
		{method: "GET", path: "/error", wantStatus: http.StatusInternalServerError, want: "nope\n"},
		{method: "DELETE", path: "/a", want: "DELETE "},
		{method: "GET", path: "/a", want: "GET "},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // of unknown length
			}
		}
		req, _ := http.NewRequest(tc.method, g.URL+"/orders"+tc.path, body)
		resp, got := g.do(t, req)
		want := tc.wantStatus
		if want == 0 {
			want = http.StatusOK
		}
		if resp.StatusCode != want || got != tc.want {
			t.Errorf("%s %s: %d %.40q, want %d %.40q", tc.method, tc.path, resp.StatusCode, got, want, tc.want)
		}
		receive(t, seen)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections, want 1", n)
	}
	if n := g.dials(LegFast); n != 1 {
		t.Errorf("the fast leg dialed %d times, want 1", n)
	}
}

// Concurrent requests each get their own answer (run with -race).
func TestFastConcurrentRequests(t *testing.T) {
	up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s|%s", r.URL.Path, body)
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast})
	const n = 40
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var body io.Reader
			if i%2 == 1 {
				body = strings.NewReader(fmt.Sprintf("body-%d", i))
			}
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/orders/%d", g.URL, i), body)
			resp, err := g.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			want := fmt.Sprintf("/%d|", i)
			if i%2 == 1 {
				want += fmt.Sprintf("body-%d", i)
			}
			if err != nil || string(got) != want {
				errs <- fmt.Errorf("request %d: %q, %v; want %q", i, got, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A POST on a connection the upstream closed while it was idle is sent
// once, on a new connection: the leg sees the close before it writes.
func TestFastIdleConnectionClosedBeforeAPost(t *testing.T) {
	up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
		rawOK(conn, rq, "ok "+rq.Body)
		return rq.Conn > 1 // the first connection is closed after its answer
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast})
	if resp, _ := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	up.receive(t)
	if n := up.nextEnded(t); n != 1 {
		t.Fatalf("connection %d ended, want the first", n)
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/orders/pay", strings.NewReader("100"))
	if resp, body := g.do(t, req); resp.StatusCode != http.StatusOK || body != "ok 100" {
		t.Errorf("POST: %d %q, want 200 ok 100", resp.StatusCode, body)
	}
	got := up.received()
	if len(got) != 1 || got[0].Conn != 2 {
		t.Errorf("the upstream read the POST %d times (%+v), want once, on the second connection", len(got), got)
	}
}

// An upstream that sends bytes nobody asked for on a kept-alive
// connection: they are never read as the answer to the next request,
// which takes a new connection.
func TestFastUnsolicitedAnswer(t *testing.T) {
	const extra = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	tests := []struct {
		name   string
		method string
		answer string // to the first request
		after  string // written once the client has its answer
	}{
		{name: "with its answer", method: http.MethodGet, answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" + extra},
		{name: "after its answer", method: http.MethodGet, answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", after: extra},
		{name: "a body to a HEAD", method: http.MethodHead, answer: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			more := make(chan net.Conn, 1)
			up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
				if rq.Conn == 1 && rq.N == 1 {
					_, _ = io.WriteString(conn, tc.answer)
					more <- conn
					return true
				}
				return rawOK(conn, rq, "second")
			})
			g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast})
			req, _ := http.NewRequest(tc.method, g.URL+"/orders/1", nil)
			if resp, _ := g.do(t, req); resp.StatusCode != http.StatusOK {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			conn := <-more
			if tc.after != "" {
				// On loopback, the bytes are in the proxy's socket when
				// the write returns.
				if _, err := io.WriteString(conn, tc.after); err != nil {
					t.Fatal(err)
				}
			}
			resp, body := g.get(t, "/orders/2")
			if resp.StatusCode != http.StatusOK || body != "second" {
				t.Errorf("second request: %d %q, want 200 second: its own answer", resp.StatusCode, body)
			}
			if n := up.accepted.Load(); n != 2 {
				t.Errorf("upstream accepted %d connections, want 2", n)
			}
		})
	}
}

// MaxConnsPerHost bounds the connections to an upstream: the requests
// beyond wait for one, then are served on it.
func TestFastMaxConnsPerHost(t *testing.T) {
	const (
		limit    = 2
		requests = 5
	)
	release := make(chan struct{})
	arrived := make(chan struct{}, requests)
	up, _, conns := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast, cfg: Config{Fast: FastConfig{MaxConnsPerHost: limit}}})
	statuses := make(chan int, requests)
	for range requests {
		go func() {
			resp, err := g.client.Get(g.URL + "/orders/1")
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range limit {
		<-arrived
	}
	pool := g.fastPool(t, up.URL)
	waitUntil(t, "the other requests wait", func() bool { return pool.waiting() == requests-limit })
	if n := conns.Load(); n != limit {
		t.Errorf("upstream accepted %d connections, want %d", n, limit)
	}
	close(release)
	for range requests {
		if s := <-statuses; s != http.StatusOK {
			t.Errorf("status %d, want 200", s)
		}
	}
	if n := conns.Load(); n != limit {
		t.Errorf("upstream accepted %d connections in all, want %d", n, limit)
	}
}

// A request that gives up while it waits for a connection does not take
// with it the wake-up meant for the next one: the connection released at
// that moment serves the request still waiting.
func TestFastMaxConnsWaiterThatGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 64)
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := range 20 {
		pool := newConnPool("http", ln.Addr().String(), FastConfig{MaxConnsPerHost: 1}.withDefaults())
		held, err := pool.get(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ctxB, giveUp := context.WithCancel(context.Background())
		gotB := make(chan error, 1)
		go func() {
			c, err := pool.get(ctxB, time.Time{})
			if err == nil {
				pool.put(c)
			}
			gotB <- err
		}()
		waitUntil(t, "the first request waits", func() bool { return pool.waiting() == 1 })
		ctxC, cancelC := context.WithTimeout(context.Background(), 2*time.Second) // a failsafe
		gotC := make(chan error, 1)
		go func() {
			c, err := pool.get(ctxC, time.Time{})
			if err == nil {
				pool.put(c)
			}
			gotC <- err
		}()
		waitUntil(t, "the second request waits", func() bool { return pool.waiting() == 2 })

		giveUp()
		pool.put(held)
		<-gotB
		if err := <-gotC; err != nil {
			cancelC()
			t.Fatalf("round %d: the request still waiting got %v, with a connection idle: its wake-up was lost", i, err)
		}
		cancelC()
		pool.closeIdle()
	}
}

// IdleTimeout closes a connection idle for that long; the next request
// opens a new one.
func TestFastIdleTimeout(t *testing.T) {
	up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast, cfg: Config{Fast: FastConfig{IdleTimeout: 20 * time.Millisecond}}})
	for i := range 2 {
		if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
		}
		if n := up.nextEnded(t); n != i+1 { // the proxy closed it
			t.Errorf("connection %d ended, want %d", n, i+1)
		}
	}
	if n := up.accepted.Load(); n != 2 {
		t.Errorf("upstream accepted %d connections, want 2", n)
	}
}

// HTTPS upstreams: HTTP/1.1 over TLS (ALPN http/1.1, even to a server that
// offers h2) with FastConfig.TLS's roots, on one kept-alive connection; a
// certificate that does not verify fails the dial (502, connect).
func TestFastTLS(t *testing.T) {
	type tlsSeen struct{ proto, alpn string }
	seen := make(chan tlsSeen, 8)
	offered := make(chan []string, 8) // the client's ALPN protocols
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- tlsSeen{r.Proto, r.TLS.NegotiatedProtocol}
		_, _ = io.WriteString(w, "secure")
	}))
	up.EnableHTTP2 = true
	up.TLS = &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			offered <- hello.SupportedProtos
			return nil, nil
		},
	}
	var mu sync.Mutex
	conns := 0
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	up.Config.ErrorLog = quietLog()
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	fast := FastConfig{TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}

	t.Run("served", func(t *testing.T) {
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: LegFast, cfg: Config{Fast: fast}})
		for i := range 3 {
			if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK || body != "secure" {
				t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
			}
			if s := <-seen; s.proto != "HTTP/1.1" || s.alpn != "http/1.1" {
				t.Errorf("request %d: upstream saw %+v, want HTTP/1.1 negotiated by ALPN", i+1, s)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if conns != 1 {
			t.Errorf("upstream accepted %d connections, want 1", conns)
		}
		if p := <-offered; !slices.Equal(p, []string{"http/1.1"}) {
			t.Errorf("the leg offered ALPN %q, want http/1.1 only", p)
		}
	})
	for _, tc := range []struct {
		name     string
		upstream string
		fast     FastConfig
	}{
		{"untrusted certificate", up.URL, FastConfig{}},
		{"certificate for another name", strings.Replace(up.URL, "127.0.0.1", "localhost", 1), fast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, ordersRoute(mustURL(t, tc.upstream)), setup{leg: LegFast, cfg: Config{Fast: tc.fast}})
			resp, body := g.get(t, "/orders/1")
			if resp.StatusCode != http.StatusBadGateway || testkit.ErrorBody(t, resp.Header, body)["error"] != "bad_gateway" {
				t.Errorf("status = %d (%s), want 502 bad_gateway", resp.StatusCode, body)
			}
			if o := g.outcome(t); o.Err != "connect" {
				t.Errorf("outcome = %+v, want a connect failure", o)
			}
		})
	}
}
