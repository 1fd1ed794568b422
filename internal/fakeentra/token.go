package fakeentra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

const (
	grantPassword       = "password"
	grantClientCreds    = "client_credentials"
	grantJWTBearer      = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantRefresh        = "refresh_token"
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	grantAuthCode       = "authorization_code"
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// clockSkew is the tolerance on client assertions' exp and nbf.
	clockSkew = 5 * time.Minute
	// refreshLifetime bounds refresh tokens; Entra's are longer, tests need less.
	refreshLifetime = 24 * time.Hour
	// refreshGrace is how long an expired refresh grant is remembered.
	refreshGrace = 24 * time.Hour
)

// tokenRequest is the state of one token request as it is checked.
type tokenRequest struct {
	w        http.ResponseWriter
	r        *http.Request
	tenant   *Tenant
	ver      int // endpoint version, 1 or 2
	form     func(string) string
	rec      Record
	endpoint string // this token endpoint's URL
	// cors is the Origin the answer lets read: set for grants bound to an
	// SPA redirect URI only.
	cors string
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	tenantID string
	clientID string
	userOID  string
	resource string // resource app's client ID
	signIn   signIn // how the user signed in, carried on to refreshed tokens
	expires  time.Time
	issued   time.Time
	// spa marks a refresh token issued to an SPA redirect URI's code: it
	// is redeemed cross-origin only, and its lifetime is fixed.
	spa bool
}

func (s *Server) handleToken(ver int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, "token") {
			return
		}
		req := &tokenRequest{w: w, r: r, ver: ver}
		req.rec = Record{Time: s.now(), ClientRequestID: r.Header.Get("client-request-id")}
		resp, aerr := s.token(req)
		if req.cors != "" {
			w.Header().Set("Access-Control-Allow-Origin", req.cors)
			w.Header().Add("Vary", "Origin")
		}
		if aerr != nil {
			req.rec.Status, req.rec.Result, req.rec.Error, req.rec.Code = aerr.Status, "error", aerr.Error, aerr.Code
			s.record(req.rec)
			s.log.Info("token request refused", "tenant", req.rec.TenantID, "grant", req.rec.Grant,
				"client_id", req.rec.ClientID, "status", aerr.Status, "error", aerr.Error, "code", aerr.Code)
			s.writeError(w, r, aerr)
			return
		}
		req.rec.Status, req.rec.Result = http.StatusOK, "success"
		s.record(req.rec)
		s.log.Info("token issued", "tenant", req.rec.TenantID, "grant", req.rec.Grant,
			"client_id", req.rec.ClientID, "subject", req.rec.Subject, "scope", req.rec.Scope)
		writeJSON(w, http.StatusOK, resp)
	}
}

func (s *Server) token(req *tokenRequest) (map[string]any, *aadError) {
	r := req.r
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'. The body must be application/x-www-form-urlencoded.")
	}
	r.Body = http.MaxBytesReader(req.w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 900144, "The request body could not be read: %v.", err)
	}
	req.form = r.PostForm.Get
	req.rec.Grant = req.form("grant_type")
	req.rec.ClientID = req.form("client_id")
	req.rec.Scope = req.form("scope")
	req.rec.Claims = req.form("claims")

	ref := r.PathValue("tenant")
	req.tenant = s.tenantByRef(ref)
	if req.tenant == nil && (strings.EqualFold(ref, "common") || strings.EqualFold(ref, "organizations")) {
		req.tenant = s.commonTenant(req)
	}
	if req.tenant == nil {
		return nil, newErr(http.StatusBadRequest, "invalid_tenant", 90002,
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", ref)
	}
	req.rec.TenantID = req.tenant.TenantID
	req.endpoint = s.tokenEndpoint(req.tenant.TenantID, req.ver)

	switch g := req.form("grant_type"); g {
	case "":
		return nil, errMissingParam("grant_type")
	case grantPassword:
		return s.passwordGrant(req)
	case grantClientCreds:
		return s.clientCredentialsGrant(req)
	case grantJWTBearer:
		return s.oboGrant(req)
	case grantRefresh:
		return s.refreshGrant(req)
	case grantAuthCode:
		return s.authCodeGrant(req)
	default:
		// Includes RFC 8693 token exchange, which Entra does not implement.
		return nil, errUnsupportedGrant(g)
	}
}

