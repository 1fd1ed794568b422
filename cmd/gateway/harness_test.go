package main

// The end-to-end harness: the real program (run) against a local tenant
// (fakeentra over HTTPS, which MSAL Go really talks to) and a recording
// upstream, everything on random loopback ports. e2e_test.go holds the tests.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// Bounds on waits. They only bound: nothing waits for them to pass.
const (
	startTimeout = 30 * time.Second // the gateway's "gateway listening" line and /readyz
	stopTimeout  = 30 * time.Second // run returning after its ctx is canceled
	eventTimeout = 10 * time.Second // a log line, an upstream arrival, an SSE event
)

// gatewayScope is what a frontend asks for to call the gateway.
const gatewayScope = "api://obo-gateway/access_as_user"

// demoGatewaySecret is the demo tenant's client secret of the gateway app.
const demoGatewaySecret = fakeentra.DemoGatewaySecret

// ---------------------------------------------------------------------------
// The recording upstream

// recorded is what the upstream received in one request.
type recorded struct {
	Method   string
	URI      string // the request line's target, as received
	Path     string
	RawQuery string
	Host     string
	Header   http.Header
	Body     []byte
}

// bearer is the token of the request's Authorization header, or "".
func (r recorded) bearer() string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return tok
}

// everything is all the request carried, for "appears nowhere" checks.
func (r recorded) everything() string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URI + " " + r.Host + "\n")
	_ = r.Header.Write(&b)
	b.Write(r.Body)
	return b.String()
}

// upstream is a recording API. Paths ending in /hold/<name> block until the
// test releases the hold; paths ending in /events/<name> stream server-sent
// events the test feeds one by one; anything else answers JSON at once.
type upstream struct {
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []recorded
	holds   map[string]*hold
	streams map[string]chan string
	// challenged remembers, per /challenge/<name>, the first token seen: it
	// is answered with a claims challenge, any other token with 200.
	challenged map[string]string
}

// upstreamChallenge is the claims challenge the recording upstream sends
// (continuous access evaluation: tokens issued before a time are refused).
const upstreamChallenge = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`

// hold is an upstream request that blocks until released.
type hold struct {
	arrived     chan struct{} // closed when the request reaches the upstream
	release     chan struct{}
	arriveOnce  sync.Once
	releaseOnce sync.Once
}

func (h *hold) Release() { h.releaseOnce.Do(func() { close(h.release) }) }

// upstreamAnswer is the upstream's JSON answer to ordinary requests.
type upstreamAnswer struct {
	Path   string `json:"path"`
	Method string `json:"method"`
	Query  string `json:"query"`
	Body   string `json:"body"`
	// TestUser is the request's X-Test-User header.
	TestUser string `json:"test_user"`
	// OID and Aud are claims of the bearer token received (not verified).
	OID string `json:"oid"`
	Aud string `json:"aud"`
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{holds: map[string]*hold{}, streams: map[string]chan string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.releaseAll()
		u.srv.Close()
	})
	return u
}

func (u *upstream) URL() string { return u.srv.URL }

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, recorded{
		Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), Body: body,
	})
	u.mu.Unlock()

	dir, name := filepath.Split(r.URL.Path)
	switch {
	case strings.HasSuffix(dir, "/acrs/"):
		// An API that needs the authentication context named by the last
		// segment for this operation: a token without it in acrs gets a
		// claims challenge for it.
		c, _ := decodeClaims(recorded{Header: r.Header}.bearer())
		acrs, _ := c["acrs"].([]any)
		if slices.Contains(acrs, any(name)) {
			writeJSON(w, http.StatusOK, map[string]string{"acrs": name})
			return
		}
		challenge := `{"access_token":{"acrs":{"essential":true,"value":"` + name + `"}}}`
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+
			base64.StdEncoding.EncodeToString([]byte(challenge))+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "insufficient_claims"})
	case strings.HasSuffix(dir, "/challenge/"):
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		if u.challenged == nil {
			u.challenged = map[string]string{}
		}
		first, seen := u.challenged[name]
		if !seen {
			u.challenged[name], first = tok, tok
		}
		u.mu.Unlock()
		if tok == first {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+
				base64.StdEncoding.EncodeToString([]byte(upstreamChallenge))+`"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "insufficient_claims"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"challenge": "satisfied"})
	case strings.HasSuffix(dir, "/hold/"):
		u.mu.Lock()
		h := u.holds[name]
		u.mu.Unlock()
		if h == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no hold " + name})
			return
		}
		h.arriveOnce.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
			writeJSON(w, http.StatusOK, map[string]string{"held": name})
		case <-r.Context().Done():
		}
	case strings.HasSuffix(dir, "/events/"):
		u.mu.Lock()
		events := u.streams[name]
		u.mu.Unlock()
		if events == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no stream " + name})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				fmt.Fprintf(w, "data: %s\n\n", ev)
				_ = rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	default:
		a := upstreamAnswer{Path: r.URL.Path, Method: r.Method, Query: r.URL.RawQuery, Body: string(body),
			TestUser: r.Header.Get("X-Test-User")}
		if c, err := decodeClaims(recorded{Header: r.Header}.bearer()); err == nil {
			a.OID, _ = c["oid"].(string)
			a.Aud, _ = c["aud"].(string)
		}
		w.Header().Set("X-Upstream", "recorder")
		writeJSON(w, http.StatusOK, a)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// hold registers a hold for requests to …/hold/<name>.
