package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func startKeySet(t *testing.T, js *jwksServer, clock *testkit.Clock, m *Metrics) *RemoteKeySet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ks, err := NewRemoteKeySet(ctx, RemoteKeySetConfig{
		URL: js.srv.URL, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		RefreshInterval: time.Hour, MinRefreshInterval: 30 * time.Second, Now: clock.Now, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ks.Ready)
	return ks
}

// waitFor polls cond (no fixed sleep decides the outcome; the bound only stops a hung test).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemoteKeySetUnknownKidRefreshesOnceAndIsRateLimited(t *testing.T) {
	k := sharedKeys(t)
	js := newJWKSServer(t, setOf(t, k[0]))
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ks := startKeySet(t, js, clock, m)
	base := js.fetches.Load()

	if _, err := ks.Key(context.Background(), k[0].kid, ""); err != nil {
		t.Fatalf("known kid: %v", err)
	}
	if got := js.fetches.Load(); got != base {
		t.Fatalf("a known kid caused %d fetches", got-base)
	}

	// Entra rotates: the new key appears. Twenty concurrent requests with it share one fetch.
	js.setKeys(setOf(t, k[0], k[1]))
	gate := make(chan struct{})
	js.mu.Lock()
	js.gate = gate
	js.mu.Unlock()
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ks.Key(context.Background(), k[1].kid, ""); err != nil {
				failures.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return js.fetches.Load() > base })
	close(gate)
	wg.Wait()
	js.mu.Lock()
	js.gate = nil
	js.mu.Unlock()
	if f := failures.Load(); f != 0 {
		t.Errorf("%d lookups of the rotated-in key failed", f)
	}
	if got := js.fetches.Load() - base; got != 1 {
		t.Errorf("20 concurrent unknown-kid lookups made %d fetches, want 1", got)
	}

	// A forged kid right after: no fetch (rate limited), and it is unknown.
	base = js.fetches.Load()
	for i := 0; i < 5; i++ {
		if _, err := ks.Key(context.Background(), "forged-kid", ""); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("forged kid: err = %v, want ErrUnknownKey", err)
		}
	}
	if got := js.fetches.Load() - base; got != 0 {
		t.Errorf("forged kids within the minimum interval made %d fetches, want 0", got)
	}
	// After the interval one more refresh is allowed.
	clock.Advance(31 * time.Second)
	_, _ = ks.Key(context.Background(), "forged-kid", "")
	if got := js.fetches.Load() - base; got != 1 {
		t.Errorf("after the minimum interval: %d fetches, want 1", got)
	}
	if got := testutil.ToFloat64(m.keys); got != 2 {
		t.Errorf("obo_gateway_signing_keys = %v, want 2", got)
	}
}

// While the key endpoint fails, a kid the held set lacks cannot be told
// from a key Entra rotated in: "cannot check now" (KeysUnavailableError,
// with when to retry), never "unknown key". The held keys keep working, and
// once the endpoint answers the new key is found; a kid still unknown after
// a successful refresh is unknown again.
func TestRemoteKeySetFailedRefreshKeepsKeys(t *testing.T) {
	k := sharedKeys(t)
	js := newJWKSServer(t, setOf(t, k[0]))
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	m := NewMetrics(prometheus.NewRegistry())
	ks := startKeySet(t, js, clock, m)

	js.setFail(true)
	js.setKeys(setOf(t, k[0], k[1])) // Entra rotated in k[1]; its endpoint fails
	var ku *KeysUnavailableError
	for i := 0; i < 3; i++ {
		_, err := ks.Key(context.Background(), k[1].kid, "")
		if !errors.As(err, &ku) || !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrUnknownKey) || !ku.Loaded {
			t.Fatalf("lookup %d during the outage: err = %v, want a KeysUnavailableError for a loaded set", i, err)
		}
		if ku.RetryAfter < time.Second || ku.RetryAfter > retryAfterFailure {
			t.Errorf("RetryAfter = %s, want 1s..%s", ku.RetryAfter, retryAfterFailure)
		}
	}
	if got := testutil.ToFloat64(m.keyRefreshes.WithLabelValues("failure")); got < 1 {
		t.Errorf("failed refreshes = %v, want ≥ 1", got)
	}
	if _, err := ks.Key(context.Background(), k[0].kid, ""); err != nil {
		t.Errorf("after a failed refresh the held key is gone: %v", err)
	}

	js.setFail(false)
	clock.Advance(retryAfterFailure) // retried sooner than the 30s interval after a failure
	if _, err := ks.Key(context.Background(), k[1].kid, ""); err != nil {
		t.Fatalf("after recovery, the rotated-in key: %v", err)
	}
	clock.Advance(31 * time.Second)
	if _, err := ks.Key(context.Background(), "forged-kid", ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("after a successful refresh, a forged kid: err = %v, want ErrUnknownKey", err)
	}
}

func TestRemoteKeySetRetriesInitialLoad(t *testing.T) {
	k := sharedKeys(t)
	js := newJWKSServer(t, setOf(t, k[0]))
	js.setFail(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks, err := NewRemoteKeySet(ctx, RemoteKeySetConfig{URL: js.srv.URL, HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return js.fetches.Load() >= 1 })
	if ks.Ready() {
		t.Fatal("ready although every fetch failed")
	}
	if _, err := ks.Key(ctx, k[0].kid, ""); err == nil {
		t.Fatal("a key was found before any key set was loaded")
	}
	js.setFail(false)
	waitFor(t, ks.Ready)
	if _, err := ks.Key(ctx, k[0].kid, ""); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestRemoteKeySetConfig(t *testing.T) {
	if _, err := NewRemoteKeySet(context.Background(), RemoteKeySetConfig{URL: "https://x", HTTPClient: &http.Client{}}); err == nil {
		t.Error("a client without timeout was accepted")
	}
	if _, err := NewRemoteKeySet(context.Background(), RemoteKeySetConfig{HTTPClient: &http.Client{Timeout: time.Second}}); err == nil {
		t.Error("an empty URL was accepted")
	}
}