// commonTenant resolves /common and /organizations on the token endpoint: by
// the username's domain for the password grant, else the primary tenant.
func (s *Server) commonTenant(req *tokenRequest) *Tenant {
	if u := req.form("username"); u != "" {
		if i := strings.LastIndex(u, "@"); i >= 0 {
			if t := s.tenantByRef(u[i+1:]); t != nil {
				return t
			}
		}
	}
	return s.tenants[0]
}

// authMethod says how a client proved itself: azpacr/appidacr "0", "1", "2".
type authMethod string

const (
	authPublic      authMethod = "0"
	authSecret      authMethod = "1"
	authCertificate authMethod = "2"
)

// authenticateClient checks the client's identity and credential.
func (s *Server) authenticateClient(req *tokenRequest) (*App, authMethod, *aadError) {
	clientID := req.form("client_id")
	assertion := req.form("client_assertion")
	if clientID == "" && assertion != "" {
		// Entra takes the client from the assertion's sub when client_id is absent.
		if p, err := parseJWT(assertion); err == nil {
			clientID = p.claimString("sub")
			req.rec.ClientID = clientID
		}
	}
	if clientID == "" {
		return nil, "", errMissingParam("client_id")
	}
	app := req.tenant.App(clientID)
	if app == nil || app.ClientID != clientID && !strings.EqualFold(app.ClientID, clientID) {
		return nil, "", errUnknownClient(clientID, req.tenant.TenantID)
	}
	secret := req.form("client_secret")
	switch {
	case secret != "" && assertion != "":
		return nil, "", newErr(http.StatusBadRequest, "invalid_request", 90014,
			"Only one of 'client_assertion' and 'client_secret' may be presented.")
	case secret != "":
		req.rec.Credential = CredentialSecret
		if app.PublicClient {
			return nil, "", errPublicClientCredential()
		}
		for _, sec := range app.Secrets {
			if subtle.ConstantTimeCompare([]byte(sec), []byte(secret)) == 1 {
				return app, authSecret, nil
			}
		}
		return nil, "", errBadSecret(app.ClientID)
	case assertion != "":
		if app.PublicClient {
			return nil, "", errPublicClientCredential()
		}
		if req.form("client_assertion_type") != clientAssertionType {
			return nil, "", errBadAssertionType()
		}
		// A token of another issuer is a federated credential (workload
		// identity, a managed identity's token); Entra records both kinds
		// as a certificate-strength credential (azpacr 2).
		if p, err := parseJWT(assertion); err == nil && isFederated(p, app) {
			req.rec.Credential = CredentialFederated
			if aerr := s.verifyFederatedAssertion(app, p); aerr != nil {
				return nil, "", aerr
			}
			return app, authCertificate, nil
		}
		req.rec.Credential = CredentialCertificate
		if aerr := s.verifyClientAssertion(req, app, assertion); aerr != nil {
			return nil, "", aerr
		}
		return app, authCertificate, nil
	default:
		req.rec.Credential = CredentialNone
		if app.PublicClient {
			return app, authPublic, nil
		}
		return nil, "", errNeedCredential()
	}
}