func (u *upstream) hold(name string) *hold {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	u.mu.Lock()
	u.holds[name] = h
	u.mu.Unlock()
	return h
}

// stream registers an event stream for requests to …/events/<name>: each
// string sent on the channel is written and flushed as one event once the
// handler takes it (an unbuffered send is the handshake); closing the
// channel ends the stream.
func (u *upstream) stream(name string) chan<- string {
	ch := make(chan string)
	u.mu.Lock()
	u.streams[name] = ch
	u.mu.Unlock()
	return ch
}

func (u *upstream) releaseAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, h := range u.holds {
		h.Release()
	}
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// ---------------------------------------------------------------------------
// The local tenant

// testUser is a user of the test tenant.
type testUser struct{ name, oid string }

// testTenant is the demo tenant (fakeentra.DemoTenant) with six more users
// and a second delegated scope on the gateway, Reports.Read, so that a valid
// token for the gateway can lack access_as_user.
func testTenant() (*fakeentra.Tenant, []testUser) {
	t := fakeentra.DemoTenant()
	for _, a := range t.Apps {
		switch a.Name {
		case "gateway":
			a.Scopes = append(a.Scopes, "Reports.Read")
		case "frontend":
			a.Permissions[0].Scopes = append(a.Permissions[0].Scopes, "Reports.Read")
		}
	}
	users := []testUser{{"alice@contoso.test", fakeentra.DemoAliceObjectID}, {"bob@contoso.test", fakeentra.DemoBobObjectID}}
	for i, name := range []string{"carol", "dave", "erin", "frank", "grace", "heidi"} {
		n := i + 3
		u := testUser{name + "@contoso.test", fmt.Sprintf("%08d-%04d-4%03d-8%03d-%012d", n, n, n, n, n)}
		t.Users = append(t.Users, &fakeentra.User{Username: u.name, Password: fakeentra.DemoPassword, ObjectID: u.oid,
			DisplayName: name, NoConsent: []string{"inventory-api"}})
		users = append(users, u)
	}
	return t, users
}

// tenantEnv is a running test tenant and a client that trusts it.
type tenantEnv struct {
	srv     *fakeentra.Server
	info    fakeentra.Info
	users   []testUser
	client  *http.Client
	secrets *secrets
}

func startTenant(t *testing.T, sec *secrets) *tenantEnv {
	t.Helper()
	return startTenantWith(t, sec, nil)
}

