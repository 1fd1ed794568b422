package opsmonitor

// The gateway environment: the local tenant (fakeentra over HTTPS), an
// upstream, a Redis for the shared cache, and the gateway configured with
// one route per situation an operator watches for, all on loopback; and a
// traffic driver that sends each situation's request.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/config/configtest"
	"github.com/obo-gateway/obo-gateway/internal/demo"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/gateway"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2/redistest"
)

// Bounds on waits. They only bound: nothing waits for them to pass.
const (
	startTimeout = 30 * time.Second // the gateway listening and ready
	stopTimeout  = 30 * time.Second // the gateway returning after its context ends
	httpTimeout  = 15 * time.Second // one request through the gateway
	roundPause   = 100 * time.Millisecond
)

// env is a running gateway and what surrounds it.
type env struct {
	tenant   *fakeentra.Server
	apiURL   string // http://127.0.0.1:port
	adminURL string // http://127.0.0.1:port
	client   *http.Client
	tokens   map[string]string // by name: alice, bob, expired, forged
	redis    string            // what the shared cache is: "redis-server", "an unreachable address" or "none"
	// tokenFile is the workload identity's token file of a gateway started
	// by startFederatedEnv; "" for one with a certificate.
	tokenFile string
}

// startEnv starts the environment with a gateway that authenticates with
// its certificate; everything stops when the test ends.
func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, false, nil)
}

// startFederatedEnv starts the environment with a gateway without a
// certificate: entra.credential workload_identity, with a token file of
// the tenant's local cluster issuer for the service account
// obo-gateway/obo-gateway (which the demo's gateway app trusts), and no
// shared cache.
func startFederatedEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, true, nil)
}