// verifyClientAssertion checks a certificate client assertion as Entra does:
// the thumbprint header names a certificate registered on the app (kid is
// ignored) or, for an app that trusts subject names (SNI), the x5c chain
// leads to a trusted CA and names a trusted subject; the signature verifies
// with it; aud is the token endpoint, iss = sub = client ID; the
// certificate (1000502) and the assertion (700024) are in date.
func (s *Server) verifyClientAssertion(req *tokenRequest, app *App, raw string) *aadError {
	p, err := parseJWT(raw)
	if err != nil {
		return errMalformedJWT()
	}
	var want []byte
	var sum func(*x509.Certificate) []byte
	switch {
	case p.headerString("x5t#S256") != "":
		want, sum = decodeThumbprint(p.headerString("x5t#S256")), pki.ThumbprintSHA256
	case p.headerString("x5t") != "":
		want, sum = decodeThumbprint(p.headerString("x5t")), pki.ThumbprintSHA1
	case p.headerString("kid") != "":
		// Entra does not look keys up by kid: a kid (often the manifest's
		// keyId GUID) names no certificate.
		return errAssertionKeyNotFound(app.ClientID, p.headerString("kid"))
	default:
		return errNoThumbprint()
	}
	shown := strings.ToUpper(hex.EncodeToString(want)) // Entra quotes thumbprints in hex
	var cert *x509.Certificate
	for _, c := range app.certs {
		if want != nil && subtle.ConstantTimeCompare(sum(c), want) == 1 {
			cert = c
			break
		}
	}
	chain := x5cChain(p)
	if cert != nil && len(chain) > 0 && subtle.ConstantTimeCompare(chain[0].Raw, cert.Raw) != 1 {
		return errAssertionKeyNotFound(app.ClientID, shown)
	}
	if cert == nil {
		// Subject name and issuer authentication: no registered thumbprint,
		// a chain to a trusted CA and a trusted subject.
		leaf, aerr := s.trustedBySubject(app, chain, want, sum, shown)
		if aerr != nil {
			return aerr
		}
		cert = leaf
	}
	found := fmt.Sprintf("Start=%s, End=%s", cert.NotBefore.UTC().Format("01/02/2006 15:04:05"), cert.NotAfter.UTC().Format("01/02/2006 15:04:05"))
	now := s.now()
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return errCertificateOutOfValidity(app.ClientID, strings.ToUpper(hex.EncodeToString(pki.ThumbprintSHA1(cert))), found)
	}
	rsaPub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errAssertionKeyNotFound(app.ClientID, shown)
	}
	if err := p.verify(rsaPub); err != nil {
		return errAssertionBadSignature(app.ClientID, strings.ToUpper(hex.EncodeToString(pki.ThumbprintSHA1(cert))), found)
	}
	aud := p.claimStrings("aud")
	audOK := false
	for _, a := range aud {
		// Entra accepts the v2 or v1 token endpoint of the tenant.
		if a == s.tokenEndpoint(req.tenant.TenantID, 2) || a == s.tokenEndpoint(req.tenant.TenantID, 1) {
			audOK = true
		}
	}
	if !audOK {
		return errAssertionAudience(strings.Join(aud, " "), req.endpoint)
	}
	if p.claimString("iss") != app.ClientID || p.claimString("sub") != app.ClientID {
		return errAssertionSubject(app.ClientID)
	}
	exp, hasExp := p.claimTime("exp")
	nbf, hasNbf := p.claimTime("nbf")
	if !hasExp || now.After(time.Unix(exp, 0).Add(clockSkew)) || (hasNbf && now.Add(clockSkew).Before(time.Unix(nbf, 0))) {
		fmtT := func(v int64, ok bool) string {
			if !ok {
				return "(absent)"
			}
			return time.Unix(v, 0).UTC().Format(time.RFC3339)
		}
		return errAssertionTime(now.UTC().Format(time.RFC3339), fmtT(nbf, hasNbf), fmtT(exp, hasExp))
	}
	return nil
}

// x5cChain is the assertion's x5c header (standard base64 DER, leaf
// first), or nil when absent or unreadable.
func x5cChain(p *jwtParts) []*x509.Certificate {
	x5c, _ := p.header["x5c"].([]any)
	var chain []*x509.Certificate
	for _, v := range x5c {
		str, _ := v.(string)
		der, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil
		}
		chain = append(chain, c)
	}
	return chain
}

