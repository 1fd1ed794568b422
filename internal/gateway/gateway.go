// Package gateway wires the gateway together: it builds the token
// validator, the On-Behalf-Of exchanger and the reverse proxy from the
// configuration, and serves the API and admin listeners.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2"
)

// Deps are what the gateway takes from its caller rather than making.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// TokenSource gets downstream tokens; *obo.Exchanger is one.
type TokenSource interface {
	Exchange(ctx context.Context, req obo.Request) (obo.Token, error)
}

// Gateway is a configured gateway, ready to serve.
type Gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	reg       *prometheus.Registry
	now       func() time.Time
	keys      *auth.RemoteKeySet
	validator *auth.Validator
	tokens    TokenSource
	exchanger *obo.Exchanger   // nil in tests that fake the token source
	cert      *obo.Certificate // the certificate loaded at start-up
	proxy     *proxy.Proxy
	httpm     *metrics.HTTP
	refusals  *metrics.Refusals
	edge      *edge.Edge
	authority string // https://host/<tenant>, for claims challenges

	draining atomic.Bool
	closers  []func() error // released when Serve returns
}

// New builds a gateway: it loads the certificate, reads the tenant's OIDC
// discovery (failing if Entra cannot be reached), and starts loading the
// signing keys in the background; the keys are refreshed until ctx ends.
func New(ctx context.Context, cfg *config.Config, deps Deps) (*Gateway, error) {
	g := &Gateway{cfg: cfg, log: deps.Logger, reg: deps.Registry, now: deps.Now}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.reg == nil {
		g.reg = prometheus.NewRegistry()
	}
	if g.now == nil {
		g.now = time.Now
	}
	e := cfg.Entra
	cert, err := clients.Certificate(e)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.cert = cert
	if leaf := cert.Leaf(); g.now().After(leaf.NotAfter) {
		g.log.Error("the gateway certificate has expired: Entra will refuse every exchange (AADSTS700024)",
			"not_after", leaf.NotAfter, "subject", leaf.Subject.String())
	}
	entraClient, err := clients.Entra(e, nil)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	host := strings.TrimSuffix(e.AuthorityHost, "/")
	g.authority = host + "/" + e.TenantID

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := auth.Discover(dctx, entraClient, host, e.TenantID)
	if err != nil {
		return nil, fmt.Errorf("gateway: OIDC discovery of tenant %s at %s failed (check entra.tenant_id, entra.authority_host and network egress to Entra): %w", e.TenantID, host, err)
	}
	authm := auth.NewMetrics(g.reg)
	g.keys, err = auth.NewRemoteKeySet(ctx, auth.RemoteKeySetConfig{
		URL: md.JWKSURI, HTTPClient: entraClient,
		RefreshInterval: e.KeysRefreshInterval.D(), MinRefreshInterval: e.KeysMinRefreshInterval.D(),
		Logger: g.log, Metrics: authm, Now: g.now,
	})
	if err != nil {
		return nil, err
	}
	g.validator, err = auth.NewValidator(auth.ValidatorConfig{
		Keys: g.keys, Metadata: md, TenantID: e.TenantID, AllowedTenants: e.AllowedTenants,
		ClientID: e.ClientID, Audiences: e.Audiences, Leeway: e.ClockSkew.D(), Now: g.now, Metrics: authm,
		CacheBudget: int64(cfg.Cache.VerifiedTokensBudget),
	})
	if err != nil {
		return nil, err
	}
	oc := clients.OBO(e, cert, entraClient)
	oc.Metrics, oc.Logger = obo.NewMetrics(g.reg), g.log
	exchanger, err := obo.New(oc)
	if err != nil {
		return nil, err
	}
	g.exchanger = exchanger
	l2, err := g.sharedCache(cfg.Cache.Redis)
	if err != nil {
		return nil, err
	}
	lim := cfg.Limits
	g.tokens, err = tokencache.NewOBO(tokencache.OBOConfig{
		Next: exchanger, Budget: int64(cfg.Cache.MemoryBudget), RefreshMargin: cfg.Cache.RefreshMargin.D(),
		L2: l2, Metrics: tokencache.NewMetrics(g.reg), Now: g.now,
		MaxConcurrent: lim.MaxConcurrentExchanges, MaxQueued: lim.MaxQueuedExchanges, QueueTimeout: lim.ExchangeQueueTimeout.D(),
	})
	if err != nil {
		return nil, err
	}
	g.refusals = metrics.NewRefusals(g.reg, edge.RefusalReasons())
	g.edge = newEdge(lim, g.reg, g.refusals, g.log)
	g.proxy = proxy.New(proxy.Config{
		Transport:      clients.Upstream(nil),
		TrustedProxies: cfg.TrustedProxyPrefixes(),
		Logger:         g.log,
		Metrics:        proxy.NewMetrics(g.reg),
		Refusals:       g.refusals,
	})
	g.httpm = metrics.NewHTTP(g.reg)
	return g, nil
}

// newEdge builds the edge of the API listener from the limits; zero limits
// bound nothing. reg may be nil (no connection gauge).
func newEdge(l config.Limits, reg prometheus.Registerer, refusals *metrics.Refusals, log *slog.Logger) *edge.Edge {
	return edge.New(edge.Config{
		BodyTimeout: l.BodyTimeout.D(), MaxInFlight: l.MaxInFlight, MaxConnections: l.MaxConnections,
		Refusals: refusals, Registerer: reg, Logger: log,
	})
}

// Ready reports why the gateway cannot serve yet, or nil.
func (g *Gateway) Ready() error {
	var errs []error
	if g.draining.Load() {
		errs = append(errs, errors.New("shutting down"))
	}
	if !g.keys.Ready() {
		errs = append(errs, errors.New("signing keys not loaded yet"))
	}
	cert := g.cert
	if g.exchanger != nil {
		cert = g.exchanger.Certificate() // rotated without restart
	}
	if leaf := cert.Leaf(); g.now().After(leaf.NotAfter) {
		errs = append(errs, fmt.Errorf("the gateway certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return errors.Join(errs...)
}

func mustParseURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		// Validated by config; reaching here is a programmer error.
		panic(fmt.Sprintf("gateway: upstream %q: %v", s, err))
	}
	return u
}

// sharedCache builds the Redis cache shared by replicas, or returns nil when
// none is configured. It does not contact Redis: the gateway starts, and
// serves from its own cache, while Redis is down.
func (g *Gateway) sharedCache(r *config.Redis) (tokencache.L2, error) {
	if r == nil {
		return nil, nil
	}
	rc, err := clients.Redis(r)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	rc.Metrics, rc.Logger, rc.Now = redisl2.NewMetrics(g.reg), g.log.With("component", "redis"), g.now
	c, err := redisl2.New(rc)
	if err != nil {
		return nil, fmt.Errorf("gateway: cache.redis: %w", err)
	}
	g.closers = append(g.closers, c.Close)
	g.log.Info("shared token cache (Redis) configured", "address", r.Address, "tls", r.TLS, "keys", rc.Keys)
	return c, nil
}
