package fakeentra

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The authorization endpoint: Entra's browser sign-in for the authorization
// code flow (with PKCE), reduced to what a test tenant needs. A flow is a
// server-side transaction whose unguessable ID the pages post back, bound
// to the browser by a cookie (so another browser cannot complete it): the
// sign-in page (username and password), the MFA step (the fixed one-time
// code DemoMFACode) when a policy or the claims request asks for MFA, the
// consent page for resources the user has not consented to, then a code
// sent to the redirect URI. A session cookie on the tenant's origin makes
// the next flows single sign-on and prompt=none silent.

// DemoMFACode is the one-time code the MFA step accepts, for every user
// who has registered for MFA: a documented value, as a test tenant needs.
const DemoMFACode = "123456"

const (
	// defaultCodeLifetime is Entra's lifetime of authorization codes.
	defaultCodeLifetime = 10 * time.Minute
	// flowLifetime bounds a sign-in flow, from the authorize request to
	// its last page.
	flowLifetime = time.Hour
	// sessionLifetime bounds the single sign-on session.
	sessionLifetime = 24 * time.Hour

	sessionCookie = "ESTSAUTH"
	browserCookie = "fakeentra_browser"
)

// platform is the platform of a redirect URI; it decides how codes sent
// there may be redeemed.
type platform string

const (
	platformSPA    platform = "spa"
	platformWeb    platform = "web"
	platformPublic platform = "public_client"
)

// authState is the browser sign-in's state. Its methods are safe for
// concurrent use.
type authState struct {
	codeLifetime time.Duration

	mu       sync.Mutex
	flows    map[string]*authFlow
	sessions map[string]*ssoSession
	codes    map[string]*authCode
	// consents are those users granted on consent pages:
	// tenant|user|resource client ID.
	consents map[string]bool
}

func newAuthState(codeLifetime time.Duration) authState {
	if codeLifetime <= 0 {
		codeLifetime = defaultCodeLifetime
	}
	return authState{codeLifetime: codeLifetime, flows: map[string]*authFlow{},
		sessions: map[string]*ssoSession{}, codes: map[string]*authCode{}, consents: map[string]bool{}}
}

// authRequest is a checked authorization request.
type authRequest struct {
	tenant       *Tenant
	client       *App
	redirectURI  string // as registered matches it, normalised (a trailing slash on an empty path)
	platform     platform
	responseMode string // query, fragment or form_post
	state, nonce string
	// resources are the resources the scopes name, in order; the first is
	// the one the code's access token is for. resourceIDs are as named.
	resources   []*App
	resourceIDs []string
	named       [][]string // named scopes of each resource; nil for .default
	oidc        []string
	challenge   string
	method      string // S256 or plain, when challenge is set
	prompt      string
	loginHint   string
	claims      *claimsRequest
	maxAge      int // -1 when absent
}

// authFlow is one sign-in in progress.
type authFlow struct {
	// mu serialises the posts of one flow's pages (a double-click posts
	// twice): user, signIn and consented change under it.
	mu        sync.Mutex
	id        string
	browser   string // the browser cookie the flow is bound to
	req       *authRequest
	user      *User
	signIn    signIn
	consented bool // the consent page was accepted in this flow
	expires   time.Time
}

// ssoSession is the single sign-on session a session cookie names.
type ssoSession struct {
	tenantID string
	userOID  string
	signIn   signIn
	expires  time.Time
}

// authCode is what an authorization code stands for.
type authCode struct {
	tenantID, clientID string
	redirectURI        string
	platform           platform
	challenge, method  string
	resources          []*App
	resourceIDs        []string
	named              [][]string
	oidc               []string
	nonce              string
	claims             *claimsRequest
	userOID            string
	signIn             signIn
	expires            time.Time
	redeemed           bool
}