// trustedBySubject accepts an unregistered certificate for an app that
// trusts subject names (trusted_certificate_subjects): the x5c leaf has the
// thumbprint of the header, chains to the tenant's CA, and its subject is
// trusted. Anything short of that is Entra's "key not found", or 700030 for
// a valid chain to an untrusted subject.
func (s *Server) trustedBySubject(app *App, chain []*x509.Certificate, want []byte, sum func(*x509.Certificate) []byte, shown string) (*x509.Certificate, *aadError) {
	if len(app.TrustedCertificateSubjects) == 0 || len(chain) == 0 || want == nil ||
		subtle.ConstantTimeCompare(sum(chain[0]), want) != 1 {
		return nil, errAssertionKeyNotFound(app.ClientID, shown)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	// Dates are Entra's 1000502, decided after: verify at a time in range.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.caPool, Intermediates: inter,
		CurrentTime: leaf.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, errAssertionKeyNotFound(app.ClientID, shown)
	}
	for _, subj := range app.TrustedCertificateSubjects {
		if strings.EqualFold(subj, leaf.Subject.String()) {
			return leaf, nil
		}
	}
	return nil, errSubjectNotAuthorized(leaf.Subject.String())
}

// decodeThumbprint reads a thumbprint header in any base64 alphabet, padded
// or not. A hex thumbprint (the portal's form) decodes to other bytes and
// so matches nothing, as in Entra.
func decodeThumbprint(v string) []byte {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b
		}
	}
	return nil
}

// scopeRequest is the parsed scope parameter.
type scopeRequest struct {
	resource   *App
	resourceID string   // the resource as the client named it
	named      []string // named scopes (without resource prefix)
	isDefault  bool
	offline    bool
	oidc       []string // openid, profile, email, offline_access as asked
}

// parseScopes resolves the scope (v2) or resource (v1) parameter to one resource.
func (s *Server) parseScopes(req *tokenRequest) (*scopeRequest, *aadError) {
	raw := strings.TrimSpace(req.form("scope"))
	sr := &scopeRequest{}
	if req.ver == 1 && req.form("resource") != "" {
		res := req.form("resource")
		sr.resourceID = res
		if sr.resource = req.tenant.resource(res); sr.resource == nil {
			return nil, errUnknownResource(res, req.tenant.TenantID)
		}
		sr.isDefault = true
		return sr, nil
	}
	if raw == "" {
		return nil, errMissingParam("scope")
	}
	for _, sc := range strings.Fields(raw) {
		switch strings.ToLower(sc) {
		case "openid", "profile", "email":
			sr.oidc = append(sr.oidc, strings.ToLower(sc))
			continue
		case "offline_access":
			sr.offline = true
			sr.oidc = append(sr.oidc, "offline_access")
			continue
		}
		i := strings.LastIndex(sc, "/")
		if i <= 0 || i == len(sc)-1 {
			// A bare scope such as User.Read belongs to Microsoft Graph,
			// which this local tenant does not host.
			res := "https://graph.microsoft.com"
			if i == len(sc)-1 {
				res = strings.TrimSuffix(sc, "/")
			}
			return nil, errUnknownResource(res, req.tenant.TenantID)
		}
		res, name := sc[:i], sc[i+1:]
		app := req.tenant.resource(res)
		if app == nil {
			return nil, errUnknownResource(res, req.tenant.TenantID)
		}
		if sr.resource != nil && app != sr.resource {
			return nil, errScopeManyResources(raw)
		}
		sr.resource, sr.resourceID = app, res
		if name == ".default" {
			sr.isDefault = true
			continue
		}
		if !containsFold(app.Scopes, name) {
			return nil, errScopeInvalid(sc)
		}
		sr.named = append(sr.named, name)
	}
	if sr.resource == nil {
		return nil, errScopeNoResource()
	}
	if sr.isDefault && len(sr.named) > 0 {
		return nil, errScopeDefaultMixed(raw)
	}
	return sr, nil
}

// delegatedScopes decides the scopes of a delegated token for client and user,
// with Entra's consent rules: the client must hold the delegated permission
// (admin-consented) and the user must not have withheld consent.
func (s *Server) delegatedScopes(t *Tenant, client *App, user *User, sr *scopeRequest) ([]string, *aadError) {
	perm := t.permission(client, sr.resource)
	if s.withholdsConsent(t, user, sr.resource) || perm == nil {
		return nil, errConsent(client.ClientID, client.Name)
	}
	var granted []string
	if sr.isDefault {
		for _, sc := range perm.Scopes {
			if containsFold(sr.resource.Scopes, sc) {
				granted = append(granted, sc)
			}
		}
		if len(granted) == 0 {
			return nil, errConsent(client.ClientID, client.Name)
		}
		return granted, nil
	}
	for _, sc := range sr.named {
		if !containsFold(perm.Scopes, sc) {
			return nil, errConsent(client.ClientID, client.Name)
		}
	}
	return sr.named, nil
}

