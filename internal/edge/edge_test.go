package edge

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

type fixture struct {
	edge *Edge
	reg  *prometheus.Registry
	logs *testkit.SyncBuffer
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}}
	cfg.Refusals = metrics.NewRefusals(f.reg, RefusalReasons())
	cfg.Registerer = f.reg
	cfg.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	f.edge = New(cfg)
	return f
}

func TestMiddleware(t *testing.T) {
	for _, tc := range []struct {
		name, method, target string
		wantStatus           int
		wantPath, wantEsc    string // what the next handler sees: decoded, escaped (default wantPath)
		wantReason           string
	}{
		{name: "canonical", method: "GET", target: "/orders/1", wantStatus: 200, wantPath: "/orders/1"},
		{name: "re-spelt", method: "GET", target: "/orders/%61dmin//x", wantStatus: 200, wantPath: "/orders/admin/x"},
		{name: "kept encoded", method: "GET", target: "/q/a%3Fb", wantStatus: 200, wantPath: "/q/a?b", wantEsc: "/q/a%3Fb"},
		{name: "sub-delims literal", method: "GET", target: "/q/%21x", wantStatus: 200, wantPath: "/q/!x", wantEsc: "/q/!x"},
		{name: "absolute form", method: "GET", target: "http://h.example/orders/%61", wantStatus: 200, wantPath: "/orders/a"},
		{name: "absolute form, empty path and a query", method: "GET", target: "http://h.example?/orders/admin", wantStatus: 200, wantPath: "/"},
		{name: "absolute form, no path", method: "GET", target: "http://h.example", wantStatus: 200, wantPath: "/"},
		{name: "encoded slash", method: "GET", target: "/a%2Fb", wantStatus: 400, wantReason: "path_encoded_slash"},
		{name: "dot segment", method: "GET", target: "/a/../b", wantStatus: 400, wantReason: "path_dot_segment"},
		{name: "TRACE", method: "TRACE", target: "/a", wantStatus: 405, wantReason: "method"},
		{name: "TRACK", method: "TRACK", target: "/a", wantStatus: 405, wantReason: "method"},
		{name: "PROPFIND", method: "PROPFIND", target: "/a", wantStatus: 405, wantReason: "method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			var seen *http.Request
			h := f.edge.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, body := testkit.RawHTTP(t, srv.Listener.Addr().String(), tc.method+" "+tc.target+" HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantReason != "" {
				if seen != nil {
					t.Error("the next handler ran for a refused request")
				}
				testkit.ErrorBody(t, resp.Header, body) // fails t unless it is a JSON error
				if n := testkit.CounterValue(t, f.reg, "obo_gateway_http_refused_total", map[string]string{"reason": tc.wantReason}); n != 1 {
					t.Errorf("refused{reason=%s} = %v, want 1", tc.wantReason, n)
				}
				if resp.StatusCode == 405 && resp.Header.Get("Allow") != AllowedMethods {
					t.Errorf("Allow = %q", resp.Header.Get("Allow"))
				}
				line := f.logs.Only(t, "request refused")
				if line["reason"] != tc.wantReason {
					t.Errorf("log reason = %v", line["reason"])
				}
				if strings.Contains(f.logs.String(), tc.target) {
					t.Error("the refusal log line holds the path")
				}
				return
			}
			if seen == nil {
				t.Fatal("the next handler did not run")
			}
			esc := tc.wantEsc
			if esc == "" {
				esc = tc.wantPath
			}
			if seen.URL.Path != tc.wantPath || seen.URL.EscapedPath() != esc {
				t.Errorf("next saw Path %q, escaped %q; want %q, %q", seen.URL.Path, seen.URL.EscapedPath(), tc.wantPath, esc)
			}
		})
	}
}

func TestRouteLookalike(t *testing.T) {
	f := newFixture(t, Config{})
	h := f.edge.Route(Route{Name: "orders", Stricter: []string{"/orders/admin"}})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for path, want := range map[string]int{
		"/orders/items": 200, "/orders/ADMIN/x": 400, "/orders/admin./x": 400, "/orders/adminx": 200, "/orders": 200,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
	}
	if n := testkit.CounterValue(t, f.reg, "obo_gateway_http_refused_total", map[string]string{"reason": "path_lookalike"}); n != 2 {
		t.Errorf("refused{path_lookalike} = %v, want 2", n)
	}
}