func (s *Server) handleAuthorize(ver int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, r, errInvalidParameter("body"))
			return
		}
		req, aerr, redirectable := s.parseAuthorize(r, ver)
		if aerr != nil {
			s.log.Info("authorize request refused", "client_id", r.Form.Get("client_id"), "code", aerr.Code)
			if redirectable {
				s.redirectError(w, r, req, aerr)
				return
			}
			s.errorPage(w, r, aerr)
			return
		}
		browser := s.browserID(w, r)
		f := &authFlow{id: randomToken(), browser: browser, req: req, expires: s.now().Add(flowLifetime)}
		if req.prompt != "login" && req.prompt != "select_account" {
			if sess := s.session(r, req); sess != nil {
				f.user = req.tenant.User(sess.userOID)
				f.signIn = sess.signIn
			}
		}
		if req.prompt == "none" {
			s.silent(w, r, f)
			return
		}
		s.auth.mu.Lock()
		s.pruneAuthLocked()
		s.auth.flows[f.id] = f
		s.auth.mu.Unlock()
		s.advance(w, r, f)
	}
}

// parseAuthorize checks an authorization request in Entra's order: what
// is wrong before the redirect URI is known shows an error page (never a
// redirect); what is wrong after goes back to the redirect URI
// (redirectable).
func (s *Server) parseAuthorize(r *http.Request, ver int) (*authRequest, *aadError, bool) {
	form := r.Form.Get
	ref := r.PathValue("tenant")
	t := s.tenantByRef(ref)
	if t == nil && (strings.EqualFold(ref, "common") || strings.EqualFold(ref, "organizations")) {
		t = s.tenants[0]
		if h := form("login_hint"); strings.Contains(h, "@") {
			if ht := s.tenantByRef(h[strings.LastIndex(h, "@")+1:]); ht != nil {
				t = ht
			}
		}
	}
	if t == nil {
		return nil, newErr(http.StatusBadRequest, "invalid_tenant", 90002,
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", ref), false
	}
	req := &authRequest{tenant: t, state: form("state"), nonce: form("nonce"), loginHint: form("login_hint"), maxAge: -1}
	clientID := form("client_id")
	if clientID == "" {
		return nil, errMissingParam("client_id"), false
	}
	if req.client = t.App(clientID); req.client == nil || !strings.EqualFold(req.client.ClientID, clientID) {
		return nil, errUnknownClient(clientID, t.TenantID), false
	}
	raw := form("redirect_uri")
	if raw == "" {
		return nil, errNoReplyAddress(), false
	}
	if req.client.RedirectURIs.empty() {
		return nil, errNoRegisteredReplyAddress(), false
	}
	var ok bool
	if req.redirectURI, req.platform, ok = req.client.RedirectURIs.match(raw); !ok {
		return nil, errRedirectMismatch(raw, req.client.ClientID), false
	}
	switch mode := form("response_mode"); mode {
	case "", "query":
		req.responseMode = "query"
	case "fragment", "form_post":
		req.responseMode = mode
	default:
		return nil, errUnsupportedResponseMode(mode), false
	}
	// From here on, mistakes go back to the app.
	if rt := form("response_type"); rt != "code" {
		if rt == "" {
			return req, errMissingParam("response_type"), true
		}
		return req, errUnsupportedResponseType(rt), true
	}
	scope := form("scope")
	if ver == 1 {
		// The v1 endpoint names one resource; it signs in with OpenID Connect.
		scope = "openid"
		if res := form("resource"); res != "" {
			scope += " " + strings.TrimSuffix(res, "/") + "/.default"
		}
	}
	if aerr := req.parseScopes(scope); aerr != nil {
		return req, aerr, true
	}
	if req.challenge = form("code_challenge"); req.challenge != "" {
		switch req.method = form("code_challenge_method"); req.method {
		case "":
			req.method = "plain" // RFC 7636's default
		case "S256", "plain":
		default:
			return req, errInvalidParameter("code_challenge_method"), true
		}
		if n := len(req.challenge); (req.method == "S256" && n != 43) || n < 43 || n > 128 {
			return req, errCodeChallengeSize(), true
		}
	}
	switch req.prompt = form("prompt"); req.prompt {
	case "", "login", "none", "consent", "select_account":
	default:
		return req, errInvalidParameter("prompt"), true
	}
	if v := form("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return req, errInvalidParameter("max_age"), true
		}
		req.maxAge = n
	}
	claims, aerr := parseClaims(form("claims"))
	if aerr != nil {
		return req, aerr, true
	}
	req.claims = claims
	return req, nil, false
}

