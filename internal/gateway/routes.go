package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/cors"
	"github.com/obo-gateway/obo-gateway/internal/edge"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/urlpath"
)

// Handler is the API: every route of the configuration, in one place.
//
//	request ID and access log → recover → edge (method, canonical path, body
//	deadline) → CORS (preflights end here)
//	  → per route: metrics → edge (lookalike path, in-flight limits, body
//	    bounds) → token validation (auth) → OBO exchange → reverse proxy
//	unknown paths → 404 JSON
//
// The router sees the canonical path the edge made, and the proxy forwards
// that same path: the upstream reads the path the router matched.
func (g *Gateway) Handler() http.Handler {
	r := chi.NewRouter()
	// The access log wraps the recoverer so that it logs the 500 the
	// recoverer answers to a panic, not the status nobody wrote.
	r.Use(g.accessLog, g.recoverer, g.edge.Middleware)
	r.Use(cors.Middleware(cors.Config{
		AllowedOrigins: g.cfg.CORS.AllowedOrigins,
		AllowedHeaders: g.cfg.CORS.AllowedHeaders,
		MaxAge:         g.cfg.CORS.MaxAge.D(),
	}))
	for _, rt := range g.cfg.Routes {
		h := g.proxy.Handler(proxy.Route{
			Name: rt.Name, PathPrefix: rt.PathPrefix, Upstream: mustParseURL(rt.Upstream),
			StripPrefix: rt.StripPrefix, Timeout: rt.Timeout.D(), WebSocket: rt.WebSocket, Cookies: rt.Cookies,
		})
		pol := rt.Policy()
		limits := g.edge.Route(edge.Route{
			Name: rt.Name, Stricter: stricterPrefixes(g.cfg.Routes, rt.PathPrefix), MaxInFlight: rt.MaxInFlight,
			MaxBodyBytes: int64(rt.MaxBodyBytes), BodyTimeout: routeBodyTimeout(g.cfg.Limits, rt),
		})
		r.Group(func(r chi.Router) {
			r.Use(g.routeName(rt.Name), g.httpm.Middleware(rt.Name), limits, auth.Middleware(g.validator, pol, g.log), g.exchange(rt))
			r.Handle(rt.PathPrefix, h)
			if rt.PathPrefix == "/" {
				r.Handle("/*", h)
			} else {
				r.Handle(rt.PathPrefix+"/*", h)
			}
		})
	}
	unmatched := g.httpm.Middleware("unmatched")
	r.NotFound(unmatched(http.HandlerFunc(proxy.NotFound)).ServeHTTP)
	r.MethodNotAllowed(unmatched(http.HandlerFunc(proxy.NotFound)).ServeHTTP)
	return r
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

// routeBodyTimeout is the route's own body timeout, or 0 when it is the
// edge's (limits.body_timeout), which is set already.
func routeBodyTimeout(l config.Limits, rt config.Route) time.Duration {
	if rt.BodyTimeout == l.BodyTimeout {
		return 0
	}
	return rt.BodyTimeout.D()
}

// AdminHandler serves /metrics, /healthz (the process is alive) and /readyz
// (signing keys loaded, certificate valid, not draining).
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(g.reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Ready(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": err.Error()})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready", "signing_keys_fetched_at": g.keys.FetchedAt().UTC().Format(time.RFC3339)})
	})
	if g.cfg.AdminPprof {
		// Registered on this mux only: the package's init also registers on
		// http.DefaultServeMux, which the gateway never serves.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// routeName records the matched route for the access log.
func (g *Gateway) routeName(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			infoFrom(r.Context()).route = name
			next.ServeHTTP(w, r)
		})
	}
}