func (s *Server) passwordGrant(req *tokenRequest) (map[string]any, *aadError) {
	client, method, aerr := s.authenticateClient(req)
	if aerr != nil {
		return nil, aerr
	}
	username, password := req.form("username"), req.form("password")
	if username == "" {
		return nil, errMissingParam("username")
	}
	if password == "" {
		return nil, errMissingParam("password")
	}
	sr, aerr := s.parseScopes(req)
	if aerr != nil {
		return nil, aerr
	}
	user := req.tenant.User(username)
	if user == nil {
		return nil, errUserNotFound(username, req.tenant.TenantID)
	}
	req.rec.Subject = user.ObjectID
	if subtle.ConstantTimeCompare([]byte(user.Password), []byte(password)) != 1 {
		return nil, errBadPassword()
	}
	if user.Disabled {
		return nil, errUserDisabled()
	}
	scopes, aerr := s.delegatedScopes(req.tenant, client, user, sr)
	if aerr != nil {
		return nil, aerr
	}
	claims, aerr := parseClaims(req.form("claims"))
	if aerr != nil {
		return nil, aerr
	}
	// The local stand-in for an interactive sign-in: a claims request that
	// asks for what needs MFA makes the user "complete" MFA (Entra's ROPC
	// cannot; its interactive sign-in can, as the authorization endpoint
	// will). A user who has not registered for MFA cannot.
	si := signIn{AMR: []string{"pwd"}, AuthTime: s.now().Unix()}
	if claims.asksForMFA(req.tenant) && !user.MFANotRegistered {
		si.AMR = append(si.AMR, "mfa")
	}
	acrs, aerr := req.tenant.decide(user, sr.resource, claims, si)
	if aerr != nil {
		return nil, aerr
	}
	si.ACRS = acrs
	g := grant{tenant: req.tenant, client: client, method: method, user: user, sr: sr, scopes: scopes, signIn: si, claims: claims}
	return s.issue(req, g)
}

func (s *Server) clientCredentialsGrant(req *tokenRequest) (map[string]any, *aadError) {
	client, method, aerr := s.authenticateClient(req)
	if aerr != nil {
		return nil, aerr
	}
	if method == authPublic {
		return nil, errNeedCredential()
	}
	sr, aerr := s.parseScopes(req)
	if aerr != nil {
		if aerr.Code == 70011 {
			return nil, errClientCredentialsScope(req.form("scope"))
		}
		return nil, aerr
	}
	if !sr.isDefault {
		return nil, errClientCredentialsScope(req.form("scope"))
	}
	var roles []string
	if perm := req.tenant.permission(client, sr.resource); perm != nil {
		for _, role := range perm.Roles {
			if containsFold(sr.resource.AppRoles, role) {
				roles = append(roles, role)
			}
		}
	}
	claims, aerr := parseClaims(req.form("claims"))
	if aerr != nil {
		return nil, aerr
	}
	g := grant{tenant: req.tenant, client: client, method: method, sr: sr, roles: roles, claims: claims}
	return s.issue(req, g)
}