// parseScopes reads the scopes of an authorization request, which, unlike
// a token request, may name several resources: the user consents to all
// of them, and the code's access token is for the first.
func (req *authRequest) parseScopes(raw string) *aadError {
	if strings.TrimSpace(raw) == "" {
		return errMissingParam("scope")
	}
	for _, sc := range strings.Fields(raw) {
		switch strings.ToLower(sc) {
		case "openid", "profile", "email", "offline_access":
			req.oidc = append(req.oidc, strings.ToLower(sc))
			continue
		}
		i := strings.LastIndex(sc, "/")
		if i <= 0 || i == len(sc)-1 {
			return errUnknownResource("https://graph.microsoft.com", req.tenant.TenantID)
		}
		res, name := sc[:i], sc[i+1:]
		app := req.tenant.resource(res)
		if app == nil {
			return errUnknownResource(res, req.tenant.TenantID)
		}
		if name != ".default" && !containsFold(app.Scopes, name) {
			return errScopeInvalid(sc)
		}
		k := slices.Index(req.resources, app)
		if k < 0 {
			req.resources = append(req.resources, app)
			req.resourceIDs = append(req.resourceIDs, res)
			req.named = append(req.named, []string{})
			k = len(req.resources) - 1
		}
		if name == ".default" {
			req.named[k] = nil
		} else if req.named[k] != nil {
			req.named[k] = append(req.named[k], name)
		}
	}
	return nil
}

// browserID is the browser's ID cookie, set when absent: flows are bound
// to it.
func (s *Server) browserID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(browserCookie); err == nil && c.Value != "" {
		return c.Value
	}
	id := b64.EncodeToString(randomBytes(24))
	http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode})
	return id
}

// session is the request's single sign-on session when it may serve req:
// same tenant, not expired, within max_age, the login_hint's user.
func (s *Server) session(r *http.Request, req *authRequest) *ssoSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.auth.mu.Lock()
	sess := s.auth.sessions[c.Value]
	s.auth.mu.Unlock()
	now := s.now()
	if sess == nil || sess.tenantID != req.tenant.TenantID || now.After(sess.expires) {
		return nil
	}
	if req.maxAge >= 0 && now.Sub(time.Unix(sess.signIn.AuthTime, 0)) > time.Duration(req.maxAge)*time.Second {
		return nil
	}
	u := req.tenant.User(sess.userOID)
	if u == nil || (req.loginHint != "" && !strings.EqualFold(u.Username, req.loginHint)) {
		return nil
	}
	return sess
}

// needsMFA reports whether the flow's sign-in must include MFA: a policy of
// a requested resource, or a claims request that asks for it.
func (f *authFlow) needsMFA() bool {
	t, u := f.req.tenant, f.user
	for _, res := range f.req.resources {
		if u.mfaRequiredFor(t, res) {
			return true
		}
	}
	return f.req.claims.asksForMFA(t)
}

