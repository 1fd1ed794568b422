package obo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	aliceUsername = "alice@contoso.test"
	gatewayScope  = "api://obo-gateway/access_as_user"
	ordersScope   = "api://orders-api/Orders.Read"
	metricName    = "obo_gateway_obo_exchanges_total"
)

// gatewayCertificate loads the credential the tenant generated for "gateway".
func gatewayCertificate(t *testing.T, srv *fakeentra.Server) *Certificate {
	t.Helper()
	app := srv.Info().Apps["gateway"]
	cert, err := LoadCertificate(app.CertificateFile, app.KeyFile, "")
	if err != nil {
		t.Fatalf("LoadCertificate(gateway): %v", err)
	}
	return cert
}

// tokenRequest is what the recording transport saw of one token request.
type tokenRequest struct {
	clientRequestID string
	assertionHeader map[string]any // the client assertion's JOSE header
}

// recorder is an http.RoundTripper that notes the token requests going to
// the tenant (never their secrets: only the client assertion's header).
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []tokenRequest
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/token") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		tr := tokenRequest{clientRequestID: req.Header.Get("client-request-id")}
		if form, err := url.ParseQuery(string(body)); err == nil {
			if ca := form.Get("client_assertion"); ca != "" {
				if hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(ca, ".")[0]); err == nil {
					_ = json.Unmarshal(hdr, &tr.assertionHeader)
				}
			}
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, tr)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) tokenRequests() []tokenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tokenRequest(nil), r.reqs...)
}

// harness is one Exchanger with its own metrics, log and request recorder.
type harness struct {
	x   *Exchanger
	reg *prometheus.Registry
	log *testkit.SyncBuffer
	rec *recorder
}

// newHarness builds an Exchanger for the tenant's gateway app; edit adjusts
// the configuration before New.
func newHarness(t *testing.T, srv *fakeentra.Server, cert *Certificate, edit func(*Config)) *harness {
	t.Helper()
	client := srv.HTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	rec := &recorder{next: client.Transport}
	client.Transport = rec
	h := &harness{reg: prometheus.NewRegistry(), log: &testkit.SyncBuffer{}, rec: rec}
	cfg := Config{
		AuthorityHost:     srv.URL(),
		TenantID:          srv.TenantID(),
		ClientID:          srv.Info().Apps["gateway"].ClientID,
		Certificate:       cert,
		HTTPClient:        client,
		InstanceDiscovery: false,
		Metrics:           NewMetrics(h.reg),
		Logger:            slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	x, err := New(cfg)
	if err != nil {
		t.Fatalf("obo.New: %v", err)
	}
	h.x = x
	return h
}

// exchanges is the value of obo_gateway_obo_exchanges_total for the labels.
func (h *harness) exchanges(t *testing.T, route, result, code string) float64 {
	t.Helper()
	return testkit.CounterValue(t, h.reg, metricName, map[string]string{"route": route, "result": result, "error_code": code})
}

// assertSingleExchangeMetric checks that exactly one exchange was counted,
// with the given labels, and that its duration was observed.
func (h *harness) assertSingleExchangeMetric(t *testing.T, route, result, code string) {
	t.Helper()
	if got := h.exchanges(t, route, result, code); got != 1 {
		t.Errorf("%s{route=%q,result=%q,error_code=%q} = %v; want 1", metricName, route, result, code, got)
	}
	if n := testutil.CollectAndCount(h.reg, metricName); n != 1 {
		t.Errorf("%s has %d series; want 1", metricName, n)
	}
	if n := testutil.CollectAndCount(h.reg, "obo_gateway_obo_exchange_duration_seconds"); n != 1 {
		t.Errorf("duration histogram series = %d; want 1", n)
	}
}

// assertNoToken checks that no token appears in s; what names s in the failure.
func assertNoToken(t *testing.T, what, s string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		// The signature alone is enough to recognise the token.
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(s, tok) || (len(sig) > 16 && strings.Contains(s, sig)) {
			t.Errorf("%s contains a token", what)
		}
	}
}

// redact renders err with the tokens cut out, for failure messages.
func redact(err error, tokens ...string) string {
	s := fmt.Sprint(err)
	for _, tok := range tokens {
		if tok != "" {
			s = strings.ReplaceAll(s, tok, "[token]")
		}
	}
	return s
}