// startTenantWith starts the test tenant after edit, when not nil, changed it.
func startTenantWith(t *testing.T, sec *secrets, edit func(*fakeentra.Tenant)) *tenantEnv {
	t.Helper()
	tenant, users := testTenant()
	if edit != nil {
		edit(tenant)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := fakeentra.Start(ctx, fakeentra.Config{Tenant: tenant, Dir: t.TempDir()})
	if err != nil {
		cancel()
		t.Fatalf("fakeentra.Start: %v", err)
	}
	client := srv.HTTPClient()
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		_ = srv.Close()
	})
	te := &tenantEnv{srv: srv, info: srv.Info(), users: users, client: client, secrets: sec}
	sec.add(demoGatewaySecret)
	sec.addPEMFile(t, te.info.Apps["gateway"].KeyFile)
	return te
}

// tokenResponse is the token endpoint's JSON answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// tokenRequest posts a form to the tenant's v2 token endpoint; every token
// in the answer is remembered as a secret.
func (te *tenantEnv) tokenRequest(t *testing.T, form url.Values) tokenResponse {
	t.Helper()
	resp, err := te.client.PostForm(te.info.TokenEndpoint, form)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatalf("token endpoint answered HTTP %d, not JSON: %v", resp.StatusCode, err)
	}
	te.secrets.add(tr.AccessToken, tr.RefreshToken, tr.IDToken)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token endpoint answered HTTP %d: %s: %s", resp.StatusCode, tr.Error, tr.Description)
	}
	return tr
}

// passwordToken signs a user in as the frontend (public client, password
// grant) and returns the access token for the gateway. claims, when not
// empty, is a claims challenge to satisfy (MFA step-up).
func (te *tenantEnv) passwordToken(t *testing.T, username, claims string) string {
	t.Helper()
	form := url.Values{
		"grant_type": {"password"}, "client_id": {te.info.Apps["frontend"].ClientID},
		"username": {username}, "password": {fakeentra.DemoPassword}, "scope": {gatewayScope},
	}
	if claims != "" {
		form.Set("claims", claims)
	}
	return te.tokenRequest(t, form).AccessToken
}

// appToken is an app-only token of the gateway app for its own API (client
// credentials with the client secret).
func (te *tenantEnv) appToken(t *testing.T) string {
	t.Helper()
	return te.tokenRequest(t, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {te.info.Apps["gateway"].ClientID},
		"client_secret": {demoGatewaySecret}, "scope": {"api://obo-gateway/.default"},
	}).AccessToken
}

// daemonToken is the demo daemon's app-only token for the gateway, carrying
// the application permission (app role) Gateway.Call.
func (te *tenantEnv) daemonToken(t *testing.T) string {
	t.Helper()
	return te.tokenRequest(t, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {fakeentra.DemoDaemonClientID},
		"client_secret": {fakeentra.DemoDaemonSecret}, "scope": {"api://obo-gateway/.default"},
	}).AccessToken
}

// userToken mints a token with the tenant's shortcut (no policy checks).
func (te *tenantEnv) userToken(t *testing.T, username, scope string, opt fakeentra.UserTokenOptions) string {
	t.Helper()
	tok, err := te.srv.UserToken(username, scope, opt)
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	te.secrets.add(tok)
	return tok
}

func (te *tenantEnv) user(t *testing.T, name string) testUser {
	t.Helper()
	for _, u := range te.users {
		if u.name == name {
			return u
		}
	}
	t.Fatalf("no user %s", name)
	return testUser{}
}

// ---------------------------------------------------------------------------
// Secrets that must never reach a log

// secrets are the values no log line may contain: every token the test
// obtained or saw go upstream, the client secret, the private key.
type secrets struct {
	mu   sync.Mutex
	vals map[string]string // value → what it is, for the failure message
}

func newSecrets() *secrets { return &secrets{vals: map[string]string{}} }

func (s *secrets) add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		if v != "" {
			s.vals[v] = describeSecret(v)
		}
	}
}

// addPEMFile remembers a PEM file whole and each of its base64 lines, so
// that even a fragment of a private key in a log is caught.
func (s *secrets) addPEMFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s.add(string(data))
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); len(line) >= 40 && !strings.HasPrefix(line, "-----") {
			s.add(line)
		}
	}
}