// consentList is what the consent page asks for: the requested resources
// the user has not consented to and, once a page is due (or prompt=consent
// asks for one), those the requested resources call on the user's behalf
// that the user has not consented to either (Entra's combined consent for
// a middle tier, its knownClientApplications). With prompt=consent the
// page shows at least the requested resources.
func (s *Server) consentList(f *authFlow) []*App {
	t, u := f.req.tenant, f.user
	var list []*App
	add := func(a *App) {
		if a != nil && !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	for _, res := range f.req.resources {
		if s.withholdsConsent(t, u, res) {
			add(res)
		}
	}
	if len(list) == 0 && f.req.prompt != "consent" {
		return nil
	}
	for _, res := range f.req.resources {
		for _, p := range res.Permissions {
			if d := t.resource(p.Resource); len(p.Scopes) > 0 && s.withholdsConsent(t, u, d) {
				add(d)
			}
		}
	}
	if f.req.prompt == "consent" {
		for _, res := range f.req.resources {
			add(res)
		}
	}
	return list
}

// withholdsConsent reports whether user has not consented to resource: the
// tenant file says so and no consent page has granted it since.
func (s *Server) withholdsConsent(t *Tenant, user *User, resource *App) bool {
	if !user.noConsentFor(t, resource) {
		return false
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return !s.auth.consents[t.TenantID+"|"+user.ObjectID+"|"+resource.ClientID]
}

// silent answers prompt=none: a code from the session, or the error that
// says which interaction is needed.
func (s *Server) silent(w http.ResponseWriter, r *http.Request, f *authFlow) {
	switch {
	case f.user == nil:
		s.redirectError(w, r, f.req, errLoginRequired())
	case f.user.Disabled:
		s.redirectError(w, r, f.req, errUserDisabled())
	case f.needsMFA() && !f.signIn.mfa():
		aerr := errMFA(f.user, f.req.resourceID(), "")
		aerr.Error = "interaction_required"
		s.redirectError(w, r, f.req, aerr)
	case len(s.consentList(f)) > 0:
		aerr := errConsent(f.req.client.ClientID, f.req.client.Name)
		aerr.Error = "consent_required"
		s.redirectError(w, r, f.req, aerr)
	default:
		s.finish(w, r, f)
	}
}

func (req *authRequest) resourceID() string {
	if len(req.resources) == 0 {
		return req.client.ClientID
	}
	return req.resources[0].ClientID
}

// advance shows the flow's next page, or ends it.
func (s *Server) advance(w http.ResponseWriter, r *http.Request, f *authFlow) {
	switch {
	case f.user == nil:
		s.page(w, http.StatusOK, pageData{Step: "password", Flow: f, Username: f.req.loginHint})
	case f.user.Disabled:
		s.redirectError(w, r, f.req, errUserDisabled())
	case f.needsMFA() && !f.signIn.mfa():
		if f.user.MFANotRegistered {
			aerr := errMFA(f.user, f.req.resourceID(), "")
			s.redirectError(w, r, f.req, aerr)
			return
		}
		s.page(w, http.StatusOK, pageData{Step: "mfa", Flow: f, Username: f.user.Username})
	default:
		var consent []*App
		if !f.consented {
			consent = s.consentList(f)
		}
		if len(consent) > 0 {
			s.page(w, http.StatusOK, pageData{Step: "consent", Flow: f, Username: f.user.Username, Consent: consent})
			return
		}
		s.finish(w, r, f)
	}
}

// handleSignInStep takes the pages' answers: the password, the one-time
// code, the consent.
func (s *Server) handleSignInStep(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, errInvalidParameter("body"))
		return
	}
	form := r.PostForm.Get
	bc, _ := r.Cookie(browserCookie)
	s.auth.mu.Lock()
	f := s.auth.flows[form("flow")]
	s.auth.mu.Unlock()
	if f == nil || bc == nil || subtle.ConstantTimeCompare([]byte(bc.Value), []byte(f.browser)) != 1 ||
		s.now().After(f.expires) || !strings.EqualFold(r.PathValue("tenant"), f.req.tenant.TenantID) {
		s.errorPage(w, r, errFlowExpired())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch form("step") {
	case "password":
		u := f.req.tenant.User(form("username"))
		if u == nil || subtle.ConstantTimeCompare([]byte(u.Password), []byte(form("password"))) != 1 {
			s.page(w, http.StatusOK, pageData{Step: "password", Flow: f, Username: form("username"),
				Problem: "Your account or password is incorrect (AADSTS50126)."})
			return
		}
		f.user = u
		f.signIn = signIn{AMR: []string{"pwd"}, AuthTime: s.now().Unix()}
		f.consented = false // a consent given in this flow was another sign-in's
	case "mfa":
		if f.user == nil {
			s.errorPage(w, r, errFlowExpired())
			return
		}
		if subtle.ConstantTimeCompare([]byte(form("otc")), []byte(DemoMFACode)) != 1 {
			s.page(w, http.StatusOK, pageData{Step: "mfa", Flow: f, Username: f.user.Username,
				Problem: "That code didn't work. Check the code and try again."})
			return
		}
		if !f.signIn.mfa() {
			f.signIn.AMR = append(f.signIn.AMR, "mfa")
		}
	case "consent":
		if f.user == nil {
			s.errorPage(w, r, errFlowExpired())
			return
		}
		if f.needsMFA() && !f.signIn.mfa() {
			// Consent only after the whole sign-in: a form posted for the
			// consent step from the MFA page is not one.
			s.errorPage(w, r, errFlowExpired())
			return
		}
		if form("consent") != "accept" {
			s.forgetFlow(f)
			s.redirectError(w, r, f.req, errConsentDeclined())
			return
		}
		list := s.consentList(f)
		s.auth.mu.Lock()
		for _, a := range list {
			s.auth.consents[f.req.tenant.TenantID+"|"+f.user.ObjectID+"|"+a.ClientID] = true
		}
		s.auth.mu.Unlock()
		f.consented = true
	default:
		s.errorPage(w, r, errInvalidParameter("step"))
		return
	}
	s.advance(w, r, f)
}

func (s *Server) forgetFlow(f *authFlow) {
	s.auth.mu.Lock()
	delete(s.auth.flows, f.id)
	s.auth.mu.Unlock()
}

// finish ends a flow: the session (new, or the same one with what this
// sign-in added), a code, and the answer to the redirect URI.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, f *authFlow) {
	now := s.now()
	req := f.req
	sid := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		sid = c.Value
	}
	code := randomToken()
	s.auth.mu.Lock()
	delete(s.auth.flows, f.id)
	if sess := s.auth.sessions[sid]; sess == nil || sess.userOID != f.user.ObjectID || sess.tenantID != req.tenant.TenantID {
		sid = randomToken()
	}
	s.auth.sessions[sid] = &ssoSession{tenantID: req.tenant.TenantID, userOID: f.user.ObjectID, signIn: f.signIn, expires: now.Add(sessionLifetime)}
	s.auth.codes[code] = &authCode{
		tenantID: req.tenant.TenantID, clientID: req.client.ClientID, redirectURI: req.redirectURI, platform: req.platform,
		challenge: req.challenge, method: req.method, resources: req.resources, resourceIDs: req.resourceIDs, named: req.named,
		oidc: req.oidc, nonce: req.nonce, claims: req.claims, userOID: f.user.ObjectID, signIn: f.signIn,
		expires: now.Add(s.auth.codeLifetime),
	}
	s.auth.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode})
	s.log.Info("authorization code issued", "tenant", req.tenant.TenantID, "client_id", req.client.ClientID, "subject", f.user.ObjectID)
	v := url.Values{"code": {code}, "session_state": {sessionState(sid)}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	s.respond(w, req, v)
}

