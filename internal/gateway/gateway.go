// Package gateway is the composition root: [New] turns the configuration
// into the gateway's parts (the clients of package clients, the token
// validator, the On-Behalf-Of exchanger and its caches, the edge, the
// reverse proxy, the metrics), [NewHandler] assembles the request path from
// them, and [Gateway.Serve] serves the API and admin listeners.
//
// Everything New makes, it makes once, here, and hands to whoever uses it:
// no package reaches for a client of its own.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/fedcred"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
	"github.com/obo-gateway/obo-gateway/internal/tokencache/redisl2"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// Deps are what the gateway takes from its caller rather than making.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Version is the gateway's version, the spans' service.version.
	Version string
}

// TokenSource gets downstream tokens; *obo.Exchanger is one, and
// *tokencache.OBO, the caches in front of it, the one the gateway uses.
type TokenSource interface {
	Exchange(ctx context.Context, req obo.Request) (obo.Token, error)
}

// Gateway is a configured gateway, ready to serve: its API and admin
// handlers and what serving them needs.
type Gateway struct {
	cfg     *config.Config // listeners, TLS, server limits, shutdown grace
	log     *slog.Logger
	api     http.Handler
	admin   http.Handler
	edge    *edge.Edge // the API listener's connection limit
	ready   *Readiness
	closers []func() error // released when Serve returns
}

// assemble makes a Gateway of its parts: the API handler of h, the admin
// handler of a. New calls it with the real parts, tests with fakes.
func assemble(cfg *config.Config, log *slog.Logger, h HandlerConfig, a AdminConfig) (*Gateway, error) {
	api, err := NewHandler(h)
	if err != nil {
		return nil, err
	}
	return &Gateway{cfg: cfg, log: log, api: api, admin: NewAdminHandler(a), edge: h.Edge, ready: a.Ready}, nil
}

