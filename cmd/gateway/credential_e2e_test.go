package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
)

// The gateway without a certificate: its client assertion is a federated
// credential (entra.credential workload_identity or managed_identity),
// obtained by MSAL Go's own clients and checked by the local tenant as
// Entra checks it.

// tokenFile writes a service-account token of the tenant's local cluster
// issuer the way the kubelet projects it (a symlink swapped to a new
// file), and returns the link's path.
type tokenFile struct {
	dir, link string
	gen       atomic.Int32
}

func newTokenFile(t *testing.T) *tokenFile {
	dir := t.TempDir()
	return &tokenFile{dir: dir, link: filepath.Join(dir, "azure-identity-token")}
}

func (f *tokenFile) write(t *testing.T, te *tenantEnv, subjectNS, subjectName string, opt fakeentra.ServiceAccountTokenOptions) {
	t.Helper()
	tok, err := te.srv.ServiceAccountToken("", subjectNS, subjectName, opt)
	if err != nil {
		t.Fatalf("ServiceAccountToken: %v", err)
	}
	te.secrets.add(tok)
	gen := filepath.Join(f.dir, fmt.Sprintf("..%d", f.gen.Add(1)))
	if err := os.Mkdir(gen, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "token"), []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := f.link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join(gen, "token"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.link); err != nil {
		t.Fatal(err)
	}
}

// workloadIdentity configures the gateway with the token file.
func workloadIdentity(f *tokenFile) func(*testing.T, *tenantEnv, *config.Entra) {
	return func(t *testing.T, te *tenantEnv, e *config.Entra) {
		e.Credential = config.CredentialWorkloadIdentity
		e.Certificate = config.Certificate{}
		e.WorkloadIdentity.TokenFile = f.link
	}
}

// federatedExchanges returns the tenant's token requests that the gateway
// authenticated with a federated credential, and all of the gateway's.
func federatedExchanges(te *tenantEnv) (federated, all int) {
	gw := te.info.Apps["gateway"].ClientID
	for _, r := range te.srv.Requests() {
		if r.ClientID != gw {
			continue
		}
		all++
		if r.Credential == fakeentra.CredentialFederated {
			federated++
		}
	}
	return federated, all
}

// checkDownstream checks that the upstream got a downstream token, not the
// user's, for the orders API.
func checkDownstream(t *testing.T, e *env, userToken string) {
	t.Helper()
	reqs := e.up.requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	last := reqs[len(reqs)-1]
	if b := last.bearer(); b == "" || b == userToken {
		t.Fatalf("the upstream got %q as its token, want a downstream token", describeSecret(b))
	}
}

