package fakeentra_test

// Tests of the tenant's controls for tests and fault drills (faults, latency,
// key rotation, the request log and their HTTP forms under /_fakeentra/), of
// its discovery documents, and of tenant files. Every test runs a real tenant
// over HTTPS and talks to it with real HTTP requests.
//
// Helpers are prefixed with ctl: other test files of this package define theirs.

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/fakeentra"
	"github.com/obo-gateway/obo-gateway/internal/fakeentra/fakeentratest"
	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	ctlGatewaySecret = fakeentra.DemoGatewaySecret
	ctlOrdersDefault = "api://orders-api/.default"
	ctlUserScope     = "api://obo-gateway/access_as_user"
)

// ctlSummary describes a body for a failure message without ever including a
// token: Entra errors show their error, codes and description; anything else
// shows only its field names.
func ctlSummary(body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Sprintf("(%d bytes, not a JSON object)", len(body))
	}
	if e, ok := m["error"]; ok {
		return fmt.Sprintf("error=%v error_codes=%v description=%.300v", e, m["error_codes"], m["error_description"])
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "fields " + strings.Join(keys, ",")
}

// ctlDo sends req and reads the answer; a transport error fails the test.
func ctlDo(t *testing.T, c *http.Client, req *http.Request) accResp {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return accResp{status: resp.StatusCode, header: resp.Header, body: body}
}

func ctlFormRequest(t *testing.T, ctx context.Context, endpoint string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func ctlPostForm(t *testing.T, c *http.Client, endpoint string, form url.Values) accResp {
	t.Helper()
	return ctlDo(t, c, ctlFormRequest(t, t.Context(), endpoint, form))
}

func ctlGet(t *testing.T, c *http.Client, u string) accResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return ctlDo(t, c, req)
}

func ctlSend(t *testing.T, c *http.Client, method, u, body string) accResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return ctlDo(t, c, req)
}

func ctlCCForm() url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {fakeentra.DemoGatewayClientID},
		"client_secret": {ctlGatewaySecret},
		"scope":         {ctlOrdersDefault},
	}
}

// ctlClientCredentials asks for an app-only token for orders-api as the gateway.
func ctlClientCredentials(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp {
	t.Helper()
	return ctlPostForm(t, c, srv.TokenEndpoint(), ctlCCForm())
}

func ctlOBOForm(assertion, scope string) url.Values {
	return url.Values{
		"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"requested_token_use": {"on_behalf_of"},
		"assertion":           {assertion},
		"client_id":           {fakeentra.DemoGatewayClientID},
		"client_secret":       {ctlGatewaySecret},
		"scope":               {scope},
	}
}

func ctlOBO(t *testing.T, srv *fakeentra.Server, c *http.Client, assertion, scope string) accResp {
	t.Helper()
	return ctlPostForm(t, c, srv.TokenEndpoint(), ctlOBOForm(assertion, scope))
}

func ctlPasswordForm(user, password, scope string) url.Values {
	return url.Values{
		"grant_type": {"password"},
		"client_id":  {fakeentra.DemoFrontendClientID},
		"username":   {user},
		"password":   {password},
		"scope":      {scope},
	}
}

// ctlTokenResponse is a successful token answer.
type ctlTokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// ctlWantToken checks a successful token answer and returns it.
func ctlWantToken(t *testing.T, r accResp) ctlTokenResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("token request: status %d, want 200: %s", r.status, ctlSummary(r.body))
	}
	var tr ctlTokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	if tr.TokenType != "Bearer" || strings.Count(tr.AccessToken, ".") != 2 {
		t.Fatalf("token response: token_type %q, access token with %d dots; want Bearer and a JWS",
			tr.TokenType, strings.Count(tr.AccessToken, "."))
	}
	return tr
}

// ctlKids returns the kids of a JWKS, in order.
func ctlKids(t *testing.T, c *http.Client, jwksURI string) []string {
	t.Helper()
	r := ctlGet(t, c, jwksURI)
	if r.status != http.StatusOK {
		t.Fatalf("GET keys: status %d: %s", r.status, ctlSummary(r.body))
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("keys: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func ctlDiscoveryURL(srv *fakeentra.Server) string {
	return srv.URL() + "/" + srv.TenantID() + "/v2.0/.well-known/openid-configuration"
}

func TestInjectFault503CountTwo(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	if err := srv.InjectFault(fakeentra.Fault{Status: http.StatusServiceUnavailable, Count: 2}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	const corr = "0f3e5a52-6d0c-4b7e-9a51-2c4d8e6f1a3b"
	for i := range 2 {
		req := ctlFormRequest(t, t.Context(), srv.TokenEndpoint(), ctlCCForm())
		req.Header.Set("client-request-id", corr)
		e := accWantError(t, ctlDo(t, c, req), http.StatusServiceUnavailable, "temporarily_unavailable", 90033)
		if e.CorrelationID != corr {
			t.Errorf("request %d: correlation_id %q, want the client-request-id %q", i+1, e.CorrelationID, corr)
		}
	}
	ctlWantToken(t, ctlClientCredentials(t, srv, c))
	ctlWantToken(t, ctlClientCredentials(t, srv, c)) // the fault is used up, not merely skipped once

	recs := srv.Requests()
	if len(recs) != 4 {
		t.Fatalf("Requests() has %d records, want 4", len(recs))
	}
	for i, rec := range recs {
		want := fakeentra.Record{Result: "success", Status: http.StatusOK}
		if i < 2 {
			want = fakeentra.Record{Result: "fault", Status: http.StatusServiceUnavailable}
		}
		if rec.Result != want.Result || rec.Status != want.Status {
			t.Errorf("record %d: result %q status %d, want %q %d", i, rec.Result, rec.Status, want.Result, want.Status)
		}
		if rec.Grant != "client_credentials" || rec.ClientID != fakeentra.DemoGatewayClientID {
			t.Errorf("record %d: grant %q client %q, want client_credentials and the gateway", i, rec.Grant, rec.ClientID)
		}
	}
	if recs[0].ClientRequestID != corr {
		t.Errorf("fault record: client_request_id %q, want %q", recs[0].ClientRequestID, corr)
	}
}

func TestInjectFault429RetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		want       string // the Retry-After header; "" for none
	}{
		{name: "whole seconds", retryAfter: 7 * time.Second, want: "7"},
		{name: "fraction rounds up", retryAfter: 1500 * time.Millisecond, want: "2"},
		{name: "Entra's default", retryAfter: 0, want: "60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeentratest.Start(t, fakeentra.Config{})
			c := srv.HTTPClient()
			if err := srv.InjectFault(fakeentra.Fault{Status: http.StatusTooManyRequests, RetryAfter: tc.retryAfter, Count: 1}); err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			r := ctlClientCredentials(t, srv, c)
			// Entra's throttling answer is plain text with Retry-After
			// (errors/HTTP429_token_endpoint_plaintext_body_2021.txt).
			if r.status != http.StatusTooManyRequests || string(r.body) != "Too Many Requests" ||
				!strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Errorf("answer %d %q (%s), want 429 \"Too Many Requests\" as plain text", r.status, r.body, r.header.Get("Content-Type"))
			}
			if got := r.header.Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After %q, want %q", got, tc.want)
			}
			ctlWantToken(t, ctlClientCredentials(t, srv, c))
		})
	}
}