func userToken(t *testing.T, srv *fakeentra.Server, user, scope string, opt fakeentra.UserTokenOptions) string {
	t.Helper()
	tok, err := srv.UserToken(user, scope, opt)
	if err != nil {
		t.Fatalf("UserToken(%s): %v", user, err)
	}
	return tok
}

// asOBOError checks that err is an *Error and returns it.
func asOBOError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Exchange succeeded; want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Exchange error is %T; want *obo.Error", err)
	}
	return e
}

func TestExchangeSuccess(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	cert := gatewayCertificate(t, srv)
	info := srv.Info()
	gatewayID, ordersID := info.Apps["gateway"].ClientID, info.Apps["orders-api"].ClientID

	cases := []struct {
		name    string
		sendX5C bool
	}{
		{name: "thumbprint only", sendX5C: false},
		{name: "with x5c", sendX5C: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, srv, cert, func(c *Config) { c.SendX5C = tc.sendX5C })
			assertion := userToken(t, srv, aliceUsername, gatewayScope, fakeentra.UserTokenOptions{})

			before := time.Now()
			tok, err := h.x.Exchange(t.Context(), Request{
				Assertion: assertion, TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders",
			})
			if err != nil {
				assertNoToken(t, "Exchange error", err.Error(), assertion)
				t.Fatalf("Exchange: %s", redact(err, assertion))
			}
			if tok.AccessToken == "" || tok.AccessToken == assertion {
				t.Fatal("Exchange returned no downstream token, or the user's own token")
			}
			c := testkit.JWTClaims(t, tok.AccessToken)
			for claim, want := range map[string]string{
				"aud": ordersID, "oid": fakeentra.DemoAliceObjectID, "azp": gatewayID, "tid": srv.TenantID(), "ver": "2.0",
			} {
				if got, _ := c[claim].(string); got != want {
					t.Errorf("downstream token %s = %q; want %q", claim, got, want)
				}
			}
			if scp, _ := c["scp"].(string); !strings.Contains(" "+scp+" ", " Orders.Read ") {
				t.Errorf("downstream token scp = %q; want Orders.Read", scp)
			}
			if !tok.ExpiresOn.After(before) {
				t.Errorf("ExpiresOn = %v; want after %v", tok.ExpiresOn, before)
			}
			if tok.Source != SourceExchange || tok.Took <= 0 {
				t.Errorf("Source %q, Took %v; want exchange and the exchange's time", tok.Source, tok.Took)
			}
			h.assertSingleExchangeMetric(t, "orders", "success", "")

			// The client assertion the tenant received: thumbprint always, x5c when asked.
			reqs := h.rec.tokenRequests()
			if len(reqs) != 1 {
				t.Fatalf("token requests = %d; want 1", len(reqs))
			}
			hdr := reqs[0].assertionHeader
			if hdr["x5t#S256"] == nil {
				t.Error("client assertion has no x5t#S256 header")
			}
			x5c, hasX5C := hdr["x5c"].([]any)
			if hasX5C != tc.sendX5C {
				t.Errorf("client assertion has x5c = %v; want %v", hasX5C, tc.sendX5C)
			}
			if hasX5C {
				leaf, _ := x5c[0].(string)
				if leaf != base64.StdEncoding.EncodeToString(cert.Leaf().Raw) {
					t.Error("x5c[0] is not the gateway's certificate")
				}
			}
			// The tenant accepted it: its record of the request says so.
			assertTenantRecord(t, srv, reqs[0].clientRequestID, srv.TenantID(), "success")

			// MSAL's own cache is kept empty (it never evicts; the gateway's
			// bounded cache sits in front): a second exchange asks Entra again.
			again, err := h.x.Exchange(t.Context(), Request{
				Assertion: assertion, TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders",
			})
			if err != nil {
				t.Fatalf("second Exchange: %s", redact(err, assertion))
			}
			if again.AccessToken == tok.AccessToken {
				t.Error("second exchange returned MSAL's cached token; MSAL's cache should be empty")
			}
			if n := len(h.rec.tokenRequests()); n != 2 {
				t.Errorf("token requests after the second exchange = %d; want 2 (no MSAL cache)", n)
			}
			if got := h.exchanges(t, "orders", "success", ""); got != 2 {
				t.Errorf("success count = %v; want 2", got)
			}
			assertNoToken(t, "log output", h.log.String(), assertion, tok.AccessToken)
		})
	}
}

