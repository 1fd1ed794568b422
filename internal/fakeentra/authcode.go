package fakeentra

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// authCodeGrant redeems an authorization code (grant_type=authorization_code)
// with Entra's checks, in Entra's order: the client's credential first,
// then the code (known, this tenant's, this client's, not redeemed, not
// expired), the redirect URI it was sent to, the platform's rules on the
// request's origin (an SPA's code only cross-origin and with PKCE S256,
// another's only without an Origin header), then PKCE. A code is spent
// only by a successful redemption: a wrong verifier can be retried, as in
// Entra.
func (s *Server) authCodeGrant(req *tokenRequest) (map[string]any, *aadError) {
	client, method, aerr := s.authenticateClient(req)
	if aerr != nil {
		return nil, aerr
	}
	raw := req.form("code")
	if raw == "" {
		return nil, errMissingParam("code")
	}
	s.auth.mu.Lock()
	code := s.auth.codes[raw]
	s.auth.mu.Unlock()
	switch {
	case code == nil:
		return nil, errBadCode()
	case code.tenantID != req.tenant.TenantID:
		return nil, errCodeOtherTenant()
	case code.clientID != client.ClientID:
		return nil, errBadCode()
	}
	// Before the code's own checks: the page of an SPA reads their answers
	// too (CORS).
	if aerr := req.browserRule(code.platform == platformSPA); aerr != nil {
		return nil, aerr
	}
	s.auth.mu.Lock()
	redeemed := code.redeemed
	s.auth.mu.Unlock()
	if redeemed {
		return nil, errCodeRedeemed()
	}
	if s.now().After(code.expires) {
		return nil, errCodeExpired()
	}
	ru := req.form("redirect_uri")
	if ru == "" {
		return nil, errMissingParam("redirect_uri")
	}
	if n, _ := normaliseRedirect(ru); n != code.redirectURI {
		return nil, errReplyAddressMismatch(ru, code.redirectURI)
	}
	if code.platform == platformSPA && code.method != "S256" {
		// No challenge, or the plain method: no proof for a code a page
		// redeems (plain refused for SPAs is the tenant's choice).
		return nil, errSPANeedsPKCE()
	}
	if code.challenge != "" {
		verifier := req.form("code_verifier")
		if verifier == "" {
			return nil, errVerifierMissing()
		}
		got := verifier
		if code.method == "S256" {
			sum := sha256.Sum256([]byte(verifier))
			got = b64.EncodeToString(sum[:])
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(code.challenge)) != 1 {
			return nil, errVerifierMismatch()
		}
	}
	s.auth.mu.Lock()
	if code.redeemed {
		s.auth.mu.Unlock()
		return nil, errCodeRedeemed()
	}
	code.redeemed = true
	s.auth.mu.Unlock()

	user := req.tenant.User(code.userOID)
	if user == nil {
		return nil, errBadCode()
	}
	req.rec.Subject = user.ObjectID
	if user.Disabled {
		return nil, errUserDisabled()
	}
	sr, aerr := s.codeScopes(req, code)
	if aerr != nil {
		return nil, aerr
	}
	if sr.resource == nil {
		return s.idTokenOnly(req, client, method, user, code)
	}
	scopes, aerr := s.delegatedScopes(req.tenant, client, user, sr)
	if aerr != nil {
		return nil, aerr
	}
	si := code.signIn
	acrs, aerr := req.tenant.decide(user, sr.resource, code.claims, si)
	if aerr != nil {
		return nil, aerr
	}
	si.ACRS = acrs
	g := grant{tenant: req.tenant, client: client, method: method, user: user, sr: sr, scopes: scopes,
		signIn: si, claims: code.claims, nonce: code.nonce, spa: code.platform == platformSPA}
	return s.issue(req, g)
}