// New builds a gateway: it loads the certificate, reads the tenant's OIDC
// discovery (failing if Entra cannot be reached), and starts, in the
// background, loading the signing keys (refreshed until ctx ends) and
// probing the token endpoint (readiness waits for both).
// It contacts nothing else: the shared cache and the upstreams are reached
// when requests need them.
func New(ctx context.Context, cfg *config.Config, deps Deps) (_ *Gateway, err error) {
	log, reg, now := deps.Logger, deps.Registry, deps.Now
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if now == nil {
		now = time.Now
	}
	e := cfg.Entra

	// Tracing, when an OTLP endpoint is configured: then every log line
	// written with a request's context carries its trace and span IDs.
	tc := cfg.Tracing.Tracer(deps.Version)
	tc.Logger, tc.Metrics = log, tracing.NewMetrics(reg)
	tracer, err := tracing.New(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
		}
	}()
	if tracer.On() {
		log = slog.New(tracing.LogHandler(log.Handler()))
		closers = append(closers, func() error {
			// Export what is buffered, within the pod's termination grace.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return tracer.Shutdown(sctx)
		})
	}

	// The clients, each made once (package clients, as doctor and inspect
	// make them).
	var cert *obo.Certificate
	assertion, err := clients.Assertion(e, fedcred.NewMetrics(reg))
	if err != nil {
		return nil, fmt.Errorf("gateway: entra.credential %s: %w", e.Credential, err)
	}
	if assertion == nil {
		if cert, err = clients.Certificate(e); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		if leaf := cert.Leaf(); now().After(leaf.NotAfter) {
			log.Error("the gateway certificate has expired: Entra will refuse every exchange (AADSTS700024)",
				"not_after", leaf.NotAfter, "subject", leaf.Subject.String())
		}
	}
	entra, err := clients.Entra(e, nil)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// Calls to Entra made for a request (MSAL's) are its client spans.
	entra.Transport = tracing.Transport(tracer, entra.Transport)
	// Validation: discovery now, the keys in the background.
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := auth.Discover(dctx, entra, e.AuthorityHost, e.TenantID)
	if err != nil {
		return nil, fmt.Errorf("gateway: OIDC discovery of tenant %s at %s failed (check entra.tenant_id, entra.authority_host and network egress to Entra): %w", e.TenantID, e.AuthorityHost, err)
	}
	authm := auth.NewMetrics(reg)
	keys, err := auth.NewRemoteKeySet(ctx, auth.RemoteKeySetConfig{
		URL: md.JWKSURI, HTTPClient: entra,
		RefreshInterval: e.KeysRefreshInterval.D(), MinRefreshInterval: e.KeysMinRefreshInterval.D(),
		Logger: log, Metrics: authm, Now: now,
	})
	if err != nil {
		return nil, err
	}
	validator, err := auth.NewValidator(auth.ValidatorConfig{
		Keys: keys, Metadata: md, TenantID: e.TenantID, AllowedTenants: e.AllowedTenants,
		ClientID: e.ClientID, Audiences: e.Audiences, Leeway: e.ClockSkew.D(), Now: now, Metrics: authm,
		CacheBudget: int64(cfg.Cache.VerifiedTokensBudget), Tracer: tracer,
	})
	if err != nil {
		return nil, err
	}

	// Exchange: MSAL behind the gateway's caches and its exchange limit,
	// watched for a token endpoint the gateway cannot reach.
	oc := clients.OBO(e, cert, assertion, entra)
	oc.Metrics, oc.Logger = obo.NewMetrics(reg), log
	exchanger, err := obo.New(oc)
	if err != nil {
		return nil, err
	}
	tokenURL := md.TokenEndpoint
	if tokenURL == "" {
		tokenURL = e.AuthorityHost + "/" + e.TenantID + "/oauth2/v2.0/token"
	}
	endpoint := newTokenEndpoint(ctx, tokenURL, entra, log, now, reg)
	endpoint.start()
	var l2 tokencache.L2
	if r := cfg.Cache.Redis; r != nil {
		rc, err := clients.Redis(r)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		rc.Metrics, rc.Logger, rc.Now = redisl2.NewMetrics(reg), log.With("component", "redis"), now
		// Not contacted here: the gateway starts, and serves from its own
		// cache, while Redis is down.
		c, err := redisl2.New(rc)
		if err != nil {
			return nil, fmt.Errorf("gateway: cache.redis: %w", err)
		}
		closers = append(closers, c.Close)
		l2 = c
		log.Info("shared token cache (Redis) configured", "address", r.Address, "tls", r.TLS, "keys", rc.Keys)
	}
	lim := cfg.Limits
	tokens, err := tokencache.NewOBO(tokencache.OBOConfig{
		Next: watchedExchanges{next: exchanger, endpoint: endpoint}, Budget: int64(cfg.Cache.MemoryBudget), RefreshMargin: cfg.Cache.RefreshMargin.D(),
		L2: l2, Metrics: tokencache.NewMetrics(reg), Now: now,
		MaxConcurrent: lim.MaxConcurrentExchanges, MaxQueued: lim.MaxQueuedExchanges, QueueTimeout: lim.ExchangeQueueTimeout.D(),
	})
	if err != nil {
		return nil, err
	}

	refusals := metrics.NewRefusals(reg, edge.RefusalReasons())
	g, err := assemble(cfg, log, HandlerConfig{
		Routes:    cfg.Routes,
		CORS:      cfg.CORS,
		Validator: validator,
		Tokens:    tokens,
		Proxy: proxy.New(proxy.Config{
			Transport:      clients.Upstream(nil),
			TrustedProxies: cfg.TrustedProxyPrefixes(),
			Logger:         log,
			Metrics:        proxy.NewMetrics(reg),
			Refusals:       refusals,
			Tracer:         tracer,
		}),
		Edge:      newEdge(lim, reg, refusals, log),
		Metrics:   metrics.NewHTTP(reg),
		Refusals:  refusals,
		Logger:    log,
		Authority: e.AuthorityHost + "/" + e.TenantID,
		Tracer:    tracer,
	}, AdminConfig{
		Registry: reg,
		Ready:    &Readiness{Keys: keys, Certificate: exchanger.Certificate, Credential: credentialCheck(assertion, now), TokenEndpoint: endpoint, Now: now},
		Pprof:    cfg.AdminPprof,
	})
	if err != nil {
		return nil, err
	}
	g.closers = closers
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

// Handler is the API handler.
func (g *Gateway) Handler() http.Handler { return g.api }

// AdminHandler is the admin handler: /metrics, /healthz, /readyz.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

// Ready reports why the gateway cannot serve yet, or nil.
func (g *Gateway) Ready() error { return g.ready.Err() }