func (s *Server) oboGrant(req *tokenRequest) (map[string]any, *aadError) {
	if req.form("requested_token_use") != "on_behalf_of" {
		return nil, errBadRequestedTokenUse()
	}
	client, method, aerr := s.authenticateClient(req)
	if aerr != nil {
		return nil, aerr
	}
	if method == authPublic {
		return nil, errNeedCredential()
	}
	assertion := req.form("assertion")
	if assertion == "" {
		return nil, errMissingParam("assertion")
	}
	sr, aerr := s.parseScopes(req)
	if aerr != nil {
		return nil, aerr
	}
	p, err := parseJWT(assertion)
	if err != nil {
		return nil, errMalformedJWT()
	}
	kid, x5t := p.headerString("kid"), p.headerString("x5t")
	shown := kid
	if shown == "" {
		shown = x5t
	}
	if b, err := b64.DecodeString(shown); err == nil && len(b) == 20 {
		shown = strings.ToUpper(hex.EncodeToString(b)) // a SHA-1 thumbprint, quoted in hex as Entra does
	}
	key := s.keys.lookup(kid, x5t)
	if key == nil {
		return nil, errOBOKeyNotFound(shown)
	}
	if p.headerString("alg") != "RS256" || p.verify(&key.key.PublicKey) != nil {
		c := key.cert
		return nil, errOBOBadSignature(shown, fmt.Sprintf("Start=%s, End=%s",
			c.NotBefore.UTC().Format("01/02/2006 15:04:05"), c.NotAfter.UTC().Format("01/02/2006 15:04:05")))
	}
	iss := p.claimString("iss")
	if t := s.tenantOfIssuer(iss); t == nil || t != req.tenant {
		return nil, errOBOIssuer(iss)
	}
	now := s.now()
	exp, hasExp := p.claimTime("exp")
	nbf, hasNbf := p.claimTime("nbf")
	if !hasExp || !now.Before(time.Unix(exp, 0)) || (hasNbf && now.Before(time.Unix(nbf, 0))) {
		return nil, errOBOExpired(now.UTC().Format("2006-01-02T15:04:05.0000000Z"), time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05.0000000Z"))
	}
	// The client ID in any case (a GUID), an App ID URI exactly: Entra
	// compares App ID URIs case-sensitively, trailing slash included.
	aud := p.claimString("aud")
	if !strings.EqualFold(aud, client.ClientID) && !slices.Contains(client.IdentifierURIs, aud) {
		return nil, errOBOAudience(aud, client.ClientID, client.Name)
	}
	if p.claimString("idtyp") == "app" || (p.claims["scp"] == nil && (p.claims["roles"] != nil || p.claimString("oid") == p.claimString("sub"))) {
		return nil, errOBOAppOnly(client.ClientID)
	}
	user := req.tenant.User(p.claimString("oid"))
	if user == nil {
		return nil, errUserNotFound(p.claimString("oid"), req.tenant.TenantID)
	}
	req.rec.Subject = user.ObjectID
	if user.Disabled {
		return nil, errUserDisabled()
	}
	scopes, aerr := s.delegatedScopes(req.tenant, client, user, sr)
	if aerr != nil {
		return nil, aerr
	}
	claims, aerr := parseClaims(req.form("claims"))
	if aerr != nil {
		return nil, aerr
	}
	// How the user signed in is in the assertion's aio, which only this
	// tenant can read: none (a password sign-in) when absent or not ours.
	si, ok := s.openSignIn(p.claimString("aio"))
	if !ok {
		si = signIn{AMR: []string{"pwd"}}
	}
	acrs, aerr := req.tenant.decide(user, sr.resource, claims, si)
	if aerr != nil {
		return nil, aerr
	}
	si.ACRS = acrs
	g := grant{tenant: req.tenant, client: client, method: method, user: user, sr: sr, scopes: scopes, signIn: si, claims: claims}
	return s.issue(req, g)
}

func (s *Server) refreshGrant(req *tokenRequest) (map[string]any, *aadError) {
	client, method, aerr := s.authenticateClient(req)
	if aerr != nil {
		return nil, aerr
	}
	rt := req.form("refresh_token")
	if rt == "" {
		return nil, errMissingParam("refresh_token")
	}
	s.mu.Lock()
	rg := s.refresh[rt]
	s.mu.Unlock()
	if rg != nil && rg.clientID == client.ClientID {
		// From a browser only if issued to an SPA, as for codes; an SPA's
		// refresh token lasts a fixed 24 hours.
		if aerr := req.browserRule(rg.spa); aerr != nil {
			return nil, aerr
		}
		if rg.spa && s.now().After(rg.expires) {
			return nil, errSPARefreshExpired(rg.issued.UTC().Format(entraTimeFormat))
		}
	}
	if rg == nil || rg.clientID != client.ClientID || rg.tenantID != req.tenant.TenantID || s.now().After(rg.expires) {
		return nil, errBadRefreshToken()
	}
	user := req.tenant.User(rg.userOID)
	if user == nil {
		return nil, errBadRefreshToken()
	}
	req.rec.Subject = user.ObjectID
	if user.Disabled {
		return nil, errUserDisabled()
	}
	var sr *scopeRequest
	if req.form("scope") != "" || req.form("resource") != "" {
		if sr, aerr = s.parseScopes(req); aerr != nil {
			return nil, aerr
		}
	} else {
		res := req.tenant.App(rg.resource)
		sr = &scopeRequest{resource: res, resourceID: res.ClientID, isDefault: true}
	}
	scopes, aerr := s.delegatedScopes(req.tenant, client, user, sr)
	if aerr != nil {
		return nil, aerr
	}
	claims, aerr := parseClaims(req.form("claims"))
	if aerr != nil {
		return nil, aerr
	}
	si := rg.signIn
	acrs, aerr := req.tenant.decide(user, sr.resource, claims, si)
	if aerr != nil {
		return nil, aerr
	}
	si.ACRS = acrs
	g := grant{tenant: req.tenant, client: client, method: method, user: user, sr: sr, scopes: scopes, signIn: si, claims: claims, refresh: true, spa: rg.spa}
	if rg.spa {
		g.chainIssued, g.chainExpires = rg.issued, rg.expires
	}
	return s.issue(req, g)
}

// grant is a decided token request, ready to be issued.
type grant struct {
	tenant *Tenant
	client *App
	method authMethod
	user   *User // nil for app-only
	sr     *scopeRequest
	scopes []string
	roles  []string
	// signIn is how the user signed in, with the authentication contexts
	// the token satisfies (acrs).
	signIn signIn
	claims *claimsRequest
	// refresh marks a refresh-token redemption: it always returns a new
	// refresh token.
	refresh bool
	// nonce is the authorization request's, for the ID token.
	nonce string
	// spa marks tokens for an SPA redirect URI (see refreshGrant.spa).
	spa bool
	// chain is the SPA refresh-token chain's first issue and its end, when
	// this grant redeems one: an SPA's refresh tokens end 24 hours after
	// the sign-in, however often they are redeemed.
	chainIssued, chainExpires time.Time
}

// lifetime is an access token's lifetime: the tenant's when set, else, as
// Entra's default, a random one between 60 and 90 minutes.
func (t *Tenant) lifetime() time.Duration {
	if t.TokenLifetime != 0 {
		return time.Duration(t.TokenLifetime)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return time.Hour + time.Duration(int(b[0])<<8|int(b[1]))%1800*time.Second
}

// issue mints the access token (and refresh and ID tokens where due) and
// builds the success response as Entra shapes it: expires_in and the longer
// ext_expires_in, the scope echo without the OpenID Connect scopes, an ID
// token when openid was asked, a new refresh token at every redemption.
func (s *Server) issue(req *tokenRequest, g grant) (map[string]any, *aadError) {
	now := s.now()
	lifetime := g.tenant.lifetime()
	if g.claims == nil {
		g.claims = &claimsRequest{}
	}
	if s.looping(g, now) {
		return nil, errLoop()
	}
	at, err := s.mintAccess(g, now, lifetime)
	if err != nil {
		return nil, newErr(http.StatusInternalServerError, "server_error", 90033, "token signing failed")
	}
	// Echo what was asked, in the form asked: MSAL treats a requested scope
	// missing from the answer as declined (it ignores the OpenID ones,
	// which Entra leaves out).
	var echo []string
	if g.sr.isDefault {
		echo = append(echo, g.sr.resourceID+"/.default")
	}
	for _, sc := range g.scopes {
		echo = append(echo, g.sr.resourceID+"/"+sc)
	}
	ext := lifetime + time.Hour // the extended lifetime, used while Entra is down
	resp := map[string]any{
		"token_type":     "Bearer",
		"scope":          strings.Join(dedupe(echo), " "),
		"expires_in":     int(lifetime.Seconds()),
		"ext_expires_in": int(ext.Seconds()),
		"access_token":   at,
	}
	if req.ver == 1 {
		resp["expires_in"] = strconv.Itoa(int(lifetime.Seconds()))
		resp["ext_expires_in"] = strconv.Itoa(int(ext.Seconds()))
		resp["expires_on"] = strconv.FormatInt(now.Add(lifetime).Unix(), 10)
		resp["not_before"] = strconv.FormatInt(now.Unix(), 10)
		resp["resource"] = g.sr.resourceID
	}
	if g.user != nil {
		if g.sr.offline || req.ver == 1 || g.refresh {
			rt := randomToken()
			issued, expires := now, now.Add(refreshLifetime)
			if g.spa && !g.chainExpires.IsZero() {
				issued, expires = g.chainIssued, g.chainExpires
			}
			s.mu.Lock()
			s.refresh[rt] = &refreshGrant{tenantID: g.tenant.TenantID, clientID: g.client.ClientID,
				userOID: g.user.ObjectID, resource: g.sr.resource.ClientID, signIn: g.signIn, expires: expires,
				issued: issued, spa: g.spa}
			s.pruneRefreshLocked(rt, now)
			s.mu.Unlock()
			resp["refresh_token"] = rt
		}
		ci, _ := json.Marshal(map[string]string{"uid": g.user.ObjectID, "utid": g.tenant.TenantID})
		resp["client_info"] = b64.EncodeToString(ci)
		if slices.Contains(g.sr.oidc, "openid") || req.ver == 1 {
			idt, err := s.mintID(g, now, lifetime)
			if err != nil {
				return nil, newErr(http.StatusInternalServerError, "server_error", 90033, "token signing failed")
			}
			resp["id_token"] = idt
		}
	}
	req.rec.Scope = resp["scope"].(string)
	return resp, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, v := range in {
		if !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out = append(out, v)
		}
	}
	return out
}

func randomToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return "1.AR" + b64.EncodeToString(b)
}

