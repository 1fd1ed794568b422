package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests here hold both legs to the bounds an upstream or a client must
// not get past: the route timeout over every wait, the size of an answer's
// head, what stays of one answer for the next, the headers a trusted proxy
// may not pass. Most were found by a review of the fast leg, where the
// standard leg already held.

// Behind a trusted proxy the client's X-Forwarded-* chain is kept, but the
// path-override headers that share its prefix never are.
func TestOverrideHeadersBehindTrustedProxy(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg,
			cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/orders/1", nil)
		overrides := []string{"X-Forwarded-Prefix", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Url", "X-Original-Url", "X-Rewrite-Url"}
		for _, h := range overrides {
			req.Header.Set(h, "/admin/delete")
		}
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		if resp, _ := g.do(t, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		r := receive(t, seen)
		for _, h := range overrides {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("the upstream received %s: %s", h, v)
			}
		}
		if got := r.Header.Get("X-Forwarded-For"); !strings.HasPrefix(got, "203.0.113.7, ") {
			t.Errorf("X-Forwarded-For = %q, want the trusted chain kept", got)
		}
	})
}

// The route timeout bounds the whole wait for the answer's head: also the
// dial of a new connection, and the wait for one when the upstream's
// connections are all taken.
func TestRouteTimeoutBoundsEveryWait(t *testing.T) {
	const timeout = 200 * time.Millisecond
	t.Run("dial", func(t *testing.T) {
		blackhole := func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		rt := ordersRoute(mustURL(t, "http://192.0.2.1:81"))
		rt.Timeout = timeout
		forEachLeg(t, func(t *testing.T, leg Leg) {
			tr := NewTransport(TransportConfig{})
			tr.DialContext = blackhole
			cfg := Config{Transport: tr, Fast: FastConfig{Dial: blackhole, DialTimeout: 20 * time.Second}}
			g := newGateway(t, rt, setup{leg: leg, cfg: cfg, crossLeg: true})
			start := time.Now()
			resp, _ := g.get(t, "/orders/x")
			if d := time.Since(start); resp.StatusCode != http.StatusGatewayTimeout || d > 5*time.Second {
				t.Errorf("%d after %v, want 504 at the route timeout (%v), not the dial timeout", resp.StatusCode, d.Round(time.Millisecond), timeout)
			}
		})
	})
	t.Run("a connection to be free", func(t *testing.T) {
		forEachLeg(t, func(t *testing.T, leg Leg) {
			release := make(chan struct{})
			up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush()
					<-release // a long stream holds the one connection
				}
			})
			defer close(release)
			rt := ordersRoute(mustURL(t, up.URL))
			rt.Timeout = timeout
			tr := NewTransport(TransportConfig{})
			tr.MaxConnsPerHost = 1
			g := newGateway(t, rt, setup{leg: leg, cfg: Config{Transport: tr, Fast: FastConfig{MaxConnsPerHost: 1}}})
			streaming := make(chan struct{})
			go func() {
				resp, err := g.client.Get(g.URL + "/orders/slow")
				if err == nil {
					close(streaming)
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			select {
			case <-streaming:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream did not start")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/orders/x", nil)
			start := time.Now()
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatalf("no answer after %v: %v", time.Since(start).Round(time.Millisecond), err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("status %d, want 504", resp.StatusCode)
			}
		})
	})
}

