package main

// End-to-end tests: the real program, driven through run in-process, against
// a local Entra tenant over HTTPS (fakeentra; MSAL Go really talks to it) and
// a recording upstream, everything on random loopback ports. The harness is
// in harness_test.go.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2/redistest"
)

// TestHappyPath: a user's token from the tenant's password grant goes in; the
// upstream gets a token On-Behalf-Of the user for its own API, and never the
// user's token, wherever the client put it.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.user(t, "alice@contoso.test")
	tok := e.passwordToken(t, alice.name, "")

	const (
		reqID       = "e2e-happy-0001"
		traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		body        = `{"item":"book","qty":2}`
	)
	r := e.do(t, request{
		method: http.MethodPost,
		path:   "/orders/items?keep=1&access_token=" + url.QueryEscape(tok),
		token:  tok,
		body:   body,
		header: map[string]string{
			"Content-Type":             "application/json",
			"X-Request-Id":             reqID,
			"Traceparent":              traceparent,
			"X-Test-User":              alice.name,
			"X-Forwarded-Access-Token": tok,
			"Cookie":                   "theme=dark; session=" + tok,
			// Hop-by-hop: for this connection only.
			"Connection":          "X-Hop-Test",
			"X-Hop-Test":          "hop",
			"Keep-Alive":          "timeout=5",
			"Proxy-Authorization": "Basic dXNlcjpwYXNz",
			// A client posing as a proxy.
			"X-Forwarded-For": "203.0.113.7",
			"X-Real-Ip":       "203.0.113.7",
			"Forwarded":       "for=203.0.113.7",
		},
	})
	wantStatus(t, r, http.StatusOK)
	if got := r.header.Get("X-Request-Id"); got != reqID {
		t.Errorf("response X-Request-Id = %q, want %q", got, reqID)
	}
	if got := r.header.Get("X-Upstream"); got != "recorder" {
		t.Errorf("response X-Upstream = %q: the upstream's headers did not come through", got)
	}
	var answer upstreamAnswer
	if err := json.Unmarshal(r.body, &answer); err != nil {
		t.Fatalf("body is not the upstream's JSON: %v: %s", err, r.body)
	}
	want := upstreamAnswer{Path: "/orders/items", Method: http.MethodPost, Query: "keep=1", Body: body,
		TestUser: alice.name, OID: alice.oid, Aud: e.info.Apps["orders-api"].ClientID}
	if answer != want {
		t.Errorf("upstream answered %+v, want %+v", answer, want)
	}

	reqs := e.up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream received %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	down := got.bearer()
	if down == "" {
		t.Fatalf("upstream got no bearer token; Authorization = %q", got.Header.Get("Authorization"))
	}
	c := testkit.JWTClaims(t, down)
	for claim, want := range map[string]string{
		"aud": e.info.Apps["orders-api"].ClientID,
		"oid": alice.oid,
		"azp": e.info.Apps["gateway"].ClientID,
		"tid": e.info.TenantID,
		"scp": "Orders.Read",
	} {
		if c[claim] != want {
			t.Errorf("downstream token %s = %v, want %s", claim, c[claim], want)
		}
	}

	// The user's token, or its signature alone, appears nowhere upstream.
	all := got.everything()
	sig := tok[strings.LastIndex(tok, ".")+1:]
	if strings.Contains(all, tok) || strings.Contains(all, sig) {
		t.Errorf("the user's token reached the upstream:\n%s", all)
	}
	if got.RawQuery != "keep=1" {
		t.Errorf("upstream query = %q, want keep=1", got.RawQuery)
	}
	if string(got.Body) != body {
		t.Errorf("upstream body = %q, want %q", got.Body, body)
	}
	for name, want := range map[string]string{
		"X-Request-Id":    reqID,
		"Traceparent":     traceparent,
		"X-Forwarded-For": "127.0.0.1", // the client's claim replaced by the peer
		"Content-Type":    "application/json",
		"X-Test-User":     alice.name,
	} {
		if v := got.Header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("upstream %s = %q, want [%q]", name, v, want)
		}
	}
	for _, name := range []string{"Connection", "X-Hop-Test", "Keep-Alive", "Proxy-Authorization", "X-Forwarded-Access-Token",
		"X-Real-Ip", "Forwarded"} {
		if v, ok := got.Header[name]; ok {
			t.Errorf("upstream received %s: %q", name, v)
		}
	}
	if got.Header.Get("X-Forwarded-Host") == "" || got.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-Host %q, -Proto %q: want set from the connection",
			got.Header.Get("X-Forwarded-Host"), got.Header.Get("X-Forwarded-Proto"))
	}
}

