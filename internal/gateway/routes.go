package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/cors"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
)

// Handler is the API: every route of the configuration, in one place.
//
//	request ID and access log → recover → CORS (preflights end here)
//	  → per route: metrics → token validation (auth) → OBO exchange → reverse proxy
//	unknown paths → 404 JSON
func (g *Gateway) Handler() http.Handler {
	r := chi.NewRouter()
	// The access log wraps the recoverer so that it logs the 500 the
	// recoverer answers to a panic, not the status nobody wrote.
	r.Use(g.accessLog, g.recoverer)
	r.Use(cors.Middleware(cors.Config{
		AllowedOrigins: g.cfg.CORS.AllowedOrigins,
		AllowedHeaders: g.cfg.CORS.AllowedHeaders,
		MaxAge:         g.cfg.CORS.MaxAge.D(),
	}))
	for _, rt := range g.cfg.Routes {
		h := g.proxy.Handler(proxy.Route{
			Name: rt.Name, PathPrefix: rt.PathPrefix, Upstream: mustParseURL(rt.Upstream),
			StripPrefix: rt.StripPrefix, Timeout: rt.Timeout.D(),
		})
		pol := rt.Policy()
		r.Group(func(r chi.Router) {
			r.Use(g.routeName(rt.Name), g.httpm.Middleware(rt.Name), auth.Middleware(g.validator, pol, g.log), g.exchange(rt))
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
