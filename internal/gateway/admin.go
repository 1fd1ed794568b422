package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/clients"
	"github.com/obo-gateway/obo-gateway/internal/fedcred"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// AdminConfig is what the admin listener serves.
type AdminConfig struct {
	// Registry is served on /metrics.
	Registry *prometheus.Registry
	// Ready answers /readyz.
	Ready *Readiness
	// Pprof serves /debug/pprof/ (admin_pprof).
	Pprof bool
}

// KeySet is what readiness needs of the signing keys; *auth.RemoteKeySet
// is one.
type KeySet interface {
	Ready() bool
	FetchedAt() time.Time
}

// Readiness is whether the gateway can serve: its signing keys loaded, its
// certificate valid, Entra's token endpoint reachable, and not shutting
// down.
type Readiness struct {
	Keys KeySet
	// Certificate is the gateway's credential now (it is reloaded from
	// its files when they change).
	Certificate func() *obo.Certificate
	// Credential says why the gateway's federated credential cannot give
	// an assertion (its last attempt failed, or a workload identity's token
	// file is unreadable or expired now), or nil; nil is not checked.
	Credential interface{ Err() error }
	// TokenEndpoint says why Entra's token endpoint cannot be reached, or
	// nil; a nil TokenEndpoint is not checked.
	TokenEndpoint interface{ Err() error }
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	draining atomic.Bool
}

// Drain makes the gateway not ready from now on: it is shutting down.
func (r *Readiness) Drain() { r.draining.Store(true) }

// Err reports every reason the gateway cannot serve, or nil.
func (r *Readiness) Err() error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	var errs []error
	if r.draining.Load() {
		errs = append(errs, errors.New("shutting down"))
	}
	if !r.Keys.Ready() {
		errs = append(errs, errors.New("signing keys not loaded yet"))
	}
	if r.Certificate != nil {
		if c := r.Certificate(); c != nil && now().After(c.Leaf().NotAfter) {
			errs = append(errs, fmt.Errorf("the gateway certificate expired at %s", c.Leaf().NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	if r.Credential != nil {
		if err := r.Credential.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.TokenEndpoint != nil {
		if err := r.TokenEndpoint.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NewAdminHandler serves /metrics, /healthz (the process is alive) and
// /readyz (Readiness), and /debug/pprof/ when asked.
func NewAdminHandler(c AdminConfig) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(c.Registry))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Ready.Err(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": err.Error()})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready", "signing_keys_fetched_at": c.Ready.Keys.FetchedAt().UTC().Format(time.RFC3339)})
	})
	if c.Pprof {
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

// credentialCheck is what readiness asks of a federated credential: for a
// token file, whether it can be read and is in date now (the kubelet may
// have stopped rewriting it); for any other source, whether it gave an
// assertion lately, asked by readiness itself (assertionCheck), so that a
// passing failure of the identity endpoint cannot keep a replica out of
// its Service for good (user requests, which would clear it, no longer
// come to a replica that is not ready).
func credentialCheck(a clients.AssertionSource, now func() time.Time) interface{ Err() error } {
	switch a := a.(type) {
	case nil:
		return nil
	case *fedcred.TokenFile:
		return tokenFileCheck{a}
	default:
		return &assertionCheck{src: a, now: now, okEvery: 30 * time.Second, failedEvery: 5 * time.Second, timeout: 10 * time.Second}
	}
}

// assertionCheck gets an assertion from src in the background, at most
// once per okEvery after a success and per failedEvery after a failure
// (the managed identity client caches its token, so a check costs
// nothing while it is valid), and reports the last check's result. Err
// never waits: a probe must answer at once.
type assertionCheck struct {
	src                  clients.AssertionSource
	now                  func() time.Time
	okEvery, failedEvery time.Duration
	timeout              time.Duration

	mu      sync.Mutex
	checked time.Time // zero: never
	err     error
	running bool
}

func (c *assertionCheck) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	every := c.okEvery
	if c.err != nil {
		every = c.failedEvery
	}
	if !c.running && (c.checked.IsZero() || c.now().Sub(c.checked) >= every) {
		c.running = true
		go c.check()
	}
	if c.checked.IsZero() {
		return errors.New("the gateway's client assertion has not been obtained yet")
	}
	return c.err
}

func (c *assertionCheck) check() {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_, err := c.src.Assertion(ctx)
	c.mu.Lock()
	c.checked, c.err, c.running = c.now(), err, false
	c.mu.Unlock()
}

type tokenFileCheck struct{ f *fedcred.TokenFile }

func (c tokenFileCheck) Err() error {
	if _, err := c.f.Check(); err != nil {
		return err
	}
	return nil
}
