package main

// End-to-end tests of what the gateway believes of a token, through run()
// against the local tenant: forgeries built the way an attacker builds them
// (from tokens the tenant really signed), Entra's token kinds, roles for
// users, audiences across tenants, and "cannot check now" while the
// tenant's key endpoint fails.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// victimOID is whom the forgeries claim to be: nobody the tests sign in,
// so that any log line naming it comes from a forgery.
const victimOID = "99999999-dead-4bee-8eef-999999999999"

func TestTokenForgeriesEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	gatewayID := e.info.Apps["gateway"].ClientID
	// A token the tenant really signed, for another audience: alice's ID
	// token for the frontend.
	idToken := e.tokenRequest(t, url.Values{
		"grant_type": {"password"}, "client_id": {e.info.Apps["frontend"].ClientID},
		"username": {"alice@contoso.test"}, "password": {fakeentra.DemoPassword}, "scope": {gatewayScope + " openid profile"},
	}).IDToken
	if idToken == "" {
		t.Fatal("no ID token")
	}
	alice := e.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{})
	segs := strings.Split(alice, ".")
	beside := map[string]any{
		"aud": gatewayID, "tid": e.info.TenantID, "oid": victimOID, "sub": victimOID,
		"scp": "access_as_user admin", "roles": []string{"Gateway.Admin"},
		"iss": e.srv.IssuerV2(e.info.TenantID), "exp": time.Now().Add(time.Hour).Unix(), "ver": "2.0",
	}
	b64false, err := e.srv.SignToken(testkit.JWTClaims(t, alice), map[string]any{"b64": false, "crit": []string{"b64"}})
	if err != nil {
		t.Fatal(err)
	}
	forgeries := []struct{ name, token string }{
		{"flattened JSON serialisation around a signed ID token", testkit.JWSJSONForgery(t, idToken, beside, false)},
		{"general JSON serialisation around a signed ID token", testkit.JWSJSONForgery(t, idToken, beside, true)},
		{"flattened JSON serialisation around alice's access token", testkit.JWSJSONForgery(t, alice, beside, false)},
		{"padded segments", testkit.Respell(t, alice, base64.URLEncoding)},
		{"standard base64", testkit.Respell(t, alice, base64.RawStdEncoding)},
		{"standard base64, padded", testkit.Respell(t, alice, base64.StdEncoding)},
		{"a tab inside the payload", segs[0] + "." + segs[1][:12] + "\t" + segs[1][12:] + "." + segs[2]},
		{"b64 false, signed by the tenant", b64false},
	}
	routes := []string{"/open/x", "/orders/items", "/admin/x"}
	before := len(e.srv.Requests())
	for _, f := range forgeries {
		e.secrets.add(f.token)
		for _, path := range routes {
			r := e.do(t, request{path: path, token: f.token})
			wantStatus(t, r, http.StatusUnauthorized)
			if b := r.errorBody(t); b["error"] != "invalid_token" {
				t.Errorf("%s on %s: error %q, want invalid_token", f.name, path, b["error"])
			}
		}
	}
	for _, rec := range e.srv.Requests()[before:] {
		t.Errorf("a forgery reached the tenant: %s %s for %s", rec.Grant, rec.Scope, rec.Subject)
	}
	if n := e.up.count(); n != 0 {
		t.Errorf("%d forged requests reached the upstream", n)
	}
	if logs := e.gw.stderr.String(); strings.Contains(logs, victimOID) {
		t.Errorf("the gateway logged the forged identity %s:\n%s", victimOID, logs)
	}
}

func TestTokenKindsRolesAndTenantsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	gatewayID := e.info.Apps["gateway"].ClientID
	idToken := e.tokenRequest(t, url.Values{
		"grant_type": {"password"}, "client_id": {e.info.Apps["frontend"].ClientID},
		"username": {"alice@contoso.test"}, "password": {fakeentra.DemoPassword}, "scope": {gatewayScope + " openid profile"},
	}).IDToken
	// An ID token whose audience is the gateway itself: signed by the
	// tenant, valid in every other way, but not an access token.
	idForGateway := func(t *testing.T) string {
		c := testkit.JWTClaims(t, idToken)
		c["aud"] = gatewayID
		tok, err := e.srv.SignToken(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.secrets.add(tok)
		return tok
	}
	// foreign is a token of the allowed foreign tenant for aud, signed by
	// the tenant's key, as Entra's shared signing keys sign every tenant's.
	foreign := func(aud string) func(t *testing.T) string {
		return func(t *testing.T) string {
			now := time.Now()
			tok, err := e.srv.SignToken(map[string]any{
				"aud": aud, "iss": e.srv.IssuerV2(foreignTenantID), "tid": foreignTenantID,
				"oid": "33333333-cccc-4ccc-8ccc-333333333333", "sub": "foreign-sub", "scp": "access_as_user",
				"azp": "44444444-dddd-4ddd-8ddd-444444444444", "ver": "2.0",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.secrets.add(tok)
			return tok
		}
	}
	user := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return e.userToken(t, name, gatewayScope, fakeentra.UserTokenOptions{})
		}
	}
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		path   string
		status int
		error  string
	}{
		{"ID token for the frontend", func(*testing.T) string { return idToken }, "/open/x", 401, "invalid_token"},
		{"ID token whose audience is the gateway", idForGateway, "/open/x", 401, "invalid_token"},
		{"ID token whose audience is the gateway, admin route", idForGateway, "/admin/x", 401, "invalid_token"},
		{"user without the route's role", user("bob@contoso.test"), "/admin/x", 403, "insufficient_scope"},
		{"user with the route's role", user("alice@contoso.test"), "/admin/x", 200, ""},
		{"app holding another role", e.daemonToken, "/admin/x", 403, "insufficient_scope"},
		{"app-only token without roles", e.appToken, "/open/x", 401, "invalid_token"},
		{"foreign tenant naming the gateway by the home App ID URI", foreign("api://obo-gateway"), "/open/x", 401, "invalid_token"},
		{"foreign tenant naming the gateway by its client ID", foreign(gatewayID), "/open/x", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, request{path: tt.path, token: tt.token(t)})
			wantStatus(t, r, tt.status)
			if tt.status == 200 {
				return
			}
			if b := r.errorBody(t); b["error"] != tt.error {
				t.Errorf("error = %q, want %q", b["error"], tt.error)
			}
			if www := r.header.Get("WWW-Authenticate"); !strings.Contains(www, `error="`+tt.error+`"`) {
				t.Errorf("WWW-Authenticate = %q", www)
			}
		})
	}
}

// A token signed by a key the tenant rotated in while its key endpoint
// fails cannot be checked: 503 with Retry-After (never 401), then 200 once
// the endpoint answers again.
func TestKeysUnavailableEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{keysMinRefresh: time.Second})
	if _, err := e.srv.RotateSigningKeys(true); err != nil {
		t.Fatal(err)
	}
	tok := e.userToken(t, "alice@contoso.test", gatewayScope, fakeentra.UserTokenOptions{})
	if err := e.srv.InjectFault(fakeentra.Fault{Endpoint: "keys", Status: http.StatusServiceUnavailable, For: time.Minute}); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, request{path: "/open/x", token: tok})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want whole seconds", r.header.Get("Retry-After"))
	}
	if b := r.errorBody(t); b["error"] != "temporarily_unavailable" {
		t.Errorf("error = %q, want temporarily_unavailable", b["error"])
	}
	if www := r.header.Get("WWW-Authenticate"); www != "" {
		t.Errorf("WWW-Authenticate = %q on a 503: the token was not found bad", www)
	}
	metrics := string(doHTTP(t, e.client, e.gw.admin, request{path: "/metrics"}).body)
	if !strings.Contains(metrics, `obo_gateway_token_validations_total{reason="keys_refresh_failed",result="unavailable"} 1`) {
		t.Errorf("no unavailable/keys_refresh_failed validation in the metrics")
	}

	e.srv.ClearFaults()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = e.do(t, request{path: "/open/x", token: tok})
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the key endpoint recovered: HTTP %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