// sessionState is the session_state of answers: a GUID of the session,
// which does not reveal its cookie.
func sessionState(sid string) string {
	h := sha256.Sum256([]byte("session_state:" + sid))
	return formatGUID(h[:16])
}

// redirectError sends an error to the redirect URI in the response mode,
// with Entra's fields.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, e *aadError) {
	trace := w.Header().Get("x-ms-request-id")
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	v := url.Values{
		"error":             {e.Error},
		"error_description": {fmt.Sprintf("%s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.String(), trace, newGUID(), ts)},
		"error_uri":         {fmt.Sprintf("%s/error?code=%d", s.baseURL, e.Code)},
	}
	if e.SubError != "" {
		v.Set("suberror", e.SubError)
	}
	if req.state != "" {
		v.Set("state", req.state)
	}
	s.respond(w, req, v)
}

// respond sends v to the redirect URI: in its query (302), its fragment
// (302) or a self-posting form (form_post).
func (s *Server) respond(w http.ResponseWriter, req *authRequest, v url.Values) {
	w.Header().Set("Cache-Control", "no-store, no-cache")
	switch req.responseMode {
	case "fragment":
		w.Header().Set("Location", req.redirectURI+"#"+v.Encode())
		w.WriteHeader(http.StatusFound)
	case "form_post":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// template.URL: the redirect URI matched a registered one, whatever
		// its scheme (a public client's custom scheme included), so it is
		// not the template's to rewrite.
		_ = formPostTmpl.Execute(w, struct {
			Action template.URL
			Fields url.Values
		}{template.URL(req.redirectURI), v})
	default:
		sep := "?"
		if strings.Contains(req.redirectURI, "?") {
			sep = "&"
		}
		w.Header().Set("Location", req.redirectURI+sep+v.Encode())
		w.WriteHeader(http.StatusFound)
	}
}

// handleLogout ends the session and sends the browser to
// post_logout_redirect_uri when it is one of the client's redirect URIs
// (the client named by client_id or by id_token_hint's aud), else shows a
// signed-out page.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.auth.mu.Lock()
		delete(s.auth.sessions, c.Value)
		s.auth.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode})
	t := s.tenantByRef(r.PathValue("tenant"))
	if t == nil {
		t = s.tenants[0]
	}
	clientID := q.Get("client_id")
	if clientID == "" && q.Get("id_token_hint") != "" {
		if p, err := parseJWT(q.Get("id_token_hint")); err == nil {
			if key := s.keys.lookup(p.headerString("kid"), p.headerString("x5t")); key != nil && p.verify(&key.key.PublicKey) == nil {
				clientID = p.claimString("aud")
			}
		}
	}
	if target := q.Get("post_logout_redirect_uri"); target != "" && clientID != "" {
		if client := t.App(clientID); client != nil {
			if uri, _, ok := client.RedirectURIs.match(target); ok {
				if st := q.Get("state"); st != "" {
					uri += map[bool]string{true: "&", false: "?"}[strings.Contains(uri, "?")] + url.Values{"state": {st}}.Encode()
				}
				w.Header().Set("Location", uri)
				w.WriteHeader(http.StatusFound)
				return
			}
		}
	}
	s.page(w, http.StatusOK, pageData{Step: "signed-out"})
}

