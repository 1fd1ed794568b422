package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// The headers some frameworks take as the real path or method never reach
// the upstream, in any case or with '_' for '-'.
func TestOverrideHeadersAreDropped(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		var req strings.Builder
		req.WriteString("GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n")
		for _, name := range []string{"X-Original-URL", "X-Rewrite-URL", "X-ORIGINAL-URI", "x-original-path",
			"X-Forwarded-Path", "X-Forwarded-Uri", "X-Forwarded-Url", "X-Forwarded-Prefix", "X-Envoy-Original-Path",
			"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X_Original_URL", "X_HTTP_Method_Override"} {
			req.WriteString(name + ": /orders/admin\r\n")
		}
		req.WriteString("X-Keep: me\r\n\r\n")
		if resp, body := g.raw(t, req.String()); resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d (%s), want 200", resp.StatusCode, body)
		}
		got := receive(t, seen)
		if strings.Contains(got.Dump, "/orders/admin") {
			t.Errorf("an override header reached the upstream:\n%s", got.Dump)
		}
		if got.Header.Get("X-Keep") != "me" {
			t.Errorf("X-Keep = %q, want other headers kept", got.Header.Get("X-Keep"))
		}
	})
}

// A client cannot remove the request ID from the upstream request by
// naming X-Request-Id in Connection: it is set after hop-by-hop removal.
func TestRequestIDSurvivesConnection(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close, X-Request-Id\r\nX-Request-Id: forged\r\n\r\n")
		if v := receive(t, seen).Header.Values("X-Request-Id"); len(v) != 1 || v[0] != requestID {
			t.Errorf("upstream X-Request-Id = %q, want [%q]", v, requestID)
		}
	})
}

func TestCookies(t *testing.T) {
	upstream := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "session=upstream; Path=/")
		h.Add("Set-Cookie2", "old=1")
		h.Set("Clear-Site-Data", `"cookies"`)
		h.Set("Alt-Svc", `h3=":443"`)
		h.Set("NEL", `{"report_to":"x","max_age":86400,"include_subdomains":true}`)
		h.Set("Report-To", `{"group":"x","max_age":86400,"endpoints":[{"url":"https://evil.example/r"}]}`)
		h.Set("Reporting-Endpoints", `x="https://evil.example/r"`)
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload")
		h.Set("Service-Worker-Allowed", "/")
		h.Set("Accept-CH", "Sec-CH-UA-Model")
		h.Set("X-Other", "kept")
		_, _ = io.WriteString(w, "ok")
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range []struct {
			name    string
			cookies bool
		}{{"bearer-only route (the default)", false}, {"route that forwards cookies", true}} {
			t.Run(tc.name, func(t *testing.T) {
				up, seen := newUpstream(t, upstream)
				rt := ordersRoute(mustURL(t, up.URL))
				rt.Cookies = tc.cookies
				g := newGateway(t, rt, setup{leg: leg})
				resp, _ := g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n"+
					"Cookie: gateway-origin=secret\r\nCookie2: $Version=1\r\n\r\n")
				got := receive(t, seen).Header
				if has := got.Get("Cookie") != ""; has != tc.cookies {
					t.Errorf("upstream Cookie = %q, want forwarded: %v", got.Get("Cookie"), tc.cookies)
				}
				if got.Get("Cookie2") != "" && !tc.cookies {
					t.Errorf("upstream Cookie2 = %q, want dropped", got.Get("Cookie2"))
				}
				for _, name := range []string{"Set-Cookie", "Set-Cookie2", "Clear-Site-Data"} {
					if has := resp.Header.Get(name) != ""; has != tc.cookies {
						t.Errorf("response %s = %q, want passed back: %v", name, resp.Header.Get(name), tc.cookies)
					}
				}
				for _, name := range []string{"Alt-Svc", "Nel", "Report-To", "Reporting-Endpoints", "Strict-Transport-Security", "Service-Worker-Allowed", "Accept-Ch"} {
					if v := resp.Header.Get(name); v != "" {
						t.Errorf("response %s = %q: an upstream must not set what acts on the gateway's whole origin", name, v)
					}
				}
				if resp.Header.Get("X-Other") != "kept" {
					t.Error("other response headers must pass")
				}
			})
		}
	})
}