func (s *secrets) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.vals))
	for v := range s.vals {
		out = append(out, v)
	}
	return out
}

// describeSecret names a secret without showing it.
func describeSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("secret of %d bytes (sha256 %x…)", len(v), sum[:6])
}

// leaks reports the secrets that occur in text, each with its line, every
// secret in it masked.
func leaks(text string, vals []string) []string {
	var out []string
	lines := strings.Split(text, "\n")
	for _, v := range vals {
		i := strings.Index(text, v)
		if i < 0 {
			continue
		}
		n := strings.Count(text[:i], "\n")
		line := lines[n]
		for _, w := range vals {
			line = strings.ReplaceAll(line, w, "<SECRET>")
		}
		out = append(out, fmt.Sprintf("%s in log line %d: %.600s", describeSecret(v), n+1, line))
	}
	return out
}

// ---------------------------------------------------------------------------
// The gateway, run in-process

// gatewayProc is one run of the program.
type gatewayProc struct {
	stderr *testkit.SyncBuffer
	api    string // http://127.0.0.1:port
	admin  string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // run's result, once done is closed
	// cleanStop makes the test fail if run returns an error once its
	// context ends: a server that started must stop cleanly.
	cleanStop bool
}

// startRun calls run in a goroutine with a context of its own. It does not
// wait for anything; cleanup cancels the context and waits for run.
func startRun(t *testing.T, args, environ []string, stdout io.Writer) *gatewayProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &gatewayProc{stderr: &testkit.SyncBuffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, environ, nil, stdout, p.stderr)
	}()
	t.Cleanup(func() {
		p.cancel()
		if err, ok := p.wait(stopTimeout); !ok {
			t.Errorf("run did not return within %v of its context ending", stopTimeout)
		} else if err != nil && p.cleanStop {
			t.Errorf("run returned %v on shutdown, want nil", err)
		}
	})
	return p
}

// wait waits for run to return; ok is false on timeout.
func (p *gatewayProc) wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// serveGateway runs "gateway serve -config cfgPath" and waits until it
// listens (its "gateway listening" log line) and /readyz answers 200.
func serveGateway(t *testing.T, cfgPath string, environ []string) *gatewayProc {
	t.Helper()
	p := startRun(t, []string{"serve", "-config", cfgPath}, environ, io.Discard)
	rec, err := p.stderr.Wait(startTimeout, p.done, testkit.Msg("gateway listening"))
	if err != nil {
		t.Fatalf("gateway did not start: %v (run: %v)\nstderr:\n%s", err, p.err, p.stderr)
	}
	p.api, p.admin = "http://"+rec.Str("api"), "http://"+rec.Str("admin")
	p.cleanStop = true
	waitReady(t, p.admin+"/readyz", p.done)
	return p
}