func TestWorkloadIdentityCredential(t *testing.T) {
	f := newTokenFile(t)
	e := newEnv(t, envOptions{entra: func(t *testing.T, te *tenantEnv, ec *config.Entra) {
		f.write(t, te, "obo-gateway", "obo-gateway", fakeentra.ServiceAccountTokenOptions{})
		workloadIdentity(f)(t, te, ec)
	}})
	alice := e.userToken(t, "alice@contoso.test", "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{})
	r := e.do(t, request{path: "/orders/items", token: alice})
	wantStatus(t, r, http.StatusOK)
	checkDownstream(t, e, alice)
	if fed, all := federatedExchanges(e.tenantEnv); fed != 1 || all != 1 {
		t.Errorf("the tenant saw %d token requests from the gateway, %d with a federated credential; want 1 and 1", all, fed)
	}

	// Operations: ready, the assertion's expiry exported, no certificate
	// series to alert on.
	ready := doHTTP(t, e.client, e.gw.admin, request{path: "/readyz"})
	wantStatus(t, ready, http.StatusOK)
	metrics := e.scrape(t)
	exp, ok := metricValue(metrics, `obo_gateway_client_assertion_expiry_timestamp_seconds{kind="workload_identity"}`)
	if !ok || exp < float64(time.Now().Unix()) {
		t.Errorf("client assertion expiry = %v (present %v), want a time in the future", exp, ok)
	}
	if v, ok := metricValue(metrics, "obo_gateway_certificate_not_after_timestamp_seconds"); ok && v != 0 {
		t.Errorf("certificate expiry = %v for a gateway without a certificate, want none (0)", v)
	}
	if v, ok := metricValue(metrics, `obo_gateway_client_assertion_failures_total{kind="workload_identity",reason="unreadable"}`); !ok || v != 0 {
		t.Errorf("failures{unreadable} = %v (present %v), want 0", v, ok)
	}

	// The token file gone: not ready, and the next exchange is a 503 (the
	// gateway's own credential), never a 401.
	if err := os.Remove(f.link); err != nil {
		t.Fatal(err)
	}
	notReady := doHTTP(t, e.client, e.gw.admin, request{path: "/readyz"})
	wantStatus(t, notReady, http.StatusServiceUnavailable)
	if !strings.Contains(string(notReady.body), "azure-identity-token") {
		t.Errorf("/readyz does not say why: %s", notReady.body)
	}
	bob := e.userToken(t, "bob@contoso.test", "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{})
	r = e.do(t, request{path: "/orders/items", token: bob})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("WWW-Authenticate") != "" {
		t.Error("the gateway's credential failing is not a token problem: no WWW-Authenticate")
	}
	if v := e.metric(t, `obo_gateway_client_assertion_failures_total{kind="workload_identity",reason="unreadable"}`); v < 1 {
		t.Errorf("failures{unreadable} = %v, want at least 1", v)
	}
	if v := e.metric(t, `obo_gateway_obo_exchanges_total{error_code="credential",result="unavailable",route="orders"}`); v != 1 {
		t.Errorf(`exchanges{error_code="credential"} = %v, want 1`, v)
	}
}

// The kubelet rewrites the token file under a running gateway: no request
// fails, and the tenant sees the new tokens.
func TestWorkloadIdentityTokenRotatedUnderLoad(t *testing.T) {
	f := newTokenFile(t)
	e := newEnv(t, envOptions{
		tenant: func(tn *fakeentra.Tenant) { tn.LoopDetection = &fakeentra.LoopDetection{MaxRequests: -1} },
		entra: func(t *testing.T, te *tenantEnv, ec *config.Entra) {
			f.write(t, te, "obo-gateway", "obo-gateway", fakeentra.ServiceAccountTokenOptions{})
			workloadIdentity(f)(t, te, ec)
		},
	})
	users := []string{"alice@contoso.test", "bob@contoso.test", "carol@contoso.test", "dave@contoso.test"}
	const perWorker = 25
	var failed atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w, u := range users {
		// Each request is a new token, so each needs an exchange, so an
		// assertion read from the file as it is at that moment.
		toks := make([]string, perWorker)
		for i := range toks {
			toks[i] = e.userToken(t, u, "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, tok := range toks {
				r, err := tryHTTP(e.client, e.gw.api, request{path: fmt.Sprintf("/orders/w%d/%d", w, i), token: tok})
				if err != nil || r.status != http.StatusOK {
					failed.Add(1)
					t.Errorf("worker %d request %d: %v %d %s", w, i, err, r.status, r.body)
				}
			}
		}()
	}
	rotated := make(chan int)
	go func() {
		n := 0
		defer func() { rotated <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				f.write(t, e.tenantEnv, "obo-gateway", "obo-gateway", fakeentra.ServiceAccountTokenOptions{})
				n++
			}
		}
	}()
	wg.Wait()
	close(stop)
	n := <-rotated
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed while the token file was rewritten %d times", failed.Load(), n)
	}
	fed, all := federatedExchanges(e.tenantEnv)
	if want := len(users) * perWorker; fed != want || all != want {
		t.Errorf("the tenant saw %d token requests from the gateway, %d federated; want %d each", all, fed, want)
	}
	if n < 3 {
		t.Errorf("the file was rewritten only %d times during the load", n)
	}
}

