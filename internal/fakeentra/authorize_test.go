package fakeentra_test

// The authorization endpoint and the authorization code grant, driven as a
// browser drives them: real HTTP on loopback, a cookie jar, and redirects
// looked at rather than followed.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

const (
	azSPARedirect = "http://localhost:3000/"
	azSPAOrigin   = "http://localhost:3000"
	azWebRedirect = "https://webapp.contoso.test/signin-oidc"
	azWebSecret   = "webapp-secret" //nolint:gosec // a test secret
	azGatewayUser = "api://obo-gateway/access_as_user"
	azAlice       = "alice@contoso.test"
	azCarol       = "carol@contoso.test" // MFA required for the gateway
	azVerifier    = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier"
)

// azClock is a clock tests move.
type azClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *azClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *azClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// azTenant is the demo tenant, plus a web app (confidential, web redirect
// URI), carol (MFA required for the gateway), and the frontend's
// permission on inventory-api (which alice has not consented to).
func azTenant() *fakeentra.Tenant {
	t := fakeentra.DemoTenant()
	fe := t.App("frontend")
	fe.Permissions = append(fe.Permissions, fakeentra.Permission{Resource: "inventory-api", Scopes: []string{"Inventory.Read"}})
	t.Apps = append(t.Apps, &fakeentra.App{
		Name: "webapp", Secrets: []string{azWebSecret},
		RedirectURIs: fakeentra.RedirectURIs{Web: []string{azWebRedirect}},
		Permissions:  []fakeentra.Permission{{Resource: "gateway", Scopes: []string{"access_as_user"}}},
	})
	t.Users = append(t.Users, &fakeentra.User{Username: azCarol, Password: fakeentra.DemoPassword, MFARequired: []string{"gateway"}})
	return t
}

// azEnv is a tenant and a browser.
type azEnv struct {
	*accEnv
	clock   *azClock
	browser *http.Client
}

func azStart(t *testing.T) *azEnv {
	t.Helper()
	clock := &azClock{}
	env := accStart(t, fakeentra.Config{Tenant: azTenant(), Now: clock.now, CodeLifetime: time.Minute})
	return &azEnv{accEnv: env, clock: clock, browser: azNewBrowser(t, env)}
}

func azNewBrowser(t *testing.T, env *accEnv) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: env.client.Transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// azPage is an answer of the authorization endpoint or a page.
type azPage struct {
	status   int
	location string
	body     string
}