// TestTokenValidationFailures: tokens the gateway must refuse before any
// exchange, and with nothing sent upstream.
func TestTokenValidationFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.user(t, "alice@contoso.test")

	foreignKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Claims exactly as the tenant would issue them for the gateway, signed
	// by a key that is not the tenant's.
	forged := func(kid string) func(t *testing.T) string {
		return func(t *testing.T) string {
			now := time.Now()
			tok := testkit.SignJWT(t, foreignKey, map[string]any{"typ": "JWT", "alg": "RS256", "kid": kid}, map[string]any{
				"iss": e.srv.IssuerV2(e.info.TenantID), "aud": e.info.Apps["gateway"].ClientID,
				"tid": e.info.TenantID, "oid": alice.oid, "sub": "forged", "scp": "access_as_user",
				"azp": e.info.Apps["frontend"].ClientID, "ver": "2.0",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			})
			e.secrets.add(tok)
			return tok
		}
	}
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		status     int
		code       string
		authHeader string // exact WWW-Authenticate, when set
		authHas    string // a part of WWW-Authenticate
		descHas    string // a part of error_description
	}{
		{
			name:       "no token",
			token:      func(*testing.T) string { return "" },
			status:     http.StatusUnauthorized,
			code:       "unauthorized",
			authHeader: `Bearer realm="obo-gateway"`,
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return e.userToken(t, alice.name, gatewayScope, fakeentra.UserTokenOptions{Lifetime: -time.Hour})
			},
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`, descHas: "expired",
		},
		{
			name: "token for another API",
			token: func(t *testing.T) string {
				return e.userToken(t, alice.name, "api://orders-api/Orders.Read", fakeentra.UserTokenOptions{})
			},
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`, descHas: "audience",
		},
		{
			name:   "signed by a foreign key with its own kid",
			token:  forged("foreign-key-1"),
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`,
		},
		{
			name:   "signed by a foreign key posing as the tenant's kid",
			token:  forged(e.srv.SigningKeyID()),
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`, descHas: "signature",
		},
		{
			name:   "app-only token on an on-behalf-of route",
			token:  e.daemonToken,
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`, descHas: "user's token",
		},
		{
			name:   "app-only token without any role",
			token:  e.appToken,
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`, descHas: "not an access token",
		},
		{
			name: "lacks the required scope",
			token: func(t *testing.T) string {
				return e.userToken(t, alice.name, "api://obo-gateway/Reports.Read", fakeentra.UserTokenOptions{})
			},
			status: http.StatusForbidden, code: "insufficient_scope",
			authHas: `error="insufficient_scope"`, descHas: "scope",
		},
		{
			name:   "not a JWT",
			token:  func(*testing.T) string { return "not-a-jwt" },
			status: http.StatusUnauthorized, code: "invalid_token", authHas: `error="invalid_token"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			before := e.up.count()
			r := e.do(t, request{path: "/orders/items", token: tok})
			wantStatus(t, r, tt.status)
			b := r.errorBody(t)
			if b["error"] != tt.code {
				t.Errorf("error = %q, want %q", b["error"], tt.code)
			}
			if b["request_id"] == "" || b["request_id"] != r.header.Get("X-Request-Id") {
				t.Errorf("request_id %q, X-Request-Id %q: want the same, set", b["request_id"], r.header.Get("X-Request-Id"))
			}
			if !strings.Contains(b["error_description"], tt.descHas) {
				t.Errorf("error_description %q does not mention %q", b["error_description"], tt.descHas)
			}
			www := r.header.Get("WWW-Authenticate")
			if tt.authHeader != "" && www != tt.authHeader {
				t.Errorf("WWW-Authenticate = %q, want %q", www, tt.authHeader)
			}
			if !strings.HasPrefix(www, `Bearer realm="obo-gateway"`) || !strings.Contains(www, tt.authHas) {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge with %q", www, tt.authHas)
			}
			if tt.status == http.StatusForbidden && !strings.Contains(www, `scope="access_as_user"`) {
				t.Errorf("WWW-Authenticate = %q, want the scope that would do", www)
			}
			if tok != "" && strings.Contains(string(r.body)+fmt.Sprint(r.header), tok) {
				t.Error("the answer echoes the token")
			}
			if n := e.up.count(); n != before {
				t.Errorf("the upstream received %d requests", n-before)
			}
		})
	}
}

// TestOnBehalfOfFailures: what the tenant refuses to exchange, and how the
// frontend is told what to do about it.
func TestOnBehalfOfFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.user(t, "alice@contoso.test")
	bob := e.user(t, "bob@contoso.test")

	t.Run("MFA claims challenge, then step-up", func(t *testing.T) {
		tok := e.passwordToken(t, alice.name, "")
		before := e.up.count()
		r := e.do(t, request{path: "/hr/payslips", token: tok})
		wantStatus(t, r, http.StatusUnauthorized)
		www := r.header.Get("WWW-Authenticate")
		if !strings.Contains(www, `error="insufficient_claims"`) {
			t.Errorf("WWW-Authenticate = %q, want error=\"insufficient_claims\"", www)
		}
		m := regexp.MustCompile(`claims="([^"]+)"`).FindStringSubmatch(www)
		if m == nil {
			t.Fatalf("WWW-Authenticate = %q has no claims", www)
		}
		raw, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatalf("claims %q is not base64: %v", m[1], err)
		}
		challenge := string(raw)
		if !json.Valid(raw) || !strings.Contains(challenge, "capolids") {
			t.Errorf("claims challenge = %s, want JSON with capolids", challenge)
		}
		b := r.errorBody(t)
		if b["error"] != "insufficient_claims" || b["claims"] != m[1] {
			t.Errorf("body = %+v, want insufficient_claims with the header's claims", b)
		}
		if n := e.up.count(); n != before {
			t.Errorf("the upstream received %d requests", n-before)
		}

		// The frontend signs in again with the challenge (locally: the
		// password grant with claims) and retries.
		mfa := e.passwordToken(t, alice.name, challenge)
		if amr := testkit.JWTClaims(t, mfa)["amr"]; !slices.Contains(anyStrings(amr), "mfa") {
			t.Fatalf("step-up token amr = %v, want mfa", amr)
		}
		r = e.do(t, request{path: "/hr/payslips", token: mfa})
		wantStatus(t, r, http.StatusOK)
		reqs := e.up.requests()
		c := testkit.JWTClaims(t, reqs[len(reqs)-1].bearer())
		if c["aud"] != "api://hr-api" || c["ver"] != "1.0" || c["oid"] != alice.oid || !slices.Contains(anyStrings(c["amr"]), "mfa") {
			t.Errorf("hr-api got a token with aud %v ver %v oid %v amr %v; want a v1 token for api://hr-api, alice's, with mfa",
				c["aud"], c["ver"], c["oid"], c["amr"])
		}
	})

	t.Run("consent required", func(t *testing.T) {
		before := e.up.count()
		r := e.do(t, request{path: "/inventory/stock", token: e.passwordToken(t, bob.name, "")})
		wantStatus(t, r, http.StatusForbidden)
		if b := r.errorBody(t); b["error"] != "consent_required" || !strings.Contains(b["error_description"], "api://inventory-api") {
			t.Errorf("body = %+v, want consent_required naming api://inventory-api", b)
		}
		if n := e.up.count(); n != before {
			t.Errorf("the upstream received %d requests", n-before)
		}
	})

	// Each case needs a token MSAL has not exchanged yet, or its cache answers.
	faults := []struct {
		name       string
		fault      fakeentra.Fault
		retryAfter string
	}{
		{"tenant throttles (429)", fakeentra.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second, Count: 1}, "7"},
		{"tenant unavailable (503)", fakeentra.Fault{Status: http.StatusServiceUnavailable, Count: 1}, ""},
		{"tenant drops the connection", fakeentra.Fault{Drop: true, Count: 1}, ""},
	}
	for _, tt := range faults {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.srv.InjectFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			before := e.up.count()
			r := e.do(t, request{path: "/orders/items", token: e.userToken(t, bob.name, gatewayScope, fakeentra.UserTokenOptions{})})
			wantStatus(t, r, http.StatusServiceUnavailable)
			if b := r.errorBody(t); b["error"] != "temporarily_unavailable" {
				t.Errorf("error = %q, want temporarily_unavailable", b["error"])
			}
			ra := r.header.Get("Retry-After")
			if ra == "" || (tt.retryAfter != "" && ra != tt.retryAfter) {
				t.Errorf("Retry-After = %q, want %q", ra, tt.retryAfter)
			}
			if n := e.up.count(); n != before {
				t.Errorf("the upstream received %d requests", n-before)
			}
			// The fault is spent: the next exchange succeeds.
			r = e.do(t, request{path: "/orders/items", token: e.userToken(t, bob.name, gatewayScope, fakeentra.UserTokenOptions{})})
			wantStatus(t, r, http.StatusOK)
		})
	}
}