// A federated credential the app registration does not hold: the exchange
// fails with Entra's code, as the operator's problem (502), counted by
// that code.
func TestWorkloadIdentityWrongSubject(t *testing.T) {
	f := newTokenFile(t)
	e := newEnv(t, envOptions{entra: func(t *testing.T, te *tenantEnv, ec *config.Entra) {
		f.write(t, te, "obo-gateway", "another-service-account", fakeentra.ServiceAccountTokenOptions{})
		workloadIdentity(f)(t, te, ec)
	}})
	alice := e.userToken(t, "alice@contoso.test", "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{})
	r := e.do(t, request{path: "/orders/items", token: alice})
	wantStatus(t, r, http.StatusBadGateway)
	if v := e.metric(t, `obo_gateway_obo_exchanges_total{error_code="AADSTS700213",result="gateway_config",route="orders"}`); v != 1 {
		t.Errorf("exchanges{AADSTS700213} = %v, want 1", v)
	}
	if !strings.Contains(e.gw.stderr.String(), "700213") {
		t.Error("the gateway's log does not name AADSTS700213")
	}
}

// A user-assigned managed identity's token as the federated credential,
// from the tenant's managed identity endpoint through MSAL Go's managed
// identity client (App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER).
func TestManagedIdentityCredential(t *testing.T) {
	// MSAL's managed identity client caches tokens in a package-global
	// cache keyed by client ID: this run's identity is its own (also with
	// -count=2), its IDs left empty for the tenant to make at its start.
	e := newEnv(t, envOptions{
		tenant: func(tn *fakeentra.Tenant) {
			tn.ManagedIdentities = append(tn.ManagedIdentities, &fakeentra.ManagedIdentity{
				Name: "e2e-identity"})
			for _, a := range tn.Apps {
				if a.Name == "gateway" {
					a.FederatedCredentials = append(a.FederatedCredentials, fakeentra.FederatedCredential{Name: "e2e-identity", ManagedIdentity: "e2e-identity"})
				}
			}
		},
		entra: func(t *testing.T, te *tenantEnv, ec *config.Entra) {
			u, secret := te.srv.ManagedIdentityEndpoint()
			t.Setenv("IDENTITY_ENDPOINT", u)
			t.Setenv("IDENTITY_HEADER", secret)
			ec.Credential = config.CredentialManagedIdentity
			ec.Certificate = config.Certificate{}
			ec.ManagedIdentity.ClientID = te.srv.Tenant().ManagedIdentity("e2e-identity").ClientID
		},
	})
	for _, u := range []string{"alice@contoso.test", "bob@contoso.test"} {
		tok := e.userToken(t, u, "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{})
		r := e.do(t, request{path: "/orders/items", token: tok})
		wantStatus(t, r, http.StatusOK)
		checkDownstream(t, e, tok)
	}
	if fed, all := federatedExchanges(e.tenantEnv); fed != 2 || all != 2 {
		t.Errorf("the tenant saw %d token requests from the gateway, %d federated; want 2 and 2", all, fed)
	}
	exp := e.metric(t, `obo_gateway_client_assertion_expiry_timestamp_seconds{kind="managed_identity"}`)
	if exp < float64(time.Now().Unix()) {
		t.Errorf("client assertion expiry = %v, want a time in the future", exp)
	}
	var status map[string]any
	ready := doHTTP(t, e.client, e.gw.admin, request{path: "/readyz"})
	wantStatus(t, ready, http.StatusOK)
	if err := json.Unmarshal(ready.body, &status); err != nil || status["status"] != "ready" {
		t.Errorf("/readyz = %s", ready.body)
	}
}

// TestDemoWithoutCertificate: "gateway demo -credential …" runs the
// gateway with a federated credential only, and its gateway answers.
func TestDemoWithoutCertificate(t *testing.T) {
	for _, kind := range []string{config.CredentialWorkloadIdentity, config.CredentialManagedIdentity} {
		t.Run(kind, func(t *testing.T) {
			// The demo sets App Service's variables in its own process for
			// MSAL's managed identity client: put them back afterwards.
			t.Setenv("IDENTITY_ENDPOINT", "")
			t.Setenv("IDENTITY_HEADER", "")
			p, line := startDemo(t, "-json", "-dir", t.TempDir(), "-credential", kind)
			var info demoInfo
			if err := json.Unmarshal([]byte(line), &info); err != nil {
				t.Fatalf("the line is not JSON: %v: %q", err, line)
			}
			cfg, err := os.ReadFile(info.ConfigFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(cfg), "credential: "+kind) || strings.Contains(string(cfg), "certificate:") {
				t.Fatalf("the demo's configuration is not certificate-less with %s:\n%s", kind, cfg)
			}
			waitReady(t, info.AdminURL+"/readyz", p.done)
			client := &http.Client{Timeout: 30 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			r := doHTTP(t, client, info.GatewayURL, request{path: info.Routes["orders"] + "/items", token: info.AccessToken})
			wantStatus(t, r, http.StatusOK)
			if !strings.Contains(string(r.body), fakeentra.DemoOrdersClientID) {
				t.Errorf("the sample API did not get an orders API token: %s", r.body)
			}
		})
	}
}