// codeScopes is the resource and scopes a code is redeemed for: those of
// the token request's scope when it names one of the code's resources, else
// the code's first resource; the OpenID Connect scopes of both.
func (s *Server) codeScopes(req *tokenRequest, code *authCode) (*scopeRequest, *aadError) {
	sr := &scopeRequest{}
	if len(code.resources) > 0 {
		sr.resource, sr.resourceID = code.resources[0], code.resourceIDs[0]
		sr.named, sr.isDefault = code.named[0], code.named[0] == nil
	}
	if strings.TrimSpace(req.form("scope")) != "" {
		asked := &scopeRequest{}
		onlyOIDC := true
		for _, sc := range strings.Fields(req.form("scope")) {
			switch strings.ToLower(sc) {
			case "openid", "profile", "email", "offline_access":
				continue
			}
			onlyOIDC = false
		}
		if !onlyOIDC {
			var aerr *aadError
			if asked, aerr = s.parseScopes(req); aerr != nil {
				return nil, aerr
			}
			if !slices.Contains(code.resources, asked.resource) {
				return nil, errScopeInvalid(req.form("scope"))
			}
			sr.resource, sr.resourceID, sr.named, sr.isDefault = asked.resource, asked.resourceID, asked.named, asked.isDefault
		} else {
			for _, sc := range strings.Fields(req.form("scope")) {
				asked.oidc = append(asked.oidc, strings.ToLower(sc))
			}
		}
		sr.oidc = append(sr.oidc, asked.oidc...)
	}
	for _, o := range code.oidc {
		if !slices.Contains(sr.oidc, o) {
			sr.oidc = append(sr.oidc, o)
		}
	}
	sr.offline = slices.Contains(sr.oidc, "offline_access")
	return sr, nil
}

// idTokenOnly answers a code whose scopes named no resource (a sign-in
// with openid and profile only): an ID token and client_info, no access
// token (Entra's would be for Microsoft Graph, which this tenant does not
// host).
func (s *Server) idTokenOnly(req *tokenRequest, client *App, method authMethod, user *User, code *authCode) (map[string]any, *aadError) {
	now := s.now()
	lifetime := req.tenant.lifetime()
	g := grant{tenant: req.tenant, client: client, method: method, user: user, signIn: code.signIn, nonce: code.nonce}
	idt, err := s.mintID(g, now, lifetime)
	if err != nil {
		return nil, newErr(http.StatusInternalServerError, "server_error", 90033, "token signing failed")
	}
	ci, _ := json.Marshal(map[string]string{"uid": user.ObjectID, "utid": req.tenant.TenantID})
	req.rec.Scope = strings.Join(code.oidc, " ")
	return map[string]any{
		"token_type": "Bearer", "scope": req.rec.Scope, "expires_in": int(lifetime.Seconds()),
		"ext_expires_in": int(lifetime.Seconds()) + 3600, "id_token": idt, "client_info": b64.EncodeToString(ci),
	}, nil
}

// handleTokenPreflight answers a browser's CORS preflight of a token
// request: allowed from the origins of the tenant's SPA redirect URIs.
func (s *Server) handleTokenPreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	t := s.tenantByRef(r.PathValue("tenant"))
	if t == nil {
		t = s.tenants[0]
	}
	if origin == "" || !t.spaOrigin(origin) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Set("Access-Control-Max-Age", "86400")
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
}

// browserRule applies Entra's rule for a grant from a browser, the same
// for codes and refresh tokens: what was issued to an SPA redirect URI is
// redeemed cross-origin only (9002327 otherwise), anything else never
// cross-origin (9002326). An SPA's redemption may be read by the page of
// one of the tenant's SPA origins (CORS).
func (req *tokenRequest) browserRule(spa bool) *aadError {
	origin := req.r.Header.Get("Origin")
	switch {
	case spa && origin == "":
		return errSPANeedsOrigin()
	case !spa && origin != "":
		return errCrossOriginNotSPA(origin)
	}
	if spa && req.tenant.spaOrigin(origin) {
		req.cors = origin
	}
	return nil
}
