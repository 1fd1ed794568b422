package fakeentra_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// An SPA's refresh tokens keep the first sign-in's 24-hour expiry across
// redemptions (Entra; docs/frontend.md "fixed").
func TestSPARefreshChainEndsAfter24Hours(t *testing.T) {
	e := azStart(t)
	tok := accWantSuccess(t, e.redeem(t, azCodeForm(e.signedInCode(t, nil)), azSPAOrigin))
	rt := tok["refresh_token"].(string)
	refresh := func() accResp {
		rf := url.Values{"grant_type": {"refresh_token"}, "client_id": {fakeentra.DemoFrontendClientID},
			"refresh_token": {rt}, "scope": {azGatewayUser + " offline_access"}}
		return e.redeem(t, rf, azSPAOrigin)
	}
	// At 20 h: renewed, with a new refresh token in the same chain.
	e.clock.advance(20 * time.Hour)
	rt = accWantSuccess(t, refresh())["refresh_token"].(string)
	// At 40 h: the chain's 24 hours are over, whatever the new token says.
	e.clock.advance(20 * time.Hour)
	accWantError(t, refresh(), http.StatusBadRequest, "invalid_grant", 700084)
}

// The consent step is refused before the MFA step it must follow: someone
// with only the password cannot grant consent on the user's behalf.
func TestAuthorizeConsentOnlyAfterMFA(t *testing.T) {
	e := azStart(t)
	stepUp := map[string]string{"scope": "api://inventory-api/Inventory.Read openid offline_access",
		"claims": `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}
	p := e.signIn(t, e.authorize(t, stepUp), azAlice)
	azWantStep(t, p, "mfa")
	// The MFA page's form, posted with step=consent (no MFA code known).
	after := e.submit(t, p, "consent", map[string]string{"consent": "accept"})
	if after.status == http.StatusFound {
		t.Fatalf("a consent posted before the MFA step ended the flow with a redirect: %s", after.location)
	}
	// Another browser, no step-up: the consent is already there.
	e.browser = azNewBrowser(t, e.accEnv)
	q := e.signIn(t, e.authorize(t, map[string]string{"scope": "api://inventory-api/Inventory.Read openid offline_access"}), azAlice)
	if q.status == http.StatusFound {
		t.Errorf("consent granted without completing MFA: the next sign-in asks no consent (%s)", q.location[:40])
	}
}

// The token endpoint lets only an SPA origin read an SPA code's answer, as
// its preflight does.
func TestTokenCORSOnlyForSPAOrigins(t *testing.T) {
	e := azStart(t)
	r := e.redeem(t, azCodeForm(e.signedInCode(t, nil)), "https://evil.test")
	if got := r.header.Get("Access-Control-Allow-Origin"); got == "https://evil.test" {
		t.Errorf("token answer (status %d) lets https://evil.test read it: Access-Control-Allow-Origin %q", r.status, got)
	}
}

// form_post posts to a registered custom-scheme redirect URI as it is.
func TestAuthorizeFormPostToCustomScheme(t *testing.T) {
	ten := azTenant()
	ten.Apps = append(ten.Apps, &fakeentra.App{Name: "desktop", PublicClient: true,
		RedirectURIs: fakeentra.RedirectURIs{PublicClient: []string{"ms-app://desktop/auth"}},
		Permissions:  []fakeentra.Permission{{Resource: "gateway", Scopes: []string{"access_as_user"}}}})
	clock := &azClock{}
	env := accStart(t, fakeentra.Config{Tenant: ten, Now: clock.now})
	e := &azEnv{accEnv: env, clock: clock, browser: azNewBrowser(t, env)}
	p := e.signIn(t, e.authorize(t, map[string]string{"client_id": e.srv.Tenant().App("desktop").ClientID,
		"redirect_uri": "ms-app://desktop/auth", "response_mode": "form_post", "state": "<x>\"'"}), azAlice)
	t.Logf("%s", p.body)
	if !strings.Contains(p.body, `action="ms-app://desktop/auth"`) {
		t.Errorf("form_post action is not the registered redirect URI")
	}
}

func TestSPARefreshExpiredIsStillKnown(t *testing.T) {
	e := azStart(t)
	tok := accWantSuccess(t, e.redeem(t, azCodeForm(e.signedInCode(t, nil)), azSPAOrigin))
	e.clock.advance(25 * time.Hour)
	e.browser = azNewBrowser(t, e.accEnv)
	accWantSuccess(t, e.redeem(t, azCodeForm(e.signedInCode(t, nil)), azSPAOrigin)) // another grant: prunes
	rf := url.Values{"grant_type": {"refresh_token"}, "client_id": {fakeentra.DemoFrontendClientID},
		"refresh_token": {tok["refresh_token"].(string)}, "scope": {azGatewayUser + " offline_access"}}
	accWantError(t, e.redeem(t, rf, azSPAOrigin), http.StatusBadRequest, "invalid_grant", 700084)
}

func TestAuthorizePagesEscape(t *testing.T) {
	e := azStart(t)
	p := e.authorize(t, map[string]string{"login_hint": `"><script>alert(1)</script>`})
	q := e.authorize(t, map[string]string{"redirect_uri": `http://localhost:3000/<script>x</script>`})
	r := e.authorize(t, map[string]string{"redirect_uri": `javascript:alert(1)//`})
	for _, b := range []string{p.body, q.body, r.body} {
		if strings.Contains(b, "<script>") {
			t.Errorf("unescaped: %s", b)
		}
	}
	// A javascript: redirect URI is no registered one: an error page, and
	// no redirection to it.
	if r.status != http.StatusBadRequest || r.location != "" {
		t.Errorf("javascript: redirect URI: %d, Location %q; want 400 and none", r.status, r.location)
	}
}

func TestAuthorizeLoopbackIPAnyPort(t *testing.T) {
	e := azStart(t)
	p := e.authorize(t, map[string]string{"redirect_uri": "http://127.0.0.1:5173/"})
	t.Logf("127.0.0.1 on another port: %d %q", p.status, p.location)
	if p.status != http.StatusOK {
		t.Errorf("127.0.0.1 redirect URI on another port refused; Entra ignores the port of loopback IPs too")
	}
}

// A refresh token not issued to an SPA (here from the password grant) is
// never redeemed cross-origin: AADSTS9002326, as for such a code. Both
// grants apply the one browser rule.
func TestNonSPARefreshTokenRefusedCrossOrigin(t *testing.T) {
	e := azStart(t)
	pw := ctlPasswordForm("alice@contoso.test", fakeentra.DemoPassword, azGatewayUser+" offline_access")
	rt := accWantSuccess(t, e.redeem(t, pw, ""))["refresh_token"].(string)
	rf := url.Values{"grant_type": {"refresh_token"}, "client_id": {fakeentra.DemoFrontendClientID},
		"refresh_token": {rt}, "scope": {azGatewayUser + " offline_access"}}
	accWantError(t, e.redeem(t, rf, azSPAOrigin), http.StatusBadRequest, "invalid_request", 9002326)
	accWantSuccess(t, e.redeem(t, rf, "")) // from a server: fine
}