// startEnvWith starts the environment; edit, when not nil, changes the
// gateway's configuration before it starts.
func startEnvWith(t *testing.T, federated bool, edit func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	tenant := fakeentratest.Start(t, fakeentra.Config{Dir: dir})

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/failing") {
			http.Error(w, `{"error":"the upstream failed"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)

	e := &env{tenant: tenant, client: &http.Client{Timeout: httpTimeout}, redis: "none"}
	var gwCfg *config.Config
	if federated {
		gwCfg = gatewayConfig(tenant.Info(), up.URL, testkit.ClosedAddr(t), "")
		e.tokenFile = filepath.Join(dir, "azure-identity-token")
		e.writeServiceAccountToken(t, fakeentra.ServiceAccountTokenOptions{})
		gwCfg.Entra.Credential = config.CredentialWorkloadIdentity
		gwCfg.Entra.Certificate = config.Certificate{}
		gwCfg.Entra.WorkloadIdentity.TokenFile = e.tokenFile
	} else {
		gwCfg = gatewayConfig(tenant.Info(), up.URL, testkit.ClosedAddr(t), e.sharedCache(t))
	}
	if edit != nil {
		edit(gwCfg)
	}
	cfgPath := configtest.Write(t, gwCfg)
	cfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the test's configuration: %v", err)
	}
	reg := metrics.NewRegistry("opsmonitor-test")
	gw, err := gateway.New(ctx, cfg, gateway.Deps{Logger: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ready := make(chan gateway.Addrs, 1)
	errc := make(chan error, 1)
	go func() { errc <- gw.Serve(ctx, func(a gateway.Addrs) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(stopTimeout):
			t.Errorf("the gateway did not stop within %v", stopTimeout)
		}
	})
	select {
	case a := <-ready:
		e.apiURL, e.adminURL = "http://"+a.API, "http://"+a.Admin
	case err := <-errc:
		t.Fatalf("gateway.Serve: %v", err)
	case <-time.After(startTimeout):
		t.Fatalf("the gateway did not listen within %v", startTimeout)
	}
	deadline := time.Now().Add(startTimeout)
	for gw.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway is not ready after %v: %v", startTimeout, gw.Ready())
		}
		time.Sleep(20 * time.Millisecond) // polling readiness
	}

	e.tokens = map[string]string{}
	for name, tok := range map[string]struct {
		user string
		opt  fakeentra.UserTokenOptions
	}{
		"alice":   {"alice@contoso.test", fakeentra.UserTokenOptions{}},
		"bob":     {"bob@contoso.test", fakeentra.UserTokenOptions{}},
		"expired": {"alice@contoso.test", fakeentra.UserTokenOptions{Lifetime: -time.Hour}},
	} {
		s, err := tenant.UserToken(tok.user, demo.Scope, tok.opt)
		if err != nil {
			t.Fatalf("token %s: %v", name, err)
		}
		e.tokens[name] = s
	}
	// A token whose signature does not verify: another token's signature.
	a, b := strings.Split(e.tokens["alice"], "."), strings.Split(e.tokens["bob"], ".")
	e.tokens["forged"] = a[0] + "." + a[1] + "." + b[2]
	return e
}

// sharedCache returns the Redis address for cache.redis: a redis-server of
// the test's own where one is installed (and always under CI, which installs
// it), else a closed port. Either way the shared cache's metrics exist.
func (e *env) sharedCache(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("CI") == "true" {
		addr, _ := redistest.Start(t)
		e.redis = "redis-server"
		return addr
	}
	e.redis = "an unreachable address (redis-server is not installed)"
	return testkit.ClosedAddr(t)
}

// writeServiceAccountToken writes a service-account token of the tenant's
// local cluster issuer for obo-gateway/obo-gateway to the token file, as
// the kubelet does: a new file renamed over the old.
func (e *env) writeServiceAccountToken(t *testing.T, opt fakeentra.ServiceAccountTokenOptions) {
	t.Helper()
	tok, err := e.tenant.ServiceAccountToken("", "obo-gateway", "obo-gateway", opt)
	if err != nil {
		t.Fatalf("ServiceAccountToken: %v", err)
	}
	e.writeTokenFile(t, tok)
}

// writeTokenFile replaces the token file's content.
func (e *env) writeTokenFile(t *testing.T, content string) {
	t.Helper()
	tmp := e.tokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.tokenFile); err != nil {
		t.Fatal(err)
	}
}

// gatewayConfig configures the gateway against the tenant: the demo's three
// routes and one route per further situation the dashboard and the alerts
// show. Routes that must exchange on every request use scopes no other
// route uses, so that no cached token answers them. An empty redisAddr
// configures no shared cache.
func gatewayConfig(fe fakeentra.Info, upstream, closedAddr, redisAddr string) *config.Config {
	gw := fe.Apps["gateway"]
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	user := []string{"access_as_user"}
	var redis *config.Redis
	if redisAddr != "" {
		redis = &config.Redis{
			Address:        redisAddr,
			EncryptionKeys: "k1:" + base64.StdEncoding.EncodeToString(key),
		}
	}
	return &config.Config{
		Listen:        "127.0.0.1:0",
		AdminListen:   "127.0.0.1:0",
		ShutdownGrace: config.Duration(time.Second),
		LogLevel:      "error",
		Entra: config.Entra{
			TenantID:          fe.TenantID,
			ClientID:          gw.ClientID,
			AuthorityHost:     fe.Authority[:strings.LastIndex(fe.Authority, "/")],
			InstanceDiscovery: new(false),
			Audiences:         gw.IdentifierURIs,
			CAFile:            fe.CAFile,
			Certificate:       config.Certificate{Path: gw.CertificateFile, KeyPath: gw.KeyFile},
		},
		Cache: config.Cache{Redis: redis},
		Routes: []config.Route{
			// 200, then answered from the token cache.
			{Name: "orders", PathPrefix: "/orders", Upstream: upstream + "/orders", StripPrefix: true,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: user},
			// interaction_required (MFA): 401 with a claims challenge.
			{Name: "hr", PathPrefix: "/hr", Upstream: upstream + "/hr",
				DownstreamScopes: []string{"api://hr-api/.default"}, RequiredScopes: user},
			// consent_required: 403.
			{Name: "inventory", PathPrefix: "/inventory", Upstream: upstream + "/inventory",
				DownstreamScopes: []string{"api://inventory-api/.default"}, RequiredScopes: user},
			// gateway_config (AADSTS500011, no such API in the tenant): 502.
			{Name: "config-error", PathPrefix: "/config-error", Upstream: upstream + "/config-error",
				DownstreamScopes: []string{"api://no-such-api/.default"}, RequiredScopes: user},
			// The upstream answers 500.
			{Name: "failing", PathPrefix: "/failing", Upstream: upstream,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: user},
			// Nothing listens upstream: 502, upstream error "connect".
			{Name: "down", PathPrefix: "/down", Upstream: "http://" + closedAddr,
				DownstreamScopes: []string{"api://orders-api/Orders.Read"}, RequiredScopes: user},
			// Entra answers 429: unavailable http_429, 503.
			{Name: "throttled", PathPrefix: "/throttled", Upstream: upstream + "/throttled",
				DownstreamScopes: []string{"api://orders-api/Orders.Write"}, RequiredScopes: user},
			// Entra answers 503: unavailable http_503, 503.
			{Name: "entra-outage", PathPrefix: "/entra-outage", Upstream: upstream + "/entra-outage",
				DownstreamScopes: []string{"api://orders-api/.default"}, RequiredScopes: user},
		},
	}
}

// scenario is one request of a traffic round and the status it must get.
type scenario struct {
	name  string
	path  string
	token string           // a key of env.tokens; "" sends none
	fault *fakeentra.Fault // injected into the tenant just before the request
	want  int
}

var scenarios = []scenario{
	{name: "success", path: "/orders/items", token: "alice", want: http.StatusOK},
	{name: "success, another user", path: "/orders/items", token: "bob", want: http.StatusOK},
	{name: "no token", path: "/orders/items", want: http.StatusUnauthorized},
	{name: "expired token", path: "/orders/items", token: "expired", want: http.StatusUnauthorized},
	{name: "forged token", path: "/orders/items", token: "forged", want: http.StatusUnauthorized},
	{name: "interaction_required", path: "/hr/payslips", token: "alice", want: http.StatusUnauthorized},
	{name: "consent_required", path: "/inventory/stock", token: "alice", want: http.StatusForbidden},
	{name: "gateway_config", path: "/config-error/x", token: "alice", want: http.StatusBadGateway},
	{name: "upstream 500", path: "/failing/x", token: "alice", want: http.StatusInternalServerError},
	{name: "upstream down", path: "/down/x", token: "alice", want: http.StatusBadGateway},
	{name: "Entra throttles", path: "/throttled/x", token: "alice", want: http.StatusServiceUnavailable,
		fault: &fakeentra.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 1, For: 10 * time.Second}},
	{name: "Entra unavailable", path: "/entra-outage/x", token: "alice", want: http.StatusServiceUnavailable,
		fault: &fakeentra.Fault{Status: http.StatusServiceUnavailable, Count: 1, For: 10 * time.Second}},
	{name: "no route", path: "/nowhere", want: http.StatusNotFound},
}

// statuses records what each scenario got.
type statuses struct {
	mu     sync.Mutex
	got    map[string]map[int]int // scenario → status (0: transport error) → count
	errs   map[string]string      // scenario → last transport error
	rounds int
	round  chan struct{} // closed and replaced after each round
}

func newStatuses() *statuses {
	return &statuses{got: map[string]map[int]int{}, errs: map[string]string{}, round: make(chan struct{})}
}

func (s *statuses) record(name string, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got[name] == nil {
		s.got[name] = map[int]int{}
	}
	s.got[name][status]++
	if err != nil {
		s.errs[name] = err.Error()
	}
}

func (s *statuses) roundDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds++
	close(s.round)
	s.round = make(chan struct{})
}

// check reports each scenario that never got its status, and logs the
// statuses other than the expected one.
func (s *statuses) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range scenarios {
		got := s.got[sc.name]
		if got[sc.want] == 0 {
			t.Errorf("scenario %q (%s): never answered %d; got %s %s", sc.name, sc.path, sc.want, countsString(got), s.errs[sc.name])
		} else if len(got) > 1 {
			t.Logf("scenario %q (%s): answered %s (want %d)", sc.name, sc.path, countsString(got), sc.want)
		}
	}
}

func countsString(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", m[k], k))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// round sends every scenario's request once, one after the other (a
// fault injected for one request is consumed by that request's exchange).
func (e *env) round(ctx context.Context, st *statuses) {
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			return
		}
		if sc.fault != nil {
			if err := e.tenant.InjectFault(*sc.fault); err != nil {
				st.record(sc.name, 0, err)
				continue
			}
		}
		status, err := e.get(ctx, sc.path, e.tokens[sc.token])
		if ctx.Err() != nil {
			return
		}
		st.record(sc.name, status, err)
	}
	st.roundDone()
}

// drive sends rounds until the test ends, and returns their statuses.
func (e *env) drive(t *testing.T) *statuses {
	t.Helper()
	st := newStatuses()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pause := time.NewTicker(roundPause)
		defer pause.Stop()
		for ctx.Err() == nil {
			e.round(ctx, st)
			select {
			case <-ctx.Done():
			case <-pause.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return st
}

// waitRounds waits until n rounds have been sent.
func (s *statuses) waitRounds(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		rounds, next := s.rounds, s.round
		s.mu.Unlock()
		if rounds >= n {
			return
		}
		select {
		case <-next:
		case <-timer.C:
			t.Fatalf("the traffic driver sent %d rounds in %v, want %d", rounds, timeout, n)
		}
	}
}

func (e *env) get(ctx context.Context, path, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.apiURL+path, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// scrape returns the admin listener's /metrics.
func (e *env) scrape(t *testing.T) string {
	t.Helper()
	resp, err := e.client.Get(e.adminURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d, %v", resp.StatusCode, err)
	}
	return string(body)
}
