package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		name       string
		target     string
		token      bool  // send a valid user token
		exchange   error // the TokenSource's error
		want       map[string]any
		wantUser   bool // oid and tid logged
		wantStatus int
	}{
		{
			name: "proxied, query not logged", target: "/orders/7?access_token=query-secret&q=1", token: true,
			wantStatus: http.StatusCreated, wantUser: true,
			want: map[string]any{"method": "GET", "path": "/orders/7", "route": "orders", "status": 201.0, "upstream_status": 201.0},
		},
		{
			name: "unmatched", target: "/nowhere?q=query-secret", token: true, wantStatus: http.StatusNotFound,
			want: map[string]any{"path": "/nowhere", "route": "unmatched", "status": 404.0},
		},
		{
			name: "token refused", target: "/orders/7", wantStatus: http.StatusUnauthorized,
			want: map[string]any{"path": "/orders/7", "route": "orders", "status": 401.0},
		},
		{
			name: "exchange refused", target: "/orders", token: true, exchange: entraError(400, "invalid_grant", "consent_required", 65001),
			wantStatus: http.StatusForbidden, wantUser: true,
			want: map[string]any{"path": "/orders", "route": "orders", "status": 403.0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, _ := newUpstream(t, http.StatusCreated)
			tg := newTestGateway(t, ordersRoute(api.URL))
			tg.tokens.err = tc.exchange
			tok := ""
			if tc.token {
				tok = userToken(t, nil)
			}
			rec := tg.serve(t, request(tc.target, tok))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}

			line := tg.logs.Only(t, "request")
			for k, v := range tc.want {
				if line[k] != v {
					t.Errorf("access log %s = %v, want %v", k, line[k], v)
				}
			}
			if id := rec.Header().Get(reqid.Header); id == "" || line["request_id"] != id {
				t.Errorf("access log request_id = %v, want the response's %q", line["request_id"], id)
			}
			if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("access log duration_ms = %v, want a number ≥ 0", line["duration_ms"])
			}
			if tc.wantUser {
				if line["oid"] != testOID || line["tid"] != testTenant {
					t.Errorf("access log oid, tid = %v, %v; want %s, %s", line["oid"], line["tid"], testOID, testTenant)
				}
			} else if _, ok := line["oid"]; ok {
				t.Errorf("access log has an oid for an unauthenticated request: %v", line)
			}
			if _, ok := tc.want["upstream_status"]; !ok {
				if _, ok := line["upstream_status"]; ok {
					t.Errorf("access log has upstream_status for a request not proxied: %v", line)
				}
			}
			logs := tg.logs.String()
			if strings.Contains(logs, "query-secret") {
				t.Error("the logs contain the query string")
			}
			if tok != "" && strings.Contains(logs, tok) {
				t.Error("the logs contain the user's token")
			}
		})
	}
}

func TestRecoverer(t *testing.T) {
	tg := newTestGateway(t)
	h := reqlog.Middleware(tg.log)(recoverer(tg.log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})))
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set(reqid.Header, "req-panic")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if b := testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes()); b["error"] != "internal_error" || b["request_id"] != "req-panic" {
		t.Errorf("body = %v, want internal_error with request_id req-panic", b)
	}
	if strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("the body shows the panic: %s", rec.Body)
	}
	line := tg.logs.Only(t, "panic serving request")
	if line["level"] != "ERROR" || line["request_id"] != "req-panic" || line["panic"] != "boom" {
		t.Errorf("panic log = %v", line)
	}
}

