package main

// The HTTP edge end to end: slow clients over real sockets, a slow upstream
// and a burst of new users against the limits, with the local tenant and
// MSAL Go behind the gateway.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// scrape returns the gateway's /metrics exposition.
func (e *env) scrape(t *testing.T) string {
	t.Helper()
	r := doHTTP(t, e.client, e.gw.admin, request{path: "/metrics"})
	wantStatus(t, r, http.StatusOK)
	return string(r.body)
}

func (e *env) metric(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := metricValue(e.scrape(t), series)
	if !ok {
		t.Fatalf("no series %s in /metrics", series)
	}
	return v
}

// wantShed checks a 503 from a limit: Retry-After and the JSON body.
func wantShed(t *testing.T, r response) {
	t.Helper()
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("a shed request must say when to retry (Retry-After)")
	}
	if b := r.errorBody(t); b["error"] != "temporarily_unavailable" {
		t.Errorf("error = %q, want temporarily_unavailable", b["error"])
	}
	if r.header.Get("WWW-Authenticate") != "" {
		t.Error("a shed request is not a token problem: no WWW-Authenticate")
	}
}

// dialRaw opens a connection to the gateway's API listener.
func (e *env) dialRaw(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gw.api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a failsafe: no test waits on it
	return conn
}

// A client that announces a body and sends it too slowly, or not at all, is
// cut when the body timeout passes: answered 408 when the request reached
// the proxy, and its connection closed whether or not it had a token.
func TestSlowRequestBodies(t *testing.T) {
	e := newEnv(t, envOptions{limits: config.Limits{BodyTimeout: config.Duration(time.Second)}})
	tok := e.passwordToken(t, "alice@contoso.test", "")

	for _, tc := range []struct {
		name       string
		line       string // the request line
		token      string
		wantStatus int
	}{
		{"authenticated: the body is being forwarded", "POST /orders/items", tok, http.StatusRequestTimeout},
		{"no token: the gateway answers 401 and drains the body", "POST /orders/items", "", http.StatusUnauthorized},
		{"no route: 404", "POST /nowhere", "", http.StatusNotFound},
		{"a method refused before routing: 405", "TRACE /orders/items", "", http.StatusMethodNotAllowed},
		{"a path refused before routing: 400", "POST /orders/a%2Fb", tok, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := e.dialRaw(t)
			auth := ""
			if tc.token != "" {
				auth = "Authorization: Bearer " + tc.token + "\r\n"
			}
			start := time.Now()
			// 1,000 bytes announced, 10 sent, then nothing.
			_, err := io.WriteString(conn, tc.line+" HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"+
				auth+"Content-Length: 1000\r\n\r\n{\"a\":12345")
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Error("the connection stayed open")
			}
			// Without a deadline the gateway would wait for the 990 bytes
			// until the test's 30s failsafe. The bound here is loose.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("cut after %v, want about the 1s body timeout", d)
			}
		})
	}
	if v := e.metric(t, `obo_gateway_http_refused_total{reason="body_timeout"}`); v != 1 {
		t.Errorf("refused{body_timeout} = %v, want 1", v)
	}
	if n := e.up.count(); n != 0 {
		// The upstream may have seen the forwarded request start; it must
		// not have seen a complete one.
		for _, r := range e.up.requests() {
			if len(r.Body) == 1000 {
				t.Errorf("the upstream received a complete body")
			}
		}
	}
}

// A slow upstream takes every place of its route (max_in_flight: 3); the
// excess gets 503 with Retry-After at once, while other routes' users with a
// cached token, /healthz and /readyz are served, and the held requests
// complete when the upstream answers.
func TestOverloadedRouteSheds(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice := e.passwordToken(t, "alice@contoso.test", "")
	bob := e.passwordToken(t, "bob@contoso.test", "")
	wantStatus(t, e.do(t, request{path: "/orders/items", token: alice}), http.StatusOK) // cached now
	wantStatus(t, e.do(t, request{path: "/busy/warm", token: bob}), http.StatusOK)

	var wg sync.WaitGroup
	held := make([]response, 3)
	errs := make([]error, 3)
	for i := range 3 {
		h := e.up.hold(fmt.Sprint("h", i))
		wg.Go(func() {
			held[i], errs[i] = tryHTTP(e.client, e.gw.api, request{path: fmt.Sprint("/busy/hold/h", i), token: bob})
		})
		select {
		case <-h.arrived:
		case <-time.After(eventTimeout):
			t.Fatalf("held request %d did not reach the upstream", i)
		}
	}

	for range 5 {
		wantShed(t, e.do(t, request{path: "/busy/hold/h0", token: bob}))
	}
	for range 3 {
		wantStatus(t, e.do(t, request{path: "/orders/items", token: alice}), http.StatusOK)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		wantStatus(t, doHTTP(t, e.client, e.gw.admin, request{path: p}), http.StatusOK)
	}
	if v := e.metric(t, `obo_gateway_http_shed_total{limit="route_in_flight"}`); v != 5 {
		t.Errorf("shed{route_in_flight} = %v, want 5", v)
	}

	e.up.releaseAll()
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil || held[i].status != http.StatusOK {
			t.Errorf("held request %d: %d, %v; want 200 once the upstream answered", i, held[i].status, errs[i])
		}
	}
	wantStatus(t, e.do(t, request{path: "/busy/after", token: bob}), http.StatusOK)
}