// waitReady polls a readiness URL until it answers 200: the one place where
// the tests poll, with a bound.
func waitReady(t *testing.T, readyz string, stop <-chan struct{}) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := c.Get(readyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not 200 within %v (last: %v)", readyz, startTimeout, err)
		}
		select {
		case <-stop:
			t.Fatalf("run returned before %s answered 200", readyz)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------------------
// The whole environment

// envOptions change the environment of one test.
type envOptions struct {
	// shutdownGrace is the config's shutdown_grace; default 5s.
	shutdownGrace time.Duration
	// tokenTimeout is the config's entra.token_timeout; default 10s.
	tokenTimeout time.Duration
	// certFile and keyFile replace the gateway's credential (default: the
	// certificate the tenant generated and registered).
	certFile, keyFile string
	// redisAddr configures the shared cache (cache.redis) when set.
	redisAddr string
	// cp1 declares the cp1 client capability (entra.client_capabilities).
	cp1 bool
	// keysMinRefresh is entra.keys_min_refresh_interval; default 30s.
	keysMinRefresh time.Duration
	// limits is the config's limits section; what it leaves zero takes
	// the default.
	limits config.Limits
	// tenant, when set, changes the test tenant before it starts.
	tenant  func(*fakeentra.Tenant)
	sendX5C bool // entra.certificate.send_x5c
	// credential, when set, makes the gateway's credential after the tenant
	// started (certFile and keyFile, and whether to send x5c).
	credential func(t *testing.T, te *tenantEnv) (certFile, keyFile string, sendX5C bool)
	// entra, when set, edits the entra section once the tenant started
	// (a federated credential instead of the certificate).
	entra func(t *testing.T, te *tenantEnv, e *config.Entra)
	// environ is the gateway's environment ("NAME=value"), e.g. OTEL_*.
	environ []string
}

// foreignTenantID is a tenant the test gateway allows (entra.allowed_tenants)
// besides its home tenant; no app of it is registered in the local tenant.
const foreignTenantID = "f0f0f0f0-1111-4222-8333-444444444444"

// env is a tenant, a recording upstream and a gateway configured against them.
type env struct {
	*tenantEnv
	up      *upstream
	gw      *gatewayProc
	client  *http.Client // for the gateway's listeners
	secrets *secrets
	cfgPath string
}

// newEnv starts everything for one test and stops it when the test ends.
// At the end it also checks that no log line of the gateway holds a secret.
func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	sec := newSecrets()
	te := startTenantWith(t, sec, opt.tenant)
	up := startUpstream(t)
	e := &env{tenantEnv: te, up: up, secrets: sec}
	e.client = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	t.Cleanup(e.client.CloseIdleConnections)
	// Runs after the gateway has stopped (cleanups run last-in first-out).
	t.Cleanup(func() { e.checkNoLeaks(t) })

	if opt.credential != nil {
		var x5c bool
		opt.certFile, opt.keyFile, x5c = opt.credential(t, te)
		opt.sendX5C = opt.sendX5C || x5c
	}
	e.cfgPath = configtest.Write(t, e.gatewayConfig(t, opt))
	e.gw = serveGateway(t, e.cfgPath, opt.environ)
	// Runs before the gateway stops, so that its drain does not wait on holds.
	t.Cleanup(up.releaseAll)
	return e
}