func TestUpgradePolicy(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testUpgradePolicy(t, leg) })
}

func testUpgradePolicy(t *testing.T, leg Leg) {
	t.Run("websocket on a route that does not allow it", func(t *testing.T) {
		up, seen := newUpstream(t, nil)
		reg := prometheus.NewRegistry()
		refusals := metrics.NewRefusals(reg, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{cfg: Config{Refusals: refusals}, leg: leg})
		resp, body := g.raw(t, "GET /orders/ws HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest || testkit.ErrorBody(t, resp.Header, body)["error"] != "invalid_request" {
			t.Errorf("status = %d (%s), want 400 invalid_request", resp.StatusCode, body)
		}
		assertNothingReceived(t, seen)
		if n := testkit.CounterValue(t, reg, "obo_gateway_http_refused_total", map[string]string{"reason": "upgrade"}); n != 1 {
			t.Errorf("refused{reason=upgrade} = %v, want 1", n)
		}
	})
	t.Run("h2c is never forwarded", func(t *testing.T) {
		for _, websocket := range []bool{false, true} {
			up, seen := newUpstream(t, nil)
			rt := ordersRoute(mustURL(t, up.URL))
			rt.WebSocket = websocket
			// The fast leg hands every upgrade to the standard one.
			g := newGateway(t, rt, setup{leg: leg, crossLeg: true})
			resp, body := g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade, HTTP2-Settings\r\n"+
				"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("websocket=%v: status = %d (%s), want 200: served as HTTP/1.1", websocket, resp.StatusCode, body)
			}
			got := receive(t, seen)
			for _, name := range []string{"Upgrade", "Connection", "Http2-Settings"} {
				if v, ok := got.Header[name]; ok {
					t.Errorf("websocket=%v: upstream %s = %q, want the upgrade dropped", websocket, name, v)
				}
			}
		}
	})
	t.Run("an upstream that switches protocols unasked", func(t *testing.T) {
		up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			_ = brw.Flush()
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, crossLeg: true})
		resp, _ := g.raw(t, "GET /orders/1 HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status = %d, want 502: no upgrade was asked of the upstream", resp.StatusCode)
		}
	})
	t.Run("an upstream that switches protocols for a plain request", func(t *testing.T) {
		up := newRawUpstream(t, func(conn net.Conn, _ rawRequest) bool {
			_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			return false
		})
		rt := ordersRoute(mustURL(t, up.URL))
		rt.WebSocket = true
		g := newGateway(t, rt, setup{leg: leg})
		resp, body := g.get(t, "/orders/1")
		if resp.StatusCode != http.StatusBadGateway || testkit.ErrorBody(t, resp.Header, body)["error"] != "bad_gateway" {
			t.Errorf("status = %d (%s), want 502 bad_gateway", resp.StatusCode, body)
		}
	})
}

// A body that passes its bound while it is forwarded is answered 413, one
// that does not arrive within its deadline 408, and either connection is
// closed.
func TestClientBodyFailures(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testClientBodyFailures(t, leg) })
}

func testClientBodyFailures(t *testing.T, leg Leg) {
	t.Run("too large", func(t *testing.T) {
		up, _ := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = http.MaxBytesReader(w, r.Body, 16)
				h.ServeHTTP(w, r)
			})
		}})
		body := strings.Repeat("x", 64)
		resp, got := g.raw(t, "POST /orders/1 HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"40\r\n"+body+"\r\n0\r\n\r\n")
		if resp.StatusCode != http.StatusRequestEntityTooLarge || testkit.ErrorBody(t, resp.Header, got)["error"] != "payload_too_large" {
			t.Errorf("status = %d (%s), want 413 payload_too_large", resp.StatusCode, got)
		}
		if !resp.Close {
			t.Error("want Connection: close")
		}
		if o := g.outcome(t); o.Err != "body_too_large" {
			t.Errorf("outcome = %+v, want Err body_too_large", o)
		}
	})
	t.Run("too slow", func(t *testing.T) {
		up, _ := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				h.ServeHTTP(w, r)
			})
		}})
		conn, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		// 100 bytes announced, 10 sent, then nothing.
		if _, err := io.WriteString(conn, "POST /orders/1 HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status = %d, want 408", resp.StatusCode)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if _, err := br.ReadByte(); err == nil {
			t.Error("the connection stayed open after the 408")
		}
	})
}

