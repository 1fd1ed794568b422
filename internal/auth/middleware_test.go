package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestMiddleware(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	v := newTestValidator(t, now, nil)
	user := sign(t, k[0], userClaims(now), nil)
	appClaims := userClaims(now)
	delete(appClaims, "scp")
	appClaims["roles"] = []string{"Gateway.Call"}
	appClaims["idtyp"] = "app"
	app := sign(t, k[0], appClaims, nil)
	adminClaims := userClaims(now)
	adminClaims["roles"] = []string{"Orders.Admin"}
	admin := sign(t, k[0], adminClaims, nil)
	expiredClaims := userClaims(now)
	expiredClaims["exp"] = now.Add(-time.Hour).Unix()
	expired := sign(t, k[0], expiredClaims, nil)

	tests := []struct {
		name       string
		policy     Policy
		headers    []string // Authorization values
		target     string
		wantStatus int
		wantAuth   string // substring of WWW-Authenticate, which 401 and 403 carry and 400 does not
		wantError  string // JSON error
		wantGrant  Grant  // what satisfied the policy, when 200
	}{
		{name: "user token passes", policy: Policy{Scopes: []string{"access_as_user"}, RequireUser: true}, headers: []string{"Bearer " + user}, wantStatus: 200,
			wantGrant: Grant{Scope: "access_as_user"}},
		{name: "scheme is case-insensitive", policy: Policy{}, headers: []string{"bearer " + user}, wantStatus: 200},
		{name: "no header", headers: nil, wantStatus: 401, wantAuth: `Bearer realm="obo-gateway"`, wantError: "unauthorized"},
		{name: "token in query is not read", target: "/x?access_token=" + user, wantStatus: 401, wantAuth: `realm="obo-gateway"`, wantError: "unauthorized"},
		{name: "basic scheme", headers: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantAuth: `error="invalid_request"`, wantError: "invalid_request"},
		{name: "two Authorization headers", headers: []string{"Bearer " + user, "Bearer " + user}, wantStatus: 400, wantError: "invalid_request"},
		{name: "expired", headers: []string{"Bearer " + expired}, wantStatus: 401, wantAuth: `error="invalid_token", error_description="the token has expired"`, wantError: "invalid_token"},
		{name: "missing scope", policy: Policy{Scopes: []string{"Orders.Admin"}}, headers: []string{"Bearer " + user}, wantStatus: 403,
			wantAuth: `error="insufficient_scope"`, wantError: "insufficient_scope"},
		{name: "app-only token on an OBO route", policy: Policy{RequireUser: true, Roles: []string{"Gateway.Call"}}, headers: []string{"Bearer " + app}, wantStatus: 401,
			wantAuth: `needs a user's token`, wantError: "invalid_token"},
		{name: "app-only token with the role", policy: Policy{Roles: []string{"Gateway.Call"}}, headers: []string{"Bearer " + app}, wantStatus: 200,
			wantGrant: Grant{Role: "Gateway.Call"}},
		{name: "app-only token, route declares no roles", policy: Policy{Scopes: []string{"access_as_user"}}, headers: []string{"Bearer " + app}, wantStatus: 403, wantError: "insufficient_scope"},
		{name: "user token without the route's role", policy: Policy{Roles: []string{"Orders.Admin"}}, headers: []string{"Bearer " + user}, wantStatus: 403,
			wantAuth: `error="insufficient_scope", error_description="the token lacks an app role this route requires"`, wantError: "insufficient_scope"},
		{name: "user token with the route's role", policy: Policy{Roles: []string{"Orders.Admin"}}, headers: []string{"Bearer " + admin}, wantStatus: 200,
			wantGrant: Grant{Role: "Orders.Admin"}},
		{name: "user token with the role, not the scope", policy: Policy{Scopes: []string{"Orders.Manage"}, Roles: []string{"Orders.Admin"}}, headers: []string{"Bearer " + admin}, wantStatus: 403, wantError: "insufficient_scope"},
		{name: "user token with scope and role on an OBO route", policy: Policy{Scopes: []string{"Orders.Manage", "access_as_user"}, Roles: []string{"Orders.Admin"}, RequireUser: true}, headers: []string{"Bearer " + admin}, wantStatus: 200,
			wantGrant: Grant{Scope: "access_as_user", Role: "Orders.Admin"}},
		{name: "app-only token with the role, route also lists scopes", policy: Policy{Scopes: []string{"access_as_user"}, Roles: []string{"Gateway.Call"}}, headers: []string{"Bearer " + app}, wantStatus: 200,
			wantGrant: Grant{Role: "Gateway.Call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := Middleware(v, tt.policy, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				p := FromContext(r.Context())
				if p == nil {
					t.Fatal("no principal in the context")
				}
				if p.Grant != tt.wantGrant {
					t.Errorf("grant %+v, want %+v", p.Grant, tt.wantGrant)
				}
			}))
			target := tt.target
			if target == "" {
				target = "/x"
			}
			req := httptest.NewRequest("GET", target, nil)
			for _, a := range tt.headers {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if called != (tt.wantStatus == 200) {
				t.Errorf("next called = %v", called)
			}
			if tt.wantStatus == 200 {
				return
			}
			got := rec.Header().Get("WWW-Authenticate")
			switch {
			case tt.wantStatus == http.StatusBadRequest && got != "":
				t.Errorf("400 with WWW-Authenticate %q", got)
			case tt.wantStatus != http.StatusBadRequest && got == "":
				t.Error("no WWW-Authenticate")
			case !strings.Contains(got, tt.wantAuth):
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantAuth)
			}
			if b := testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes()); b["error"] != tt.wantError {
				t.Errorf("error = %q, want %q", b["error"], tt.wantError)
			}
			if strings.Contains(rec.Body.String(), user) || strings.Contains(got, user) {
				t.Error("the answer echoes the token")
			}
		})
	}
}