// A burst of new users while Entra is slow: one exchange at a time
// (max_concurrent_exchanges: 1), one more waiting; the others get 503 with
// Retry-After, not 401, and a user with a cached token is never queued
// behind them.
func TestBurstOfNewUsersIsBounded(t *testing.T) {
	e := newEnv(t, envOptions{limits: config.Limits{
		MaxConcurrentExchanges: 1, MaxQueuedExchanges: 1, ExchangeQueueTimeout: config.Duration(300 * time.Millisecond),
	}})
	alice := e.passwordToken(t, "alice@contoso.test", "")
	wantStatus(t, e.do(t, request{path: "/orders/items", token: alice}), http.StatusOK) // cached now
	var newUsers []string
	for _, u := range []string{"bob", "carol", "dave", "erin"} {
		newUsers = append(newUsers, e.passwordToken(t, u+"@contoso.test", ""))
	}

	e.srv.SetLatency(3*time.Second, "token")
	defer e.srv.SetLatency(0, "token")
	results := make([]response, len(newUsers))
	errs := make([]error, len(newUsers))
	var wg sync.WaitGroup
	for i, tok := range newUsers {
		wg.Go(func() { results[i], errs[i] = tryHTTP(e.client, e.gw.api, request{path: "/orders/items", token: tok}) })
	}
	// While the one exchange waits on Entra, the cached user is served at once.
	start := time.Now()
	wantStatus(t, e.do(t, request{path: "/orders/items", token: alice}), http.StatusOK)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the cached user waited %v: it was queued behind the exchanges", d)
	}
	wg.Wait()

	var ok, shed int
	for i, r := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("new user %d: %v", i, errs[i])
		case r.status == http.StatusOK:
			ok++
		default:
			wantShed(t, r)
			shed++
		}
	}
	if ok != 1 || shed != 3 {
		t.Errorf("%d served and %d shed, want 1 and 3 (one exchange at a time, one waiting 300ms)", ok, shed)
	}
	if v := e.metric(t, `obo_gateway_http_shed_total{limit="exchanges"}`); v != 3 {
		t.Errorf("shed{exchanges} = %v, want 3", v)
	}
	if v := e.metric(t, `obo_gateway_obo_exchanges_in_progress`); v != 0 {
		t.Errorf("exchanges in progress = %v after the burst, want 0", v)
	}
}

// Beyond max_connections a new connection gets one 503 and is closed; the
// connections within the limit are served, and a place freed is taken again.
func TestConnectionLimit(t *testing.T) {
	e := newEnv(t, envOptions{limits: config.Limits{MaxConnections: 3}})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	get := "GET /orders/items HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + tok + "\r\n\r\n"

	var conns []net.Conn
	var readers []*bufio.Reader
	for range 3 {
		c := e.dialRaw(t)
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection within the limit: %v, %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		conns, readers = append(conns, c), append(readers, br)
	}
	if v := e.metric(t, "obo_gateway_connections_open"); v != 3 {
		t.Errorf("connections_open = %v, want 3", v)
	}

	// An excess connection that announces a body and sends none is closed
	// all the same, so that such connections cannot pile up.
	stuck := e.dialRaw(t)
	if _, err := io.WriteString(stuck, "POST /orders/items HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.Copy(io.Discard, stuck); err != nil {
		t.Errorf("reading the stuck excess connection: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("an excess connection with a body never sent stayed open %v", d)
	}

	extra := e.dialRaw(t)
	br := bufio.NewReader(extra)
	if _, err := io.WriteString(extra, get); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	wantShed(t, response{status: resp.StatusCode, header: resp.Header, body: body})
	if !resp.Close {
		t.Error("the connection beyond the limit must be closed (Connection: close)")
	}

	// The first connections still work.
	if _, err := io.WriteString(conns[0], get); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(readers[0], nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a connection within the limit after the excess: %v, %v", resp, err)
	}
	if v := e.metric(t, `obo_gateway_http_shed_total{limit="connections"}`); v != 2 {
		t.Errorf("shed{connections} = %v, want 2", v)
	}

	// Closing one frees its place.
	conns[1].Close()
	deadline := time.Now().Add(eventTimeout)
	for e.metric(t, "obo_gateway_connections_open") > 2 {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	again := e.dialRaw(t)
	if _, err := io.WriteString(again, get); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(again), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a new connection once a place was freed: %v, %v", resp, err)
	}
}

// A request body over the route's bound is refused 413 before the token is
// even checked when its Content-Length says so.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t, envOptions{limits: config.Limits{MaxBodyBytes: config.KiB}})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	r := e.do(t, request{method: http.MethodPost, path: "/orders/items", token: tok, body: strings.Repeat("x", 2048)})
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if b := r.errorBody(t); b["error"] != "payload_too_large" {
		t.Errorf("error = %q", b["error"])
	}
	wantStatus(t, e.do(t, request{method: http.MethodPost, path: "/orders/items", token: tok, body: strings.Repeat("x", 1000)}), http.StatusOK)
	if n := len(e.up.requests()); n != 1 {
		t.Errorf("the upstream received %d requests, want only the one within the bound", n)
	}
}
