package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func ordersRoute(upstream *url.URL) Route {
	return Route{Name: "orders", PathPrefix: "/orders", Upstream: upstream, StripPrefix: true}
}

// The user's token reaches the upstream nowhere: not in Authorization, not
// in any other header, not in the query. The upstream records the request
// exactly as it read it.
func TestUserTokenNeverReachesUpstream(t *testing.T) {
	escaped := strings.ReplaceAll(userToken, ".", "%2E")
	tests := []struct {
		name      string
		trusted   bool // the gateway trusts the peer, so X-Forwarded-* are kept
		query     string
		header    http.Header
		wantQuery string
		gone      []string // headers that must not reach the upstream
	}{
		{
			name:   "authorization header",
			header: http.Header{"Authorization": {"Bearer " + userToken}},
		},
		{
			name:   "x-forwarded-access-token",
			header: http.Header{"X-Forwarded-Access-Token": {userToken}},
			gone:   []string{"X-Forwarded-Access-Token"},
		},
		{
			name:    "x-forwarded-access-token from a trusted proxy",
			trusted: true,
			header:  http.Header{"X-Forwarded-Access-Token": {userToken}},
			gone:    []string{"X-Forwarded-Access-Token"},
		},
		{
			name:   "cookie",
			header: http.Header{"Cookie": {"theme=dark; session=" + userToken}},
			gone:   []string{"Cookie"},
		},
		{
			name:   "custom header",
			header: http.Header{"X-User-Token": {"Bearer " + userToken}},
			gone:   []string{"X-User-Token"},
		},
		{
			name:   "one of several values",
			header: http.Header{"X-Multi": {"harmless", "token=" + userToken}},
			gone:   []string{"X-Multi"},
		},
		{
			name:   "header name",
			header: http.Header{"X-T-" + userToken: {"1"}},
		},
		{
			name:    "x-forwarded-host from a trusted proxy",
			trusted: true,
			header:  http.Header{"X-Forwarded-Host": {userToken + ".example"}},
		},
		{
			name:      "query value",
			query:     "token=" + userToken + "&keep=1",
			wantQuery: "keep=1",
		},
		{
			name:      "percent-encoded query value",
			query:     "keep=1&t=" + escaped,
			wantQuery: "keep=1",
		},
		{
			name:      "query name",
			query:     userToken + "=1&keep=1",
			wantQuery: "keep=1",
		},
		{
			name:      "access_token parameter is always dropped",
			query:     "a=1&access_token=something-else&b=2",
			wantQuery: "a=1&b=2",
		},
		{
			name:  "everywhere at once",
			query: "access_token=" + userToken + "&keep=1&id_token=" + userToken,
			header: http.Header{
				"Authorization":            {"Bearer " + userToken},
				"X-Forwarded-Access-Token": {userToken},
				"Cookie":                   {"session=" + userToken},
				"X-Custom":                 {userToken},
			},
			wantQuery: "keep=1",
			gone:      []string{"X-Forwarded-Access-Token", "Cookie", "X-Custom"},
		},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up, seen := newUpstream(t, nil)
				cfg := Config{}
				if tc.trusted {
					cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
				g := newGateway(t, ordersRoute(mustURL(t, up.URL+"/api")), setup{cfg: cfg, leg: leg})

				target := g.URL + "/orders/42"
				if tc.query != "" {
					target += "?" + tc.query
				}
				req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"note":"hello"}`))
				if err != nil {
					t.Fatal(err)
				}
				for name, vals := range tc.header {
					req.Header[name] = vals
				}
				req.Header.Set("X-Keep", "yes")
				resp, body := g.do(t, req)
				if resp.StatusCode != http.StatusOK || body != "ok" {
					t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
				}

				got := receive(t, seen)
				// Case-folded too: canonical header names change the case.
				if strings.Contains(strings.ToLower(got.Dump), strings.ToLower(userToken)) {
					t.Errorf("the user's token reached the upstream:\n%s", got.Dump)
				}
				if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+downstreamToken {
					t.Errorf("Authorization = %q, want only the downstream token", a)
				}
				for _, name := range tc.gone {
					if v, ok := got.Header[name]; ok {
						t.Errorf("%s = %q reached the upstream", name, v)
					}
				}
				if v := got.Header.Get("X-Keep"); v != "yes" {
					t.Errorf("X-Keep = %q, want the header kept", v)
				}
				wantURI := "/api/42"
				if tc.wantQuery != "" {
					wantURI += "?" + tc.wantQuery
				}
				if got.RequestURI != wantURI {
					t.Errorf("request URI = %q, want %q", got.RequestURI, wantURI)
				}
				if got.Body != `{"note":"hello"}` {
					t.Errorf("body = %q, want it unchanged", got.Body)
				}
			})
		}
	})
}

func TestNoUpstreamTokenMeansNoAuthorization(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{noToken: true, leg: leg})
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+userToken)
		g.do(t, req)
		if v, ok := receive(t, seen).Header["Authorization"]; ok {
			t.Errorf("Authorization = %q reached the upstream", v)
		}
	})
}

func TestPaths(t *testing.T) {
	tests := []struct {
		name       string
		upstream   string // path (and query) after the upstream host
		prefix     string
		strip      bool
		path       string
		wantStatus int
		wantURI    string // "" when the upstream must not be called
		wantError  string
	}{
		{name: "strip", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/1", wantURI: "/api/1"},
		{name: "strip the whole path", upstream: "/api", prefix: "/orders", strip: true, path: "/orders", wantURI: "/api/"},
		{name: "strip to a slash", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/", wantURI: "/api/"},
		{name: "strip with a trailing slash in the prefix", upstream: "/api", prefix: "/orders/", strip: true, path: "/orders/1", wantURI: "/api/1"},
		{name: "strip a nested prefix", upstream: "/api", prefix: "/v1/orders", strip: true, path: "/v1/orders/1/lines", wantURI: "/api/1/lines"},
		{name: "strip onto an upstream without a path", upstream: "", prefix: "/orders", strip: true, path: "/orders/1", wantURI: "/1"},
		{name: "strip onto an upstream path ending in a slash", upstream: "/api/", prefix: "/orders", strip: true, path: "/orders/1", wantURI: "/api/1"},
		{name: "strip the root prefix", upstream: "/api", prefix: "/", strip: true, path: "/orders/1", wantURI: "/api/orders/1"},
		{name: "no strip", upstream: "/api", prefix: "/orders", path: "/orders/1", wantURI: "/api/orders/1"},
		{name: "query kept as sent", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/1?b=2&a=1&c=%2F&d=x+y", wantURI: "/api/1?b=2&a=1&c=%2F&d=x+y"},
		{name: "upstream query first", upstream: "/api?v=2", prefix: "/orders", strip: true, path: "/orders/1?x=1", wantURI: "/api/1?v=2&x=1"},
		{name: "encoded space kept", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/a%20b", wantURI: "/api/a%20b"},
		{name: "encoded reserved characters kept", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/a%3Fb%23c", wantURI: "/api/a%3Fb%23c"},
		{name: "literal sub-delims kept", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/a!b:c@d", wantURI: "/api/a!b:c@d"},
		{name: "prefix not at a segment boundary", upstream: "/api", prefix: "/orders", strip: true, path: "/ordersX/1", wantStatus: http.StatusNotFound, wantError: "not_found"},
		// Not in canonical form: the edge brings paths to it before routing;
		// the proxy on its own refuses rather than forward another spelling.
		{name: "encoded slash", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/a%2Fb/c", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "encoded slash at the prefix", upstream: "/api", prefix: "/orders/a", strip: true, path: "/orders%2Fa/1", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "encoded unreserved character", upstream: "/api", prefix: "/orders", strip: true, path: "/ord%65rs/1", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "empty segment", upstream: "/api", prefix: "/orders", path: "/orders//admin", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "semicolon", upstream: "/api", prefix: "/orders", path: "/orders/..;/admin", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "backslash", upstream: "/api", prefix: "/orders", path: "/orders/..%5cadmin", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "dot-dot segment", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/../admin", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "encoded dot-dot segment", upstream: "/api", prefix: "/orders", path: "/orders/%2e%2e/admin", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "dot segment", upstream: "/api", prefix: "/orders", path: "/orders/./1", wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "user's token in the path", upstream: "/api", prefix: "/orders", strip: true, path: "/orders/" + userToken, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up, seen := newUpstream(t, nil)
				rt := Route{Name: "orders", PathPrefix: tc.prefix, Upstream: mustURL(t, up.URL+tc.upstream), StripPrefix: tc.strip}
				g := newGateway(t, rt, setup{leg: leg})
				// Sent raw, so the client does not normalise the path.
				resp, body := g.raw(t, "GET "+tc.path+" HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n")
				if tc.wantURI == "" {
					if resp.StatusCode != tc.wantStatus {
						t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
					}
					b := testkit.ErrorBody(t, resp.Header, body)
					if b["error"] != tc.wantError || b["request_id"] != requestID {
						t.Errorf("body = %v, want error %q with the request ID", b, tc.wantError)
					}
					if strings.Contains(body, userToken) {
						t.Errorf("the error body carries the user's token: %s", body)
					}
					assertNothingReceived(t, seen)
					if o := g.outcome(t); o != (reqlog.Upstream{}) {
						t.Errorf("outcome = %+v, want zero: nothing went upstream", o)
					}
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d (%s), want 200", resp.StatusCode, body)
				}
				if got := receive(t, seen).RequestURI; got != tc.wantURI {
					t.Errorf("upstream request URI = %q, want %q", got, tc.wantURI)
				}
			})
		}
	})
}

func TestHandlerPanicsOnMalformedRoute(t *testing.T) {
	up := mustURL(t, "http://127.0.0.1:1/api")
	tests := []struct {
		name string
		rt   Route
		want string
	}{
		{"no name", Route{PathPrefix: "/o", Upstream: up}, "has no Name"},
		{"no upstream", Route{Name: "o"}, "has no Upstream"},
		{"ftp upstream", Route{Name: "o", Upstream: mustURL(t, "ftp://h/x")}, "http or https"},
		{"relative upstream", Route{Name: "o", Upstream: mustURL(t, "/api")}, "http or https"},
		{"no host", Route{Name: "o", Upstream: mustURL(t, "http:///api")}, "no host"},
		{"strip without a prefix", Route{Name: "o", Upstream: up, StripPrefix: true}, "StripPrefix"},
		{"negative timeout", Route{Name: "o", Upstream: up, Timeout: -time.Second}, "negative Timeout"},
	}
	p := New(Config{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { panic("unused") })})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "proxy: ") {
					t.Errorf("panic %q, want a proxy: message containing %q", msg, tc.want)
				}
			}()
			p.Handler(tc.rt)
		})
	}
}

// If the exchange before the proxy ever handed it the user's own token, the
// proxy refuses to forward rather than send it.
func TestUpstreamTokenThatIsTheUsersToken(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, seen := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{token: userToken, leg: leg})
		resp, body := g.get(t, "/orders/1")
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", resp.StatusCode)
		}
		if b := testkit.ErrorBody(t, resp.Header, body); b["error"] != "internal_error" {
			t.Errorf("body = %v", b)
		}
		assertNothingReceived(t, seen)
		if !strings.Contains(g.logs.String(), `"level":"ERROR"`) || strings.Contains(g.logs.String(), userToken) {
			t.Errorf("log = %s, want an error line without the token", g.logs.String())
		}
	})
}
