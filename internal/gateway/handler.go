package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/cors"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
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
}

// NewHandler returns the API: every route, in one chi router. It owns the
// order of the middleware, which is the order a request meets them:
//
//	access log (request ID, reqlog.Writer) → recover → edge (method,
//	canonical path, body deadline) → CORS (preflights end here) → router
//	  → per route: route name → metrics → edge (lookalike path, in-flight
//	    limits, body bounds) → token validation (auth) → On-Behalf-Of
//	    exchange → reverse proxy
//	  → no route: metrics("unmatched") → 404 JSON
//
// The router sees the canonical path the edge made, and the proxy forwards
// that same path: the upstream reads the path the router matched. The
// request context carries only the request's own data: its ID, the
// principal (auth) and the tokens for the proxy (proxy.Forward); what the
// access log reports travels with the response writer (package reqlog).
func NewHandler(c HandlerConfig) (http.Handler, error) {
	switch {
	case c.Validator == nil, c.Tokens == nil, c.Proxy == nil, c.Edge == nil, c.Metrics == nil:
		return nil, errors.New("gateway: NewHandler needs a Validator, Tokens, a Proxy, an Edge and Metrics")
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &exchanges{tokens: c.Tokens, refusals: c.Refusals, log: log, authority: c.Authority}

	r := chi.NewRouter()
	// The access log wraps the recoverer so that it logs the 500 the
	// recoverer answers to a panic, not the status nobody wrote.
	r.Use(reqlog.Middleware(log), recoverer(log), c.Edge.Middleware)
	r.Use(cors.Middleware(cors.Config{
		AllowedOrigins: c.CORS.AllowedOrigins,
		AllowedHeaders: c.CORS.AllowedHeaders,
		MaxAge:         c.CORS.MaxAge.D(),
	}))
	for _, rt := range c.Routes {
		upstream, err := url.Parse(rt.Upstream)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: upstream: %w", rt.Name, err)
		}
		pr := proxy.Route{
			Name: rt.Name, PathPrefix: rt.PathPrefix, Upstream: upstream,
			StripPrefix: rt.StripPrefix, Timeout: rt.Timeout.D(), WebSocket: rt.WebSocket, Cookies: rt.Cookies,
		}
		if len(rt.DownstreamScopes) > 0 {
			pr.ClaimsRetry = x.claimsRetry(rt)
		}
		h := c.Proxy.Handler(pr)
		chain := chi.Chain(
			routeName(rt.Name),
			c.Metrics.Middleware(rt.Name),
			c.Edge.Route(edge.Route{
				Name: rt.Name, Stricter: stricterPrefixes(c.Routes, rt.PathPrefix), MaxInFlight: rt.MaxInFlight,
				MaxBodyBytes: int64(rt.MaxBodyBytes), BodyTimeout: rt.BodyTimeout.D(),
			}),
			auth.Middleware(c.Validator, rt.Policy(), log),
		).Handler(x.forward(rt, h))
		r.Handle(rt.PathPrefix, chain)
		if rt.PathPrefix == "/" {
			r.Handle("/*", chain)
		} else {
			r.Handle(rt.PathPrefix+"/*", chain)
		}
	}
	unmatched := c.Metrics.Middleware("unmatched")(http.HandlerFunc(proxy.NotFound))
	r.NotFound(unmatched.ServeHTTP)
	r.MethodNotAllowed(unmatched.ServeHTTP)
	return r, nil
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

// routeName records the matched route for the access log.
func routeName(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqlog.From(w).SetRoute(name)
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
					log.Error("panic serving request", "request_id", reqid.FromContext(r.Context()), "panic", rec)
					apierror.Write(w, r, http.StatusInternalServerError, "internal_error", "the gateway failed to answer; quote the request_id")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
