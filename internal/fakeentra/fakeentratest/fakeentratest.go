// Package fakeentratest starts the local tenant (package fakeentra) for
// tests: the one way the tests of every package do it.
package fakeentratest

import (
	"context"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// Start starts a tenant for one test: the demo tenant when cfg.Tenant is
// nil, in a fresh temporary directory when cfg.Dir is empty. It stops when
// the test ends, after the test's later cleanups (its context is not the
// test's, which ends before cleanups run: servers draining in a cleanup may
// still need the tenant).
func Start(t testing.TB, cfg fakeentra.Config) *fakeentra.Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := fakeentra.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("fakeentra.Start: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
	})
	return srv
}