// Loop detection (AADSTS50196) is not throttling: HTTP 400 with Entra's JSON
// error, injected or caused by asking for the same token too often.
func TestLoopDetection(t *testing.T) {
	t.Run("injected", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		if err := srv.InjectFault(fakeentra.Fault{Status: http.StatusBadRequest, Code: 50196, Count: 1}); err != nil {
			t.Fatalf("InjectFault: %v", err)
		}
		accWantError(t, ctlClientCredentials(t, srv, c), http.StatusBadRequest, "invalid_request", 50196)
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
		if err := srv.InjectFault(fakeentra.Fault{Status: http.StatusTooManyRequests, Code: 50196, Count: 1}); err == nil {
			t.Error("InjectFault accepted code 50196 with status 429")
		}
	})
	t.Run("detected", func(t *testing.T) {
		ten := fakeentra.DemoTenant()
		ten.LoopDetection = &fakeentra.LoopDetection{MaxRequests: 3, Window: fakeentra.Duration(time.Minute)}
		srv := fakeentratest.Start(t, fakeentra.Config{Tenant: ten})
		c := srv.HTTPClient()
		for range 3 {
			ctlWantToken(t, ctlClientCredentials(t, srv, c))
		}
		accWantError(t, ctlClientCredentials(t, srv, c), http.StatusBadRequest, "invalid_request", 50196)
	})
}

func TestInjectFaultStatusShapes(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	for _, tc := range []struct {
		name     string
		status   int
		oauthErr string
		code     int
	}{
		{"500", http.StatusInternalServerError, "temporarily_unavailable", 90033},
		{"502", http.StatusBadGateway, "temporarily_unavailable", 90033},
		{"503", http.StatusServiceUnavailable, "temporarily_unavailable", 90033},
		{"504", http.StatusGatewayTimeout, "temporarily_unavailable", 90033},
		{"400", http.StatusBadRequest, "invalid_request", 90033},
		{"403", http.StatusForbidden, "invalid_request", 90033},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := srv.InjectFault(fakeentra.Fault{Status: tc.status, Count: 1}); err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			accWantError(t, ctlClientCredentials(t, srv, c), tc.status, tc.oauthErr, tc.code)
			ctlWantToken(t, ctlClientCredentials(t, srv, c))
		})
	}
}

func TestInjectFaultDrop(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	if err := srv.InjectFault(fakeentra.Fault{Drop: true, Count: 1}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	resp, err := c.Do(ctlFormRequest(t, t.Context(), srv.TokenEndpoint(), ctlCCForm()))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request: got HTTP %d, want a transport error and no response", resp.StatusCode)
	}
	ctlWantToken(t, ctlClientCredentials(t, srv, c))
	recs := srv.Requests()
	if len(recs) != 2 || recs[0].Result != "fault" || recs[1].Result != "success" {
		t.Fatalf("records %+v, want a fault then a success", recs)
	}
}

func TestInjectFaultBoundedInTime(t *testing.T) {
	type step struct {
		advance time.Duration // clock advance before the request
		want    int           // status
	}
	for _, tc := range []struct {
		name  string
		fault fakeentra.Fault
		steps []step
	}{
		{
			name:  "duration only fails every request until the bound",
			fault: fakeentra.Fault{Status: http.StatusInternalServerError, For: time.Minute},
			steps: []step{{0, 500}, {0, 500}, {0, 500}, {59 * time.Second, 500}, {time.Second, 500}, {time.Second, 200}, {0, 200}},
		},
		{
			name:  "count within the duration",
			fault: fakeentra.Fault{Status: http.StatusServiceUnavailable, Count: 1, For: time.Minute},
			steps: []step{{0, 503}, {0, 200}},
		},
		{
			name:  "duration ends before the count",
			fault: fakeentra.Fault{Status: http.StatusServiceUnavailable, Count: 5, For: time.Minute},
			steps: []step{{0, 503}, {2 * time.Minute, 200}, {0, 200}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Now())
			srv := fakeentratest.Start(t, fakeentra.Config{Now: clk.Now})
			c := srv.HTTPClient()
			if err := srv.InjectFault(tc.fault); err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			var elapsed time.Duration
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				elapsed += st.advance
				r := ctlClientCredentials(t, srv, c)
				if r.status != st.want {
					t.Fatalf("step %d (clock +%v): status %d, want %d: %s", i, elapsed, r.status, st.want, ctlSummary(r.body))
				}
			}
		})
	}
}