// TestOnBehalfOfTimeout: a tenant slower than entra.token_timeout is
// answered 503, and the operator's log says it was a timeout.
func TestOnBehalfOfTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tokenTimeout: 300 * time.Millisecond})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	e.srv.SetLatency(time.Minute, "token") // the exchange gives up long before
	r := e.do(t, request{path: "/orders/items", token: tok})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if b := r.errorBody(t); b["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
		t.Errorf("error %q, Retry-After %q: want temporarily_unavailable with Retry-After", b["error"], r.header.Get("Retry-After"))
	}
	rec, err := e.gw.stderr.Wait(eventTimeout, nil, testkit.Msg("on-behalf-of exchange failed"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Str("error_code") != "timeout" || rec.Str("class") != "unavailable" {
		t.Errorf("log line = %v, want error_code timeout, class unavailable", rec)
	}
	if e.up.count() != 0 {
		t.Error("the upstream received a request")
	}
	e.srv.SetLatency(0, "token")
	// MSAL caches no failure: the same token is exchanged anew.
	wantStatus(t, e.do(t, request{path: "/orders/items", token: tok}), http.StatusOK)
}

// TestSigningKeyRotation: the tenant rotates its signing key and withdraws
// the old one. Tokens signed by the new key are accepted at once (an unknown
// kid makes the gateway refresh the keys); the old key's tokens no longer are.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	old := e.passwordToken(t, "alice@contoso.test", "")
	wantStatus(t, e.do(t, request{path: "/orders/items", token: old}), http.StatusOK)

	kid, err := e.srv.RotateSigningKeys(false)
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.passwordToken(t, "alice@contoso.test", "")
	if k := testkit.JWTHeader(t, fresh)["kid"]; k != kid {
		t.Fatalf("new token's kid %v, want the new key's %s", k, kid)
	}
	wantStatus(t, e.do(t, request{path: "/orders/items", token: fresh}), http.StatusOK)

	r := e.do(t, request{path: "/orders/items", token: old})
	wantStatus(t, r, http.StatusUnauthorized)
	if b := r.errorBody(t); b["error"] != "invalid_token" {
		t.Errorf("old key's token: error %q, want invalid_token", b["error"])
	}
	if n := e.up.count(); n != 2 {
		t.Errorf("the upstream received %d requests, want 2", n)
	}
}

// TestUnregisteredCertificate: the gateway's certificate is not the one on
// its app registration. The frontend gets a plain 502; the operator's log has
// the AADSTS code, the fix and Entra's correlation ID.
func TestUnregisteredCertificate(t *testing.T) {
	t.Parallel()
	certFile, keyFile := selfSignedCredential(t)
	e := newEnv(t, envOptions{certFile: certFile, keyFile: keyFile})
	e.secrets.addPEMFile(t, keyFile)

	r := e.do(t, request{path: "/orders/items", token: e.passwordToken(t, "alice@contoso.test", "")})
	wantStatus(t, r, http.StatusBadGateway)
	if b := r.errorBody(t); b["error"] != "bad_gateway" {
		t.Errorf("error = %q, want bad_gateway", b["error"])
	}
	if e.up.count() != 0 {
		t.Error("the upstream received a request")
	}
	rec, err := e.gw.stderr.Wait(eventTimeout, nil, testkit.Msg("on-behalf-of exchange failed"))
	if err != nil {
		t.Fatalf("%v; stderr:\n%s", err, e.gw.stderr)
	}
	if rec.Str("level") != "ERROR" || rec.Str("error_code") != "AADSTS700027" || rec.Str("route") != "orders" {
		t.Errorf("log line = %v, want level ERROR, error_code AADSTS700027, route orders", rec)
	}
	if !strings.Contains(rec.Str("hint"), "certificate") {
		t.Errorf("hint = %q, want advice about the certificate", rec.Str("hint"))
	}
	var fromTenant []string
	for _, req := range e.srv.Requests() {
		if req.Code == 700027 {
			fromTenant = append(fromTenant, req.ClientRequestID)
		}
	}
	if cid := rec.Str("correlation_id"); cid == "" || !slices.Contains(fromTenant, cid) {
		t.Errorf("correlation_id = %q, want the tenant's %q", cid, fromTenant)
	}
}