func (e *azEnv) do(t *testing.T, req *http.Request) azPage {
	t.Helper()
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return azPage{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
}

// authorize sends the browser to the authorization endpoint with the
// defaults of an SPA sign-in (PKCE S256), overridden by params ("" deletes).
func (e *azEnv) authorize(t *testing.T, params map[string]string) azPage {
	t.Helper()
	sum := sha256.Sum256([]byte(azVerifier))
	v := url.Values{
		"client_id": {fakeentra.DemoFrontendClientID}, "response_type": {"code"}, "redirect_uri": {azSPARedirect},
		"scope": {azGatewayUser + " openid profile offline_access"}, "state": {"st-1"}, "nonce": {"n-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"response_mode": {"fragment"}, "client_info": {"1"},
	}
	for k, val := range params {
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.Authority()+"/oauth2/v2.0/authorize?"+v.Encode(), nil)
	return e.do(t, req)
}

var azFlowRE = regexp.MustCompile(`name="flow" value="([^"]+)"`)

// submit posts a page's form with fields.
func (e *azEnv) submit(t *testing.T, p azPage, step string, fields map[string]string) azPage {
	t.Helper()
	m := azFlowRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no sign-in form on the page (status %d, location %q): %.300s", p.status, p.location, p.body)
	}
	v := url.Values{"flow": {m[1]}, "step": {step}}
	for k, val := range fields {
		v.Set(k, val)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.Authority()+"/login", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(t, req)
}

func (e *azEnv) signIn(t *testing.T, p azPage, user string) azPage {
	t.Helper()
	azWantStep(t, p, "password")
	return e.submit(t, p, "password", map[string]string{"username": user, "password": fakeentra.DemoPassword})
}

// azWantStep checks that p is the page of step.
func azWantStep(t *testing.T, p azPage, step string) {
	t.Helper()
	want := map[string]string{"password": `name="step" value="password"`, "mfa": `name="step" value="mfa"`, "consent": `name="step" value="consent"`}[step]
	if p.status != http.StatusOK || !strings.Contains(p.body, want) {
		t.Fatalf("got status %d, location %q; want the %s page: %.300s", p.status, p.location, step, p.body)
	}
}

// azAnswer reads the answer sent to the redirect URI (query or fragment).
func azAnswer(t *testing.T, p azPage, redirect string) url.Values {
	t.Helper()
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, redirect) {
		t.Fatalf("got status %d, location %q; want a redirect to %s: %.300s", p.status, p.location, redirect, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	raw := u.RawQuery
	if u.Fragment != "" {
		raw = u.Fragment
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// azWantRedirectError checks an error sent to the redirect URI.
func azWantRedirectError(t *testing.T, p azPage, oauthErr string, code string) {
	t.Helper()
	v := azAnswer(t, p, azSPARedirect)
	if v.Get("error") != oauthErr || !strings.HasPrefix(v.Get("error_description"), "AADSTS"+code+":") || v.Get("state") != "st-1" {
		t.Fatalf("got error=%q %q state=%q; want %s AADSTS%s", v.Get("error"), v.Get("error_description"), v.Get("state"), oauthErr, code)
	}
}

// redeem posts the code to the token endpoint, with an Origin when origin is set.
func (e *azEnv) redeem(t *testing.T, form url.Values, origin string) accResp {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	return e.post(t, e.srv.TokenEndpoint(), form, hdr)
}

func azCodeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "client_id": {fakeentra.DemoFrontendClientID}, "code": {code},
		"redirect_uri": {azSPARedirect}, "code_verifier": {azVerifier}, "scope": {azGatewayUser + " openid profile offline_access"}}
}

// azClaims reads a JWT's claims (no signature check).
func azClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// signedInCode runs a sign-in for alice and returns the code.
func (e *azEnv) signedInCode(t *testing.T, params map[string]string) string {
	t.Helper()
	p := e.signIn(t, e.authorize(t, params), azAlice)
	redirect := azSPARedirect
	if r, ok := params["redirect_uri"]; ok {
		redirect = r
	}
	return azAnswer(t, p, redirect).Get("code")
}

func TestAuthorizeSPACodeFlow(t *testing.T) {
	e := azStart(t)
	p := e.authorize(t, map[string]string{"login_hint": azAlice})
	azWantStep(t, p, "password")
	if !strings.Contains(p.body, `value="`+azAlice+`"`) {
		t.Errorf("the sign-in page does not prefill login_hint")
	}
	bad := e.submit(t, p, "password", map[string]string{"username": azAlice, "password": "wrong"})
	if !strings.Contains(bad.body, "AADSTS50126") {
		t.Errorf("a wrong password is not reported on the page")
	}
	v := azAnswer(t, e.submit(t, bad, "password", map[string]string{"username": azAlice, "password": fakeentra.DemoPassword}), azSPARedirect)
	if v.Get("state") != "st-1" || v.Get("code") == "" || v.Get("session_state") == "" {
		t.Fatalf("answer %v: want code, state st-1, session_state", v)
	}
	r := e.redeem(t, azCodeForm(v.Get("code")), azSPAOrigin)
	tok := accWantSuccess(t, r)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != azSPAOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, azSPAOrigin)
	}
	id := azClaims(t, tok["id_token"].(string))
	if id["nonce"] != "n-1" || id["aud"] != fakeentra.DemoFrontendClientID || id["preferred_username"] != azAlice {
		t.Errorf("ID token nonce %v aud %v user %v", id["nonce"], id["aud"], id["preferred_username"])
	}
	at := azClaims(t, tok["access_token"].(string))
	if at["aud"] != "api://obo-gateway" || at["scp"] != "access_as_user" || at["appid"] != fakeentra.DemoFrontendClientID {
		t.Errorf("access token aud %v scp %v appid %v", at["aud"], at["scp"], at["appid"])
	}
	if tok["refresh_token"] == nil || tok["client_info"] == nil {
		t.Fatalf("no refresh_token or client_info")
	}
	var ci map[string]string
	b, _ := base64.RawURLEncoding.DecodeString(tok["client_info"].(string))
	if json.Unmarshal(b, &ci) != nil || ci["uid"] != fakeentra.DemoAliceObjectID || ci["utid"] != fakeentra.DemoTenantID {
		t.Errorf("client_info %s", b)
	}

	// The SPA's refresh token: cross-origin only, CORS for its origin.
	rf := url.Values{"grant_type": {"refresh_token"}, "client_id": {fakeentra.DemoFrontendClientID},
		"refresh_token": {tok["refresh_token"].(string)}, "scope": {azGatewayUser + " offline_access"}}
	r = e.redeem(t, rf, azSPAOrigin)
	accWantSuccess(t, r)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != azSPAOrigin {
		t.Errorf("refresh: Access-Control-Allow-Origin = %q", got)
	}
	accWantError(t, e.redeem(t, rf, ""), http.StatusBadRequest, "invalid_request", 9002327)

	// Single sign-on: the next flow needs no page.
	v = azAnswer(t, e.authorize(t, map[string]string{"state": "st-2", "response_mode": "query"}), azSPARedirect)
	if v.Get("code") == "" || v.Get("state") != "st-2" {
		t.Errorf("SSO answer %v", v)
	}
}

func TestAuthorizeMFAStep(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		params map[string]string
		acrs   bool
	}{
		{name: "policy of the user", user: azCarol},
		{name: "claims request for an authentication context", user: azAlice,
			params: map[string]string{"claims": `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}, acrs: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := azStart(t)
			p := e.signIn(t, e.authorize(t, tc.params), tc.user)
			azWantStep(t, p, "mfa")
			p = e.submit(t, p, "mfa", map[string]string{"otc": "000000"})
			azWantStep(t, p, "mfa")
			v := azAnswer(t, e.submit(t, p, "mfa", map[string]string{"otc": fakeentra.DemoMFACode}), azSPARedirect)
			tok := accWantSuccess(t, e.redeem(t, azCodeForm(v.Get("code")), azSPAOrigin))
			at := azClaims(t, tok["access_token"].(string))
			if amr, _ := at["amr"].([]any); !slices.Contains(amr, any("mfa")) {
				t.Errorf("amr %v, want mfa", at["amr"])
			}
			if acrs, _ := at["acrs"].([]any); tc.acrs != slices.Contains(acrs, any("c1")) {
				t.Errorf("acrs %v", at["acrs"])
			}
			if tc.user != azAlice {
				return
			}
			// The step-up satisfies the HR API's policy for alice on the
			// gateway's On-Behalf-Of exchange.
			obo := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "requested_token_use": {"on_behalf_of"},
				"client_id": {fakeentra.DemoGatewayClientID}, "client_secret": {fakeentra.DemoGatewaySecret},
				"assertion": {tok["access_token"].(string)}, "scope": {"api://hr-api/HR.Read"}}
			accWantSuccess(t, e.post(t, e.srv.TokenEndpoint(), obo, nil))
		})
	}
}

func TestAuthorizeConsent(t *testing.T) {
	inventory := map[string]string{"scope": "api://inventory-api/Inventory.Read openid offline_access"}
	t.Run("accept", func(t *testing.T) {
		e := azStart(t)
		p := e.signIn(t, e.authorize(t, inventory), azAlice)
		azWantStep(t, p, "consent")
		v := azAnswer(t, e.submit(t, p, "consent", map[string]string{"consent": "accept"}), azSPARedirect)
		f := azCodeForm(v.Get("code"))
		f.Set("scope", inventory["scope"])
		accWantSuccess(t, e.redeem(t, f, azSPAOrigin))
		// Consent is remembered: the next flow asks nothing.
		azAnswer(t, e.authorize(t, inventory), azSPARedirect)
	})
	t.Run("cancel", func(t *testing.T) {
		e := azStart(t)
		p := e.signIn(t, e.authorize(t, inventory), azAlice)
		azWantStep(t, p, "consent")
		azWantRedirectError(t, e.submit(t, p, "consent", map[string]string{"consent": "cancel"}), "access_denied", "65004")
	})
	t.Run("prompt=consent grants the middle tier's downstream API", func(t *testing.T) {
		e := azStart(t)
		obo := func(token string) accResp {
			return e.post(t, e.srv.TokenEndpoint(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"requested_token_use": {"on_behalf_of"}, "client_id": {fakeentra.DemoGatewayClientID},
				"client_secret": {fakeentra.DemoGatewaySecret}, "assertion": {token}, "scope": {"api://inventory-api/Inventory.Read"}}, nil)
		}
		tok := accWantSuccess(t, e.redeem(t, azCodeForm(e.signedInCode(t, nil)), azSPAOrigin))
		accWantError(t, obo(tok["access_token"].(string)), http.StatusBadRequest, "invalid_grant", 65001)
		p := e.authorize(t, map[string]string{"prompt": "consent"})
		azWantStep(t, p, "consent")
		if !strings.Contains(p.body, "inventory-api: Inventory.Read") {
			t.Errorf("the consent page does not list the gateway's downstream API: %s", p.body)
		}
		v := azAnswer(t, e.submit(t, p, "consent", map[string]string{"consent": "accept"}), azSPARedirect)
		tok = accWantSuccess(t, e.redeem(t, azCodeForm(v.Get("code")), azSPAOrigin))
		accWantSuccess(t, obo(tok["access_token"].(string)))
	})
}

func TestAuthorizePrompt(t *testing.T) {
	t.Run("none without a session", func(t *testing.T) {
		e := azStart(t)
		azWantRedirectError(t, e.authorize(t, map[string]string{"prompt": "none"}), "login_required", "50058")
	})
	t.Run("none with a session", func(t *testing.T) {
		e := azStart(t)
		e.signedInCode(t, nil)
		v := azAnswer(t, e.authorize(t, map[string]string{"prompt": "none"}), azSPARedirect)
		accWantSuccess(t, e.redeem(t, azCodeForm(v.Get("code")), azSPAOrigin))
	})
	t.Run("none with a session that lacks MFA", func(t *testing.T) {
		e := azStart(t)
		e.signedInCode(t, nil)
		azWantRedirectError(t, e.authorize(t, map[string]string{"prompt": "none",
			"claims": `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}), "interaction_required", "50076")
	})
	t.Run("none with a session that lacks consent", func(t *testing.T) {
		e := azStart(t)
		e.signedInCode(t, nil)
		azWantRedirectError(t, e.authorize(t, map[string]string{"prompt": "none",
			"scope": "api://inventory-api/Inventory.Read openid"}), "consent_required", "65001")
	})
	t.Run("login shows the page despite a session", func(t *testing.T) {
		e := azStart(t)
		e.signedInCode(t, nil)
		azWantStep(t, e.authorize(t, map[string]string{"prompt": "login"}), "password")
	})
	t.Run("max_age past the sign-in", func(t *testing.T) {
		e := azStart(t)
		e.signedInCode(t, nil)
		e.clock.advance(2 * time.Minute)
		azWantStep(t, e.authorize(t, map[string]string{"max_age": "60"}), "password")
	})
}

