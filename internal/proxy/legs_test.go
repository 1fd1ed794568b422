package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// The tests here hold the two legs to one behaviour where the upstream
// misbehaves or frames its answers in the less common ways. The fast leg's
// own machinery (its pool, its limits) is tested in fast_test.go.

// An upstream that fails half-way through a body: the client's answer is
// cut (never a clean, shorter body), and the next request is served.
func TestUpstreamFailsMidBody(t *testing.T) {
	tests := []struct {
		name   string
		answer string // written, then the connection is closed
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"},
		{"broken chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nzz\r\n"},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
					if rq.Req.URL.Path == "/next" {
						return rawOK(conn, rq, "next")
					}
					_, _ = io.WriteString(conn, tc.answer)
					return false
				})
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
				// Cut before the head, when nothing was flushed yet, or
				// after: never a clean end.
				if resp, err := g.client.Get(g.URL + "/orders/1"); err == nil {
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil {
						t.Errorf("read %d %q and a clean end, want the answer cut", resp.StatusCode, body)
					}
				}
				if o := g.outcome(t); o.Status != http.StatusOK {
					t.Errorf("outcome = %+v, want the upstream's 200", o)
				}
				if resp, body := g.get(t, "/orders/next"); resp.StatusCode != http.StatusOK || body != "next" {
					t.Errorf("next request: %d %q, want 200 next", resp.StatusCode, body)
				}
			})
		}
	})
}

// A kept-alive connection the upstream closes when a request arrives,
// before answering it (it timed out the connection as the request was on
// its way): a request that may be sent twice is, on a new connection,
// without the client noticing; any other is not, and fails.
func TestKeptAliveConnectionClosedBeforeAnswering(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       string
		header     http.Header
		wantStatus int
		wantSent   int // times the upstream read the request
	}{
		{name: "GET is sent again", method: http.MethodGet, wantStatus: http.StatusOK, wantSent: 2},
		{name: "HEAD is sent again", method: http.MethodHead, wantStatus: http.StatusOK, wantSent: 2},
		{name: "POST with a body is not", method: http.MethodPost, body: `{"pay":100}`, wantStatus: http.StatusBadGateway, wantSent: 1},
		{name: "PUT with a body and an idempotency key is not", method: http.MethodPut, body: `{"pay":100}`,
			header: http.Header{"Idempotency-Key": {"k1"}}, wantStatus: http.StatusBadGateway, wantSent: 1},
		{name: "POST without a body is not", method: http.MethodPost, wantStatus: http.StatusBadGateway, wantSent: 1},
		{name: "POST without a body, with an idempotency key, is sent again", method: http.MethodPost,
			header: http.Header{"Idempotency-Key": {"k2"}}, wantStatus: http.StatusOK, wantSent: 2},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
					if rq.Conn == 1 && rq.N == 2 {
						return false // read, and closed without an answer
					}
					return rawOK(conn, rq, "ok")
				})
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
				if resp, _ := g.get(t, "/orders/prime"); resp.StatusCode != http.StatusOK {
					t.Fatalf("priming request: %d", resp.StatusCode)
				}
				up.receive(t)

				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, _ := http.NewRequest(tc.method, g.URL+"/orders/pay", body)
				for k, v := range tc.header {
					req.Header[k] = v
				}
				resp, _ := g.do(t, req)
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				got := up.received()
				if len(got) != tc.wantSent {
					t.Errorf("the upstream read the request %d times, want %d", len(got), tc.wantSent)
				}
				for _, rq := range got {
					if rq.Body != tc.body {
						t.Errorf("upstream body = %q, want %q", rq.Body, tc.body)
					}
				}
			})
		}
	})
}

// An idle kept-alive connection the upstream closed: the next request
// takes a new one, the client notices nothing.
func TestIdleConnectionClosedByUpstream(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
			rawOK(conn, rq, "ok")
			return rq.Conn > 1 // the first connection is closed after its answer
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		if resp, body := g.get(t, "/orders/1"); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("first request: %d %q", resp.StatusCode, body)
		}
		if n := up.nextEnded(t); n != 1 {
			t.Fatalf("connection %d ended, want the first", n)
		}
		if resp, body := g.get(t, "/orders/2"); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after the upstream closed the idle connection: %d %q, want 200 ok", resp.StatusCode, body)
		}
		if n := up.accepted.Load(); n != 2 {
			t.Errorf("upstream accepted %d connections, want 2", n)
		}
	})
}

