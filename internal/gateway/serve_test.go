package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// get fetches url and returns the status and body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeDrains starts both listeners on loopback ports, holds a request
// in flight, and ends the context: /readyz turns 503 at once, the request in
// flight completes, and Serve returns nil.
func TestServeDrains(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	withReadiness(t, tg, true, time.Now().Add(time.Hour))
	tg.cfg.Listen, tg.cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	tg.cfg.ShutdownGrace = config.Duration(time.Minute)

	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	tg.tokens.hook = func() {
		close(entered) // one API request only
		<-release
	}

	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(func() { cancel(); unblock() })
	addrsc := make(chan Addrs, 1)
	served := make(chan error, 1)
	go func() { served <- tg.gateway().Serve(ctx, func(a Addrs) { addrsc <- a }) }()
	var addrs Addrs
	select {
	case addrs = <-addrsc:
	case err := <-served:
		t.Fatalf("Serve returned before it was ready: %v", err)
	}
	if addrs.TLS {
		t.Error("Addrs.TLS is set without a TLS configuration")
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	admin := "http://" + addrs.Admin

	if status, body := get(t, client, admin+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before shutdown = %d %s, want 200", status, body)
	}

	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	req := request("http://"+addrs.API+"/orders/1", userToken(t, nil))
	req.RequestURI = "" // a client request
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode}
	}()
	<-entered

	cancel()
	if _, err := tg.logs.Wait(30*time.Second, nil, testkit.Msg("shutting down: draining in-flight requests")); err != nil {
		t.Fatal(err)
	}

	status, body := get(t, client, admin+"/readyz")
	var rb map[string]string
	_ = json.Unmarshal([]byte(body), &rb)
	if status != http.StatusServiceUnavailable || !strings.Contains(rb["reason"], "shutting down") {
		t.Errorf("/readyz while draining = %d %s, want 503 shutting down", status, body)
	}
	if status, _ := get(t, client, admin+"/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200", status)
	}

	unblock()
	if res := <-inflight; res.err != nil || res.status != http.StatusOK {
		t.Errorf("the request in flight = %d, %v; want 200", res.status, res.err)
	}
	if got := <-seen; len(got.Authorization) != 1 || got.Authorization[0] != "Bearer "+downstreamToken {
		t.Errorf("upstream Authorization = %q", got.Authorization)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a clean drain", err)
	}
	if _, err := client.Get("http://" + addrs.API + "/orders/1"); err == nil {
		t.Error("the API listener still accepts requests after Serve returned")
	}
	tg.logs.Only(t, "gateway stopped")
}

func TestServeListenErrors(t *testing.T) {
	for _, tc := range []struct {
		name, listen, admin, want string
	}{
		{"api", "127.0.0.1:-1", "127.0.0.1:0", "gateway: listen:"},
		{"admin", "127.0.0.1:0", "127.0.0.1:-1", "gateway: admin_listen:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTestGateway(t)
			tg.cfg.Listen, tg.cfg.AdminListen = tc.listen, tc.admin
			called := false
			err := tg.gateway().Serve(t.Context(), func(Addrs) { called = true })
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Serve = %v, want an error starting %q", err, tc.want)
			}
			if called {
				t.Error("ready was called although a listener failed")
			}
		})
	}
}