func TestAuthorizeMistakes(t *testing.T) {
	type mistake struct {
		name string
		// params of the authorize request; nil is the default SPA request.
		params map[string]string
		// change alters the redemption (form, origin); nil redeems as an SPA.
		change func(e *azEnv, f url.Values) (url.Values, string)
		// before runs between the code and its redemption.
		before  func(t *testing.T, e *azEnv, f url.Values, origin string)
		oauth   string
		code    int
		noAllow bool // the answer must not carry Access-Control-Allow-Origin
		status  int  // default 400
	}
	web := map[string]string{"client_id": "", "redirect_uri": azWebRedirect, "code_challenge": "", "code_challenge_method": "", "response_mode": "query"}
	webForm := func(e *azEnv, f url.Values) (url.Values, string) {
		f.Set("client_id", e.srv.Tenant().App("webapp").ClientID)
		f.Set("client_secret", azWebSecret)
		f.Set("redirect_uri", azWebRedirect)
		f.Del("code_verifier")
		return f, ""
	}
	cases := []mistake{
		{name: "PKCE missing for an SPA", params: map[string]string{"code_challenge": "", "code_challenge_method": ""},
			change: func(_ *azEnv, f url.Values) (url.Values, string) { f.Del("code_verifier"); return f, azSPAOrigin },
			oauth:  "invalid_request", code: 9002325},
		{name: "plain method for an SPA", params: map[string]string{"code_challenge": azVerifier, "code_challenge_method": "plain"},
			oauth: "invalid_request", code: 9002325},
		{name: "verifier mismatch",
			change: func(_ *azEnv, f url.Values) (url.Values, string) {
				f.Set("code_verifier", azVerifier+"x")
				return f, azSPAOrigin
			},
			oauth: "invalid_grant", code: 501481},
		{name: "verifier missing",
			change: func(_ *azEnv, f url.Values) (url.Values, string) { f.Del("code_verifier"); return f, azSPAOrigin },
			oauth:  "invalid_grant", code: 50148},
		{name: "code reused",
			before: func(t *testing.T, e *azEnv, f url.Values, origin string) {
				accWantSuccess(t, e.redeem(t, f, origin))
			},
			oauth: "invalid_grant", code: 54005},
		{name: "code expired",
			before: func(_ *testing.T, e *azEnv, _ url.Values, _ string) { e.clock.advance(2 * time.Minute) },
			oauth:  "invalid_grant", code: 70008},
		{name: "SPA code without an Origin",
			change: func(_ *azEnv, f url.Values) (url.Values, string) { return f, "" },
			oauth:  "invalid_request", code: 9002327, noAllow: true},
		{name: "web code cross-origin", params: web,
			change: func(e *azEnv, f url.Values) (url.Values, string) { f, _ = webForm(e, f); return f, azSPAOrigin },
			oauth:  "invalid_request", code: 9002326, noAllow: true},
		{name: "wrong redirect_uri at redemption",
			change: func(_ *azEnv, f url.Values) (url.Values, string) {
				f.Set("redirect_uri", "http://127.0.0.1:3000/")
				return f, azSPAOrigin
			},
			oauth: "invalid_grant", code: 50011},
		{name: "wrong client at redemption",
			change: func(e *azEnv, f url.Values) (url.Values, string) {
				f, _ = webForm(e, f)
				f.Set("redirect_uri", azSPARedirect)
				return f, ""
			},
			oauth: "invalid_grant", code: 70000, noAllow: true},
		{name: "public client with a secret",
			change: func(_ *azEnv, f url.Values) (url.Values, string) {
				f.Set("client_secret", "s")
				return f, azSPAOrigin
			},
			oauth: "invalid_client", code: 700025, status: http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := azStart(t)
			params := map[string]string{}
			for k, v := range tc.params {
				params[k] = v
			}
			if tc.params != nil && tc.params["redirect_uri"] == azWebRedirect {
				params["client_id"] = e.srv.Tenant().App("webapp").ClientID
			}
			code := e.signedInCode(t, params)
			f, origin := azCodeForm(code), azSPAOrigin
			if tc.change != nil {
				f, origin = tc.change(e, f)
			}
			if tc.before != nil {
				tc.before(t, e, f, origin)
			}
			r := e.redeem(t, f, origin)
			status := tc.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			accWantError(t, r, status, tc.oauth, tc.code)
			if got := r.header.Get("Access-Control-Allow-Origin"); tc.noAllow && got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q on a non-SPA answer", got)
			}
		})
	}
	t.Run("web code redeemed by its server", func(t *testing.T) {
		e := azStart(t)
		params := map[string]string{}
		for k, v := range web {
			params[k] = v
		}
		params["client_id"] = e.srv.Tenant().App("webapp").ClientID
		f, origin := webForm(e, azCodeForm(e.signedInCode(t, params)))
		r := e.redeem(t, f, origin)
		accWantSuccess(t, r)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin = %q for a web redirect URI", got)
		}
	})
}