// assertTenantRecord finds the tenant's record of the token request with the
// given client-request-id and checks its tenant and result.
func assertTenantRecord(t *testing.T, srv *fakeentra.Server, clientRequestID, tenantID, result string) {
	t.Helper()
	if clientRequestID == "" {
		t.Fatal("MSAL sent no client-request-id")
	}
	for _, r := range srv.Requests() {
		if r.ClientRequestID != clientRequestID {
			continue
		}
		if r.TenantID != tenantID || r.Result != result || r.Grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("tenant recorded tenant %s, grant %s, result %s (%s %d); want tenant %s, OBO grant, result %s",
				r.TenantID, r.Grant, r.Result, r.Error, r.Code, tenantID, result)
		}
		return
	}
	t.Errorf("the tenant has no record of request %s", clientRequestID)
}

func TestExchangeEntraRefusals(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	cert := gatewayCertificate(t, srv)

	// A certificate the gateway app does not know.
	now := time.Now()
	strangerCert, strangerKey, err := pki.SelfSigned("gateway", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("generate certificate: %v", err)
	}
	dir := t.TempDir()
	certFile := writeTemp(t, dir, "stranger.crt.pem", pki.CertPEM(strangerCert))
	keyFile := writeTemp(t, dir, "stranger.key.pem", pki.KeyPEM(strangerKey))
	stranger, err := LoadCertificate(certFile, keyFile, "")
	if err != nil {
		t.Fatalf("LoadCertificate(stranger): %v", err)
	}

	cases := []struct {
		name      string
		cert      *Certificate
		tokenOpts fakeentra.UserTokenOptions
		scope     string
		route     string

		status   int
		code     string
		subError string
		class    Class
		label    string
		claims   string // substring of Claims; "" means no claims
		hintHas  string
	}{
		{
			name: "MFA required for hr-api", cert: cert, scope: "api://hr-api/HR.Read", route: "hr",
			status: 400, code: "invalid_grant", subError: "basic_action",
			class: ClassInteraction, label: "AADSTS50076", claims: `"capolids"`, hintHas: "MFA",
		},
		{
			name: "no consent for inventory-api", cert: cert, scope: "api://inventory-api/Inventory.Read", route: "inventory",
			status: 400, code: "invalid_grant", subError: "consent_required",
			class: ClassConsent, label: "AADSTS65001", hintHas: "consent",
		},
		{
			name: "expired user token", cert: cert, tokenOpts: fakeentra.UserTokenOptions{Lifetime: -time.Hour},
			scope: ordersScope, route: "orders",
			status: 400, code: "invalid_grant",
			class: ClassInvalidAssertion, label: "AADSTS500133", hintHas: "expired",
		},
		{
			name: "gateway certificate not registered", cert: stranger, scope: ordersScope, route: "orders",
			status: 401, code: "invalid_client",
			class: ClassGateway, label: "AADSTS700027", hintHas: "certificate",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, srv, tc.cert, nil)
			assertion := userToken(t, srv, aliceUsername, gatewayScope, tc.tokenOpts)

			_, err := h.x.Exchange(t.Context(), Request{
				Assertion: assertion, TenantID: srv.TenantID(), Scopes: []string{tc.scope}, Route: tc.route,
			})
			e := asOBOError(t, err)
			assertNoToken(t, "Exchange error", err.Error(), assertion)
			assertNoToken(t, "Exchange error (verbose)", fmtVerbose(e), assertion)

			if e.Status != tc.status || e.Code != tc.code || e.SubError != tc.subError {
				t.Errorf("Status, Code, SubError = %d, %q, %q; want %d, %q, %q",
					e.Status, e.Code, e.SubError, tc.status, tc.code, tc.subError)
			}
			if got := e.Class(); got != tc.class {
				t.Errorf("Class() = %q; want %q", got, tc.class)
			}
			if got := e.CodeLabel(); got != tc.label {
				t.Errorf("CodeLabel() = %q; want %q", got, tc.label)
			}
			if tc.claims == "" && e.Claims != "" {
				t.Errorf("Claims = %q; want none", e.Claims)
			}
			if tc.claims != "" {
				if !strings.Contains(e.Claims, tc.claims) || !json.Valid([]byte(e.Claims)) {
					t.Errorf("Claims = %q; want JSON containing %s", e.Claims, tc.claims)
				}
			}
			if !strings.Contains(e.Hint(), tc.hintHas) {
				t.Errorf("Hint() = %q; want it to mention %q", e.Hint(), tc.hintHas)
			}
			if e.TraceID == "" || e.CorrelationID == "" {
				t.Errorf("TraceID, CorrelationID = %q, %q; want both from Entra's body", e.TraceID, e.CorrelationID)
			}
			if e.Timeout || e.RetryAfter != 0 {
				t.Errorf("Timeout, RetryAfter = %v, %v; want false, 0", e.Timeout, e.RetryAfter)
			}
			h.assertSingleExchangeMetric(t, tc.route, string(tc.class), tc.label)
			assertNoToken(t, "log output", h.log.String(), assertion)
		})
	}
}

