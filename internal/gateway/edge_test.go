package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// spelling is one way an attacker writes a request that should land on the
// stricter of two routes of one upstream.
type spelling struct {
	name   string
	method string // default GET
	target string // the request target, raw
	header string // extra raw header lines
	// canonical is the path the upstream must receive when the request is
	// served; "" when the gateway must refuse it, whoever sends it.
	canonical string
	// route is the route that must serve it ("" when refused).
	route string
}

// edgeGateway serves two routes on one recording upstream, one nested in
// the other: loose (any user of the gateway) and strict (scope admin).
func edgeGateway(t *testing.T, loose, strict string) (addr string, tg *testGateway, seen <-chan upstreamRequest) {
	t.Helper()
	api, seen := newUpstream(t, http.StatusOK)
	looseRoute := ordersRoute(api.URL)
	looseRoute.Name, looseRoute.PathPrefix, looseRoute.StripPrefix = "loose", loose, false
	strictRoute := ordersRoute(api.URL)
	strictRoute.Name, strictRoute.PathPrefix, strictRoute.StripPrefix = "strict", strict, false
	strictRoute.RequiredScopes = []string{"admin"}
	tg = newTestGateway(t, looseRoute, strictRoute)
	srv := httptest.NewServer(tg.Handler())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), tg, seen
}

// checkSpellings sends every spelling twice over a real socket: with a
// user token without the admin scope (every one must be refused, or served
// by the strict route, which refuses it: the upstream receives nothing
// unless the spelling is the loose route's own), and with one that has the
// scope (the ones with a canonical form reach the upstream on exactly that
// path, through the route the table names).
func checkSpellings(t *testing.T, loose, strict string, table []spelling) {
	addr, tg, seen := edgeGateway(t, loose, strict)
	plain := userToken(t, nil)
	admin := userToken(t, map[string]any{"scp": "access_as_user admin"})
	for _, sp := range table {
		t.Run(sp.name, func(t *testing.T) {
			method := sp.method
			if method == "" {
				method = http.MethodGet
			}
			send := func(tok string) (*http.Response, string, map[string]any) {
				before := len(tg.logs.All(t, "request"))
				resp, body := testkit.RawHTTP(t, addr, method+" "+sp.target+" HTTP/1.1\r\nHost: gw.example\r\n"+
					"Authorization: Bearer "+tok+"\r\n"+sp.header+"Connection: close\r\n\r\n")
				lines := tg.logs.All(t, "request")
				if len(lines) != before+1 {
					t.Fatalf("%d access log lines for one request", len(lines)-before)
				}
				return resp, body, lines[len(lines)-1]
			}

			// Without the admin scope.
			resp, body, line := send(plain)
			switch {
			case sp.canonical == "":
				if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(body, `"error"`) {
					t.Errorf("status = %d (%s), want a 4xx JSON refusal", resp.StatusCode, body)
				}
				noRequest(t, seen)
			case sp.route == "strict":
				if resp.StatusCode != http.StatusForbidden || line["route"] != "strict" {
					t.Errorf("status = %d on route %v, want 403 from the strict route", resp.StatusCode, line["route"])
				}
				noRequest(t, seen)
			default: // the loose route's own path
				if resp.StatusCode != http.StatusOK || line["route"] != sp.route {
					t.Fatalf("status = %d on route %v, want 200 from %s", resp.StatusCode, line["route"], sp.route)
				}
				if got := (<-seen).RequestURI; got != sp.canonical {
					t.Errorf("upstream request URI = %q, want %q", got, sp.canonical)
				}
			}
			if strings.Contains(body, plain) || strings.Contains(tg.logs.String(), plain) {
				t.Error("the token was echoed or logged")
			}

			// With it.
			resp, body, line = send(admin)
			if sp.canonical == "" {
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("with the admin scope: status = %d (%s), want a 4xx refusal", resp.StatusCode, body)
				}
				noRequest(t, seen)
				return
			}
			if resp.StatusCode != http.StatusOK || line["route"] != sp.route {
				t.Fatalf("with the admin scope: status = %d on route %v (%s), want 200 from %s", resp.StatusCode, line["route"], body, sp.route)
			}
			got := <-seen
			if got.RequestURI != sp.canonical {
				t.Errorf("upstream request URI = %q, want %q: the path the router matched", got.RequestURI, sp.canonical)
			}
			for _, h := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("upstream %s = %q", h, v)
				}
			}
		})
	}
}

