package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// newTestEndpoint watches url with short pauses between probes.
func newTestEndpoint(t *testing.T, url string) (*tokenEndpoint, *prometheus.Registry, *testkit.SyncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &testkit.SyncBuffer{}
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	te := newTokenEndpoint(t.Context(), url, client, slog.New(slog.NewJSONHandler(logs, nil)), time.Now, reg)
	te.pauseMin, te.pauseMax = 10*time.Millisecond, 50*time.Millisecond
	return te, reg, logs
}

// eventually waits, up to 10s, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The token endpoint answers a GET with an error, as Entra's does: that
// answer is the proof it is reachable.
func tokenEndpointServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_codes":[900561]}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTokenEndpointProbedAtStart(t *testing.T) {
	srv := tokenEndpointServer(t)
	te, reg, _ := newTestEndpoint(t, srv.URL+"/tenant/oauth2/v2.0/token")
	if err := te.Err(); err == nil || !strings.Contains(err.Error(), "not probed yet") {
		t.Errorf("before the probe: Err() = %v, want not probed yet", err)
	}
	te.start()
	eventually(t, "the first probe", func() bool { return te.Err() == nil })
	if v := testkit.GaugeValue(t, reg, "obo_gateway_entra_token_endpoint_reachable", nil); v != 1 {
		t.Errorf("reachable gauge = %v, want 1", v)
	}
}

// At start nothing listens where the token endpoint should be: not ready,
// with the cause; once it listens, ready again without a restart.
func TestTokenEndpointUnreachableThenReached(t *testing.T) {
	addr := testkit.ClosedAddr(t)
	te, reg, logs := newTestEndpoint(t, "http://"+addr+"/tenant/oauth2/v2.0/token")
	te.start()
	eventually(t, "the failed probe", func() bool {
		err := te.Err()
		return err != nil && strings.Contains(err.Error(), "connection refused")
	})
	if err := te.Err(); !strings.Contains(err.Error(), "cannot reach Entra's token endpoint http://"+addr) {
		t.Errorf("Err() = %v, want it to name the endpoint", err)
	}
	if v := testkit.GaugeValue(t, reg, "obo_gateway_entra_token_endpoint_reachable", nil); v != 0 {
		t.Errorf("reachable gauge = %v, want 0", v)
	}
	if n := len(logs.Find(testkit.Msg("cannot reach Entra's token endpoint: the gateway is not ready; exchanges for users without a cached token fail until it can"))); n != 1 {
		t.Errorf("%d error lines, want one however many probes failed", n)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the closed port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	eventually(t, "a probe reaching the endpoint", func() bool { return te.Err() == nil })
	if len(logs.Find(testkit.Msg("Entra's token endpoint is reachable again"))) != 1 {
		t.Error("no log line when the endpoint became reachable again")
	}
}

// Exchanges that get no answer start a probe; Entra's refusals, throttling
// and outages are answers and start none.
func TestTokenEndpointWatchesExchanges(t *testing.T) {
	srv := tokenEndpointServer(t)
	te, _, _ := newTestEndpoint(t, srv.URL+"/token")
	te.start()
	eventually(t, "the first probe", func() bool { return te.Err() == nil })

	refused := &obo.Error{Err: fmt.Errorf("network: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})}
	answers := []error{
		nil,
		&obo.Error{Status: 400, Code: "invalid_grant", Codes: []int{50013}},
		&obo.Error{Status: 429},
		&obo.Error{Status: 503, Codes: []int{90033}},
		errors.New("not an exchange error"),
	}
	for i := 0; i < 10; i++ {
		for _, a := range answers {
			te.observe(a)
		}
		te.observe(refused) // never three in a row
	}
	te.mu.Lock()
	probing := te.probing
	te.mu.Unlock()
	if probing {
		t.Fatal("a probe started while Entra answered between the failures")
	}

	// The endpoint goes away: three exchanges without an answer start a
	// probe, and readiness follows it.
	srv.Close()
	for i := 0; i < te.failuresToProbe; i++ {
		te.observe(refused)
	}
	eventually(t, "readiness to follow the probe", func() bool { return te.Err() != nil })
}

// /readyz says why, with the token endpoint's cause.
func TestReadyzNamesTheTokenEndpoint(t *testing.T) {
	tg := newTestGateway(t)
	te, _, _ := newTestEndpoint(t, "http://"+testkit.ClosedAddr(t)+"/token")
	te.start()
	eventually(t, "the failed probe", func() bool { return strings.Contains(fmt.Sprint(te.Err()), "refused") })
	tg.admin.Ready.TokenEndpoint = te
	rec, body := admin(t, tg, "/readyz")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body["reason"], "cannot reach Entra's token endpoint") {
		t.Errorf("/readyz = %d %v, want 503 naming the token endpoint", rec.Code, body)
	}
}