// fmtVerbose renders every field of the error, its cause included.
func fmtVerbose(e *Error) string {
	return e.Error() + " " + fmt.Sprintf("%+v", *e)
}

// TestExchangeUnavailable runs the fault drills one after another: faults
// and latency are the tenant's global state.
func TestExchangeUnavailable(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	cert := gatewayCertificate(t, srv)

	cases := []struct {
		name    string
		fault   *fakeentra.Fault
		latency time.Duration
		timeout time.Duration

		status     int
		retryAfter time.Duration
		isTimeout  bool
		label      string
	}{
		{
			// Entra's 429 is plain text with Retry-After, no AADSTS code.
			name:   "throttled with Retry-After",
			fault:  &fakeentra.Fault{Status: 429, RetryAfter: 7 * time.Second, Count: 1},
			status: 429, retryAfter: 7 * time.Second, label: "http_429",
		},
		{
			// Loop detection is a 400 with Entra's JSON error; still Entra's
			// refusal to serve now, not the user's or the gateway's fault.
			name:   "request loop detected",
			fault:  &fakeentra.Fault{Status: 400, Code: 50196, Count: 1},
			status: 400, label: "AADSTS50196",
		},
		{
			name:   "service unavailable",
			fault:  &fakeentra.Fault{Status: 503, Count: 1},
			status: 503, label: "AADSTS90033",
		},
		{
			name:  "connection dropped",
			fault: &fakeentra.Fault{Drop: true, Count: 1},
			label: "network",
		},
		{
			name:    "token endpoint too slow",
			latency: 2 * time.Second, timeout: 200 * time.Millisecond,
			isTimeout: true, label: "timeout",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(srv.ClearFaults)
			h := newHarness(t, srv, cert, func(c *Config) { c.Timeout = tc.timeout })
			assertion := userToken(t, srv, aliceUsername, gatewayScope, fakeentra.UserTokenOptions{})
			if tc.fault != nil {
				if err := srv.InjectFault(*tc.fault); err != nil {
					t.Fatalf("InjectFault: %v", err)
				}
			}
			if tc.latency > 0 {
				srv.SetLatency(tc.latency, "token")
			}

			_, err := h.x.Exchange(t.Context(), Request{
				Assertion: assertion, TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders",
			})
			e := asOBOError(t, err)
			assertNoToken(t, "Exchange error", err.Error(), assertion)
			assertNoToken(t, "Exchange error (verbose)", fmtVerbose(e), assertion)

			if got := e.Class(); got != ClassUnavailable {
				t.Errorf("Class() = %q; want %q (error %s)", got, ClassUnavailable, redact(e, assertion))
			}
			if e.Status != tc.status {
				t.Errorf("Status = %d; want %d", e.Status, tc.status)
			}
			if e.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v; want %v", e.RetryAfter, tc.retryAfter)
			}
			if e.Timeout != tc.isTimeout {
				t.Errorf("Timeout = %v; want %v (error %s)", e.Timeout, tc.isTimeout, redact(e, assertion))
			}
			if got := e.CodeLabel(); got != tc.label {
				t.Errorf("CodeLabel() = %q; want %q (error %s)", got, tc.label, redact(e, assertion))
			}
			if e.Hint() == "" {
				t.Error("Hint() is empty")
			}
			h.assertSingleExchangeMetric(t, "orders", string(ClassUnavailable), tc.label)
			assertNoToken(t, "log output", h.log.String(), assertion)

			// The fault is spent (or the latency cleared): the next exchange works.
			srv.ClearFaults()
			if _, err := h.x.Exchange(t.Context(), Request{
				Assertion: assertion, TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders",
			}); err != nil {
				t.Errorf("Exchange after the fault: %s", redact(err, assertion))
			}
		})
	}
}

