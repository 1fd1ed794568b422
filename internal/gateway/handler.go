package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/cors"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
	"github.com/obo-gateway/obo-gateway/internal/urlpath"
)

// HandlerConfig is exactly what the request path uses. Every field but
// Refusals and Logger is required.
type HandlerConfig struct {
	// Routes are the configuration's routes, validated.
	Routes []config.Route
	// CORS is the browsers' cross-origin policy.
	CORS config.CORS
	// Validator checks the bearer tokens.
	Validator *auth.Validator
	// Tokens gets the downstream tokens On-Behalf-Of the users.
	Tokens TokenSource
	// Proxy makes each route's reverse proxy.
	Proxy *proxy.Proxy
	// Edge is the listener's edge: canonical paths, methods, limits,
	// body bounds.
	Edge *edge.Edge
	// Metrics are the per-route request metrics.
	Metrics *metrics.HTTP
	// Refusals count the exchanges shed; nil counts nothing.
	Refusals *metrics.Refusals
	// Logger receives the access log and the exchange failures; nil
	// discards.
	Logger *slog.Logger
	// Authority is https://<authority host>/<tenant>, for the
	// authorization_uri of the claims challenges passed to frontends.
	Authority string
	// Tracer records the request's spans; nil (tracing off) records none.
	// The validator and the proxy get theirs in their own Config.
	Tracer *tracing.Tracer
}

// NewHandler returns the API: every route, in one chi router. It owns the
// order of the middleware, which is the order a request meets them:
//
//	access log (request ID, reqlog.Writer) → server span (tracing) →
//	recover → edge (method,
//	canonical path, body deadline) → CORS (preflights end here) → route
//	table (longest prefix)
//	  → per route: route name → metrics → edge (lookalike path, in-flight
//	    limits, body bounds) → token validation (auth) → On-Behalf-Of
//	    exchange → reverse proxy (Forward: the tokens as arguments)
//	  → no route: metrics("unmatched") → 404 JSON
//
// The route table sees the canonical path the edge made, and the proxy
// forwards that same path: the upstream reads the path the table matched.
// The request context carries only the request's own data: its ID, its
// span (where OpenTelemetry keeps it, and where MSAL's calls to Entra find
// their parent) and the principal (auth); the exchange step hands the tokens to the proxy as
// arguments (proxy.RouteHandler.Forward); what the access log reports
// travels with the response writer (package reqlog).
func NewHandler(c HandlerConfig) (http.Handler, error) {
	switch {
	case c.Validator == nil, c.Tokens == nil, c.Proxy == nil, c.Edge == nil, c.Metrics == nil:
		return nil, errors.New("gateway: NewHandler needs a Validator, Tokens, a Proxy, an Edge and Metrics")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &exchanges{tokens: c.Tokens, refusals: c.Refusals, log: log, authority: c.Authority, tracer: c.Tracer}

	var table routeTable
	for _, rt := range c.Routes {
		upstream, err := url.Parse(rt.Upstream)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: upstream: %w", rt.Name, err)
		}
		pr := proxy.Route{
			Name: rt.Name, PathPrefix: rt.PathPrefix, Upstream: upstream,
			StripPrefix: rt.StripPrefix, Timeout: rt.Timeout.D(), WebSocket: rt.WebSocket, Cookies: rt.Cookies,
			Leg: proxyLeg(rt.ProxyLeg),
		}
		if len(rt.DownstreamScopes) > 0 {
			pr.ClaimsRetry = x.claimsRetry(rt)
		}
		table.add(rt.PathPrefix, chi.Chain(
			routeName(rt.Name, rt.PathPrefix),
			c.Metrics.Middleware(rt.Name),
			c.Edge.Route(edge.Route{
				Name: rt.Name, Stricter: stricterPrefixes(c.Routes, rt.PathPrefix), MaxInFlight: rt.MaxInFlight,
				MaxBodyBytes: int64(rt.MaxBodyBytes), BodyTimeout: rt.BodyTimeout.D(),
			}),
			auth.Middleware(c.Validator, rt.Policy(), log),
		).Handler(x.forward(rt, c.Proxy.Handler(pr))))
	}
	table.unmatched = c.Metrics.Middleware("unmatched")(http.HandlerFunc(proxy.NotFound))
	return chi.Chain(
		// The access log wraps the recoverer so that it logs the 500 the
		// recoverer answers to a panic, not the status nobody wrote.
		reqlog.Middleware(log), tracing.Middleware(c.Tracer), recoverer(log), c.Edge.Middleware,
		cors.Middleware(cors.Config{
			AllowedOrigins: c.CORS.AllowedOrigins,
			AllowedHeaders: c.CORS.AllowedHeaders,
			MaxAge:         c.CORS.MaxAge.D(),
		}),
	).Handler(&table), nil
}

// routeTable sends a request to the route with the longest prefix of its
// path, at a segment boundary (urlpath.HasPrefix: /orders matches /orders
// and /orders/1, not /ordersx), compared on the canonical escaped path the
// edge made: the one the proxy forwards. A table of prefixes rather than a
// router's pattern tree: the gateway routes on prefixes only, with the one
// function the edge and the configuration use to compare them, and it
// copies no request to do so.
type routeTable struct {
	routes    []tableRoute // longest prefix first
	unmatched http.Handler
}

type tableRoute struct {
	prefix  string
	handler http.Handler
}

func (t *routeTable) add(prefix string, h http.Handler) {
	t.routes = append(t.routes, tableRoute{prefix: prefix, handler: h})
	slices.SortStableFunc(t.routes, func(a, b tableRoute) int {
		return len(strings.TrimSuffix(b.prefix, "/")) - len(strings.TrimSuffix(a.prefix, "/"))
	})
}

func (t *routeTable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	for i := range t.routes {
		if urlpath.HasPrefix(path, t.routes[i].prefix) {
			t.routes[i].handler.ServeHTTP(w, r)
			return
		}
	}
	t.unmatched.ServeHTTP(w, r)
}

// stricterPrefixes are the prefixes of the routes nested under prefix: the
// router sends their paths there, not to prefix's route.
func stricterPrefixes(routes []config.Route, prefix string) []string {
	var out []string
	for _, o := range routes {
		if o.PathPrefix != prefix && urlpath.HasPrefix(o.PathPrefix, prefix) {
			out = append(out, o.PathPrefix)
		}
	}
	return out
}

// routeName records the matched route for the access log, and on the
// server span (its name becomes "<method> <prefix>", http.route the prefix).
func routeName(name, prefix string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqlog.From(w).SetRoute(name)
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
				span.SetName(tracing.Method(r.Method) + " " + prefix)
				span.SetAttributes(semconv.HTTPRoute(prefix), tracing.AttrRoute.String(name))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// recoverer turns a panic into a 500 JSON answer and a log line, except
// http.ErrAbortHandler, which the reverse proxy uses to abort a response.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if rec := recover(); rec != nil {
					if rec == http.ErrAbortHandler {
						panic(rec)
					}
					log.ErrorContext(r.Context(), "panic serving request", "request_id", reqid.FromContext(r.Context()), "panic", rec)
					apierror.Write(w, r, http.StatusInternalServerError, "internal_error", "the gateway failed to answer; quote the request_id")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// proxyLeg is the proxy's leg for routes[].proxy_leg.
func proxyLeg(s string) proxy.Leg {
	switch s {
	case "fast":
		return proxy.LegFast
	case "standard":
		return proxy.LegStandard
	}
	return proxy.LegAuto
}
