package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	testTenant    = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
	testClientID  = "5c3b2f0e-91d4-4a57-8f0b-3e2d1c4b5a62"
	testOID       = "11111111-aaaa-4aaa-8aaa-111111111111"
	testAuthority = "https://login.example/" + testTenant
	testKID       = "kid-one"
	// downstreamToken is what the fake TokenSource hands out.
	downstreamToken = "downstream-token-for-orders"
)

var testMetadata = auth.Metadata{
	JWKSURI:          "https://login.example/" + testTenant + "/discovery/v2.0/keys",
	IssuerV2Template: "https://login.example/{tenantid}/v2.0",
	IssuerV1Template: "https://sts.example/{tenantid}/",
}

var (
	keyOnce sync.Once
	signKey *rsa.PrivateKey
	pubSet  jwk.Set
)

// testKeys returns the RSA key tokens are signed with and its public key
// set, generated once per test binary.
func testKeys(t testing.TB) (*rsa.PrivateKey, jwk.Set) {
	t.Helper()
	keyOnce.Do(func() {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		pub, err := jwk.FromRaw(&priv.PublicKey)
		if err != nil {
			panic(err)
		}
		_ = pub.Set(jwk.KeyIDKey, testKID)
		set := jwk.NewSet()
		if err := set.AddKey(pub); err != nil {
			panic(err)
		}
		signKey, pubSet = priv, set
	})
	return signKey, pubSet
}

// userToken signs a valid v2 user token for the gateway; extra claims
// override the defaults.
func userToken(t testing.TB, extra map[string]any) string {
	t.Helper()
	priv, _ := testKeys(t)
	now := time.Now()
	claims := map[string]any{
		"aud": testClientID, "iss": "https://login.example/" + testTenant + "/v2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"tid": testTenant, "oid": testOID, "sub": "pairwise-sub",
		"azp": "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11", "scp": "access_as_user", "ver": "2.0",
	}
	for k, v := range extra {
		claims[k] = v
	}
	return testkit.SignJWT(t, priv, map[string]any{"alg": "RS256", "typ": "JWT", "kid": testKID}, claims)
}

// fakeTokens is a TokenSource that records its requests and answers with
// token or err.
type fakeTokens struct {
	mu    sync.Mutex
	reqs  []obo.Request
	token string
	err   error
	// panicWith, when set, is panicked with (after hook).
	panicWith any
	// hook, when set, runs in each exchange, e.g. to block it.
	hook func()
}

func (f *fakeTokens) Exchange(_ context.Context, req obo.Request) (obo.Token, error) {
	f.mu.Lock()
	req.Scopes = append([]string(nil), req.Scopes...)
	f.reqs = append(f.reqs, req)
	token, err, panicWith, hook := f.token, f.err, f.panicWith, f.hook
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	if panicWith != nil {
		panic(panicWith)
	}
	if err != nil {
		return obo.Token{}, err
	}
	return obo.Token{AccessToken: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (f *fakeTokens) requests() []obo.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]obo.Request(nil), f.reqs...)
}

// upstreamRequest is what the upstream API received.
type upstreamRequest struct {
	Path          string
	RequestURI    string // as the upstream read it: the escaped path and query
	Authorization []string
	Header        http.Header
}