func TestAuthorizeRequestMistakes(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]string
		page   string // the AADSTS code of an error page (never a redirect)
		oauth  string // or the error sent to the redirect URI
		code   string
	}{
		{name: "redirect URI not registered", params: map[string]string{"redirect_uri": "http://localhost:3000/other"}, page: "50011"},
		{name: "redirect URI of another host", params: map[string]string{"redirect_uri": "https://evil.test/"}, page: "50011"},
		{name: "no redirect URI", params: map[string]string{"redirect_uri": ""}, page: "900971"},
		{name: "unknown client", params: map[string]string{"client_id": "00000000-0000-4000-8000-000000000000"}, page: "700016"},
		{name: "response_type token", params: map[string]string{"response_type": "token"}, oauth: "unsupported_response_type", code: "70005"},
		{name: "unknown scope", params: map[string]string{"scope": "api://obo-gateway/nope openid"}, oauth: "invalid_scope", code: "70011"},
		{name: "claims not JSON", params: map[string]string{"claims": "mfa"}, oauth: "invalid_request", code: "90100"},
		{name: "challenge of the wrong size", params: map[string]string{"code_challenge": "abc"}, oauth: "invalid_request", code: "501491"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := azStart(t)
			p := e.authorize(t, tc.params)
			if tc.page != "" {
				if p.location != "" || p.status != http.StatusBadRequest || !strings.Contains(p.body, "AADSTS"+tc.page+":") {
					t.Fatalf("got %d location %q: %.300s; want an error page with AADSTS%s", p.status, p.location, p.body, tc.page)
				}
				return
			}
			azWantRedirectError(t, p, tc.oauth, tc.code)
		})
	}
	t.Run("localhost redirect URI on another port", func(t *testing.T) {
		e := azStart(t)
		azAnswer(t, e.signIn(t, e.authorize(t, map[string]string{"redirect_uri": "http://localhost:5173/"}), azAlice), "http://localhost:5173/")
	})
	t.Run("flow posted from another browser", func(t *testing.T) {
		e := azStart(t)
		p := e.authorize(t, nil)
		e.browser = azNewBrowser(t, e.accEnv)
		got := e.submit(t, p, "password", map[string]string{"username": azAlice, "password": fakeentra.DemoPassword})
		if got.location != "" || !strings.Contains(got.body, "AADSTS50089") {
			t.Fatalf("got %d %q: %.200s; want AADSTS50089", got.status, got.location, got.body)
		}
	})
}