// errorPage shows an error the app must not receive (its redirect URI is
// unknown or not trusted), as Entra's error page does.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, e *aadError) {
	s.page(w, e.Status, pageData{Step: "error", Error: e, Trace: w.Header().Get("x-ms-request-id"),
		Timestamp: s.now().UTC().Format("2006-01-02 15:04:05Z")})
}

// pageData is what a page shows.
type pageData struct {
	Step      string // password, mfa, consent, error, signed-out
	Flow      *authFlow
	Username  string
	Problem   string
	Consent   []*App
	Error     *aadError
	Trace     string
	Timestamp string
}

func (p pageData) Tenant() string {
	if p.Flow == nil {
		return ""
	}
	return p.Flow.req.tenant.TenantID
}

func (p pageData) Client() string {
	if p.Flow == nil {
		return ""
	}
	return p.Flow.req.client.Name
}

func (s *Server) page(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("X-Frame-Options", "DENY")
	if d.Step == "" || d.Step == "error" || d.Step == "signed-out" {
		h.Del("X-Frame-Options")
	}
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>
<style>body{font-family:sans-serif;max-width:28em;margin:4em auto}input,button{display:block;margin:.5em 0;font-size:1em}.problem{color:#a00}</style>
</head><body>
<p>fakeentra: a local test tenant{{with .Tenant}} ({{.}}){{end}}</p>
{{- if eq .Step "password"}}
<h1>Sign in</h1><p>to continue to {{.Client}}</p>
{{with .Problem}}<p class="problem" id="problem">{{.}}</p>{{end}}
<form method="post" action="/{{.Tenant}}/login">
<input type="hidden" name="flow" value="{{.Flow.ID}}"><input type="hidden" name="step" value="password">
<label>Username <input type="email" name="username" id="username" value="{{.Username}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password" required></label>
<button type="submit" id="submit">Sign in</button>
</form>
{{- else if eq .Step "mfa"}}
<h1>Verify your identity</h1><p>{{.Username}}: enter the code from your authenticator app. (The local tenant's code is always 123456.)</p>
{{with .Problem}}<p class="problem" id="problem">{{.}}</p>{{end}}
<form method="post" action="/{{.Tenant}}/login">
<input type="hidden" name="flow" value="{{.Flow.ID}}"><input type="hidden" name="step" value="mfa">
<label>Code <input type="text" name="otc" id="otc" inputmode="numeric" autocomplete="one-time-code" required></label>
<button type="submit" id="submit">Verify</button>
</form>
{{- else if eq .Step "consent"}}
<h1>Permissions requested</h1><p>{{.Username}}: {{.Client}} would like to access, on your behalf:</p>
<ul>{{range .Consent}}<li class="permission">{{.Name}}: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}</li>{{end}}</ul>
<form method="post" action="/{{.Tenant}}/login">
<input type="hidden" name="flow" value="{{.Flow.ID}}"><input type="hidden" name="step" value="consent">
<button type="submit" name="consent" value="accept" id="accept">Accept</button>
<button type="submit" name="consent" value="cancel" id="cancel">Cancel</button>
</form>
{{- else if eq .Step "signed-out"}}
<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>
{{- else}}
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error">{{.Error.String}}</p>
<p>Trace ID: {{.Trace}}<br>Timestamp: {{.Timestamp}}</p>
{{- end}}
</body></html>
`))

var formPostTmpl = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html><head><title>Working...</title></head><body onload="document.forms[0].submit()">
<form method="POST" action="{{.Action}}">{{range $k, $vs := .Fields}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript></form></body></html>
`))