// writeError writes Entra's error body, echoing client-request-id as Entra
// does and using it as the correlation ID.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *aadError) {
	now := s.now().UTC()
	trace := w.Header().Get("x-ms-request-id") // every answer has one (requestIDs)
	if trace == "" {
		trace = newGUID()
		w.Header().Set("x-ms-request-id", trace)
	}
	corr := r.Header.Get("client-request-id")
	if !isGUID(corr) {
		corr = newGUID()
	}
	ts := now.Format("2006-01-02 15:04:05Z")
	body := errorBody{
		Error:            e.Error,
		ErrorDescription: fmt.Sprintf("%s Trace ID: %s Correlation ID: %s Timestamp: %s", e.String(), trace, corr, ts),
		ErrorCodes:       []int{e.Code},
		Timestamp:        ts,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         fmt.Sprintf("%s/error?code=%d", s.baseURL, e.Code),
		SubError:         e.SubError,
		Claims:           e.Claims,
	}
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	}
	w.Header().Set("x-ms-clitelem", fmt.Sprintf("1,%d,0,,", e.Code))
	writeJSON(w, e.Status, body)
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

func formatGUID(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// pruneRefreshLocked records rt, just issued, and forgets the refresh
// grants that have expired: every grant lives refreshLifetime, so they
// expire in the order they were issued, and a long-running tenant (the demo,
// a benchmark) does not keep them all.
func (s *Server) pruneRefreshLocked(rt string, now time.Time) {
	s.refreshOrder = append(s.refreshOrder, rt)
	for len(s.refreshOrder) > 0 {
		g := s.refresh[s.refreshOrder[0]]
		// Kept a while past its end, so that an SPA's expired refresh
		// token is still answered AADSTS700084, as Entra answers it, and
		// not as an unknown one. (An SPA chain's tokens end with its
		// first: they may outlive the order, never the memory bound.)
		if g != nil && !now.After(g.expires.Add(refreshGrace)) {
			return
		}
		delete(s.refresh, s.refreshOrder[0])
		s.refreshOrder = s.refreshOrder[1:]
	}
}
