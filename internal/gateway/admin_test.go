package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/auth"
)

// withReadiness gives tg what readiness checks: signing keys from a JWKS
// endpoint that serves the test key set (or fails, when !serveKeys), loaded
// before it returns when serveKeys; and a certificate valid until notAfter.
func withReadiness(t *testing.T, tg *testGateway, serveKeys bool, notAfter time.Time) {
	t.Helper()
	_, set := testKeys(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !serveKeys {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwks.Close)
	client := jwks.Client()
	client.Timeout = 10 * time.Second
	ks, err := auth.NewRemoteKeySet(t.Context(), auth.RemoteKeySetConfig{
		URL: jwks.URL, HTTPClient: client, Logger: tg.log, Metrics: auth.NewMetrics(tg.reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	if serveKeys {
		// An unknown-to-the-cache kid forces a fetch and waits for it.
		if _, err := ks.Key(t.Context(), testKID, ""); err != nil {
			t.Fatalf("loading the signing keys: %v", err)
		}
	}
	tg.admin.Ready.Keys = ks
	tg.admin.Ready.Certificate = testCertificate(t, notAfter)
}

// admin sends GET path to the admin handler and decodes a JSON answer.
func admin(t *testing.T, tg *testGateway, path string) (*httptest.ResponseRecorder, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	tg.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]string
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q: %v", path, rec.Body, err)
		}
	}
	return rec, body
}

func TestHealthz(t *testing.T) {
	tg := newTestGateway(t)
	tg.admin.Ready.Drain() // alive while draining: only readiness changes
	rec, body := admin(t, tg, "/healthz")
	if rec.Code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v, want 200 ok", rec.Code, body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestReadyz(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name       string
		serveKeys  bool
		notAfter   time.Time
		draining   bool
		wantStatus int
		wantReason []string // fragments of reason, each on its own line
	}{
		{name: "ready", serveKeys: true, notAfter: now.Add(24 * time.Hour), wantStatus: http.StatusOK},
		{name: "draining", serveKeys: true, notAfter: now.Add(24 * time.Hour), draining: true,
			wantStatus: http.StatusServiceUnavailable, wantReason: []string{"shutting down"}},
		{name: "keys not loaded", notAfter: now.Add(24 * time.Hour),
			wantStatus: http.StatusServiceUnavailable, wantReason: []string{"signing keys not loaded yet"}},
		{name: "certificate expired", serveKeys: true, notAfter: now.Add(-time.Hour),
			wantStatus: http.StatusServiceUnavailable,
			wantReason: []string{"the gateway certificate expired at " + now.Add(-time.Hour).UTC().Format(time.RFC3339)}},
		{name: "every reason", notAfter: now.Add(-time.Hour), draining: true,
			wantStatus: http.StatusServiceUnavailable,
			wantReason: []string{"shutting down", "signing keys not loaded yet", "the gateway certificate expired at"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t)
			tg.admin.Ready.Now = func() time.Time { return now }
			withReadiness(t, tg, tc.serveKeys, tc.notAfter)
			if tc.draining {
				tg.admin.Ready.Drain()
			}

			rec, body := admin(t, tg, "/readyz")

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d; body %v", rec.Code, tc.wantStatus, body)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if tc.wantStatus == http.StatusOK {
				if body["status"] != "ready" {
					t.Errorf("status field = %q, want ready", body["status"])
				}
				if _, err := time.Parse(time.RFC3339, body["signing_keys_fetched_at"]); err != nil {
					t.Errorf("signing_keys_fetched_at = %q: %v", body["signing_keys_fetched_at"], err)
				}
				return
			}
			if body["status"] != "not ready" {
				t.Errorf("status field = %q, want not ready", body["status"])
			}
			lines := strings.Split(body["reason"], "\n")
			if len(lines) != len(tc.wantReason) {
				t.Errorf("reason = %q, want %d reasons", body["reason"], len(tc.wantReason))
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(body["reason"], want) {
					t.Errorf("reason = %q, want it to contain %q", body["reason"], want)
				}
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	api, _ := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	withReadiness(t, tg, true, time.Now().Add(time.Hour))
	if rec := tg.serve(t, request("/orders/1", userToken(t, nil))); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	tg.serve(t, request("/nowhere", ""))

	rec, _ := admin(t, tg, "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics status = %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`obo_gateway_http_requests_total{code="200",method="GET",route="orders"} 1`,
		`obo_gateway_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`obo_gateway_http_request_duration_seconds_count{route="orders"} 1`,
		`obo_gateway_http_requests_in_flight{route="orders"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if problems, err := testutil.GatherAndLint(tg.reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	if rec, _ := admin(t, tg, "/"); rec.Code != http.StatusNotFound {
		t.Errorf("admin / = %d, want 404", rec.Code)
	}
}

func TestAdminPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		tg := newTestGateway(t)
		tg.admin.Pprof = on
		rec, _ := admin(t, tg, "/debug/pprof/heap?debug=1")
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Errorf("admin_pprof %v: /debug/pprof/heap = %d, want %d", on, rec.Code, want)
		}
		if on && !strings.Contains(rec.Body.String(), "heap profile") {
			t.Errorf("admin_pprof on: /debug/pprof/heap is not a heap profile: %.100q", rec.Body)
		}
		if rec, _ := admin(t, tg, "/debug/pprof/cmdline"); rec.Code != http.StatusNotFound {
			t.Errorf("admin_pprof %v: /debug/pprof/cmdline = %d, want 404 (the command line is not served)", on, rec.Code)
		}
	}
}

// scriptedSource answers assertions from a script of errors (nil: one
// assertion), one per call, then keeps the last.
type scriptedSource struct {
	mu     sync.Mutex
	script []error
	calls  int
}

func (s *scriptedSource) Assertion(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.calls, len(s.script)-1)
	s.calls++
	if err := s.script[i]; err != nil {
		return "", err
	}
	return "assertion", nil
}

func (s *scriptedSource) Err() error { return nil }

func (s *scriptedSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// A managed identity's endpoint that fails once: readiness asks again by
// itself, and the replica is ready again without a user request (which a
// replica out of its Service would never get).
func TestReadinessAsksTheIdentityEndpointAgain(t *testing.T) {
	src := &scriptedSource{script: []error{errors.New("IMDS blip"), nil}}
	var mu sync.Mutex
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	check := credentialCheck(src, now)
	// settle calls Err until the background check has run n times.
	settle := func(n int) error {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := check.Err()
			if src.count() >= n {
				if ac := check.(*assertionCheck); func() bool { ac.mu.Lock(); defer ac.mu.Unlock(); return !ac.running }() {
					return check.Err()
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the check ran %d times, want %d (last: %v)", src.count(), n, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := check.Err(); err == nil || !strings.Contains(err.Error(), "not been obtained yet") {
		t.Fatalf("before any check: %v, want not ready yet", err)
	}
	if err := settle(1); err == nil || !strings.Contains(err.Error(), "IMDS blip") {
		t.Fatalf("after the failed check: %v, want the failure", err)
	}
	// Within failedEvery: no new check, still not ready.
	advance(time.Second)
	if err := check.Err(); err == nil || src.count() != 1 {
		t.Fatalf("1s later: %v after %d checks, want the failure and no new check", err, src.count())
	}
	advance(5 * time.Second)
	if err := settle(2); err != nil {
		t.Fatalf("after the endpoint recovered: %v, want ready", err)
	}
	// Ready again: the next check waits okEvery.
	advance(10 * time.Second)
	if err := check.Err(); err != nil || src.count() != 2 {
		t.Fatalf("10s later: %v after %d checks, want ready and no new check", err, src.count())
	}
}