// ID is the flow's ID, for the pages.
func (f *authFlow) ID() string { return f.id }

// pruneAuthLocked forgets expired flows, sessions and codes. s.auth.mu is held.
func (s *Server) pruneAuthLocked() {
	now := s.now()
	for k, f := range s.auth.flows {
		if now.After(f.expires) {
			delete(s.auth.flows, k)
		}
	}
	for k, v := range s.auth.sessions {
		if now.After(v.expires) {
			delete(s.auth.sessions, k)
		}
	}
	for k, c := range s.auth.codes {
		if now.After(c.expires.Add(time.Hour)) { // kept a while, to answer reuse with 54005 rather than 70000
			delete(s.auth.codes, k)
		}
	}
}

// empty reports whether no redirect URI is registered.
func (ru RedirectURIs) empty() bool {
	return len(ru.SPA)+len(ru.Web)+len(ru.PublicClient) == 0
}

// match finds the registered redirect URI that raw names, as Entra
// matches: exactly (case included) once a URI without a path has its
// trailing slash, except that the port of an http(s)://localhost URI is
// ignored (Entra's localhost exception, RFC 8252 7.3). It returns the
// normalised URI the answer goes to and its platform.
func (ru RedirectURIs) match(raw string) (string, platform, bool) {
	want, ok := normaliseRedirect(raw)
	if !ok {
		return "", "", false
	}
	for _, l := range []struct {
		p    platform
		uris []string
	}{{platformSPA, ru.SPA}, {platformWeb, ru.Web}, {platformPublic, ru.PublicClient}} {
		for _, reg := range l.uris {
			if n, _ := normaliseRedirect(reg); n == want || localhostMatch(n, want) {
				return want, l.p, true
			}
		}
	}
	return "", "", false
}

func normaliseRedirect(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Fragment != "" {
		return "", false
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Path == "" && u.RawQuery == "" {
		return raw + "/", true
	}
	return raw, true
}

func localhostMatch(reg, got string) bool {
	a, err1 := url.Parse(reg)
	b, err2 := url.Parse(got)
	if err1 != nil || err2 != nil || !isLoopbackName(a.Hostname()) || a.Hostname() != b.Hostname() {
		return false
	}
	return a.Scheme == b.Scheme && a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery && a.User.String() == b.User.String()
}

// check refuses redirect URIs Entra refuses to register: not absolute,
// with a fragment, http other than on loopback; web and SPA URIs are http(s).
func (ru RedirectURIs) check() error {
	for _, l := range []struct {
		name string
		uris []string
		web  bool
	}{{"spa", ru.SPA, true}, {"web", ru.Web, true}, {"public_client", ru.PublicClient, false}} {
		for _, raw := range l.uris {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme == "" || u.Fragment != "" || len(raw) > 256 {
				return fmt.Errorf("redirect URI %q (%s) must be an absolute URI without a fragment, of at most 256 characters", raw, l.name)
			}
			switch {
			case u.Scheme == "https":
			case u.Scheme == "http":
				if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
					return fmt.Errorf("redirect URI %q (%s): http is allowed only on localhost", raw, l.name)
				}
			case l.web:
				return fmt.Errorf("redirect URI %q (%s) must be http(s)", raw, l.name)
			}
		}
	}
	return nil
}

// spaOrigin reports whether origin is the origin of an SPA redirect URI
// of an app of tenant t.
func (t *Tenant) spaOrigin(origin string) bool {
	o, err := url.Parse(origin)
	if err != nil {
		return false
	}
	for _, a := range t.Apps {
		for _, raw := range a.RedirectURIs.SPA {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != o.Scheme {
				continue
			}
			if u.Host == o.Host || (isLoopbackName(u.Hostname()) && u.Hostname() == o.Hostname()) {
				return true
			}
		}
	}
	return false
}

// isLoopbackName reports the loopback hosts whose redirect URIs match on
// any port (RFC 8252 section 7.3; Entra's "localhost exceptions"):
// localhost, 127.0.0.1 and [::1].
func isLoopbackName(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