func TestInjectFaultOtherEndpoints(t *testing.T) {
	type call struct {
		name string
		do   func(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp
	}
	token := call{"token", func(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp {
		return ctlClientCredentials(t, srv, c)
	}}
	keys := call{"keys v2", func(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp {
		return ctlGet(t, c, srv.JWKSURI())
	}}
	keysV1 := call{"keys v1", func(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp {
		return ctlGet(t, c, srv.URL()+"/"+srv.TenantID()+"/discovery/keys")
	}}
	discovery := call{"discovery", func(t *testing.T, srv *fakeentra.Server, c *http.Client) accResp {
		return ctlGet(t, c, ctlDiscoveryURL(srv))
	}}
	for _, tc := range []struct {
		name   string
		fault  fakeentra.Fault
		calls  []call // in order: those under the fault get it, the others a normal answer
		spared []call // then, with the fault used up, all answered normally
	}{
		{
			name:   "keys",
			fault:  fakeentra.Fault{Endpoint: "keys", Status: 503, Count: 2},
			calls:  []call{token, keys, discovery, keysV1},
			spared: []call{keys, keysV1},
		},
		{
			name:   "discovery",
			fault:  fakeentra.Fault{Endpoint: "discovery", Status: 500, Count: 1},
			calls:  []call{keys, token, discovery},
			spared: []call{discovery},
		},
		{
			name:   "all",
			fault:  fakeentra.Fault{Endpoint: "all", Status: 503, Count: 3},
			calls:  []call{token, keys, discovery},
			spared: []call{token, keys, discovery},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeentratest.Start(t, fakeentra.Config{})
			c := srv.HTTPClient()
			if err := srv.InjectFault(tc.fault); err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			for _, cl := range tc.calls {
				r := cl.do(t, srv, c)
				hit := tc.fault.Endpoint == "all" || strings.HasPrefix(cl.name, tc.fault.Endpoint)
				if !hit {
					if r.status != http.StatusOK {
						t.Fatalf("%s, not under the fault: status %d: %s", cl.name, r.status, ctlSummary(r.body))
					}
					continue
				}
				accWantError(t, r, tc.fault.Status, "temporarily_unavailable", 90033)
			}
			for _, cl := range tc.spared {
				if r := cl.do(t, srv, c); r.status != http.StatusOK {
					t.Fatalf("%s after the fault was used up: status %d: %s", cl.name, r.status, ctlSummary(r.body))
				}
			}
		})
	}
}

func TestInjectFaultRejectsInvalid(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	for _, tc := range []struct {
		name    string
		fault   fakeentra.Fault
		wantErr string
	}{
		{name: "status 200", fault: fakeentra.Fault{Status: 200, Count: 1}, wantErr: "status 200"},
		{name: "status 302", fault: fakeentra.Fault{Status: 302, Count: 1}, wantErr: "want 4xx or 5xx"},
		{name: "status 600", fault: fakeentra.Fault{Status: 600, Count: 1}, wantErr: "want 4xx or 5xx"},
		{name: "no status and no drop", fault: fakeentra.Fault{Count: 1}, wantErr: "status 0"},
		{name: "no count and no duration", fault: fakeentra.Fault{Status: 503}, wantErr: "count or a duration"},
		{name: "negative count", fault: fakeentra.Fault{Status: 503, Count: -1}, wantErr: "count or a duration"},
		{name: "drop without count", fault: fakeentra.Fault{Drop: true}, wantErr: "count or a duration"},
		{name: "unknown endpoint", fault: fakeentra.Fault{Endpoint: "jwks", Status: 503, Count: 1}, wantErr: `endpoint "jwks"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := srv.InjectFault(tc.fault)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("InjectFault(%+v) = %v, want an error containing %q", tc.fault, err, tc.wantErr)
			}
		})
	}
	// None of them was installed.
	c := srv.HTTPClient()
	ctlWantToken(t, ctlClientCredentials(t, srv, c))
	if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusOK {
		t.Fatalf("keys after rejected faults: status %d", r.status)
	}
}

func TestClearFaults(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	if err := srv.InjectFault(fakeentra.Fault{Endpoint: "all", Status: 503, Count: 100}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	srv.SetLatency(time.Hour)
	srv.ClearFaults()
	ctlWantToken(t, ctlClientCredentials(t, srv, c))
	if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusOK {
		t.Fatalf("keys after ClearFaults: status %d", r.status)
	}
}

// ctlFaultFrames counts goroutines inside the tenant's fault hook (where
// latency is served).
func ctlFaultFrames() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "internal/fakeentra.(*Server).fault(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// ctlAwaitFaultFrames polls until cond holds for the count of goroutines in
// the fault hook, or fails after a generous bound.
func ctlAwaitFaultFrames(t *testing.T, what string, cond func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(ctlFaultFrames()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSetLatency uses real time: it asserts lower bounds only.
func TestSetLatency(t *testing.T) {
	const d = 150 * time.Millisecond

	t.Run("token only", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		srv.SetLatency(d, "token")
		start := time.Now()
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
		if el := time.Since(start); el < d {
			t.Errorf("token request took %v, want at least %v", el, d)
		}
		// The keys endpoint is not delayed: an hour of token latency leaves it answering.
		srv.SetLatency(time.Hour, "token")
		if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusOK {
			t.Errorf("keys with token latency: status %d", r.status)
		}
		srv.SetLatency(0, "token") // removes the delay
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
	})

	t.Run("no endpoint means all", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		srv.SetLatency(d)
		for name, do := range map[string]func() accResp{
			"token":     func() accResp { return ctlClientCredentials(t, srv, c) },
			"keys":      func() accResp { return ctlGet(t, c, srv.JWKSURI()) },
			"discovery": func() accResp { return ctlGet(t, c, ctlDiscoveryURL(srv)) },
		} {
			start := time.Now()
			r := do()
			if el := time.Since(start); el < d {
				t.Errorf("%s took %v, want at least %v", name, el, d)
			}
			if r.status != http.StatusOK {
				t.Errorf("%s: status %d: %s", name, r.status, ctlSummary(r.body))
			}
		}
	})

	t.Run("cancelled request returns early", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		srv.SetLatency(time.Hour, "token")
		base := ctlFaultFrames()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		req := ctlFormRequest(t, ctx, srv.TokenEndpoint(), ctlCCForm())
		go func() {
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		ctlAwaitFaultFrames(t, "the request waits in the tenant's latency", func(n int) bool { return n > base })
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled request: err %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the cancelled request did not return")
		}
		// The tenant's handler gives up too, rather than holding on for the hour.
		ctlAwaitFaultFrames(t, "the tenant's handler returns", func(n int) bool { return n <= base })
		if recs := srv.Requests(); len(recs) != 0 {
			t.Errorf("the abandoned request was recorded: %+v", recs)
		}
	})
}

func TestRotateSigningKeys(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	kid0 := srv.SigningKeyID()
	if got := ctlKids(t, c, srv.JWKSURI()); !slices.Equal(got, []string{kid0}) {
		t.Fatalf("initial kids %v, want [%s]", got, kid0)
	}
	tok0, err := srv.UserToken(accAlice, ctlUserScope, fakeentra.UserTokenOptions{})
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}

	kid1, err := srv.RotateSigningKeys(true)
	if err != nil {
		t.Fatalf("RotateSigningKeys(true): %v", err)
	}
	if kid1 == kid0 || srv.SigningKeyID() != kid1 {
		t.Fatalf("after rotation: kid %q, SigningKeyID %q, old %q: want a new current kid", kid1, srv.SigningKeyID(), kid0)
	}
	for _, u := range []string{srv.JWKSURI(), srv.URL() + "/" + srv.TenantID() + "/discovery/keys"} {
		if got := ctlKids(t, c, u); !slices.Equal(got, []string{kid1, kid0}) {
			t.Errorf("kids at %s after RotateSigningKeys(true): %v, want [%s %s]", u, got, kid1, kid0)
		}
	}
	tr := ctlWantToken(t, ctlClientCredentials(t, srv, c))
	if got := testkit.JWTHeader(t, tr.AccessToken)["kid"]; got != kid1 {
		t.Errorf("new token's kid %v, want %s", got, kid1)
	}
	ctlWantToken(t, ctlOBO(t, srv, c, tok0, "api://orders-api/Orders.Read")) // the old key still verifies
	tok1, err := srv.UserToken(accAlice, ctlUserScope, fakeentra.UserTokenOptions{})
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}

	kid2, err := srv.RotateSigningKeys(false)
	if err != nil {
		t.Fatalf("RotateSigningKeys(false): %v", err)
	}
	if got := ctlKids(t, c, srv.JWKSURI()); !slices.Equal(got, []string{kid2}) {
		t.Fatalf("kids after RotateSigningKeys(false): %v, want only [%s]", got, kid2)
	}
	for name, tok := range map[string]string{"first key": tok0, "second key": tok1} {
		e := accWantError(t, ctlOBO(t, srv, c, tok, "api://orders-api/Orders.Read"), http.StatusBadRequest, "invalid_grant", 50013)
		if !strings.Contains(e.ErrorDescription, "The key was not found") {
			t.Errorf("OBO with a user token signed by the withdrawn %s: description %.200q, want \"The key was not found\"", name, e.ErrorDescription)
		}
	}
	tok2, err := srv.UserToken(accAlice, ctlUserScope, fakeentra.UserTokenOptions{})
	if err != nil {
		t.Fatalf("UserToken: %v", err)
	}
	ctlWantToken(t, ctlOBO(t, srv, c, tok2, "api://orders-api/Orders.Read"))

	// Kept keys are capped at three, newest first, as Entra publishes them.
	var want []string
	for range 4 {
		kid, err := srv.RotateSigningKeys(true)
		if err != nil {
			t.Fatalf("RotateSigningKeys(true): %v", err)
		}
		want = append([]string{kid}, want...)
	}
	if got := ctlKids(t, c, srv.JWKSURI()); !slices.Equal(got, want[:3]) {
		t.Errorf("kids after four kept rotations: %v, want the newest three %v", got, want[:3])
	}
}

func TestRequestsRecordsWithoutSecrets(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	srv := fakeentratest.Start(t, fakeentra.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := srv.HTTPClient()
	const (
		wrongSecret   = "not-the-gateway-secret-7c1f" //nolint:gosec // a wrong test secret
		wrongPassword = "Wr0ng!password-5b2e"         //nolint:gosec // a wrong test password
		aliceOID      = fakeentra.DemoAliceObjectID
	)
	secrets := map[string]string{ // what must never appear, by a printable name
		"gateway secret": ctlGatewaySecret,
		"wrong secret":   wrongSecret,
		"password":       fakeentra.DemoPassword,
		"wrong password": wrongPassword,
	}
	addToken := func(name, tok string) {
		if tok == "" {
			return
		}
		secrets[name] = tok
		if segs := strings.Split(tok, "."); len(segs) == 3 {
			secrets[name+" signature"] = segs[2]
			secrets[name+" claims"] = segs[1]
		}
	}
	send := func(corr string, form url.Values) accResp {
		t.Helper()
		req := ctlFormRequest(t, t.Context(), srv.TokenEndpoint(), form)
		req.Header.Set("client-request-id", corr)
		return ctlDo(t, c, req)
	}
	type want struct {
		grant, client, result, oauthErr string
		status, code                    int
		subject                         string
	}
	var wants []want
	corrs := []string{}
	corr := func() string {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(corrs)+1)
		corrs = append(corrs, id)
		return id
	}

	cc := ctlWantToken(t, send(corr(), ctlCCForm()))
	addToken("client-credentials token", cc.AccessToken)
	wants = append(wants, want{"client_credentials", fakeentra.DemoGatewayClientID, "success", "", 200, 0, ""})

	bad := ctlCCForm()
	bad.Set("client_secret", wrongSecret)
	accWantError(t, send(corr(), bad), http.StatusUnauthorized, "invalid_client", 7000215)
	wants = append(wants, want{"client_credentials", fakeentra.DemoGatewayClientID, "error", "invalid_client", 401, 7000215, ""})

	pw := ctlWantToken(t, send(corr(), ctlPasswordForm(accAlice, fakeentra.DemoPassword, ctlUserScope+" openid offline_access")))
	addToken("user access token", pw.AccessToken)
	addToken("refresh token", pw.RefreshToken)
	addToken("ID token", pw.IDToken)
	wants = append(wants, want{"password", fakeentra.DemoFrontendClientID, "success", "", 200, 0, aliceOID})

	accWantError(t, send(corr(), ctlPasswordForm(accAlice, wrongPassword, ctlUserScope)), http.StatusBadRequest, "invalid_grant", 50126)
	wants = append(wants, want{"password", fakeentra.DemoFrontendClientID, "error", "invalid_grant", 400, 50126, aliceOID})

	obo := ctlWantToken(t, send(corr(), ctlOBOForm(pw.AccessToken, "api://orders-api/Orders.Read")))
	addToken("OBO token", obo.AccessToken)
	wants = append(wants, want{"urn:ietf:params:oauth:grant-type:jwt-bearer", fakeentra.DemoGatewayClientID, "success", "", 200, 0, aliceOID})

	rt := ctlWantToken(t, send(corr(), url.Values{
		"grant_type": {"refresh_token"}, "client_id": {fakeentra.DemoFrontendClientID},
		"refresh_token": {pw.RefreshToken}, "scope": {ctlUserScope + " offline_access"},
	}))
	addToken("refreshed access token", rt.AccessToken)
	addToken("second refresh token", rt.RefreshToken)
	wants = append(wants, want{"refresh_token", fakeentra.DemoFrontendClientID, "success", "", 200, 0, aliceOID})

	if err := srv.InjectFault(fakeentra.Fault{Status: 503, Count: 1}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	accWantError(t, send(corr(), ctlCCForm()), http.StatusServiceUnavailable, "temporarily_unavailable", 90033)
	wants = append(wants, want{"client_credentials", fakeentra.DemoGatewayClientID, "fault", "", 503, 0, ""})

	recs := srv.Requests()
	if len(recs) != len(wants) {
		t.Fatalf("Requests() has %d records, want %d", len(recs), len(wants))
	}
	for i, rec := range recs {
		w := wants[i]
		got := want{rec.Grant, rec.ClientID, rec.Result, rec.Error, rec.Status, rec.Code, rec.Subject}
		if got != w {
			t.Errorf("record %d: %+v, want %+v", i, got, w)
		}
		if rec.ClientRequestID != corrs[i] {
			t.Errorf("record %d: client_request_id %q, want %q", i, rec.ClientRequestID, corrs[i])
		}
		if rec.Time.IsZero() {
			t.Errorf("record %d has no time", i)
		}
		if rec.Result != "fault" && rec.TenantID != srv.TenantID() {
			t.Errorf("record %d: tenant %q, want %q", i, rec.TenantID, srv.TenantID())
		}
	}
	if recs[0].Scope != ctlOrdersDefault {
		t.Errorf("record 0: scope %q, want %q", recs[0].Scope, ctlOrdersDefault)
	}

	// Neither the records nor their HTTP form hold a secret or a token.
	data, err := json.Marshal(recs)
	if err != nil {
		t.Fatalf("marshal records: %v", err)
	}
	viaHTTP := ctlGet(t, c, srv.URL()+"/_fakeentra/requests")
	for name, secret := range secrets {
		if strings.Contains(string(data), secret) {
			t.Errorf("Requests() holds the %s", name)
		}
		if strings.Contains(string(viaHTTP.body), secret) {
			t.Errorf("GET /_fakeentra/requests shows the %s", name)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the tenant's log holds the %s", name)
		}
	}
	if n := len(logs.Lines(t)); n != len(wants) {
		t.Errorf("%d log lines for %d token requests, want one each:\n%s", n, len(wants), logs)
	}

	srv.ResetRequests()
	if recs := srv.Requests(); len(recs) != 0 {
		t.Fatalf("after ResetRequests: %d records, want none", len(recs))
	}
	ctlWantToken(t, ctlClientCredentials(t, srv, c))
	if recs := srv.Requests(); len(recs) != 1 {
		t.Fatalf("a request after ResetRequests: %d records, want 1", len(recs))
	}
}

func TestControlEndpoints(t *testing.T) {
	ctl := func(srv *fakeentra.Server, path string) string { return srv.URL() + "/_fakeentra/" + path }

	t.Run("rotate-keys", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		old := srv.SigningKeyID()
		r := ctlSend(t, c, http.MethodPost, ctl(srv, "rotate-keys"), "")
		var got struct{ Kid string }
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
			t.Fatalf("POST rotate-keys: status %d: %s", r.status, ctlSummary(r.body))
		}
		if got.Kid == "" || got.Kid != srv.SigningKeyID() {
			t.Fatalf("rotate-keys answered kid %q; current is %q", got.Kid, srv.SigningKeyID())
		}
		if kids := ctlKids(t, c, srv.JWKSURI()); !slices.Equal(kids, []string{got.Kid, old}) {
			t.Errorf("kids after rotate-keys: %v, want [new old] (the old key kept by default)", kids)
		}
		r = ctlSend(t, c, http.MethodPost, ctl(srv, "rotate-keys?keep_old=false"), "")
		if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
			t.Fatalf("POST rotate-keys?keep_old=false: status %d", r.status)
		}
		if kids := ctlKids(t, c, srv.JWKSURI()); !slices.Equal(kids, []string{got.Kid}) {
			t.Errorf("kids after rotate-keys?keep_old=false: %v, want only [%s]", kids, got.Kid)
		}
		if r := ctlGet(t, c, ctl(srv, "rotate-keys")); r.status != http.StatusMethodNotAllowed {
			t.Errorf("GET rotate-keys: status %d, want 405", r.status)
		}
	})

	t.Run("faults", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		r := ctlSend(t, c, http.MethodPost, ctl(srv, "faults"), `{"status":503,"count":1,"retry_after":"2s"}`)
		if r.status != http.StatusOK {
			t.Fatalf("POST faults: status %d: %s", r.status, r.body)
		}
		r = ctlClientCredentials(t, srv, c)
		accWantError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable", 90033)
		if got := r.header.Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After %q, want 2", got)
		}
		ctlWantToken(t, ctlClientCredentials(t, srv, c))

		r = ctlSend(t, c, http.MethodPost, ctl(srv, "faults"), `{"endpoint":"keys","drop":false,"status":500,"count":50}`)
		if r.status != http.StatusOK {
			t.Fatalf("POST faults (keys): status %d: %s", r.status, r.body)
		}
		if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusInternalServerError {
			t.Fatalf("keys under the fault: status %d, want 500", r.status)
		}
		if r := ctlSend(t, c, http.MethodDelete, ctl(srv, "faults"), ""); r.status != http.StatusOK {
			t.Fatalf("DELETE faults: status %d", r.status)
		}
		if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusOK {
			t.Fatalf("keys after DELETE faults: status %d, want 200", r.status)
		}
	})

	t.Run("faults bounded in time", func(t *testing.T) {
		clk := testkit.NewClock(time.Now())
		srv := fakeentratest.Start(t, fakeentra.Config{Now: clk.Now})
		c := srv.HTTPClient()
		if r := ctlSend(t, c, http.MethodPost, ctl(srv, "faults"), `{"status":502,"for":"1m"}`); r.status != http.StatusOK {
			t.Fatalf("POST faults: status %d: %s", r.status, r.body)
		}
		for range 2 {
			if r := ctlClientCredentials(t, srv, c); r.status != http.StatusBadGateway {
				t.Fatalf("within the minute: status %d, want 502", r.status)
			}
		}
		clk.Advance(61 * time.Second)
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
	})

	t.Run("invalid faults", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		for _, tc := range []struct{ name, body, wantErr string }{
			{"not JSON", `status=503`, "invalid character"},
			{"unknown field", `{"status":503,"count":1,"retry":"2s"}`, "unknown field"},
			{"bad retry_after", `{"status":503,"count":1,"retry_after":"soon"}`, "duration"},
			{"numeric retry_after", `{"status":503,"count":1,"retry_after":2}`, "retry_after"},
			{"bad for", `{"status":503,"for":"a while"}`, "duration"},
			{"status 200", `{"status":200,"count":1}`, "4xx or 5xx"},
			{"no count, no duration", `{"status":503}`, "count or a duration"},
			{"unknown endpoint", `{"endpoint":"userinfo","status":503,"count":1}`, "endpoint"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ctlSend(t, c, http.MethodPost, ctl(srv, "faults"), tc.body)
				var e struct{ Error string }
				if r.status != http.StatusBadRequest || json.Unmarshal(r.body, &e) != nil {
					t.Fatalf("status %d body %s, want 400 with a JSON error", r.status, r.body)
				}
				if !strings.Contains(e.Error, tc.wantErr) {
					t.Errorf("error %q, want it to contain %q", e.Error, tc.wantErr)
				}
			})
		}
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
	})

	t.Run("latency", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		const d = 150 * time.Millisecond
		for _, tc := range []struct{ name, query string }{
			{"token", "duration=150ms&endpoint=token"},
			{"all by name", "duration=150ms&endpoint=all"},
			{"all by default", "duration=150ms"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if r := ctlSend(t, c, http.MethodPost, ctl(srv, "latency?"+tc.query), ""); r.status != http.StatusOK {
					t.Fatalf("POST latency?%s: status %d: %s", tc.query, r.status, r.body)
				}
				start := time.Now()
				ctlWantToken(t, ctlClientCredentials(t, srv, c))
				if el := time.Since(start); el < d {
					t.Errorf("token request took %v, want at least %v", el, d)
				}
				if tc.name != "token" {
					start = time.Now()
					if r := ctlGet(t, c, srv.JWKSURI()); r.status != http.StatusOK {
						t.Fatalf("keys: status %d", r.status)
					}
					if el := time.Since(start); el < d {
						t.Errorf("keys request took %v, want at least %v", el, d)
					}
				}
				srv.ClearFaults()
			})
		}
		for _, tc := range []struct{ name, query, wantErr string }{
			{"missing duration", "endpoint=token", "duration"},
			{"bad duration", "duration=slow", "duration"},
			{"unknown endpoint", "duration=1s&endpoint=jwks", "endpoint"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ctlSend(t, c, http.MethodPost, ctl(srv, "latency?"+tc.query), "")
				var e struct{ Error string }
				if r.status != http.StatusBadRequest || json.Unmarshal(r.body, &e) != nil || !strings.Contains(e.Error, tc.wantErr) {
					t.Fatalf("POST latency?%s: status %d body %s, want 400 naming %q", tc.query, r.status, r.body, tc.wantErr)
				}
			})
		}
	})

	t.Run("requests", func(t *testing.T) {
		srv := fakeentratest.Start(t, fakeentra.Config{})
		c := srv.HTTPClient()
		r := ctlGet(t, c, ctl(srv, "requests"))
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("GET requests on a fresh tenant: status %d body %s, want 200 and an empty JSON array", r.status, r.body)
		}
		ctlWantToken(t, ctlClientCredentials(t, srv, c))
		bad := ctlCCForm()
		bad.Set("scope", "api://orders-api/Orders.Read")
		accWantError(t, ctlPostForm(t, c, srv.TokenEndpoint(), bad), http.StatusBadRequest, "invalid_scope", 1002012)

		r = ctlGet(t, c, ctl(srv, "requests"))
		var recs []map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &recs) != nil {
			t.Fatalf("GET requests: status %d, not a JSON array", r.status)
		}
		if len(recs) != 2 {
			t.Fatalf("GET requests: %d records, want 2", len(recs))
		}
		for i, want := range []map[string]any{
			{"grant_type": "client_credentials", "client_id": fakeentra.DemoGatewayClientID, "status": 200.0, "result": "success"},
			{"grant_type": "client_credentials", "client_id": fakeentra.DemoGatewayClientID, "status": 400.0, "result": "error", "error": "invalid_scope", "code": 1002012.0},
		} {
			for k, v := range want {
				if recs[i][k] != v {
					t.Errorf("record %d: %s = %v, want %v", i, k, recs[i][k], v)
				}
			}
		}
		if _, ok := recs[0]["code"]; ok {
			t.Errorf("record 0 (a success) has a code")
		}
	})
}

func TestDiscoveryDocuments(t *testing.T) {
	srv := fakeentratest.Start(t, fakeentra.Config{})
	c := srv.HTTPClient()
	tid, base := srv.TenantID(), srv.URL()
	host := strings.TrimPrefix(base, "https://")

	getJSON := func(t *testing.T, u string) map[string]any {
		t.Helper()
		r := ctlGet(t, c, u)
		var m map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil {
			t.Fatalf("GET %s: status %d, want 200 and a JSON object: %s", u, r.status, ctlSummary(r.body))
		}
		return m
	}

	t.Run("openid-configuration", func(t *testing.T) {
		for _, tc := range []struct {
			name, path string
			want       map[string]string
		}{
			{"v2 by tenant ID", "/" + tid + "/v2.0/.well-known/openid-configuration", map[string]string{
				"issuer": srv.IssuerV2(tid), "token_endpoint": srv.TokenEndpoint(), "jwks_uri": srv.JWKSURI(),
				"authorization_endpoint": base + "/" + tid + "/oauth2/v2.0/authorize",
			}},
			{"v2 by domain", "/contoso.test/v2.0/.well-known/openid-configuration", map[string]string{
				"issuer": base + "/" + tid + "/v2.0", "token_endpoint": base + "/" + tid + "/oauth2/v2.0/token",
				"jwks_uri": base + "/" + tid + "/discovery/v2.0/keys",
			}},
			{"v1", "/" + tid + "/.well-known/openid-configuration", map[string]string{
				"issuer": srv.IssuerV1(tid), "token_endpoint": base + "/" + tid + "/oauth2/token",
				"jwks_uri": base + "/" + tid + "/discovery/keys", "authorization_endpoint": base + "/" + tid + "/oauth2/authorize",
			}},
			// As in Entra's documents (entra_v2_common_openid-configuration_*,
			// entra_v2_organizations_*): only the issuer is a template.
			{"v2 common", "/common/v2.0/.well-known/openid-configuration", map[string]string{
				"issuer": base + "/{tenantid}/v2.0", "token_endpoint": base + "/common/oauth2/v2.0/token",
				"jwks_uri": base + "/common/discovery/v2.0/keys", "authorization_endpoint": base + "/common/oauth2/v2.0/authorize",
			}},
			{"v2 organizations", "/organizations/v2.0/.well-known/openid-configuration", map[string]string{
				"issuer": base + "/{tenantid}/v2.0", "token_endpoint": base + "/organizations/oauth2/v2.0/token",
			}},
			{"v1 common", "/common/.well-known/openid-configuration", map[string]string{
				"issuer": srv.IssuerV1("{tenantid}"), "token_endpoint": base + "/common/oauth2/token",
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				doc := getJSON(t, base+tc.path)
				for k, v := range tc.want {
					if doc[k] != v {
						t.Errorf("%s = %v, want %s", k, doc[k], v)
					}
				}
				// MSAL requires the v2 issuer's scheme and host:port to be the
				// authority's; the v1 issuer is on another host, as Entra's
				// sts.windows.net is.
				iss, _ := doc["issuer"].(string)
				if v2 := strings.Contains(tc.path, "/v2.0/"); v2 != strings.HasPrefix(iss, base+"/") {
					t.Errorf("issuer %q on %s: %v, want %v", iss, base, !v2, v2)
				}
			})
		}
		if srv.Info().Issuer != srv.IssuerV2(tid) {
			t.Errorf("Info().Issuer %q, want %q", srv.Info().Issuer, srv.IssuerV2(tid))
		}
	})

	t.Run("keys", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, issuer string
		}{
			{"v2", "/" + tid + "/discovery/v2.0/keys", base + "/" + tid + "/v2.0"},
			{"v1", "/" + tid + "/discovery/keys", ""},
			{"v2 common", "/common/discovery/v2.0/keys", base + "/{tenantid}/v2.0"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				set := getJSON(t, base+tc.path)
				keys, _ := set["keys"].([]any)
				if len(keys) != 1 {
					t.Fatalf("%d keys, want 1", len(keys))
				}
				k, _ := keys[0].(map[string]any)
				if _, ok := k["alg"]; ok {
					t.Errorf("key has alg %v: Entra's keys carry none", k["alg"])
				}
				if k["kty"] != "RSA" || k["use"] != "sig" {
					t.Errorf("kty %v use %v, want RSA sig", k["kty"], k["use"])
				}
				kid, _ := k["kid"].(string)
				if kid == "" || k["x5t"] != kid || kid != srv.SigningKeyID() {
					t.Errorf("kid %q x5t %v, want both the signing key's %q", kid, k["x5t"], srv.SigningKeyID())
				}
				if got, _ := k["issuer"].(string); got != tc.issuer {
					t.Errorf("issuer %q, want %q", got, tc.issuer)
				}
				x5c, _ := k["x5c"].([]any)
				if len(x5c) != 1 {
					t.Fatalf("x5c has %d entries, want 1", len(x5c))
				}
				der, err := base64.StdEncoding.DecodeString(fmt.Sprint(x5c[0]))
				if err != nil {
					t.Fatalf("x5c[0] is not standard base64: %v", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatalf("x5c[0]: %v", err)
				}
				if th := base64.RawURLEncoding.EncodeToString(pki.ThumbprintSHA1(cert)); th != kid {
					t.Errorf("kid %q is not the certificate's SHA-1 thumbprint %q", kid, th)
				}
				n, errN := base64.RawURLEncoding.DecodeString(fmt.Sprint(k["n"]))
				e, errE := base64.RawURLEncoding.DecodeString(fmt.Sprint(k["e"]))
				if errN != nil || errE != nil {
					t.Fatalf("n or e is not base64url: %v %v", errN, errE)
				}
				pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
				if !pub.Equal(cert.PublicKey) {
					t.Errorf("n and e are not the x5c certificate's key")
				}
			})
		}
	})

	t.Run("unknown tenant", func(t *testing.T) {
		const other = "0b6c7d8e-1111-4222-8333-944455556666"
		for _, path := range []string{
			"/" + other + "/v2.0/.well-known/openid-configuration",
			"/" + other + "/.well-known/openid-configuration",
			"/" + other + "/discovery/v2.0/keys",
			"/" + other + "/discovery/keys",
			"/fabrikam.test/v2.0/.well-known/openid-configuration",
		} {
			t.Run(path, func(t *testing.T) {
				accWantError(t, ctlGet(t, c, base+path), http.StatusBadRequest, "invalid_tenant", 90002)
			})
		}
	})

	t.Run("instance discovery", func(t *testing.T) {
		q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {base + "/" + tid + "/oauth2/v2.0/authorize"}}
		doc := getJSON(t, base+"/common/discovery/instance?"+q.Encode())
		if want := ctlDiscoveryURL(srv); doc["tenant_discovery_endpoint"] != want {
			t.Errorf("tenant_discovery_endpoint %v, want %s", doc["tenant_discovery_endpoint"], want)
		}
		md, _ := doc["metadata"].([]any)
		if len(md) != 1 {
			t.Fatalf("metadata has %d entries, want 1", len(md))
		}
		m, _ := md[0].(map[string]any)
		if m["preferred_network"] != host || fmt.Sprint(m["aliases"]) != fmt.Sprint([]any{host}) {
			t.Errorf("metadata %v, want this host %s as its only alias", m, host)
		}
	})

	t.Run("user realm", func(t *testing.T) {
		for _, tc := range []struct{ name, user, accountType, domain string }{
			{"served domain", accAlice, "Managed", "contoso.test"},
			{"lower-case path", "bob@contoso.test", "Managed", "contoso.test"},
			{"other domain", "eve@fabrikam.test", "Unknown", "fabrikam.test"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := "/common/UserRealm/"
				if tc.name == "lower-case path" {
					p = "/common/userrealm/"
				}
				doc := getJSON(t, base+p+url.PathEscape(tc.user)+"?api-version=1.0")
				if doc["account_type"] != tc.accountType || doc["domain_name"] != tc.domain {
					t.Errorf("account_type %v domain_name %v, want %s %s", doc["account_type"], doc["domain_name"], tc.accountType, tc.domain)
				}
			})
		}
	})
}

// ctlWriteTenant writes a tenant file (and anything beside it) into a new directory.
func ctlWriteTenant(t *testing.T, yaml string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	p := filepath.Join(dir, "tenant.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write tenant file: %v", err)
	}
	return p
}

const (
	ctlFabrikamID = "3f1e2d4c-5b6a-4789-8abc-def012345678"
	ctlWebID      = "0a0a0a0a-1111-4111-8111-0a0a0a0a0a0a"
	ctlMiddleID   = "0b0b0b0b-2222-4222-8222-0b0b0b0b0b0b"
	ctlCarolOID   = "0c0c0c0c-3333-4333-8333-0c0c0c0c0c0c"
	ctlCarolPass  = "Carol!pw-1" //nolint:gosec // a test password
)

const ctlTenantYAML = `
tenant_id: ` + ctlFabrikamID + `
domain: fabrikam.test
token_lifetime: 90m
apps:
  - name: web
    client_id: ` + ctlWebID + `
    public_client: true
    permissions:
      - resource: api://middle
        scopes: [access_as_user]
  - name: middle
    client_id: ` + ctlMiddleID + `
    identifier_uris: [api://middle]
    scopes: [access_as_user]
    certificates:
      - file: middle.crt.pem
    permissions:
      - resource: reports-api
        scopes: [Reports.Read]
        roles: [Reports.Read.All]
      - resource: payroll-api
        scopes: [Payroll.Read]
  - name: reports-api
    identifier_uris: [api://reports]
    scopes: [Reports.Read]
    app_roles: [Reports.Read.All]
    access_token_version: 1
  - name: payroll-api
    identifier_uris: [api://payroll]
    scopes: [Payroll.Read]
users:
  - username: carol@fabrikam.test
    password: "` + ctlCarolPass + `"
    object_id: ` + ctlCarolOID + `
    display_name: Carol Example
    no_consent: [payroll-api]
    mfa_required: [api://reports]
`

func TestLoadTenant(t *testing.T) {
	now := time.Now()
	cert, key, err := pki.SelfSigned("CN=middle", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	path := ctlWriteTenant(t, ctlTenantYAML, map[string][]byte{"middle.crt.pem": pki.CertPEM(cert)})
	ten, err := fakeentra.LoadTenant(path)
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}

	// What the file says, as read.
	if ten.TenantID != ctlFabrikamID || ten.Domain != "fabrikam.test" || time.Duration(ten.TokenLifetime) != 90*time.Minute {
		t.Errorf("tenant %s domain %s lifetime %v, want the file's", ten.TenantID, ten.Domain, time.Duration(ten.TokenLifetime))
	}
	middle := ten.App("middle")
	if middle == nil || len(middle.Certificates) != 1 {
		t.Fatalf("app middle with one certificate not loaded")
	}
	if want := filepath.Join(filepath.Dir(path), "middle.crt.pem"); middle.Certificates[0].File != want {
		t.Errorf("certificate file %q, want it resolved beside the tenant file: %q", middle.Certificates[0].File, want)
	}
	if ra := ten.App("reports-api"); ra == nil || ra.AccessTokenVersion != 1 || !slices.Equal(ra.AppRoles, []string{"Reports.Read.All"}) {
		t.Errorf("reports-api not loaded with access_token_version 1 and its app role")
	}
	carol := ten.User("carol@fabrikam.test")
	if carol == nil || !slices.Equal(carol.NoConsent, []string{"payroll-api"}) || !slices.Equal(carol.MFARequired, []string{"api://reports"}) {
		t.Fatalf("user carol not loaded with her policies")
	}

	// And as served.
	srv := fakeentratest.Start(t, fakeentra.Config{Tenant: ten})
	c := srv.HTTPClient()
	if srv.TenantID() != ctlFabrikamID {
		t.Fatalf("serving tenant %s, want %s", srv.TenantID(), ctlFabrikamID)
	}
	if info := srv.Info().Apps["middle"]; info.CertificateFile != "" || info.KeyFile != "" || info.ClientID != ctlMiddleID {
		t.Errorf("Info for middle: %+v, want its client ID and no generated credential", info)
	}
	if r := ctlGet(t, c, srv.URL()+"/fabrikam.test/v2.0/.well-known/openid-configuration"); r.status != http.StatusOK {
		t.Errorf("discovery by the file's domain: status %d", r.status)
	}

	assertion := func() url.Values {
		return url.Values{
			"client_id":             {ctlMiddleID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {accClientAssertion(t, accCred{key: key, cert: cert}, ctlMiddleID, srv.TokenEndpoint(), nil)},
		}
	}
	t.Run("certificate from file authenticates", func(t *testing.T) {
		form := assertion()
		form.Set("grant_type", "client_credentials")
		form.Set("scope", "api://reports/.default")
		tr := ctlWantToken(t, ctlPostForm(t, c, srv.TokenEndpoint(), form))
		cl := testkit.JWTClaims(t, tr.AccessToken)
		if cl["ver"] != "1.0" || cl["aud"] != "api://reports" || cl["iss"] != srv.IssuerV1(ctlFabrikamID) || cl["appidacr"] != "2" {
			t.Errorf("app token: ver %v aud %v iss %v appidacr %v, want a v1 token for api://reports by certificate", cl["ver"], cl["aud"], cl["iss"], cl["appidacr"])
		}
		if fmt.Sprint(cl["roles"]) != "[Reports.Read.All]" {
			t.Errorf("roles %v, want [Reports.Read.All]", cl["roles"])
		}
		if time.Duration(ctlWantToken(t, ctlPostForm(t, c, srv.TokenEndpoint(), form)).ExpiresIn)*time.Second != 90*time.Minute {
			t.Errorf("expires_in is not the file's token_lifetime")
		}
	})

	userTok := ctlWantToken(t, ctlPostForm(t, c, srv.TokenEndpoint(), url.Values{
		"grant_type": {"password"}, "client_id": {ctlWebID}, "username": {"carol@fabrikam.test"},
		"password": {ctlCarolPass}, "scope": {"api://middle/access_as_user"},
	})).AccessToken
	// middle's manifest leaves the token version unset (null): v1 tokens.
	if cl := testkit.JWTClaims(t, userTok); cl["oid"] != ctlCarolOID || cl["aud"] != "api://middle" || cl["ver"] != "1.0" || cl["name"] != "Carol Example" {
		t.Errorf("user token: oid %v aud %v ver %v name %v, want carol's v1 token for middle", cl["oid"], cl["aud"], cl["ver"], cl["name"])
	}
	for _, tc := range []struct {
		name, scope, oauthErr, suberror string
		code                            int
		claims                          bool
	}{
		{name: "no_consent", scope: "api://payroll/Payroll.Read", oauthErr: "invalid_grant", suberror: "consent_required", code: 65001},
		{name: "mfa_required", scope: "api://reports/Reports.Read", oauthErr: "invalid_grant", suberror: "basic_action", code: 50076, claims: true},
	} {
		t.Run("policy "+tc.name, func(t *testing.T) {
			form := assertion()
			form.Set("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
			form.Set("requested_token_use", "on_behalf_of")
			form.Set("assertion", userTok)
			form.Set("scope", tc.scope)
			e := accWantError(t, ctlPostForm(t, c, srv.TokenEndpoint(), form), http.StatusBadRequest, tc.oauthErr, tc.code)
			if e.SubError != tc.suberror || (e.Claims != "") != tc.claims {
				t.Errorf("suberror %q, claims present %v; want %q, %v", e.SubError, e.Claims != "", tc.suberror, tc.claims)
			}
			if tc.claims && !json.Valid([]byte(e.Claims)) {
				t.Errorf("claims is not a JSON string")
			}
		})
	}
}

func TestLoadTenantRejects(t *testing.T) {
	certPEM := func(t *testing.T) []byte {
		t.Helper()
		now := time.Now()
		cert, _, err := pki.SelfSigned("CN=x", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatalf("SelfSigned: %v", err)
		}
		return pki.CertPEM(cert)
	}
	const apiApp = "\n  - name: api\n    identifier_uris: [api://api]\n    scopes: [Read]\n"

	t.Run("at load", func(t *testing.T) {
		for _, tc := range []struct{ name, yaml, want string }{
			{"unknown top-level field", "tenant_name: fabrikam\n", "field tenant_name not found"},
			{"unknown app field", "apps:\n  - name: a\n    client_secret: x\n", "field client_secret not found"},
			{"unknown user field", "users:\n  - username: u@fabrikam.test\n    mfa: true\n", "field mfa not found"},
			{"unknown certificate field", "apps:\n  - name: a\n    certificates: [{path: a.pem}]\n", "field path not found"},
			{"misspelt policy", "users:\n  - username: u@fabrikam.test\n    noconsent: [api]\n", "field noconsent not found"},
			{"bad duration", "token_lifetime: 90 minutes\n", "is not a duration"},
			{"not YAML", "apps: [\n", "tenant file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := fakeentra.LoadTenant(ctlWriteTenant(t, tc.yaml, nil))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("LoadTenant = %v, want an error containing %q", err, tc.want)
				}
			})
		}
		_, err := fakeentra.LoadTenant(filepath.Join(t.TempDir(), "missing.yaml"))
		if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
			t.Errorf("LoadTenant of a missing file = %v, want an error naming it", err)
		}
	})

	t.Run("at start", func(t *testing.T) {
		for _, tc := range []struct {
			name, yaml string
			files      map[string][]byte
			want       string
		}{
			{
				name: "no_consent names an unknown resource",
				yaml: "apps:" + apiApp + "users:\n  - username: dave@fabrikam.test\n    no_consent: [payroll]\n",
				want: `user "dave@fabrikam.test" names unknown resource "payroll"`,
			},
			{
				name: "mfa_required names an unknown resource",
				yaml: "apps:" + apiApp + "users:\n  - username: dave@fabrikam.test\n    mfa_required: [api://nope]\n",
				want: `user "dave@fabrikam.test" names unknown resource "api://nope"`,
			},
			{
				name: "permission on an unknown resource",
				yaml: "apps:" + apiApp + "  - name: client\n    permissions: [{resource: api://other, scopes: [Read]}]\n",
				want: `app "client" has a permission on unknown resource "api://other"`,
			},
			{
				name: "missing certificate file",
				yaml: "apps:\n  - name: svc\n    certificates: [{file: absent.pem}]\n",
				want: `app "svc"`,
			},
			{
				name:  "certificate file without a certificate",
				yaml:  "apps:\n  - name: svc\n    certificates: [{file: junk.pem}]\n",
				files: map[string][]byte{"junk.pem": []byte("not a certificate\n")},
				want:  "no CERTIFICATE block",
			},
			{
				name:  "duplicate app name",
				yaml:  "apps:\n  - name: svc\n  - name: svc\n",
				files: nil,
				want:  `app "svc": duplicate`,
			},
			{name: "tenant_id not a GUID", yaml: "tenant_id: fabrikam\n", want: `tenant_id "fabrikam" is not a GUID`},
			{name: "token lifetime too short", yaml: "token_lifetime: 5m\n", want: "token_lifetime must be over 5m"},
			{name: "bad access_token_version", yaml: "apps:\n  - name: svc\n    access_token_version: 3\n", want: "access_token_version must be 1 or 2"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ten, err := fakeentra.LoadTenant(ctlWriteTenant(t, tc.yaml, tc.files))
				if err != nil {
					t.Fatalf("LoadTenant: %v", err)
				}
				srv, err := fakeentra.Start(t.Context(), fakeentra.Config{Tenant: ten, Dir: t.TempDir()})
				if err == nil {
					_ = srv.Close()
					t.Fatalf("Start accepted the tenant, want an error containing %q", tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Start = %v, want an error containing %q", err, tc.want)
				}
			})
		}
		// The certificate file, once present, is accepted.
		ten, err := fakeentra.LoadTenant(ctlWriteTenant(t, "apps:\n  - name: svc\n    certificates: [{file: svc.pem}]\n", map[string][]byte{"svc.pem": certPEM(t)}))
		if err != nil {
			t.Fatalf("LoadTenant: %v", err)
		}
		srv, err := fakeentra.Start(t.Context(), fakeentra.Config{Tenant: ten, Dir: t.TempDir()})
		if err != nil {
			t.Fatalf("Start with the certificate file present: %v", err)
		}
		_ = srv.Close()
	})
}

func TestLoadTenantInlinePEMCertificate(t *testing.T) {
	now := time.Now()
	cert, key, err := pki.SelfSigned("CN=svc", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	const svcID = "0e0e0e0e-5555-4555-8555-0e0e0e0e0e0e"
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(string(pki.CertPEM(cert))), "\n", "\n        ")
	yaml := "apps:\n  - name: svc\n    client_id: " + svcID + "\n    certificates:\n    - pem: |\n" + indented +
		"\n    permissions: [{resource: api, roles: [Read.All]}]\n  - name: api\n    identifier_uris: [api://api]\n    app_roles: [Read.All]\n"
	ten, err := fakeentra.LoadTenant(ctlWriteTenant(t, yaml, nil))
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}
	srv := fakeentratest.Start(t, fakeentra.Config{Tenant: ten})
	c := srv.HTTPClient()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {svcID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {accClientAssertion(t, accCred{key: key, cert: cert}, svcID, srv.TokenEndpoint(), nil)},
		"scope":                 {"api://api/.default"},
	}
	tr := ctlWantToken(t, ctlPostForm(t, c, srv.TokenEndpoint(), form))
	if cl := testkit.JWTClaims(t, tr.AccessToken); cl["appidacr"] != "2" || fmt.Sprint(cl["roles"]) != "[Read.All]" {
		t.Errorf("appidacr %v roles %v, want a certificate-authenticated (v1) token with [Read.All]", cl["appidacr"], cl["roles"])
	}

	// Another certificate, not registered, is refused.
	other, otherKey, err := pki.SelfSigned("CN=other", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	form.Set("client_assertion", accClientAssertion(t, accCred{key: otherKey, cert: other}, svcID, srv.TokenEndpoint(), nil))
	accWantError(t, ctlPostForm(t, c, srv.TokenEndpoint(), form), http.StatusUnauthorized, "invalid_client", 700027)
}