// newUpstream starts an API that records its requests and answers status.
func newUpstream(t *testing.T, status int) (*httptest.Server, <-chan upstreamRequest) {
	t.Helper()
	seen := make(chan upstreamRequest, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- upstreamRequest{Path: r.URL.Path, RequestURI: r.RequestURI, Authorization: r.Header.Values("Authorization"), Header: r.Header.Clone()}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// newValidator validates tokens of testTenant and allowedTenants for
// testClientID, signed by the test key.
func newValidator(t *testing.T, allowedTenants ...string) *auth.Validator {
	t.Helper()
	_, set := testKeys(t)
	keys, err := auth.NewStaticKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewValidator(auth.ValidatorConfig{
		Keys: keys, Metadata: testMetadata, TenantID: testTenant, AllowedTenants: allowedTenants, ClientID: testClientID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testGateway is the gateway's parts built without Entra: a static key set
// for the validator, a fake TokenSource, a real proxy, and a JSON logger.
// Tests change the parts, then build the handlers with the gateway's own
// constructors (NewHandler, NewAdminHandler, assemble).
type testGateway struct {
	t      testing.TB
	h      HandlerConfig
	admin  AdminConfig
	cfg    *config.Config // what Serve reads: listeners, TLS, limits, grace
	reg    *prometheus.Registry
	log    *slog.Logger
	logs   *testkit.SyncBuffer
	tokens *fakeTokens
}

// newTestGateway builds a gateway serving routes. Routes' Upstream must be
// set. It is ready: its signing keys are loaded and its certificate valid
// for an hour (withReadiness changes both).
func newTestGateway(t *testing.T, routes ...config.Route) *testGateway {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	tr := proxy.NewTransport(proxy.TransportConfig{})
	t.Cleanup(tr.CloseIdleConnections)
	tokens := &fakeTokens{token: downstreamToken}
	refusals := metrics.NewRefusals(reg, nil)
	tg := &testGateway{
		t: t,
		h: HandlerConfig{
			Routes:    routes,
			Validator: newValidator(t),
			Tokens:    tokens,
			Proxy:     proxy.New(proxy.Config{Transport: tr, Logger: log, Metrics: proxy.NewMetrics(reg), Refusals: refusals}),
			Edge:      newEdge(config.Limits{}, nil, refusals, log),
			Metrics:   metrics.NewHTTP(reg),
			Refusals:  refusals,
			Logger:    log,
			Authority: testAuthority,
		},
		cfg: &config.Config{Routes: routes}, reg: reg, log: log, logs: logs, tokens: tokens,
	}
	tg.admin = AdminConfig{Registry: reg, Ready: &Readiness{Keys: loadedKeys{}, Certificate: testCertificate(t, time.Now().Add(time.Hour))}}
	return tg
}

// Handler is the API handler NewHandler makes of the parts.
func (tg *testGateway) Handler() http.Handler {
	tg.t.Helper()
	h, err := NewHandler(tg.h)
	if err != nil {
		tg.t.Fatal(err)
	}
	return h
}

// AdminHandler is the admin handler NewAdminHandler makes of the parts.
func (tg *testGateway) AdminHandler() http.Handler { return NewAdminHandler(tg.admin) }

// gateway assembles a Gateway of the parts, as New does, to Serve.
func (tg *testGateway) gateway() *Gateway {
	tg.t.Helper()
	g, err := assemble(tg.cfg, tg.log, tg.h, tg.admin)
	if err != nil {
		tg.t.Fatal(err)
	}
	return g
}

// serve sends r through the gateway's API handler.
func (tg *testGateway) serve(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	tg.Handler().ServeHTTP(rec, r)
	return rec
}

// loadedKeys is a key set that has been loaded, for readiness.
type loadedKeys struct{}

func (loadedKeys) Ready() bool          { return true }
func (loadedKeys) FetchedAt() time.Time { return time.Now() }

// testCertificate is a gateway certificate, with the test key, valid
// until notAfter.
func testCertificate(t testing.TB, notAfter time.Time) func() *obo.Certificate {
	t.Helper()
	priv, _ := testKeys(t)
	leaf, err := pki.SelfSignedWithKey("obo-gateway", priv, notAfter.Add(-365*24*time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	c := &obo.Certificate{Chain: []*x509.Certificate{leaf}, Key: priv}
	return func() *obo.Certificate { return c }
}

// ordersRoute is a route that exchanges the token for api://orders-api.
func ordersRoute(upstream string) config.Route {
	return config.Route{
		Name: "orders", PathPrefix: "/orders", Upstream: upstream, StripPrefix: true,
		DownstreamScopes: []string{"api://orders-api/.default"},
	}
}

// request is a GET to target with "Authorization: Bearer token" ("" for none).
func request(target, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// noRequest asserts that the upstream received nothing.
func noRequest(t *testing.T, seen <-chan upstreamRequest) {
	t.Helper()
	select {
	case r := <-seen:
		t.Errorf("the upstream received a request: %+v", r)
	default:
	}
}