// The spellings of the issue that found the bypass, and their family,
// against a route nested in another.
func TestPathSpellingsNestedRoutes(t *testing.T) {
	const admin = "/orders/admin/users"
	checkSpellings(t, "/orders", "/orders/admin", []spelling{
		{name: "plain", target: admin, canonical: admin, route: "strict"},
		{name: "the loose route's own path", target: "/orders/items", canonical: "/orders/items", route: "loose"},
		{name: "encoded letter", target: "/orders/%61dmin/users", canonical: admin, route: "strict"},
		{name: "encoded letters, lower-case hex", target: "/orders/%61%64%6d%69%6e/users", canonical: admin, route: "strict"},
		{name: "double slash", target: "/orders//admin/users", canonical: admin, route: "strict"},
		{name: "leading double slash", target: "//orders/admin/users", canonical: admin, route: "strict"},
		{name: "absolute form", target: "http://gw.example/orders/%61dmin/users", canonical: admin, route: "strict"},
		{name: "encoded slash", target: "/orders/admin%2Fusers"},
		{name: "encoded slash, lower case", target: "/orders%2fadmin/users"},
		{name: "path parameter", target: "/orders/admin;/users"},
		{name: "path parameter with a value", target: "/orders/admin;jsessionid=x/users"},
		{name: "tomcat traversal", target: "/orders/x/..;/admin/users"},
		{name: "encoded NUL", target: "/orders/admin%00/users"},
		{name: "encoded backslash", target: "/orders/admin%5Cusers"},
		{name: "backslash", target: "/orders/admin\\users"},
		{name: "iis traversal", target: "/orders/x/..%5cadmin/users"},
		{name: "dot-dot", target: "/orders/x/../admin/users"},
		{name: "encoded dot-dot", target: "/orders/x/%2e%2e/admin/users"},
		{name: "dot", target: "/orders/./admin/users"},
		{name: "triple dot", target: "/orders/.../admin/users"},
		{name: "double encoding", target: "/orders/%2561dmin/users"},
		{name: "overlong slash", target: "/orders%C0%AFadmin/users"},
		{name: "fullwidth solidus", target: "/orders%EF%BC%8Fadmin/users"},
		{name: "upper case", target: "/orders/ADMIN/users"},
		{name: "mixed case", target: "/orders/Admin/users"},
		{name: "trailing dot", target: "/orders/admin./users"},
		{name: "trailing space", target: "/orders/admin%20/users"},
		{name: "fullwidth letters", target: "/orders/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/users"},
		{name: "dotless i", target: "/orders/adm%C4%B1n/users"},
		{name: "format suffix", target: "/orders/admin.json"},
		{name: "format suffix, then a path", target: "/orders/admin.xml/users"},
		{name: "absolute form, query where the path would be", target: "http://gw.example?/orders/admin/users"},
		{name: "TRACE", method: "TRACE", target: admin},
		{name: "TRACK", method: "TRACK", target: admin},
		{name: "CONNECT", method: "CONNECT", target: "gw.example:443"},
		{name: "X-Original-URL", target: "/orders/items", header: "X-Original-URL: " + admin + "\r\n", canonical: "/orders/items", route: "loose"},
		{name: "X-Rewrite-URL", target: "/orders/items", header: "X-Rewrite-URL: " + admin + "\r\n", canonical: "/orders/items", route: "loose"},
		{name: "method override", method: "POST", target: "/orders/items", header: "Content-Length: 0\r\nX-HTTP-Method-Override: TRACE\r\n", canonical: "/orders/items", route: "loose"},
	})
}

// The same against a catch-all route.
func TestPathSpellingsCatchAllRoute(t *testing.T) {
	checkSpellings(t, "/", "/admin", []spelling{
		{name: "plain", target: "/admin/users", canonical: "/admin/users", route: "strict"},
		{name: "elsewhere", target: "/items", canonical: "/items", route: "loose"},
		{name: "encoded letter", target: "/%61dmin/users", canonical: "/admin/users", route: "strict"},
		{name: "double slash", target: "//admin/users", canonical: "/admin/users", route: "strict"},
		{name: "encoded slash", target: "/x%2F..%2Fadmin/users"},
		{name: "dot-dot", target: "/x/../admin/users"},
		{name: "path parameter", target: "/admin;x=1/users"},
		{name: "upper case", target: "/ADMIN/users"},
		{name: "trailing dot", target: "/admin./users"},
		{name: "backslash", target: "/x\\..\\admin/users"},
	})
}

// The configuration refuses prefixes a case-insensitive upstream would
// confuse, so that the edge's lookalike rule has the exact prefixes.
func TestConfigRefusesPrefixesDifferingInCase(t *testing.T) {
	c := &config.Config{Routes: []config.Route{
		{Name: "a", PathPrefix: "/orders", Upstream: "http://x"},
		{Name: "b", PathPrefix: "/Orders/admin", Upstream: "http://x"},
	}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "differ only in case") {
		t.Errorf("Validate = %v, want the two prefixes refused", err)
	}
}