func TestQuote(t *testing.T) {
	if got := quote("a \"b\" \\c\nd"); got != `a \"b\" \\cd` {
		t.Errorf("quote = %q", got)
	}
}

// A token signed by a key the gateway has not seen, while the tenant's key
// endpoint fails, cannot be checked: 503 with Retry-After and its own
// metric reason, never 401; once the endpoint answers, it is served.
func TestMiddlewareKeysUnavailable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	js := newJWKSServer(t, setOf(t, k[0]))
	clock := testkit.NewClock(now)
	m := NewMetrics(prometheus.NewRegistry())
	ks := startKeySet(t, js, clock, m)
	v, err := NewValidator(ValidatorConfig{
		Keys: ks, Metadata: testMetadata, TenantID: testTenant, ClientID: testClientID,
		Now: clock.Now, Metrics: m, CacheBudget: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(v, Policy{}, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	call := func(tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rotated := sign(t, k[1], userClaims(now), nil)
	js.setKeys(setOf(t, k[0], k[1]))
	js.setFail(true)
	rec := call(rotated)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("during the outage: %d, Retry-After %q, WWW-Authenticate %q; want 503 with Retry-After and no challenge",
			rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"))
	}
	if !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("body = %s", rec.Body)
	}
	if got := testutil.ToFloat64(m.validations.WithLabelValues("unavailable", string(ReasonKeysRefreshFailed))); got != 1 {
		t.Errorf("unavailable/keys_refresh_failed = %v, want 1", got)
	}
	if rec := call(sign(t, k[0], userClaims(now), nil)); rec.Code != 200 {
		t.Errorf("a token of a held key during the outage: %d", rec.Code)
	}
	js.setFail(false)
	clock.Advance(retryAfterFailure)
	if rec := call(rotated); rec.Code != 200 {
		t.Fatalf("after recovery: %d %s", rec.Code, rec.Body)
	}
}