// An upstream that closes the connection with its answer, or delimits the
// body by closing it (HTTP/1.0, or HTTP/1.1 without a length): the body
// arrives whole, and the connection is not used again.
func TestAnswersThatEndTheConnection(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   string
	}{
		{"connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"connection: close, close-delimited", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello, until the end", "hello, until the end"},
		{"HTTP/1.0, close-delimited", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, until the end", "hello, until the end"},
		{"HTTP/1.0 with a length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"HTTP/1.1 without a length", "HTTP/1.1 200 OK\r\n\r\nhello, until the end", "hello, until the end"},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
					_, _ = io.WriteString(conn, tc.answer)
					return false
				})
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
				for i := range 2 {
					resp, body := g.get(t, "/orders/1")
					if resp.StatusCode != http.StatusOK || body != tc.want {
						t.Errorf("request %d: %d %q, want 200 %q", i+1, resp.StatusCode, body, tc.want)
					}
				}
				if n := up.accepted.Load(); n != 2 {
					t.Errorf("upstream accepted %d connections, want 2: one per answer", n)
				}
			})
		}
	})
}

// Answers without a body: HEAD's (with the length a GET would have),
// 204 and 304. Nothing is read or written after the head, and the
// connection serves the next request.
func TestAnswersWithoutABody(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, _, conns := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/204":
				w.Header().Set("X-Done", "1")
				w.WriteHeader(http.StatusNoContent)
			case "/304":
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
			default:
				w.Header().Set("Content-Length", "11")
				w.Header().Set("ETag", `"v1"`)
				if r.Method != http.MethodHead {
					_, _ = io.WriteString(w, "hello world")
				}
			}
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})

		req, _ := http.NewRequest(http.MethodHead, g.URL+"/orders/doc", nil)
		resp, body := g.do(t, req)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 11 || body != "" || resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("HEAD: %d, length %d, body %q, ETag %q; want 200, 11, no body, the ETag",
				resp.StatusCode, resp.ContentLength, body, resp.Header.Get("ETag"))
		}
		resp, body = g.get(t, "/orders/204")
		if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("X-Done") != "1" {
			t.Errorf("204: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		req, _ = http.NewRequest(http.MethodGet, g.URL+"/orders/304", nil)
		req.Header.Set("If-None-Match", `"v1"`)
		resp, body = g.do(t, req)
		if resp.StatusCode != http.StatusNotModified || body != "" || resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("304: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if resp, body := g.get(t, "/orders/doc"); resp.StatusCode != http.StatusOK || body != "hello world" {
			t.Errorf("GET after them: %d %q", resp.StatusCode, body)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("upstream accepted %d connections, want 1: every answer left it reusable", n)
		}
	})
}

// Bodies larger than the proxy's buffers, both ways, with a length and
// without one, arrive whole, framed as they were.
func TestLargeBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 80<<10) // 1.25 MiB
	big = append(big, "tail"...)
	sum := sha256.Sum256(big)
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
			switch rq.Req.URL.Path {
			case "/length":
				_, _ = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(big))
				_, _ = conn.Write(big)
			case "/chunked":
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				for b := big; len(b) > 0; {
					n := min(len(b), 50_000)
					_, _ = fmt.Fprintf(conn, "%x\r\n%s\r\n", n, b[:n])
					b = b[n:]
				}
				_, _ = io.WriteString(conn, "0\r\n\r\n")
			default: // echo the request's framing and the body's digest
				te := strings.Join(rq.Req.TransferEncoding, ",")
				s := sha256.Sum256([]byte(rq.Body))
				return rawOK(conn, rq, fmt.Sprintf("%d %s %x", rq.Req.ContentLength, te, s))
			}
			return true
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		for _, path := range []string{"/length", "/chunked"} {
			resp, body := g.get(t, "/orders"+path)
			if resp.StatusCode != http.StatusOK || sha256.Sum256([]byte(body)) != sum {
				t.Errorf("GET %s: %d, %d bytes, want 200 and the %d bytes sent", path, resp.StatusCode, len(body), len(big))
			}
		}
		for _, tc := range []struct {
			name string
			body io.Reader
			want string
		}{
			{"with a length", bytes.NewReader(big), fmt.Sprintf("%d  %x", len(big), sum)},
			{"chunked", io.MultiReader(bytes.NewReader(big)), fmt.Sprintf("-1 chunked %x", sum)}, // a reader of unknown length
			{"empty", http.NoBody, fmt.Sprintf("0  %x", sha256.Sum256(nil))},
		} {
			req, _ := http.NewRequest(http.MethodPut, g.URL+"/orders/upload", tc.body)
			resp, body := g.do(t, req)
			if resp.StatusCode != http.StatusOK || body != tc.want {
				t.Errorf("PUT %s: %d %q, want the upstream to read %q", tc.name, resp.StatusCode, body, tc.want)
			}
		}
		if n := up.accepted.Load(); n != 1 {
			t.Errorf("upstream accepted %d connections, want 1", n)
		}
	})
}