func TestAuthorizeCORS(t *testing.T) {
	e := azStart(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, e.srv.TokenEndpoint(), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := preflight(azSPAOrigin); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != azSPAOrigin {
		t.Errorf("preflight from the SPA: %d %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := preflight("https://evil.test"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed")
	}
	for _, u := range []string{e.srv.Authority() + "/v2.0/.well-known/openid-configuration", e.srv.JWKSURI()} {
		resp, err := e.client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no Access-Control-Allow-Origin: *", u)
		}
		if ep, ok := doc["authorization_endpoint"].(string); ok && ep != e.srv.Authority()+"/oauth2/v2.0/authorize" {
			t.Errorf("authorization_endpoint %q", ep)
		}
	}
}

func TestAuthorizeLogout(t *testing.T) {
	e := azStart(t)
	e.signedInCode(t, nil)
	logout := func(q url.Values) azPage {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.Authority()+"/oauth2/v2.0/logout?"+q.Encode(), nil)
		return e.do(t, req)
	}
	p := logout(url.Values{"client_id": {fakeentra.DemoFrontendClientID}, "post_logout_redirect_uri": {azSPARedirect}})
	if p.status != http.StatusFound || p.location != azSPARedirect {
		t.Fatalf("logout: %d %q, want a redirect to %s", p.status, p.location, azSPARedirect)
	}
	azWantRedirectError(t, e.authorize(t, map[string]string{"prompt": "none"}), "login_required", "50058")
	p = logout(url.Values{"client_id": {fakeentra.DemoFrontendClientID}, "post_logout_redirect_uri": {"https://evil.test/"}})
	if p.status != http.StatusOK || p.location != "" || !strings.Contains(p.body, "signed out") {
		t.Fatalf("logout to an unregistered URI: %d %q", p.status, p.location)
	}
}