// TestProxyFailures: what the frontend gets when the upstream cannot answer,
// and that streams pass through as they come.
func TestProxyFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.passwordToken(t, "alice@contoso.test", "")

	t.Run("upstream down", func(t *testing.T) {
		r := e.do(t, request{path: "/down/items", token: tok})
		wantStatus(t, r, http.StatusBadGateway)
		if b := r.errorBody(t); b["error"] != "bad_gateway" {
			t.Errorf("error = %q, want bad_gateway", b["error"])
		}
	})

	t.Run("route timeout", func(t *testing.T) {
		h := e.up.hold("timeout")
		defer h.Release()
		start := time.Now()
		r := e.do(t, request{path: "/slow/hold/timeout", token: tok})
		wantStatus(t, r, http.StatusGatewayTimeout)
		if b := r.errorBody(t); b["error"] != "gateway_timeout" {
			t.Errorf("error = %q, want gateway_timeout", b["error"])
		}
		// The answer came from the route timeout (200ms), not another bound.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("504 after %v", d)
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		for _, path := range []string{"/nowhere", "/ordersx/1"} {
			r := e.do(t, request{path: path, token: tok})
			wantStatus(t, r, http.StatusNotFound)
			if b := r.errorBody(t); b["error"] != "not_found" {
				t.Errorf("%s: error = %q, want not_found", path, b["error"])
			}
		}
	})

	t.Run("paths refused before the upstream", func(t *testing.T) {
		tests := []struct {
			path   string
			token  string
			status int
			code   string
		}{
			{"/orders/%2e%2e/admin", tok, http.StatusBadRequest, "invalid_request"},
			{"/orders/a/%2E/b", tok, http.StatusBadRequest, "invalid_request"},
			// A token in the path never goes upstream, and never into the
			// access log (the leak scan at the end checks the log).
			{"/orders/x/" + tok, tok, http.StatusBadRequest, "invalid_request"},
			{"/orders/x/" + tok, "", http.StatusUnauthorized, "unauthorized"},
			{"/" + tok, tok, http.StatusNotFound, "not_found"},
		}
		before := e.up.count()
		for i, tt := range tests {
			id := fmt.Sprintf("refused-path-%d", i)
			r := e.do(t, request{path: tt.path, token: tt.token, header: map[string]string{"X-Request-Id": id}})
			wantStatus(t, r, tt.status)
			if b := r.errorBody(t); b["error"] != tt.code {
				t.Errorf("#%d: error = %q, want %q", i, b["error"], tt.code)
			}
			rec, err := e.gw.stderr.Wait(eventTimeout, nil, func(r testkit.Record) bool {
				return r.Str("msg") == "request" && r.Str("request_id") == id
			})
			if err != nil {
				t.Fatalf("#%d: access line: %v", i, err)
			}
			if p := rec.Str("path"); strings.Contains(tt.path, tok) && !strings.Contains(p, "REDACTED") {
				t.Errorf("#%d: logged path of %d bytes, want the token REDACTED", i, len(p))
			}
		}
		if n := e.up.count(); n != before {
			t.Errorf("the upstream received %d requests", n-before)
		}
	})

	t.Run("server-sent events flow event by event", func(t *testing.T) {
		events := e.up.stream("ticks")
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.gw.api+"/orders/events/ticks", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "text/event-stream")
		type result struct {
			resp *http.Response
			err  error
		}
		respc := make(chan result, 1)
		go func() {
			resp, err := (&http.Client{}).Do(req)
			respc <- result{resp, err}
		}()

		// The upstream takes each event only once the previous one was read
		// through the gateway: nothing can arrive batched.
		send := func(ev string) {
			t.Helper()
			select {
			case events <- ev:
			case <-ctx.Done():
				t.Fatalf("the upstream did not take event %q", ev)
			}
		}
		send("one")
		res := <-respc
		if res.err != nil {
			t.Fatal(res.err)
		}
		defer res.resp.Body.Close()
		if res.resp.StatusCode != http.StatusOK || !strings.HasPrefix(res.resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("HTTP %d, Content-Type %q", res.resp.StatusCode, res.resp.Header.Get("Content-Type"))
		}
		br := bufio.NewReader(res.resp.Body)
		readEvent := func() string {
			t.Helper()
			var data []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("reading the stream: %v", err)
				}
				line = strings.TrimRight(line, "\r\n")
				if line == "" {
					return strings.Join(data, "\n")
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					data = append(data, d)
				}
			}
		}
		if ev := readEvent(); ev != "one" {
			t.Errorf("first event = %q, want one", ev)
		}
		send("two")
		if ev := readEvent(); ev != "two" {
			t.Errorf("second event = %q, want two", ev)
		}
		close(events)
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Errorf("after the stream ended: %q, %v", rest, err)
		}
	})
}

// TestCORS: a browser's preflight is answered without a token; an actual
// request's error is readable by the page's script.
func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const origin = "http://localhost:3000"

	r := e.do(t, request{method: http.MethodOptions, path: "/orders/items", header: map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization, x-request-id",
	}})
	wantStatus(t, r, http.StatusNoContent)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
	}
	if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "GET") {
		t.Errorf("Access-Control-Allow-Methods = %q, want GET in it", got)
	}
	if got := r.header.Get("Access-Control-Allow-Headers"); got != "authorization, x-request-id" {
		t.Errorf("Access-Control-Allow-Headers = %q", got)
	}
	if got := r.header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("Access-Control-Allow-Credentials = %q, want none", got)
	}

	r = e.do(t, request{method: http.MethodOptions, path: "/orders/items", header: map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
	}})
	wantStatus(t, r, http.StatusForbidden)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("disallowed origin: Access-Control-Allow-Origin = %q", got)
	}

	r = e.do(t, request{path: "/orders/items", header: map[string]string{"Origin": origin}})
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("401: Access-Control-Allow-Origin = %q, want %q", got, origin)
	}
	exposed := strings.Split(strings.ReplaceAll(r.header.Get("Access-Control-Expose-Headers"), " ", ""), ",")
	if !slices.ContainsFunc(exposed, func(h string) bool { return strings.EqualFold(h, "WWW-Authenticate") }) {
		t.Errorf("Access-Control-Expose-Headers = %q, want WWW-Authenticate in it", exposed)
	}
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if n := e.up.count(); n != 0 {
		t.Errorf("the upstream received %d requests", n)
	}
}