// gatewayConfig is the gateway's configuration against the tenant and the
// recording upstream, changed by opt.
func (e *env) gatewayConfig(t *testing.T, opt envOptions) *config.Config {
	gw := e.info.Apps["gateway"]
	cert, key := gw.CertificateFile, gw.KeyFile
	if opt.certFile != "" {
		cert, key = opt.certFile, opt.keyFile
	}
	grace, tokenTimeout := opt.shutdownGrace, opt.tokenTimeout
	if grace == 0 {
		grace = 5 * time.Second
	}
	if tokenTimeout == 0 {
		tokenTimeout = 10 * time.Second
	}
	up := e.up.URL()
	c := &config.Config{
		Listen:        "127.0.0.1:0",
		AdminListen:   "127.0.0.1:0",
		ShutdownGrace: config.Duration(grace),
		LogLevel:      "info",
		Entra: config.Entra{
			TenantID:               e.info.TenantID,
			ClientID:               gw.ClientID,
			AuthorityHost:          e.srv.URL(),
			InstanceDiscovery:      new(false),
			Audiences:              []string{"api://obo-gateway"},
			AllowedTenants:         []string{foreignTenantID},
			CAFile:                 e.info.CAFile,
			TokenTimeout:           config.Duration(tokenTimeout),
			KeysMinRefreshInterval: config.Duration(opt.keysMinRefresh),
			Certificate:            config.Certificate{Path: cert, KeyPath: key, SendX5C: opt.sendX5C},
		},
		CORS: config.CORS{AllowedOrigins: []string{"http://localhost:3000"}},
		Routes: []config.Route{
			{Name: "orders", PathPrefix: "/orders", Upstream: up + "/orders", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "hr", PathPrefix: "/hr", Upstream: up + "/hr", StripPrefix: true,
				DownstreamScopes: []string{"api://hr-api/.default"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "inventory", PathPrefix: "/inventory", Upstream: up + "/inventory", StripPrefix: true,
				DownstreamScopes: []string{"api://inventory-api/.default"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "slow", PathPrefix: "/slow", Upstream: up + "/slow", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: []string{"access_as_user"},
				Timeout: config.Duration(200 * time.Millisecond)},
			{Name: "down", PathPrefix: "/down", Upstream: "http://" + testkit.ClosedAddr(t),
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "open", PathPrefix: "/open", Upstream: up + "/open", StripPrefix: true},
			{Name: "admin", PathPrefix: "/admin", Upstream: up + "/admin", StripPrefix: true,
				RequiredRoles: []string{"Gateway.Admin"}},
			{Name: "busy", PathPrefix: "/busy", Upstream: up + "/busy", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: []string{"access_as_user"},
				MaxInFlight: 3},
		},
		Limits: opt.limits,
	}
	if opt.cp1 {
		c.Entra.ClientCapabilities = []string{"cp1"}
	}
	if opt.redisAddr != "" {
		c.Cache.Redis = &config.Redis{Address: opt.redisAddr, Timeout: config.Duration(100 * time.Millisecond), EncryptionKeys: testRedisKeys}
	}
	if opt.entra != nil {
		opt.entra(t, e.tenantEnv, &c.Entra)
	}
	return c
}

// checkNoLeaks fails the test if a log line holds a secret: a token the
// test obtained, a token that went upstream, the client secret, the key.
func (e *env) checkNoLeaks(t *testing.T) {
	t.Helper()
	if e.gw == nil {
		return // it never started
	}
	for _, r := range e.up.requests() {
		e.secrets.add(r.bearer())
	}
	for _, l := range leaks(e.gw.stderr.String(), e.secrets.list()) {
		t.Errorf("the gateway logged a secret: %s", l)
	}
}

// ---------------------------------------------------------------------------
// HTTP to the gateway

// response is a gateway answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes r's body, the gateway's JSON error body.
func (r response) errorBody(t *testing.T) map[string]string {
	t.Helper()
	return testkit.ErrorBody(t, r.header, r.body)
}

// request describes a call to the gateway.
type request struct {
	method string // default GET
	path   string // with the query, if any
	token  string // sent as Authorization: Bearer
	header map[string]string
	body   string
}

func (e *env) do(t *testing.T, rq request) response {
	t.Helper()
	return doHTTP(t, e.client, e.gw.api, rq)
}

func doHTTP(t *testing.T, c *http.Client, base string, rq request) response {
	t.Helper()
	r, err := tryHTTP(c, base, rq)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	return r
}

// tryHTTP is doHTTP for goroutines: it returns the error instead.
func tryHTTP(c *http.Client, base string, rq request) (response, error) {
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(method, base+rq.path, body)
	if err != nil {
		return response{}, err
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// wantStatus fails the test unless r has the status.
func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("HTTP %d, want %d; body: %s", r.status, status, r.body)
	}
}

// ---------------------------------------------------------------------------
// JWTs, decoded and signed by the test's own code

// decodeClaims returns a JWT's claims without verifying it.
func decodeClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c map[string]any
	return c, json.Unmarshal(data, &c)
}

// selfSignedCredential writes a certificate and key that no app registered.
func selfSignedCredential(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	cert, key, err := pki.SelfSigned("CN=unregistered-gateway", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if certFile, err = pki.WriteFile(dir, "other.crt.pem", pki.CertPEM(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if keyFile, err = pki.WriteFile(dir, "other.key.pem", pki.KeyPEM(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// trustingClient is an HTTP client that trusts the CA in caFile, as a
// script given the tenant's ca_file would.
func trustingClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	data, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// ---------------------------------------------------------------------------
// Metrics

// metricValue returns the value of one series in a Prometheus text exposition.
func metricValue(exposition, series string) (float64, bool) {
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// testRedisKeys encrypts the shared cache in tests (two keys: rotation-ready).
const testRedisKeys = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,k2:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