// A claims challenge answered with a new token, on a pool of one
// connection: the retry must not wait for the connection its own first
// answer holds.
func TestClaimsRetryOnOneConnection(t *testing.T) {
	var n atomic.Int32
	up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"claims"}`)
			return
		}
		_, _ = io.WriteString(w, "second")
	})
	rt := ordersRoute(mustURL(t, up.URL))
	rt.ClaimsRetry = func(ctx context.Context, claims string) (string, error) { return "new-token", nil }
	g := newGateway(t, rt, setup{leg: LegFast, cfg: Config{Fast: FastConfig{MaxConnsPerHost: 1}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/orders/1", nil)
	resp, body := g.do(t, req)
	if resp.StatusCode != http.StatusOK || body != "second" {
		t.Errorf("%d %q, want the retry's 200 second", resp.StatusCode, body)
	}
	if got := g.dials(LegFast); got != 1 {
		t.Errorf("%d connections opened, want the one, reused for the retry", got)
	}
}

// A client that leaves while the body of a claims challenge is still
// coming: the handler ends with it, not when the upstream gives up.
func TestClientLeavesDuringChallengeBody(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		done := make(chan struct{})
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
			_, _ = io.WriteString(conn, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"insufficient_claims\", claims=\"e30=\"\r\nContent-Length: 100\r\n\r\npartial")
			<-done // the rest of the body never comes
			return false
		})
		t.Cleanup(func() { close(done) }) // before the upstream's own cleanup
		rt := ordersRoute(mustURL(t, up.URL))
		rt.ClaimsRetry = func(ctx context.Context, claims string) (string, error) { return "new-token", nil }
		g := newGateway(t, rt, setup{leg: leg})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/orders/1", nil)
		if resp, err := g.client.Do(req); err == nil {
			resp.Body.Close()
		}
		select {
		case <-g.outcomes:
		case <-time.After(5 * time.Second):
			t.Errorf("the handler still runs 5s after the client left")
		}
	})
}

// An upstream that answers (413, and closes) before it read a large body:
// its answer is the client's, as net/http's Transport gives it.
func TestUpstreamAnswersBeforeReadingTheBody(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil || l == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
			time.Sleep(50 * time.Millisecond)
			_ = c.(*net.TCPConn).SetLinger(0) // a reset, with the body unread
			c.Close()
		}()
		g := newGateway(t, ordersRoute(mustURL(t, "http://"+ln.Addr().String())), setup{leg: leg})
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/orders/1", bytes.NewReader(bytes.Repeat([]byte("x"), 8<<20)))
		resp, body := g.do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || strings.TrimSpace(body) != "big" {
			t.Errorf("%d %q, want the upstream's 413 big", resp.StatusCode, body)
		}
	})
}

// An answer's head beyond the bound, or an endless run of informational
// answers, is a bad gateway, not memory or time without end.
func TestAnswerHeadBounds(t *testing.T) {
	// The informational answers an upstream may send: as many as the bound.
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
			_, _ = io.WriteString(conn, strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInformational)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return false
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after %d informational answers: %d %q, want 200 ok", maxInformational, resp.StatusCode, body)
		}
	})

	tests := []struct {
		name   string
		answer string
	}{
		{"head too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		{"endless informational answers", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", maxInformational+1) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
					_, _ = io.WriteString(conn, tc.answer)
					return false
				})
				tr := NewTransport(TransportConfig{})
				tr.MaxResponseHeaderBytes = 4 << 10
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, cfg: Config{Transport: tr}})
				if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusBadGateway {
					t.Errorf("%d %q, want 502", resp.StatusCode, body)
				}
			})
		}
	})
}

// Bytes an https upstream sends past an answer, in the same TLS record,
// are never read as the next request's answer.
func TestTLSBytesPastTheAnswer(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil) // for its certificate only
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var first atomic.Bool
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: true, NextProtos: []string{"http/1.1"}})
				defer c.Close()
				buf := make([]byte, 8192)
				for {
					n, err := c.Read(buf)
					if err != nil || n == 0 {
						return
					}
					if first.CompareAndSwap(false, true) {
						// The answer (a body larger than the reader's
						// buffer) and a second, unasked one, in one record.
						_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat("a", 9000) +
							"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"))
					} else {
						_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"))
					}
				}
			}()
		}
	}()
	g := newGateway(t, ordersRoute(mustURL(t, "https://"+ln.Addr().String())),
		setup{leg: LegFast, cfg: Config{Fast: FastConfig{TLS: &tls.Config{RootCAs: roots}}}})
	if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK || len(body) != 9000 {
		t.Fatalf("first: %d, %d bytes", resp.StatusCode, len(body))
	}
	for i := range 3 {
		if resp, body := g.get(t, "/orders/2"); resp.StatusCode != http.StatusOK || body != "second" {
			t.Errorf("request %d after it: %d %q, want 200 second", i+2, resp.StatusCode, body)
		}
	}
}