// TestManyUsersConcurrently: 8 users × 25 requests at once; each request's
// downstream token is its own user's, never another's.
func TestManyUsersConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const perUser = 25
	if len(e.users) != 8 {
		t.Fatalf("%d users, want 8", len(e.users))
	}
	tokens := map[string]string{}
	oids := map[string]string{}
	for _, u := range e.users {
		tokens[u.name] = e.passwordToken(t, u.name, "")
		oids[u.name] = u.oid
	}

	var g errgroup.Group
	for _, u := range e.users {
		for i := range perUser {
			g.Go(func() error {
				r, err := tryHTTP(e.client, e.gw.api, request{
					path:   fmt.Sprintf("/orders/items/%d", i),
					token:  tokens[u.name],
					header: map[string]string{"X-Test-User": u.name},
				})
				if err != nil {
					return fmt.Errorf("%s #%d: %w", u.name, i, err)
				}
				if r.status != http.StatusOK {
					return fmt.Errorf("%s #%d: HTTP %d: %s", u.name, i, r.status, r.body)
				}
				var a upstreamAnswer
				if err := json.Unmarshal(r.body, &a); err != nil {
					return fmt.Errorf("%s #%d: %w", u.name, i, err)
				}
				if a.TestUser != u.name || a.OID != u.oid {
					return fmt.Errorf("%s #%d: the upstream saw user %q with oid %q", u.name, i, a.TestUser, a.OID)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	reqs := e.up.requests()
	if len(reqs) != len(e.users)*perUser {
		t.Fatalf("upstream received %d requests, want %d", len(reqs), len(e.users)*perUser)
	}
	seen := map[string]int{}
	for _, r := range reqs {
		user := r.Header.Get("X-Test-User")
		c, err := decodeClaims(r.bearer())
		if err != nil {
			t.Errorf("%s %s: bearer token: %v", user, r.URI, err)
			continue
		}
		if c["oid"] != oids[user] || c["aud"] != e.info.Apps["orders-api"].ClientID {
			t.Errorf("request of %s carried a token with oid %v aud %v", user, c["oid"], c["aud"])
		}
		all := r.everything()
		for name, tok := range tokens {
			if strings.Contains(all, tok) {
				t.Errorf("request of %s carried the user token of %s upstream", user, name)
			}
		}
		seen[user]++
	}
	for _, u := range e.users {
		if seen[u.name] != perUser {
			t.Errorf("%s: upstream saw %d requests, want %d", u.name, seen[u.name], perUser)
		}
	}
}

// TestMetricsAndHealth: the admin listener's /metrics counts the traffic;
// /healthz and /readyz answer.
func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	for range 3 {
		wantStatus(t, e.do(t, request{path: "/orders/items", token: tok}), http.StatusOK)
	}
	wantStatus(t, e.do(t, request{path: "/inventory/stock", token: tok}), http.StatusForbidden)
	wantStatus(t, e.do(t, request{path: "/orders/items"}), http.StatusUnauthorized)

	r := doHTTP(t, e.client, e.gw.admin, request{path: "/metrics"})
	wantStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	exposition := string(r.body)
	for series, want := range map[string]float64{
		`obo_gateway_http_requests_total{code="200",method="GET",route="orders"}`:                               3,
		`obo_gateway_http_requests_total{code="401",method="GET",route="orders"}`:                               1,
		`obo_gateway_http_requests_total{code="403",method="GET",route="inventory"}`:                            1,
		`obo_gateway_token_validations_total{reason="",result="valid"}`:                                         1, // verified with RSA once
		`obo_gateway_token_validations_total{reason="cached",result="valid"}`:                                   3, // then from the verified-token cache
		`obo_gateway_token_validations_total{reason="missing",result="invalid"}`:                                1,
		`obo_gateway_obo_exchanges_total{error_code="",result="success",route="orders"}`:                        1, // one exchange, then the token cache
		`obo_gateway_token_cache_requests_total{level="l1",result="hit"}`:                                       2,
		`obo_gateway_token_cache_requests_total{level="l1",result="miss"}`:                                      2, // orders once, inventory once
		`obo_gateway_obo_exchanges_total{error_code="AADSTS65001",result="consent_required",route="inventory"}`: 1,
		`obo_gateway_obo_exchange_duration_seconds_count`:                                                       2,
		`obo_gateway_token_cache_entries`:                                                                       1,
		`obo_gateway_upstream_errors_total{kind="connect",route="down"}`:                                        0,
	} {
		got, ok := metricValue(exposition, series)
		if !ok {
			t.Errorf("no series %s", series)
		} else if got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(exposition, `obo_gateway_obo_exchange_duration_seconds_bucket{le="`) {
		t.Error("no obo_gateway_obo_exchange_duration_seconds histogram buckets")
	}

	for path, status := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		r := doHTTP(t, e.client, e.gw.admin, request{path: path})
		wantStatus(t, r, http.StatusOK)
		var b struct{ Status string }
		if err := json.Unmarshal(r.body, &b); err != nil || b.Status != status {
			t.Errorf("%s: %s (%v), want status %q", path, r.body, err, status)
		}
	}
}

// TestLogs: one access line per request, with who and what happened; and
// no secret in any line.
func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.user(t, "alice@contoso.test")
	tok := e.passwordToken(t, alice.name, "")

	tests := []struct {
		id       string
		path     string
		token    string
		route    string
		status   int
		user     bool // oid and tid logged
		upstream int  // upstream_status logged, or 0
	}{
		{"log-orders", "/orders/items?access_token=" + url.QueryEscape(tok), tok, "orders", 200, true, 200},
		{"log-no-token", "/orders/items", "", "orders", 401, false, 0},
		{"log-consent", "/inventory/stock", tok, "inventory", 403, true, 0},
		{"log-down", "/down/items", tok, "down", 502, true, 502},
		{"log-unknown", "/nowhere", tok, "unmatched", 404, false, 0},
	}
	for _, tt := range tests {
		r := e.do(t, request{path: tt.path, token: tt.token, header: map[string]string{"X-Request-Id": tt.id}})
		wantStatus(t, r, tt.status)
	}
	for _, tt := range tests {
		// The access line is written as the handler returns, which may be
		// just after the client has read the answer.
		rec, err := e.gw.stderr.Wait(eventTimeout, nil, func(r testkit.Record) bool {
			return r.Str("msg") == "request" && r.Str("request_id") == tt.id
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if rec.Str("route") != tt.route || rec.Num("status") != tt.status || rec.Str("method") != "GET" {
			t.Errorf("%s: route %q status %d method %q, want %q %d GET", tt.id, rec.Str("route"), rec.Num("status"), rec.Str("method"), tt.route, tt.status)
		}
		if p := rec.Str("path"); strings.Contains(p, "?") || strings.Contains(p, "access_token") {
			t.Errorf("%s: the logged path (%d bytes) carries the query", tt.id, len(p))
		}
		if tt.user && (rec.Str("oid") != alice.oid || rec.Str("tid") != e.info.TenantID) {
			t.Errorf("%s: oid %q tid %q, want alice's", tt.id, rec.Str("oid"), rec.Str("tid"))
		}
		if !tt.user && (rec["oid"] != nil || rec["tid"] != nil) {
			t.Errorf("%s: oid %v tid %v logged for no user", tt.id, rec["oid"], rec["tid"])
		}
		if rec.Num("upstream_status") != tt.upstream {
			t.Errorf("%s: upstream_status %v, want %d", tt.id, rec["upstream_status"], tt.upstream)
		}
	}
	access := e.gw.stderr.Find(testkit.Msg("request"))
	if len(access) != len(tests) {
		t.Errorf("%d access lines for %d requests", len(access), len(tests))
	}

	// The leak scan that runs at the end of every test, here in the open:
	// the tokens are known to it, and it does find one that is there.
	sec := e.secrets.list()
	for _, v := range []string{tok, demoGatewaySecret} {
		if !slices.Contains(sec, v) {
			t.Fatalf("the leak scan does not look for %s", describeSecret(v))
		}
	}
	if len(leaks(`{"msg":"x","v":"`+tok+`"}`, sec)) == 0 {
		t.Fatal("the leak scan misses a token in a line")
	}
	e.checkNoLeaks(t)
}

// TestGracefulShutdown: when run's context ends, the gateway stops taking
// requests, lets the one in flight finish, and returns.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{shutdownGrace: 5 * time.Second})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	h := e.up.hold("drain")
	inflight := make(chan response, 1)
	failed := make(chan error, 1)
	go func() {
		r, err := tryHTTP(e.client, e.gw.api, request{path: "/orders/hold/drain", token: tok})
		if err != nil {
			failed <- err
			return
		}
		inflight <- r
	}()
	select {
	case <-h.arrived:
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(eventTimeout):
		t.Fatal("the request did not reach the upstream")
	}

	stopped := time.Now()
	e.gw.cancel()
	if _, err := e.gw.stderr.Wait(eventTimeout, e.gw.done, testkit.Msg("shutting down: draining in-flight requests")); err != nil {
		t.Fatal(err)
	}
	r := doHTTP(t, &http.Client{Timeout: 5 * time.Second}, e.gw.admin, request{path: "/readyz"})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "shutting down") {
		t.Errorf("/readyz body %s, want the reason", r.body)
	}
	waitRefused(t, strings.TrimPrefix(e.gw.api, "http://"))

	select {
	case <-e.gw.done:
		t.Fatalf("run returned (%v) with a request in flight", e.gw.err)
	default:
	}
	h.Release()
	select {
	case r := <-inflight:
		wantStatus(t, r, http.StatusOK)
		if !strings.Contains(string(r.body), `"held":"drain"`) {
			t.Errorf("in-flight answer %s", r.body)
		}
	case err := <-failed:
		t.Fatalf("the in-flight request failed: %v", err)
	case <-time.After(eventTimeout):
		t.Fatal("the in-flight request did not complete")
	}
	err, ok := e.gw.wait(5 * time.Second)
	if !ok {
		t.Fatal("run did not return within the grace period")
	}
	if err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("run returned %v after its context ended, beyond the 5s grace", d)
	}
	if len(e.gw.stderr.Find(testkit.Msg("gateway stopped"))) != 1 {
		t.Error(`no "gateway stopped" line`)
	}
}

// waitRefused waits, bounded, until addr refuses connections. Shutdown
// closes the listener right after /readyz turns 503; there is no event to
// wait for in between.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections while draining", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownCutsRequestsAfterGrace: a request still running when the grace
// period ends is cut, and run returns.
func TestShutdownCutsRequestsAfterGrace(t *testing.T) {
	t.Parallel()
	const grace = 500 * time.Millisecond
	e := newEnv(t, envOptions{shutdownGrace: grace})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	h := e.up.hold("stuck")
	type result struct {
		r   response
		err error
	}
	res := make(chan result, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		r, err := tryHTTP(c, e.gw.api, request{path: "/orders/hold/stuck", token: tok})
		res <- result{r, err}
	}()
	select {
	case <-h.arrived:
	case <-time.After(eventTimeout):
		t.Fatal("the request did not reach the upstream")
	}

	stopped := time.Now()
	e.gw.cancel()
	err, ok := e.gw.wait(grace + eventTimeout)
	if !ok {
		t.Fatal("run did not return after the grace period")
	}
	if err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
	if d := time.Since(stopped); d < grace {
		t.Errorf("run returned after %v, before the %v grace period was over", d, grace)
	}
	select {
	case got := <-res:
		if got.err == nil {
			t.Errorf("the stuck request was answered HTTP %d: %s; want it cut", got.r.status, got.r.body)
		}
	case <-time.After(eventTimeout):
		t.Fatal("the stuck request was not cut")
	}
	if len(e.gw.stderr.Find(testkit.Msg("grace period over: closing the remaining connections"))) != 1 {
		t.Error("no log line about cutting the remaining connections")
	}
}

// TestConfigErrors: serve refuses to start on a bad configuration, and says
// which setting is wrong.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	certFile, keyFile := selfSignedCredential(t)
	dir := t.TempDir()
	// valid is a configuration serve accepts; the cases break it.
	valid := func() *config.Config {
		return &config.Config{
			Listen:      "127.0.0.1:0",
			AdminListen: "127.0.0.1:0",
			Entra: config.Entra{
				TenantID:      "6b1f3c2a-9d4e-4f8a-b7c5-2e0d9a8f1c34",
				ClientID:      "0c8d5e7f-3a21-4b6c-9e0f-7d4a2b1c8e95",
				AuthorityHost: "https://127.0.0.1:1",
				Certificate:   config.Certificate{Path: certFile, KeyPath: keyFile},
			},
			Routes: []config.Route{{Name: "orders", PathPrefix: "/orders", Upstream: "http://127.0.0.1:1",
				DownstreamScopes: []string{"api://orders-api/.default"}}},
		}
	}
	validFile := configtest.Write(t, valid())
	// A misspelt key, which no Config holds: valid's text, edited.
	misspeltYAML := strings.Replace(configtest.YAML(t, valid()), "tenant_id:", "tenantid:", 1)
	misspelt := configtest.WriteYAML(t, misspeltYAML)
	// Two wrong values: each problem is placed at its own line.
	several := valid()
	several.Entra.TenantID = "common"
	several.Routes[0].DownstreamScopes = []string{"api://orders-api/default"}
	severalYAML := configtest.YAML(t, several)
	severalFile := configtest.WriteYAML(t, severalYAML)
	badScope := valid()
	badScope.Routes[0].DownstreamScopes = []string{"api://orders-api/default"}

	tests := []struct {
		name    string
		args    []string
		environ []string
		want    []string // parts of the error
	}{
		{"no -config", []string{"serve"}, nil, []string{"serve: -config FILE or OBO_GATEWAY_CONFIG is required"}},
		{"no such file", []string{"serve", "-config", filepath.Join(dir, "nope.yaml")}, nil, []string{"nope.yaml", "no such file"}},
		{
			"misspelt key",
			[]string{"serve", "-config", misspelt}, nil,
			[]string{fmt.Sprintf("%s:%d: ", misspelt, configtest.Line(t, misspeltYAML, "tenantid:")), `unknown key "tenantid" in entra`},
		},
		{
			"several problems, one line each",
			[]string{"serve", "-config", severalFile}, nil,
			[]string{"serve: 2 problems in the configuration " + severalFile,
				fmt.Sprintf("\nconfig: %s:%d: entra.tenant_id: \"common\" is not a tenant", severalFile, configtest.Line(t, severalYAML, "tenant_id:")),
				fmt.Sprintf("\nconfig: %s:%d: routes[0].downstream_scopes[0]: \"api://orders-api/default\" is not the .default scope",
					severalFile, configtest.Line(t, severalYAML, "- api://orders-api/default"))},
		},
		{
			"bad scope",
			[]string{"serve", "-config", configtest.Write(t, badScope)}, nil,
			[]string{"routes[0].downstream_scopes[0]", "did you mean api://orders-api/.default"},
		},
		{
			"route variable naming no route",
			[]string{"serve", "-config", validFile}, []string{"OBO_GATEWAY_ROUTE_NOPE_UPSTREAM=http://127.0.0.1:2"},
			[]string{"OBO_GATEWAY_ROUTE_NOPE_UPSTREAM", "names no route"},
		},
		{
			"bad variable value",
			[]string{"serve", "-config", validFile}, []string{"OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX=maybe"},
			[]string{"config: routes[0].strip_prefix (env OBO_GATEWAY_ROUTE_ORDERS_STRIP_PREFIX): \"maybe\" is not a boolean"},
		},
		{"unknown command", []string{"frobnicate"}, nil, []string{`unknown command "frobnicate"`}},
		{"no command", nil, nil, []string{"a command is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startRun(t, tt.args, tt.environ, io.Discard)
			err, ok := p.wait(stopTimeout)
			if !ok {
				t.Fatal("run did not return: it started despite the error")
			}
			if err == nil {
				t.Fatal("run returned nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("version", func(t *testing.T) {
		var out strings.Builder
		if err := run(context.Background(), []string{"version"}, nil, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if out.String() != version+"\n" {
			t.Errorf("version printed %q", out.String())
		}
	})
}

// demoInfo is the demo's JSON line; its keys are a contract.
type demoInfo struct {
	GatewayURL       string            `json:"gateway_url"`
	AdminURL         string            `json:"admin_url"`
	UpstreamURL      string            `json:"upstream_url"`
	Authority        string            `json:"authority"`
	TokenEndpoint    string            `json:"token_endpoint"`
	CAFile           string            `json:"ca_file"`
	TenantID         string            `json:"tenant_id"`
	FrontendClientID string            `json:"frontend_client_id"`
	Scope            string            `json:"scope"`
	Routes           map[string]string `json:"routes"`
	Users            []struct {
		Username string `json:"username"`
		Password string `json:"password"`
		ObjectID string `json:"object_id"`
	} `json:"users"`
	ConfigFile  string `json:"config_file"`
	AccessToken string `json:"access_token"`
}

// startDemo runs "gateway demo" with args and returns it with the first
// line it printed (its JSON line with -json); the run stops at cleanup.
func startDemo(t *testing.T, args ...string) (*gatewayProc, string) {
	t.Helper()
	return startDemoWith(t, nil, args...)
}

// startDemoWith is startDemo in the environment environ.
func startDemoWith(t *testing.T, environ []string, args ...string) (*gatewayProc, string) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	p := startRun(t, append([]string{"demo"}, args...), environ, pw)
	p.cleanStop = true
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br)
	}()
	select {
	case line := <-lines:
		return p, line
	case <-p.done:
		t.Fatalf("demo returned %v before printing; stderr:\n%s", p.err, p.stderr)
	case <-time.After(startTimeout):
		t.Fatal("the demo printed no line")
	}
	return nil, ""
}

// TestDemo: "gateway demo -json" prints its line, and its gateway answers
// the token it printed.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := newSecrets()
	var p *gatewayProc
	// Cleanups run last-in first-out: these two run after run has returned.
	t.Cleanup(func() {
		for _, l := range leaks(p.stderr.String(), sec.list()) {
			t.Errorf("the demo logged a secret: %s", l)
		}
	})
	var line string
	p, line = startDemo(t, "-json", "-dir", dir)

	var raw map[string]any
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		t.Fatalf("the line is not JSON: %v: %q", err, line)
	}
	for _, k := range []string{"gateway_url", "admin_url", "upstream_url", "authority", "token_endpoint", "ca_file",
		"tenant_id", "frontend_client_id", "scope", "routes", "users", "config_file", "access_token"} {
		if v, ok := raw[k]; !ok || v == "" || v == nil {
			t.Errorf("the line lacks %s", k)
		}
	}
	var info demoInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatal(err)
	}
	sec.add(info.AccessToken, demoGatewaySecret)
	sec.addPEMFile(t, filepath.Join(dir, "gateway.key.pem"))
	if info.Routes["orders"] != "/orders" || info.TenantID != fakeentra.DemoTenantID || info.Scope != gatewayScope {
		t.Errorf("routes %v, tenant %s, scope %s", info.Routes, info.TenantID, info.Scope)
	}
	waitReady(t, info.AdminURL+"/readyz", p.done)

	client := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	call := func(token string) (response, map[string]any) {
		t.Helper()
		r := doHTTP(t, client, info.GatewayURL, request{path: info.Routes["orders"] + "/items", token: token})
		wantStatus(t, r, http.StatusOK)
		var echo struct {
			Claims        map[string]any `json:"claims"`
			TokenSHA256   string         `json:"token_sha256"`
			Authorization string         `json:"authorization"`
		}
		if err := json.Unmarshal(r.body, &echo); err != nil {
			t.Fatalf("sample API answer: %v: %s", err, r.body)
		}
		sum := sha256.Sum256([]byte(token))
		if echo.Authorization != "Bearer" || echo.TokenSHA256 == hex.EncodeToString(sum[:]) {
			t.Errorf("the sample API got authorization %q, token sha256 %s (the user's is %x)", echo.Authorization, echo.TokenSHA256, sum)
		}
		if echo.Claims["aud"] != fakeentra.DemoOrdersClientID {
			t.Errorf("the sample API got a token for %v, want orders-api", echo.Claims["aud"])
		}
		return r, echo.Claims
	}
	if _, c := call(info.AccessToken); c["oid"] != fakeentra.DemoAliceObjectID {
		t.Errorf("oid %v, want alice's", c["oid"])
	}

	// A second user signs in as the printed instructions say: the token
	// endpoint over TLS trusted through ca_file.
	entra := trustingClient(t, info.CAFile)
	bob := info.Users[1]
	resp, err := entra.PostForm(info.TokenEndpoint, url.Values{
		"grant_type": {"password"}, "client_id": {info.FrontendClientID},
		"username": {bob.Username}, "password": {bob.Password}, "scope": {info.Scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.AccessToken == "" {
		t.Fatalf("token for %s: HTTP %d %v %s", bob.Username, resp.StatusCode, err, tr.Error)
	}
	sec.add(tr.AccessToken, tr.RefreshToken, tr.IDToken)
	if _, c := call(tr.AccessToken); c["oid"] != bob.ObjectID {
		t.Errorf("oid %v, want bob's %s", c["oid"], bob.ObjectID)
	}

	r := doHTTP(t, client, info.GatewayURL, request{path: "/orders/items"})
	wantStatus(t, r, http.StatusUnauthorized)
	r = doHTTP(t, client, info.GatewayURL, request{path: info.Routes["hr"] + "/payslips", token: info.AccessToken})
	wantStatus(t, r, http.StatusUnauthorized)
	if b := r.errorBody(t); b["error"] != "insufficient_claims" {
		t.Errorf("hr as alice: %q, want insufficient_claims", b["error"])
	}

	p.cancel()
	if err, ok := p.wait(stopTimeout); !ok || err != nil {
		t.Errorf("demo: run returned %v (returned: %v), want nil", err, ok)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestSharedCacheAcrossReplicas: two gateways share an encrypted Redis
// cache, so the second replica serves a user with the token the first one
// obtained, without asking Entra; with Redis gone, both keep serving.
func TestSharedCacheAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := redistest.StartServer(t)
	e := newEnv(t, envOptions{redisAddr: rs.Addr})
	replicaB := serveGateway(t, e.cfgPath, nil)
	tok := e.passwordToken(t, "alice@contoso.test", "")
	exchanges := func() int {
		n := 0
		for _, r := range e.srv.Requests() {
			if r.Grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				n++
			}
		}
		return n
	}

	wantStatus(t, e.do(t, request{path: "/orders/a", token: tok}), http.StatusOK)
	if n := exchanges(); n != 1 {
		t.Fatalf("exchanges after replica A = %d, want 1", n)
	}
	// The write to Redis is in the background: wait until replica A reports it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := doHTTP(t, e.client, e.gw.admin, request{path: "/metrics"})
		if v, _ := metricValue(string(m.body), `obo_gateway_token_cache_l2_requests_total{op="set",result="stored"}`); v >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica A never stored the token in Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := doHTTP(t, e.client, replicaB.api, request{path: "/orders/b", token: tok})
	wantStatus(t, r, http.StatusOK)
	if n := exchanges(); n != 1 {
		t.Errorf("exchanges after replica B = %d, want still 1 (served from Redis)", n)
	}
	m := doHTTP(t, e.client, replicaB.admin, request{path: "/metrics"})
	if v, _ := metricValue(string(m.body), `obo_gateway_token_cache_requests_total{level="l2",result="hit"}`); v != 1 {
		t.Errorf("replica B l2 hits = %v, want 1", v)
	}

	// Redis goes away: no request fails.
	rs.Stop()
	for i := range 10 {
		tok := e.passwordToken(t, "bob@contoso.test", "")
		for _, base := range []string{e.gw.api, replicaB.api} {
			if r := doHTTP(t, e.client, base, request{path: fmt.Sprintf("/orders/%d", i), token: tok}); r.status != http.StatusOK {
				t.Fatalf("with Redis down: status %d: %s", r.status, r.body)
			}
		}
	}
}

// TestDownstreamClaimsChallenge: an upstream answers 401 with a claims
// challenge (continuous access evaluation). A request without a body is
// replayed once with a token obtained with those claims; one with a body
// gets the challenge, for the frontend to step up. With cp1 declared, the
// downstream token says so (xms_cc).
func TestDownstreamClaimsChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cp1: true})
	tok := e.passwordToken(t, "alice@contoso.test", "")
	jwtBearer := func() int {
		n := 0
		for _, r := range e.srv.Requests() {
			if r.Grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" && r.Result == "success" {
				n++
			}
		}
		return n
	}

	r := e.do(t, request{path: "/orders/challenge/get", token: tok})
	wantStatus(t, r, http.StatusOK)
	if n := jwtBearer(); n != 2 {
		t.Errorf("exchanges = %d, want 2 (the first token, then one with the claims)", n)
	}
	var seen []string
	for _, rec := range e.up.requests() {
		if strings.HasSuffix(rec.Path, "/challenge/get") {
			seen = append(seen, rec.bearer())
		}
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("upstream saw %d requests (distinct tokens: %v); want the original and a replay with a new token", len(seen), len(seen) == 2 && seen[0] != seen[1])
	}
	claims, err := decodeClaims(seen[1])
	if err != nil {
		t.Fatal(err)
	}
	if cc, _ := claims["xms_cc"].([]any); len(cc) != 1 || cc[0] != "cp1" {
		t.Errorf("downstream token xms_cc = %v, want [cp1] (the gateway declares cp1)", claims["xms_cc"])
	}

	// A request with a body cannot be replayed: the frontend gets the challenge.
	r = e.do(t, request{method: http.MethodPost, path: "/orders/challenge/post", token: tok, body: `{"item":1}`})
	wantStatus(t, r, http.StatusUnauthorized)
	wa := r.header.Get("WWW-Authenticate")
	if !strings.Contains(wa, `error="insufficient_claims"`) || !strings.Contains(wa, base64.StdEncoding.EncodeToString([]byte(upstreamChallenge))) {
		t.Errorf("WWW-Authenticate = %q; want the upstream's claims challenge", wa)
	}
}