// An upstream's 1xx answers: 103 Early Hints reaches the client with its Link
// headers only; the gateway's own headers, set before the proxy, are on the
// final answer all the same (ReverseProxy clears the header map after a 1xx).
func TestInformationalResponses(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testInformationalResponses(t, leg) })
}

func testInformationalResponses(t *testing.T, leg Leg) {
	up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</style.css>; rel=preload; as=style")
		h.Set("Set-Cookie", "session=evil")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Alt-Svc", `h3=":443"`)
		w.WriteHeader(http.StatusEarlyHints)
		for _, name := range []string{"Link", "Set-Cookie", "Access-Control-Allow-Origin", "Alt-Svc"} {
			h.Del(name)
		}
		_, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "final")
	})
	g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", requestID) // as the gateway's middleware do
			w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
			h.ServeHTTP(w, r)
		})
	}})
	for _, tc := range []struct{ name, request string }{
		{"103 Early Hints", "GET /orders/1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"},
		{"Expect: 100-continue and 103", "POST /orders/1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(conn)
			br := bufio.NewReader(strings.NewReader(string(raw)))
			var early *http.Response
			var final *http.Response
			for final == nil {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading %q: %v", raw, err)
				}
				switch {
				case resp.StatusCode == http.StatusEarlyHints:
					early = resp
				case resp.StatusCode >= 200:
					final = resp
				}
			}
			if early == nil {
				t.Fatalf("no 103 reached the client:\n%s", raw)
			}
			for name := range early.Header {
				if name != "Link" {
					t.Errorf("the 103 carries %s = %q; want Link only", name, early.Header.Get(name))
				}
			}
			if final.StatusCode != http.StatusOK {
				t.Fatalf("final status %d", final.StatusCode)
			}
			if final.Header.Get("X-Request-Id") != requestID || final.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Errorf("the final answer lost the gateway's headers: %v", final.Header)
			}
			for _, name := range []string{"Set-Cookie", "Alt-Svc", "Link"} {
				if v := final.Header.Get(name); v != "" {
					t.Errorf("final %s = %q", name, v)
				}
			}
		})
	}
}

// Trailers obey the header rules: an upstream cannot set a cookie or an
// origin-wide header by sending it after the body.
func TestTrailersAreFiltered(t *testing.T) {
	tests := []struct {
		name     string
		announce string // the Trailer header; "" announces none
	}{
		{"announced", "X-Checksum, Set-Cookie, Access-Control-Allow-Origin"},
		{"some announced", "X-Checksum"},
		{"none announced", ""},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
					if tc.announce != "" {
						w.Header().Set("Trailer", tc.announce)
					}
					_, _ = io.WriteString(w, "body")
					w.(http.Flusher).Flush()
					announced := func(name string) string {
						if strings.Contains(tc.announce, name) {
							return name
						}
						return http.TrailerPrefix + name
					}
					w.Header().Set(announced("X-Checksum"), "abc")
					w.Header().Set(announced("Set-Cookie"), "session=evil")
					w.Header().Set(announced("Access-Control-Allow-Origin"), "*")
					w.Header().Set(http.TrailerPrefix+"Alt-Svc", `h3=":443"`)
					w.Header().Set(http.TrailerPrefix+"X-Late", "ok")
				})
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
				resp, err := g.client.Get(g.URL + "/orders/1")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "body" {
					t.Errorf("body = %q", body)
				}
				if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "ok" {
					t.Errorf("trailers = %v, want X-Checksum and X-Late kept", resp.Trailer)
				}
				for _, name := range []string{"Set-Cookie", "Alt-Svc", "Access-Control-Allow-Origin"} {
					if v := resp.Trailer.Get(name); v != "" {
						t.Errorf("trailer %s = %q reached the client", name, v)
					}
				}
			})
		}
	})
}