// Requests beyond a route's limit, or the edge's, are shed at once with
// 503 and Retry-After; the places come back when requests end.
func TestInFlightLimits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		global    int
		route     int
		wantLimit string
	}{
		{"route limit", 0, 2, metrics.LimitRouteInFlight},
		{"global limit", 2, 0, metrics.LimitInFlight},
		{"global limit below the route's", 2, 5, metrics.LimitInFlight},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{MaxInFlight: tc.global})
			release := make(chan struct{})
			entered := make(chan struct{}, 8)
			h := f.edge.Route(Route{Name: "slow", MaxInFlight: tc.route})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				<-release
			}))
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil)) })
				<-entered
			}
			for range 3 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
				if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
					t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
				}
				if testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes())["error"] != "temporarily_unavailable" {
					t.Errorf("body %s", rec.Body)
				}
			}
			close(release)
			wg.Wait()
			if n := testkit.CounterValue(t, f.reg, "obo_gateway_http_shed_total", map[string]string{"limit": tc.wantLimit}); n != 3 {
				t.Errorf("shed{limit=%s} = %v, want 3", tc.wantLimit, n)
			}
			// The places are free again (release stays closed: no wait).
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("after the requests ended: status %d, want 200", rec.Code)
			}
		})
	}
}

func TestRouteBodyLimit(t *testing.T) {
	f := newFixture(t, Config{})
	var read []byte
	var readErr error
	h := f.edge.Route(Route{Name: "r", MaxBodyBytes: 8})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read, readErr = io.ReadAll(r.Body)
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/r", strings.NewReader("0123456789")))
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Header().Get("Connection") != "close" {
		t.Errorf("declared 10 bytes over 8: status %d, Connection %q; want 413 and close", rec.Code, rec.Header().Get("Connection"))
	}
	if read != nil {
		t.Error("the handler ran")
	}

	// A body of unknown length is cut at the bound.
	req := httptest.NewRequest("POST", "/r", io.NopCloser(strings.NewReader("0123456789")))
	req.ContentLength = -1
	h.ServeHTTP(httptest.NewRecorder(), req)
	var mbe *http.MaxBytesError
	if len(read) != 8 || readErr == nil || !errors.As(readErr, &mbe) {
		t.Errorf("read %q, %v; want 8 bytes then *http.MaxBytesError", read, readErr)
	}
	if n := testkit.CounterValue(t, f.reg, "obo_gateway_http_refused_total", map[string]string{"reason": "body_too_large"}); n != 1 {
		t.Errorf("refused{body_too_large} = %v, want 1 (the declared one; the proxy counts the cut one)", n)
	}
}

// The connections beyond MaxConnections go to the excess listener, whose
// server answers each 503 and closes it; a closed connection frees its place.
func TestListen(t *testing.T) {
	f := newFixture(t, Config{MaxConnections: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted, excess := f.edge.Listen(ln)
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	extra := &http.Server{Handler: ExcessHandler()}
	extra.SetKeepAlivesEnabled(false)
	go func() { _ = api.Serve(accepted) }()
	go func() { _ = extra.Serve(excess) }()
	t.Cleanup(func() { api.Close(); extra.Close() })
	addr := ln.Addr().String()

	get := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	open := func() (net.Conn, *bufio.Reader, *http.Response) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, get); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return c, br, resp
	}
	c1, _, r1 := open()
	_, _, r2 := open()
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("within the limit: %d, %d", r1.StatusCode, r2.StatusCode)
	}
	if g := testkit.GaugeValue(t, f.reg, "obo_gateway_connections_open", nil); g != 2 {
		t.Errorf("connections_open = %v, want 2", g)
	}
	_, br3, r3 := open()
	if r3.StatusCode != http.StatusServiceUnavailable || r3.Header.Get("Retry-After") == "" || !r3.Close {
		t.Errorf("beyond the limit: status %d, Retry-After %q, close %v; want 503, Retry-After, close", r3.StatusCode, r3.Header.Get("Retry-After"), r3.Close)
	}
	if _, err := br3.ReadByte(); err == nil {
		t.Error("the excess connection stayed open")
	}
	if n := testkit.CounterValue(t, f.reg, "obo_gateway_http_shed_total", map[string]string{"limit": "connections"}); n != 1 {
		t.Errorf("shed{connections} = %v, want 1", n)
	}

	c1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for testkit.GaugeValue(t, f.reg, "obo_gateway_connections_open", nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection's place was not freed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, r := open(); r.StatusCode != 200 {
		t.Errorf("after a place was freed: %d, want 200", r.StatusCode)
	}

	// Closing the listener ends the excess listener too.
	ln.Close()
	accepted.Close()
	if _, err := excess.Accept(); err == nil {
		t.Error("the excess listener accepted after the listener was closed")
	}
}