func TestRecovererRepanicsErrAbortHandler(t *testing.T) {
	tg := newTestGateway(t)
	h := recoverer(tg.log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	rec := httptest.NewRecorder()
	var got any
	func() {
		defer func() { got = recover() }()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders", nil))
	}()
	if got != http.ErrAbortHandler {
		t.Fatalf("recovered %v, want http.ErrAbortHandler re-panicked", got)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("the recoverer wrote %q; an aborted response must not get a body", rec.Body)
	}
	if n := len(tg.logs.All(t, "panic serving request")); n != 0 {
		t.Errorf("%d panic log lines for http.ErrAbortHandler, want 0", n)
	}
}

// TestPanicInRoute panics inside a route (in the exchange): the client gets
// a 500, and the access log and the request metrics say 500 too.
func TestPanicInRoute(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	tg.tokens.panicWith = errors.New("exchange exploded")
	rec := tg.serve(t, request("/orders/1", userToken(t, nil)))

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if b := testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes()); b["error"] != "internal_error" {
		t.Errorf("body = %v, want internal_error", b)
	}
	noRequest(t, seen)
	line := tg.logs.Only(t, "request")
	if line["status"] != 500.0 || line["route"] != "orders" {
		t.Errorf("access log status, route = %v, %v; want 500, orders", line["status"], line["route"])
	}
	if n := testkit.CounterValue(t, tg.reg, "obo_gateway_http_requests_total", map[string]string{"route": "orders", "method": "GET", "code": "500"}); n != 1 {
		t.Errorf("requests_total{route=orders,code=500} = %v, want 1", n)
	}
	tg.logs.Only(t, "panic serving request")
}

// TestAbortInRoute: http.ErrAbortHandler escapes the handler (net/http then
// closes the connection) and the request is still logged.
func TestAbortInRoute(t *testing.T) {
	api, _ := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	tg.tokens.panicWith = http.ErrAbortHandler
	var got any
	func() {
		defer func() { got = recover() }()
		tg.serve(t, request("/orders/1", userToken(t, nil)))
	}()
	if got != http.ErrAbortHandler {
		t.Fatalf("recovered %v, want http.ErrAbortHandler", got)
	}
	if line := tg.logs.Only(t, "request"); line["status"] != 500.0 {
		t.Errorf("access log status = %v, want 500 (nothing was written before the abort)", line["status"])
	}
	if n := len(tg.logs.All(t, "panic serving request")); n != 0 {
		t.Errorf("%d panic log lines for http.ErrAbortHandler, want 0", n)
	}
}

func TestUnmatchedMetrics(t *testing.T) {
	tg := newTestGateway(t, config.Route{Name: "orders", PathPrefix: "/orders", Upstream: "http://127.0.0.1:1"})
	for _, target := range []string{"/", "/ordersx", "/other/orders"} {
		if rec := tg.serve(t, request(target, "")); rec.Code != http.StatusNotFound {
			t.Errorf("%s: status = %d, want 404", target, rec.Code)
		}
	}
	if n := testkit.CounterValue(t, tg.reg, "obo_gateway_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "code": "404"}); n != 3 {
		t.Errorf("requests_total{route=unmatched,code=404} = %v, want 3", n)
	}
}

// What the edge and the exchange limit refuse, the access log says why.
func TestAccessLogSaysWhyRefused(t *testing.T) {
	api, _ := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	r := request("/orders/1", "")
	r.Method = http.MethodTrace
	if rec := tg.serve(t, r); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("TRACE: status %d, want 405", rec.Code)
	}
	if line := tg.logs.Only(t, "request"); line["refused"] != "method" || line["status"] != 405.0 {
		t.Errorf("access log = %v, want refused=method, status 405", line)
	}

	tg = newTestGateway(t, ordersRoute(api.URL))
	tg.tokens.err = tokencache.ErrBusy
	if rec := tg.serve(t, request("/orders/1", userToken(t, nil))); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("exchanges busy: status %d, want 503", rec.Code)
	}
	if line := tg.logs.Only(t, "request"); line["shed"] != "exchanges" || line["oid"] != testOID {
		t.Errorf("access log = %v, want shed=exchanges with the user's oid", line)
	}
}

// The exchange step behind a chain without token validation (a reordering)
// fails closed: 500, nothing forwarded, no panic.
func TestExchangeWithoutPrincipalFailsClosed(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t)
	x := &exchanges{tokens: tg.tokens, log: tg.log}
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := x.forward(ordersRoute(api.URL), tg.h.Proxy.Handler(proxy.Route{Name: "orders", PathPrefix: "/orders", Upstream: u}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("/orders/1", "not-validated"))
	if rec.Code != http.StatusInternalServerError || len(tg.tokens.requests()) != 0 {
		t.Errorf("status %d, %d exchanges; want 500, none", rec.Code, len(tg.tokens.requests()))
	}
	noRequest(t, seen)
}