// TestExchangeOtherTenant exchanges the token of a user of another tenant
// where the gateway (a multi-tenant app) has a service principal: the
// exchange must go to the token's own tenant.
func TestExchangeOtherTenant(t *testing.T) {
	const (
		otherTenantID = "3f5d2c1b-7a9e-4b6d-8c0f-1e2d3c4b5a69"
		otherOrdersID = "b2c3d4e5-0001-4f6a-9b0c-1d2e3f4a5b01"
		carolOID      = "33333333-cccc-4ccc-8ccc-333333333333"
		carol         = "carol@fabrikam.test"
	)
	// The gateway's certificate, registered on its app in both tenants.
	now := time.Now()
	gwCert, gwKey, err := pki.SelfSigned("gateway-multitenant", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("generate certificate: %v", err)
	}
	dir := t.TempDir()
	certFile := writeTemp(t, dir, "gateway-mt.crt.pem", pki.CertPEM(gwCert))
	keyFile := writeTemp(t, dir, "gateway-mt.key.pem", pki.KeyPEM(gwKey))

	home := fakeentra.DemoTenant()
	home.App("gateway").Certificates = append(home.App("gateway").Certificates, fakeentra.CertificateRef{File: certFile})
	other := &fakeentra.Tenant{
		TenantID: otherTenantID,
		Domain:   "fabrikam.test",
		Apps: []*fakeentra.App{
			{
				Name: "frontend", PublicClient: true,
				Permissions: []fakeentra.Permission{{Resource: "gateway", Scopes: []string{"access_as_user"}}},
			},
			{
				// The gateway's service principal: same client ID, same certificate.
				Name: "gateway", ClientID: fakeentra.DemoGatewayClientID,
				IdentifierURIs: []string{"api://obo-gateway"},
				Scopes:         []string{"access_as_user"},
				Certificates:   []fakeentra.CertificateRef{{File: certFile}},
				Permissions:    []fakeentra.Permission{{Resource: "orders-api", Scopes: []string{"Orders.Read"}}},
			},
			{
				Name: "orders-api", ClientID: otherOrdersID,
				IdentifierURIs:     []string{"api://orders-api"},
				Scopes:             []string{"Orders.Read"},
				AccessTokenVersion: 2,
			},
		},
		Users: []*fakeentra.User{{Username: carol, Password: fakeentra.DemoPassword, ObjectID: carolOID}},
	}
	srv := fakeentratest.Start(t, fakeentra.Config{Tenant: home, ExtraTenants: []*fakeentra.Tenant{other}, Dir: filepath.Join(dir, "tenant")})
	cert, err := LoadCertificate(certFile, keyFile, "")
	if err != nil {
		t.Fatalf("LoadCertificate: %v", err)
	}
	assertion := userToken(t, srv, carol, "api://obo-gateway/access_as_user", fakeentra.UserTokenOptions{TenantID: otherTenantID})
	if tid, _ := testkit.JWTClaims(t, assertion)["tid"].(string); tid != otherTenantID {
		t.Fatalf("user token tid = %q; want %q", tid, otherTenantID)
	}

	t.Run("to the token's tenant", func(t *testing.T) {
		h := newHarness(t, srv, cert, nil)
		tok, err := h.x.Exchange(t.Context(), Request{
			Assertion: assertion, TenantID: otherTenantID, Scopes: []string{ordersScope}, Route: "orders",
		})
		if err != nil {
			assertNoToken(t, "Exchange error", err.Error(), assertion)
			t.Fatalf("Exchange: %s", redact(err, assertion))
		}
		c := testkit.JWTClaims(t, tok.AccessToken)
		for claim, want := range map[string]string{
			"tid": otherTenantID, "aud": otherOrdersID, "oid": carolOID, "azp": fakeentra.DemoGatewayClientID,
		} {
			if got, _ := c[claim].(string); got != want {
				t.Errorf("downstream token %s = %q; want %q", claim, got, want)
			}
		}
		reqs := h.rec.tokenRequests()
		if len(reqs) != 1 {
			t.Fatalf("token requests = %d; want 1", len(reqs))
		}
		assertTenantRecord(t, srv, reqs[0].clientRequestID, otherTenantID, "success")
		h.assertSingleExchangeMetric(t, "orders", "success", "")
		assertNoToken(t, "log output", h.log.String(), assertion, tok.AccessToken)
	})

	t.Run("to the home tenant", func(t *testing.T) {
		// Without the token's tenant the exchange goes to the gateway's home
		// tenant, which refuses another tenant's token.
		h := newHarness(t, srv, cert, nil)
		_, err := h.x.Exchange(t.Context(), Request{
			Assertion: assertion, Scopes: []string{ordersScope}, Route: "orders",
		})
		e := asOBOError(t, err)
		assertNoToken(t, "Exchange error", err.Error(), assertion)
		if e.Class() != ClassInvalidAssertion || e.CodeLabel() != "AADSTS50013" {
			t.Errorf("Class, CodeLabel = %q, %q; want %q, AADSTS50013", e.Class(), e.CodeLabel(), ClassInvalidAssertion)
		}
		reqs := h.rec.tokenRequests()
		if len(reqs) != 1 {
			t.Fatalf("token requests = %d; want 1", len(reqs))
		}
		assertTenantRecord(t, srv, reqs[0].clientRequestID, srv.TenantID(), "error")
	})
}