// The 1xx answers an upstream sends before its answer: 100 Continue (not
// asked for: the proxy sends bodies at once) and 102 are the proxy's
// business; 103 reaches the client with its Link headers only.
func TestInformationalAnswersFromUpstream(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool {
			_, _ = io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 102 Processing\r\n\r\n"+
				"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nSet-Cookie: a=1\r\nAccess-Control-Allow-Origin: *\r\n\r\n")
			return rawOK(conn, rq, "final")
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		conn, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		for i := range 2 { // twice, on one connection each side
			if _, err := io.WriteString(conn, "POST /orders/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\r\nbody"); err != nil {
				t.Fatal(err)
			}
			var codes []int
			var final *http.Response
			for final == nil {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v after %v", i+1, err, codes)
				}
				codes = append(codes, resp.StatusCode)
				if resp.StatusCode == http.StatusEarlyHints {
					for name := range resp.Header {
						if name != "Link" {
							t.Errorf("the 103 carries %s", name)
						}
					}
					continue
				}
				final = resp
			}
			body, _ := io.ReadAll(final.Body)
			if !slices.Equal(codes, []int{103, 200}) || string(body) != "final" {
				t.Errorf("request %d: the client got %v and %q, want [103 200] and final", i+1, codes, body)
			}
		}
		if n := up.accepted.Load(); n != 1 {
			t.Errorf("upstream accepted %d connections, want 1", n)
		}
	})
}

// The upstream token is a header value: one with CR or LF is refused,
// never written as two header lines. A path that decodes to CR LF is sent
// escaped.
func TestHeaderInjection(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		t.Run("upstream token", func(t *testing.T) {
			for _, token := range []string{"a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rX-Evil: 1", "a\x00b"} {
				up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, token: token})
				resp, body := g.get(t, "/orders/1")
				if resp.StatusCode != http.StatusBadGateway {
					t.Errorf("token %q: %d %q, want 502", token, resp.StatusCode, body)
				}
				for _, rq := range up.received() {
					t.Errorf("token %q: the upstream read\n%s", token, rq.Head)
				}
			}
		})
		t.Run("path", func(t *testing.T) {
			up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
			g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
			resp, _ := g.raw(t, "GET /orders/a%0D%0AX-Evil:%201?q=%0D%0AX-Evil:%202 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
			got := up.received()
			switch {
			case resp.StatusCode == http.StatusBadRequest && len(got) == 0: // not in canonical form
			case resp.StatusCode == http.StatusOK && len(got) == 1 &&
				strings.HasPrefix(got[0].Head, "GET /a%0D%0AX-Evil:%201?q=%0D%0AX-Evil:%202 HTTP/1.1\r\n") &&
				!strings.Contains(got[0].Head, "\nX-Evil"): // sent escaped
			default:
				t.Errorf("status %d; the upstream read %+v", resp.StatusCode, got)
			}
		})
	})
}

