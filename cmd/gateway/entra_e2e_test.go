package main

// The tokens a real registration gets and the claims round trip, end to end
// through run() against the local tenant.

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// A registration whose manifest leaves accessTokenAcceptedVersion null (a new
// one) gets v1 tokens: aud the App ID URI, iss on the STS host, not the
// authority's; one set to 2 gets v2 tokens. The gateway serves both.
func TestTokenVersionsOfTheGatewaysRegistration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version         int // the gateway app's access_token_version; 0 = null
		wantVer, wantAz string
	}{
		{0, "1.0", "appid"},
		{2, "2.0", "azp"},
	} {
		t.Run("access_token_version "+map[int]string{0: "null", 2: "2"}[tc.version], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{tenant: func(ten *fakeentra.Tenant) { ten.App("gateway").AccessTokenVersion = tc.version }})
			tok := e.passwordToken(t, "alice@contoso.test", "")
			c, err := decodeClaims(tok)
			if err != nil {
				t.Fatal(err)
			}
			iss, _ := c["iss"].(string)
			if c["ver"] != tc.wantVer || c[tc.wantAz] != e.info.Apps["frontend"].ClientID {
				t.Fatalf("token ver %v, %s %v: want %s", c["ver"], tc.wantAz, c[tc.wantAz], tc.wantVer)
			}
			if v1 := tc.version == 0; v1 != !strings.HasPrefix(iss, e.srv.URL()) {
				t.Errorf("iss %q on the authority %s: %v, want the STS host for v1 tokens only", iss, e.srv.URL(), !v1)
			}
			if tc.version == 0 && c["aud"] != "api://obo-gateway" {
				t.Errorf("v1 aud = %v, want the App ID URI", c["aud"])
			}
			r := e.do(t, request{path: "/orders/items", token: tok})
			wantStatus(t, r, http.StatusOK)
			if b := string(r.body); !strings.Contains(b, `"oid":"`+fakeentra.DemoAliceObjectID+`"`) {
				t.Errorf("the upstream did not get alice's downstream token: %s", b)
			}
		})
	}
}

// An API asks for an authentication context (acrs) in a claims challenge:
// the gateway asks Entra for a token with those claims; a user who did not
// sign in with MFA gets the challenge to step up with, and once stepped up
// is served. The tenant checks that it received the claims.
func TestAuthenticationContextRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const c1 = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	oboClaims := func() []string {
		var out []string
		for _, r := range e.srv.Requests() {
			if r.Grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" && r.Claims != "" {
				out = append(out, r.Claims+" → "+r.Result)
			}
		}
		return out
	}

	// Alice signed in with her password only: the exchange with the claims
	// needs MFA, so the upstream's challenge reaches the frontend.
	plain := e.passwordToken(t, "alice@contoso.test", "")
	r := e.do(t, request{path: "/orders/acrs/c1", token: plain})
	wantStatus(t, r, http.StatusUnauthorized)
	wa := r.header.Get("WWW-Authenticate")
	if !strings.Contains(wa, `claims="`+base64.StdEncoding.EncodeToString([]byte(c1))+`"`) {
		t.Fatalf("WWW-Authenticate = %q, want the acrs challenge", wa)
	}
	if got := oboClaims(); len(got) != 1 || got[0] != c1+" → error" {
		t.Fatalf("the tenant's OBO requests with claims = %v, want the challenge's claims, refused", got)
	}

	// The frontend signs in again with those claims (MFA) and retries.
	stepped := e.passwordToken(t, "alice@contoso.test", c1)
	r = e.do(t, request{path: "/orders/acrs/c1", token: stepped})
	wantStatus(t, r, http.StatusOK)
	if got := oboClaims(); len(got) != 2 || got[1] != c1+" → success" {
		t.Fatalf("the tenant's OBO requests with claims = %v, want the claims again, granted", got)
	}
	var last recorded
	for _, rec := range e.up.requests() {
		if strings.HasSuffix(rec.Path, "/acrs/c1") {
			last = rec
		}
	}
	c, err := decodeClaims(last.bearer())
	if err != nil {
		t.Fatal(err)
	}
	if acrs, _ := c["acrs"].([]any); len(acrs) != 1 || acrs[0] != "c1" {
		t.Errorf("the upstream's last token has acrs %v, want [c1]", c["acrs"])
	}
}

// Entra's throttling answer is plain text with Retry-After: the frontend
// gets 503 with Entra's Retry-After, not a 401 or a 502.
func TestEntraThrottlingPlainText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.passwordToken(t, "bob@contoso.test", "")
	if err := e.srv.InjectFault(fakeentra.Fault{Status: http.StatusTooManyRequests, RetryAfter: 42e9, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, request{path: "/orders/items", token: tok})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if ra := r.header.Get("Retry-After"); ra != "42" {
		t.Errorf("Retry-After = %q, want Entra's 42", ra)
	}
	if v := e.metric(t, `obo_gateway_obo_exchanges_total{error_code="http_429",result="unavailable",route="orders"}`); v != 1 {
		t.Errorf("exchanges{unavailable,http_429} = %v, want 1", v)
	}
	wantStatus(t, e.do(t, request{path: "/orders/items", token: tok}), http.StatusOK)
}

// Subject name and issuer authentication: the gateway's registration trusts
// a certificate subject, not a thumbprint; the gateway sends the chain (x5c)
// of a certificate the tenant's CA issued, registered nowhere, and its
// exchanges succeed. Without x5c the same certificate is refused (502).
func TestSubjectNameIssuerCredential(t *testing.T) {
	t.Parallel()
	for _, sendX5C := range []bool{true, false} {
		t.Run(map[bool]string{true: "with x5c", false: "without x5c"}[sendX5C], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{
				tenant: func(ten *fakeentra.Tenant) {
					ten.App("gateway").TrustedCertificateSubjects = []string{"CN=gateway.contoso.test"}
				},
				credential: func(t *testing.T, te *tenantEnv) (string, string, bool) {
					cert, key, err := te.srv.IssueClientCertificate(t.TempDir(), "gateway.contoso.test")
					if err != nil {
						t.Fatal(err)
					}
					te.secrets.addPEMFile(t, key)
					return cert, key, sendX5C
				},
			})
			r := e.do(t, request{path: "/orders/items", token: e.passwordToken(t, "alice@contoso.test", "")})
			if sendX5C {
				wantStatus(t, r, http.StatusOK)
				return
			}
			wantStatus(t, r, http.StatusBadGateway)
			if v := e.metric(t, `obo_gateway_obo_exchanges_total{error_code="AADSTS700027",result="gateway_config",route="orders"}`); v != 1 {
				t.Errorf("exchanges{gateway_config,AADSTS700027} = %v, want 1", v)
			}
		})
	}
}