// TestNewValidatesConfig checks the configuration New refuses before
// building the MSAL client.
func TestNewValidatesConfig(t *testing.T) {
	m := credentials(t)
	cert := &Certificate{Chain: []*x509.Certificate{m.leaf}, Key: m.leafKey}
	valid := Config{
		AuthorityHost: "https://login.microsoftonline.com", TenantID: fakeentra.DemoTenantID,
		ClientID: fakeentra.DemoGatewayClientID, Certificate: cert, HTTPClient: &http.Client{Timeout: time.Second},
	}
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "no certificate", edit: func(c *Config) { c.Certificate = nil }, wantErr: "needs one of Certificate and Assertion"},
		{name: "an assertion instead", edit: func(c *Config) {
			c.Certificate, c.Assertion = nil, func(context.Context) (string, error) { return "", nil }
		}},
		{name: "both", edit: func(c *Config) {
			c.Assertion = func(context.Context) (string, error) { return "", nil }
		}, wantErr: "needs one of Certificate and Assertion"},
		{name: "no HTTP client", edit: func(c *Config) { c.HTTPClient = nil }, wantErr: "needs one of Certificate and Assertion, HTTPClient"},
		{name: "no tenant", edit: func(c *Config) { c.TenantID = "" }, wantErr: "TenantID"},
		{name: "no client ID", edit: func(c *Config) { c.ClientID = "" }, wantErr: "ClientID"},
		{name: "http authority", edit: func(c *Config) { c.AuthorityHost = "http://login.microsoftonline.com" }, wantErr: "https URL"},
		{name: "no authority", edit: func(c *Config) { c.AuthorityHost = "" }, wantErr: "https URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			_, err := New(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("New error = %v; want %q", err, tc.wantErr)
			}
		})
	}
}

// A token endpoint the gateway cannot reach because of its own
// configuration is the operator's to mend (502), not an outage (503): a host
// name that does not exist, and a certificate of a CA the gateway does not
// trust, each through MSAL and a real transport.
func TestExchangeMisconfiguredNetwork(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	cert := gatewayCertificate(t, srv)
	for _, tc := range []struct {
		name  string
		edit  func(*http.Transport)
		label string
	}{
		{
			name: "host name does not exist",
			edit: func(tr *http.Transport) {
				tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					host, _, _ := net.SplitHostPort(addr)
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
			},
			label: "dns",
		},
		{
			name:  "Entra's certificate not trusted (ca_file missing)",
			edit:  func(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12} }, // system roots only
			label: "tls",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, srv, cert, func(c *Config) {
				tr := c.HTTPClient.Transport.(*recorder).next.(*http.Transport).Clone()
				tc.edit(tr)
				c.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
			})
			_, err := h.x.Exchange(t.Context(), Request{
				Assertion: "eyJ.not-sent.x", TenantID: srv.TenantID(), Scopes: []string{ordersScope}, Route: "orders",
			})
			e := asOBOError(t, err)
			if e.Class() != ClassGateway || e.CodeLabel() != tc.label || e.Class().Status() != http.StatusBadGateway {
				t.Errorf("Class, CodeLabel = %q, %q (%v); want gateway_config, %s: a misconfiguration, answered 502", e.Class(), e.CodeLabel(), e, tc.label)
			}
			if !strings.Contains(e.Hint(), "entra.") {
				t.Errorf("Hint() = %q; want it to name the setting to correct", e.Hint())
			}
			h.assertSingleExchangeMetric(t, "orders", string(ClassGateway), tc.label)
		})
	}
}