// An upstream cannot tell the legs apart: for the same client request it
// reads the same request head from either, but for the order of the
// header lines. The cases are those of TestUserTokenNeverReachesUpstream
// and TestForwardedHeaders, and the odd ones between.
func TestLegsSendTheSameRequest(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		cookies bool
		request string // as the client writes it, Host and Connection: close added
	}{
		{name: "plain GET", request: "GET /orders/1 HTTP/1.1\r\n"},
		{name: "the user's token everywhere", request: "POST /orders/42?access_token=" + userToken + "&keep=1&t=" + userToken + " HTTP/1.1\r\n" +
			"Authorization: Bearer " + userToken + "\r\nX-Forwarded-Access-Token: " + userToken + "\r\nCookie: session=" + userToken + "\r\n" +
			"X-Custom: " + userToken + "\r\nX-T-" + userToken + ": 1\r\nX-Multi: harmless\r\nX-Multi: t=" + userToken + "\r\n" +
			"Content-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"note\":\"hello\"}"},
		{name: "the user's token from a trusted proxy", trusted: loopback, request: "GET /orders/1 HTTP/1.1\r\n" +
			"X-Forwarded-Host: " + userToken + ".example\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Access-Token: " + userToken + "\r\n"},
		{name: "forwarding headers spoofed", request: "GET /orders/1 HTTP/1.1\r\n" +
			"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n" +
			"X-Forwarded-Prefix: /admin\r\nForwarded: for=203.0.113.7\r\nX-Real-Ip: 203.0.113.7\r\nX_forwarded_for: 203.0.113.7\r\n"},
		{name: "forwarding headers from a trusted proxy", trusted: loopback, request: "GET /orders/1 HTTP/1.1\r\n" +
			"X-Forwarded-For: 203.0.113.7, 10.1.2.3\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: api.example.com\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\nForwarded: for=203.0.113.7\r\n"},
		{name: "hop-by-hop headers", request: "GET /orders/1 HTTP/1.1\r\nConnection: X-Foo, close\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nTrailer: X-Sum\r\n" +
			"Upgrade: h2c\r\nX-Request-Id: forged\r\n"},
		{name: "override headers", request: "GET /orders/1 HTTP/1.1\r\nX-Original-URL: /admin\r\nX_HTTP_Method_Override: DELETE\r\nX-Keep: me\r\n"},
		{name: "cookies on a route that forwards them", cookies: true, request: "GET /orders/1 HTTP/1.1\r\nCookie: a=1\r\nCookie: b=2\r\nCookie2: $Version=1\r\n"},
		{name: "client's own user agent and encodings", request: "GET /orders/1 HTTP/1.1\r\nUser-Agent: app/1.0\r\nAccept-Encoding: gzip, br\r\n"},
		{name: "empty header value", request: "GET /orders/1 HTTP/1.1\r\nX-Empty: \r\n"},
		{name: "escaped path and query", request: "GET /orders/a%20b/c%3Fd?x=1&y=a+b&z=%2F HTTP/1.1\r\n"},
		{name: "query with a semicolon", request: "GET /orders/1?z=2&a=1;c=3&m=%41&s=a%20b HTTP/1.1\r\n"},
		{name: "query with a bad escape", request: "GET /orders/1?z=2&a=%zz&m=%41 HTTP/1.1\r\n"},
		{name: "chunked body", request: "PUT /orders/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"},
		{name: "empty POST", request: "POST /orders/1 HTTP/1.1\r\nContent-Length: 0\r\n"},
		{name: "expect continue", request: "PUT /orders/1 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"},
		{name: "OPTIONS", request: "OPTIONS /orders/1 HTTP/1.1\r\nOrigin: https://app.example\r\n"},
		{name: "DELETE", request: "DELETE /orders/1 HTTP/1.1\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			request := strings.Replace(tc.request, "\r\n", "\r\nHost: gw.example\r\nConnection: close\r\n", 1)
			if !strings.Contains(request, "\r\n\r\n") {
				request += "\r\n"
			}
			heads := map[Leg]rawRequest{}
			up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
			for _, leg := range legs {
				rt := ordersRoute(mustURL(t, up.URL+"/api"))
				rt.Cookies = tc.cookies
				g := newGateway(t, rt, setup{cfg: Config{TrustedProxies: tc.trusted}, leg: leg})
				if status := finalStatus(t, g.Addr, request); status != http.StatusOK {
					t.Fatalf("%s leg: status %d", leg, status)
				}
				rq := up.receive(t)
				if strings.Contains(strings.ToLower(rq.Head+rq.Body), strings.ToLower(userToken)) {
					t.Errorf("%s leg: the user's token reached the upstream:\n%s", leg, rq.Head)
				}
				heads[leg] = rq
			}
			std, fast := heads[LegStandard], heads[LegFast]
			if a, b := normalHead(std.Head), normalHead(fast.Head); a != b {
				t.Errorf("the upstream read different heads\nstandard:\n%s\nfast:\n%s", a, b)
			}
			if std.Body != fast.Body {
				t.Errorf("the upstream read body %q from the standard leg, %q from the fast one", std.Body, fast.Body)
			}
		})
	}
}

// finalStatus writes request on a new connection to addr and returns the
// status of the final answer, after any 1xx.
func finalStatus(t *testing.T, addr, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 200 {
			return resp.StatusCode
		}
	}
}

// normalHead is a request head with its header lines sorted: the one
// difference between the legs that an upstream may not rely on.
func normalHead(head string) string {
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n")
}

// The gateway's answer to a client whose body breaks off (400), or is
// larger than the route takes (413), as announced by its length.
func TestClientBodyBreaksOff(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		t.Run("broken off", func(t *testing.T) {
			up, _ := newUpstream(t, nil)
			g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
			conn, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, "POST /orders/1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
				t.Fatal(err)
			}
			_ = conn.(*net.TCPConn).CloseWrite() // the rest never comes
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || testkit.ErrorBody(t, resp.Header, body)["error"] != "invalid_request" {
				t.Errorf("status = %d (%s), want 400 invalid_request", resp.StatusCode, body)
			}
			if o := g.outcome(t); o.Err != "body_broken" {
				t.Errorf("outcome = %+v, want Err body_broken", o)
			}
		})
		t.Run("too large, by its length", func(t *testing.T) {
			up, _ := newUpstream(t, nil)
			g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Body = http.MaxBytesReader(w, r.Body, 16)
					h.ServeHTTP(w, r)
				})
			}})
			resp, got := g.raw(t, "POST /orders/1 HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 64\r\n\r\n"+strings.Repeat("x", 64))
			if resp.StatusCode != http.StatusRequestEntityTooLarge || testkit.ErrorBody(t, resp.Header, got)["error"] != "payload_too_large" {
				t.Errorf("status = %d (%s), want 413 payload_too_large", resp.StatusCode, got)
			}
			if o := g.outcome(t); o.Err != "body_too_large" {
				t.Errorf("outcome = %+v, want Err body_too_large", o)
			}
		})
	})
}

// A client that leaves in the middle of a streamed answer: the upstream
// request ends with it (its connection is not kept, half-read), and the
// next request is served.
func TestClientLeavesMidBody(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		gone := make(chan struct{})
		up, _ := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/next" {
				_, _ = io.WriteString(w, "next")
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(gone)
		})
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		resp, err := g.client.Get(g.URL + "/orders/stream")
		if err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: 1\n" {
			t.Fatalf("read %q, %v", line, err)
		}
		resp.Body.Close() // mid-stream: the client's connection is closed
		select {
		case <-gone:
		case <-time.After(30 * time.Second):
			t.Fatal("the upstream request did not end with the client's")
		}
		if resp, body := g.get(t, "/orders/next"); resp.StatusCode != http.StatusOK || body != "next" {
			t.Errorf("next request: %d %q", resp.StatusCode, body)
		}
	})
}

// A request's trailers arrive after the header rules were applied (the
// user's token scrubbed, the override headers dropped): their values never
// reach the upstream. The fast leg hands such a request to the standard
// one, which clones the request before the values are read, so that only
// the announced names pass (as Traefik relies on: traefik/traefik#13383).
func TestRequestTrailersAreNotForwarded(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up := newRawUpstream(t, func(conn net.Conn, rq rawRequest) bool { return rawOK(conn, rq, "ok") })
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg, crossLeg: true})
		resp, body := g.raw(t, "PUT /orders/1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"+
			"Trailer: X-Sum, Authorization, X-Original-URL\r\n\r\n"+
			"4\r\nbody\r\n0\r\nX-Sum: 42\r\nAuthorization: Bearer "+userToken+"\r\nX-Original-URL: /admin\r\n\r\n")
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("%d %q, want 200 ok", resp.StatusCode, body)
		}
		got := up.receive(t)
		if got.Body != "body" {
			t.Errorf("upstream body = %q", got.Body)
		}
		if len(got.Trailers) != 0 {
			t.Errorf("the upstream read trailers %v", got.Trailers)
		}
		if n := g.dials(LegFast); n != 0 {
			t.Errorf("the fast leg opened %d connections for a request with trailers", n)
		}
	})
}
