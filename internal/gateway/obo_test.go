package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

const (
	entraTraceID       = "0b1f6c4e-0a3d-4c55-9d1e-7f2a3b4c5d00"
	entraCorrelationID = "6a7b8c9d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
	claimsChallenge    = `{"access_token":{"capolids":{"essential":true,"values":["c1a2b3c4-d5e6-47f8-9a0b-1c2d3e4f5a6b"]}}}`
)

// entraError is an *obo.Error as Entra would answer it, with IDs and a
// description that must reach the log and never the frontend.
func entraError(status int, code, sub string, aadsts int) *obo.Error {
	return &obo.Error{
		Status: status, Code: code, SubError: sub, Codes: []int{aadsts},
		Description:   "AADSTS" + strconv.Itoa(aadsts) + ": something Entra says. Trace ID: " + entraTraceID + " Correlation ID: " + entraCorrelationID,
		TraceID:       entraTraceID,
		CorrelationID: entraCorrelationID,
		Err:           errors.New("token endpoint answered HTTP " + strconv.Itoa(status)),
	}
}

func TestExchangeFailures(t *testing.T) {
	interaction := entraError(400, "interaction_required", "", 50076)
	interaction.Claims = claimsChallenge
	throttled := &obo.Error{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second,
		TraceID: entraTraceID, CorrelationID: entraCorrelationID, Err: errors.New("token endpoint answered HTTP 429")}
	throttledFraction := &obo.Error{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond,
		Err: errors.New("token endpoint answered HTTP 429")}
	down := entraError(503, "temporarily_unavailable", "", 90033)
	timeout := &obo.Error{Timeout: true, Err: errors.New("context deadline exceeded")}
	misconfigured := entraError(401, "invalid_client", "", 700027)

	for _, tc := range []struct {
		name       string
		err        error
		wantStatus int
		wantAuthn  string // the exact WWW-Authenticate; "" means none
		wantRetry  string // Retry-After; "" means none
		wantBody   map[string]string
		wantDesc   string // a fragment of error_description
		wantClass  string
		wantCode   string // error_code in the log
		wantLevel  string
		wantHint   string // "" means whatever oe.Hint() says
		wantTrace  bool
	}{
		{
			name: "interaction required", err: interaction, wantStatus: http.StatusUnauthorized,
			wantAuthn: `Bearer realm="obo-gateway", authorization_uri="` + testAuthority + `/oauth2/v2.0/authorize", error="insufficient_claims", claims="` +
				base64.StdEncoding.EncodeToString([]byte(claimsChallenge)) + `"`,
			wantBody:  map[string]string{"error": "insufficient_claims", "claims": base64.StdEncoding.EncodeToString([]byte(claimsChallenge))},
			wantClass: "interaction_required", wantCode: "AADSTS50076", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "interaction required without a claims challenge", err: entraError(400, "interaction_required", "", 50079),
			wantStatus: http.StatusUnauthorized,
			wantAuthn:  `Bearer realm="obo-gateway", error="invalid_token", error_description="interactive sign-in required"`,
			wantBody:   map[string]string{"error": "interaction_required"},
			wantDesc:   "interactively",
			wantClass:  "interaction_required", wantCode: "AADSTS50079", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "invalid assertion", err: entraError(400, "invalid_grant", "", 500133), wantStatus: http.StatusUnauthorized,
			wantAuthn: `Bearer realm="obo-gateway", error="invalid_token", error_description="the token cannot be exchanged for the downstream API; acquire a new token"`,
			wantBody:  map[string]string{"error": "invalid_token"},
			wantClass: "invalid_assertion", wantCode: "AADSTS500133", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "consent required", err: entraError(400, "invalid_grant", "consent_required", 65001), wantStatus: http.StatusForbidden,
			wantBody: map[string]string{"error": "consent_required"}, wantDesc: "call api://orders-api on their behalf",
			wantClass: "consent_required", wantCode: "AADSTS65001", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "user blocked", err: entraError(400, "invalid_grant", "", 50057), wantStatus: http.StatusForbidden,
			wantBody:  map[string]string{"error": "access_denied"},
			wantClass: "user_blocked", wantCode: "AADSTS50057", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "throttled with Retry-After", err: throttled, wantStatus: http.StatusServiceUnavailable, wantRetry: "7",
			wantBody:  map[string]string{"error": "temporarily_unavailable"},
			wantClass: "unavailable", wantCode: "http_429", wantLevel: "ERROR", wantTrace: true,
		},
		{
			name: "throttled with a fractional Retry-After rounds up", err: throttledFraction, wantStatus: http.StatusServiceUnavailable, wantRetry: "2",
			wantBody:  map[string]string{"error": "temporarily_unavailable"},
			wantClass: "unavailable", wantCode: "http_429", wantLevel: "ERROR",
		},
		{
			name: "Entra failing, no Retry-After", err: down, wantStatus: http.StatusServiceUnavailable, wantRetry: "5",
			wantBody:  map[string]string{"error": "temporarily_unavailable"},
			wantClass: "unavailable", wantCode: "AADSTS90033", wantLevel: "ERROR", wantTrace: true,
		},
		{
			name: "timeout", err: timeout, wantStatus: http.StatusServiceUnavailable, wantRetry: "5",
			wantBody:  map[string]string{"error": "temporarily_unavailable"},
			wantClass: "unavailable", wantCode: "timeout", wantLevel: "ERROR",
		},
		{
			name: "gateway misconfigured", err: misconfigured, wantStatus: http.StatusBadGateway,
			wantBody:  map[string]string{"error": "bad_gateway"},
			wantClass: "gateway_config", wantCode: "AADSTS700027", wantLevel: "ERROR", wantTrace: true,
		},
		{
			name: "wrapped *obo.Error", err: errors.Join(errors.New("context"), entraError(400, "invalid_grant", "", 500133)),
			wantStatus: http.StatusUnauthorized, wantBody: map[string]string{"error": "invalid_token"},
			wantAuthn: `Bearer realm="obo-gateway", error="invalid_token", error_description="the token cannot be exchanged for the downstream API; acquire a new token"`,
			wantClass: "invalid_assertion", wantCode: "AADSTS500133", wantLevel: "INFO", wantTrace: true,
		},
		{
			name: "not an *obo.Error", err: errors.New("tokensource: something unexpected"), wantStatus: http.StatusBadGateway,
			wantBody:  map[string]string{"error": "bad_gateway"},
			wantClass: "gateway_config", wantCode: "other", wantLevel: "ERROR",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, seen := newUpstream(t, http.StatusOK)
			tg := newTestGateway(t, ordersRoute(api.URL))
			tg.tokens.err = tc.err
			tok := userToken(t, nil)
			r := request("/orders/1", tok)
			r.Header.Set("X-Request-Id", "req-obo-1")

			rec := tg.serve(t, r)

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.wantAuthn {
				t.Errorf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tc.wantAuthn)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetry)
			}
			body := testkit.ErrorBody(t, rec.Header(), rec.Body.Bytes())
			for k, v := range tc.wantBody {
				if body[k] != v {
					t.Errorf("body[%q] = %q, want %q", k, body[k], v)
				}
			}
			if body["request_id"] != "req-obo-1" {
				t.Errorf("body request_id = %q, want req-obo-1", body["request_id"])
			}
			if body["error_description"] == "" {
				t.Error("body has no error_description")
			}
			if !strings.Contains(body["error_description"], tc.wantDesc) {
				t.Errorf("error_description = %q, want it to contain %q", body["error_description"], tc.wantDesc)
			}
			// The frontend never sees Entra's words, codes or IDs.
			for _, secret := range []string{tok, "AADSTS", "something Entra says", entraTraceID, entraCorrelationID, "token endpoint answered", "tokensource:"} {
				if strings.Contains(rec.Body.String(), secret) {
					t.Errorf("the body leaks %q: %s", secret, rec.Body)
				}
				for name, vals := range rec.Header() {
					if strings.Contains(strings.Join(vals, " "), secret) {
						t.Errorf("header %s leaks %q", name, secret)
					}
				}
			}
			noRequest(t, seen)

			line := tg.logs.Only(t, "on-behalf-of exchange failed")
			var oe *obo.Error
			if !errors.As(tc.err, &oe) {
				oe = &obo.Error{Err: tc.err, Code: "msal_error"}
			}
			want := map[string]any{
				"level": tc.wantLevel, "route": "orders", "class": tc.wantClass, "error_code": tc.wantCode,
				"hint": oe.Hint(),
			}
			if tc.wantHint != "" {
				want["hint"] = tc.wantHint
			}
			if tc.wantTrace {
				want["entra_trace_id"], want["correlation_id"] = entraTraceID, entraCorrelationID
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log %s = %v, want %v", k, line[k], v)
				}
			}
			for _, k := range []string{"entra_trace_id", "correlation_id", "hint", "detail"} {
				if _, ok := line[k]; !ok {
					t.Errorf("log line has no %s: %v", k, line)
				}
			}
			if p, _ := line["principal"].(map[string]any); p["oid"] != testOID || p["tid"] != testTenant {
				t.Errorf("log principal = %v, want oid %s and tid %s", line["principal"], testOID, testTenant)
			}
			if strings.Contains(tg.logs.String(), tok) {
				t.Error("the logs contain the user's token")
			}
			parts := strings.Split(tok, ".")
			if strings.Contains(tg.logs.String(), parts[2]) {
				t.Error("the logs contain the token's signature")
			}
			if n := len(tg.tokens.requests()); n != 1 {
				t.Errorf("%d exchanges, want 1", n)
			}
		})
	}
}

func TestExchangeSuccessForwardsDownstreamToken(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	tok := userToken(t, nil)

	rec := tg.serve(t, request("/orders/42", tok))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	got := <-seen
	if want := []string{"Bearer " + downstreamToken}; !slices.Equal(got.Authorization, want) {
		t.Errorf("upstream Authorization = %q, want %q", got.Authorization, want)
	}
	if got.Path != "/42" {
		t.Errorf("upstream path = %q, want /42", got.Path)
	}
	for name, vals := range got.Header {
		if strings.Contains(strings.Join(vals, " "), tok) {
			t.Errorf("upstream header %s carries the user's token", name)
		}
	}
	reqs := tg.tokens.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d exchanges, want 1", len(reqs))
	}
	want := obo.Request{Assertion: tok, AssertionSHA256: sha256.Sum256([]byte(tok)), TenantID: testTenant, Scopes: []string{"api://orders-api/.default"}, Route: "orders"}
	if r := reqs[0]; r.Assertion != want.Assertion || r.AssertionSHA256 != want.AssertionSHA256 || r.TenantID != want.TenantID || !slices.Equal(r.Scopes, want.Scopes) ||
		r.Route != want.Route || r.Claims != "" {
		t.Errorf("exchange request = %+v,\nwant %+v", redactAssertion(r, tok), redactAssertion(want, tok))
	}
	if strings.Contains(tg.logs.String(), tok) || strings.Contains(tg.logs.String(), downstreamToken) {
		t.Error("the logs contain a token")
	}
}

// redactAssertion keeps test failures from printing the token.
func redactAssertion(r obo.Request, tok string) obo.Request {
	if r.Assertion == tok {
		r.Assertion = "<the user's token>"
	}
	return r
}

func TestExchangeUsesTheTokensTenant(t *testing.T) {
	const guestTenant = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	tg.h.Validator = newValidator(t, guestTenant)
	tok := userToken(t, map[string]any{"tid": guestTenant, "iss": "https://login.example/" + guestTenant + "/v2.0"})

	if rec := tg.serve(t, request("/orders", tok)); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	<-seen
	if reqs := tg.tokens.requests(); len(reqs) != 1 || reqs[0].TenantID != guestTenant {
		t.Errorf("exchange tenant = %v, want %s", reqs, guestTenant)
	}
}

func TestRouteWithoutDownstreamScopes(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	rt := config.Route{Name: "public", PathPrefix: "/public", Upstream: api.URL}
	tg := newTestGateway(t, rt)
	tok := userToken(t, nil)

	rec := tg.serve(t, request("/public/items?x=1", tok))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	got := <-seen
	if len(got.Authorization) != 0 {
		t.Errorf("upstream Authorization = %q, want none", got.Authorization)
	}
	if got.Path != "/public/items" {
		t.Errorf("upstream path = %q, want /public/items", got.Path)
	}
	if n := len(tg.tokens.requests()); n != 0 {
		t.Errorf("%d exchanges on a route without downstream scopes, want 0", n)
	}
}

func TestExchangeNotReachedWithoutValidToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"no token", ""},
		{"garbage", "not-a-jwt"},
		{"wrong audience", userToken(t, map[string]any{"aud": "api://someone-else"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, seen := newUpstream(t, http.StatusOK)
			tg := newTestGateway(t, ordersRoute(api.URL))
			rec := tg.serve(t, request("/orders/1", tc.token))
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			if n := len(tg.tokens.requests()); n != 0 {
				t.Errorf("%d exchanges, want 0", n)
			}
			noRequest(t, seen)
		})
	}
}

func TestExchangeFailureLogsEntrasDescription(t *testing.T) {
	api, _ := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	e := entraError(400, "invalid_request", "", 9999999)
	e.Description = "AADSTS9999999: a code the catalogue does not know."
	tg.tokens.err = e
	rec := tg.serve(t, request("/orders/1", userToken(t, nil)))
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status = %d", rec.Code)
	}
	line := tg.logs.Only(t, "on-behalf-of exchange failed")
	if line["entra_description"] != e.Description {
		t.Errorf("entra_description = %v, want Entra's description", line["entra_description"])
	}
	if strings.Contains(rec.Body.String(), "AADSTS9999999") {
		t.Error("the client sees Entra's description")
	}
}

func TestClientGoneDuringExchangeIsNotAnEntraFailure(t *testing.T) {
	api, seen := newUpstream(t, http.StatusOK)
	tg := newTestGateway(t, ordersRoute(api.URL))
	ctx, cancel := context.WithCancel(context.Background())
	tg.tokens.err = context.Canceled
	tg.tokens.hook = cancel // the client hangs up while the exchange runs
	rec := tg.serve(t, request("/orders/1", userToken(t, nil)).WithContext(ctx))
	if rec.Code != 499 {
		t.Errorf("status = %d, want 499", rec.Code)
	}
	if strings.Contains(tg.logs.String(), "on-behalf-of exchange failed") {
		t.Error("a client hang-up was logged as an exchange failure")
	}
	noRequest(t, seen)
}

// busyForClaims answers the first exchange and sheds the one a claims
// challenge asks for, as tokencache does when every exchange place is taken.
type busyForClaims struct{ claims chan string }

func (b busyForClaims) Exchange(_ context.Context, req obo.Request) (obo.Token, error) {
	if req.Claims != "" {
		b.claims <- req.Claims
		return obo.Token{}, tokencache.ErrBusy
	}
	return obo.Token{AccessToken: downstreamToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// An upstream's claims challenge whose new exchange is shed is answered 503
// with Retry-After, not passed on as a 401 that would make the user step up
// for nothing, and counted as a shed.
func TestClaimsRetryShedIsNot401(t *testing.T) {
	const challenge = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(challenge))+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(api.Close)
	tg := newTestGateway(t, ordersRoute(api.URL))
	got := make(chan string, 1)
	tg.h.Tokens = busyForClaims{claims: got}
	rec := tg.serve(t, request("/orders/items", userToken(t, nil)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, Retry-After %q, WWW-Authenticate %q; want 503, Retry-After, no challenge",
			rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"))
	}
	if c := <-got; c != challenge {
		t.Errorf("the retry asked for claims %q, want the challenge's", c)
	}
	if n := testkit.CounterValue(t, tg.reg, "obo_gateway_http_shed_total", map[string]string{"limit": "exchanges"}); n != 1 {
		t.Errorf("shed{exchanges} = %v, want 1", n)
	}
	if line := tg.logs.Only(t, "request"); line["shed"] != "exchanges" || line["status"] != 503.0 {
		t.Errorf("access log = %v, want shed=exchanges, status 503 (as the metric counted it)", line)
	}
}

// Entra throttles the exchange a claims challenge asks for: the frontend
// gets 503 with Entra's Retry-After, as for a first exchange, not the
// challenge, which would make the user step up in vain.
func TestClaimsRetryWhileEntraThrottles(t *testing.T) {
	const challenge = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+downstreamToken {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(challenge))+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		t.Errorf("the upstream got a second request with %q", r.Header.Get("Authorization"))
	}))
	t.Cleanup(api.Close)
	tg := newTestGateway(t, ordersRoute(api.URL))
	tg.h.Tokens = throttledForClaims{fakeTokens: tg.tokens, err: &obo.Error{Status: 429, Code: "temporarily_unavailable", Codes: []int{50196}, RetryAfter: 7 * time.Second}}
	rec := tg.serve(t, request("/orders/items", userToken(t, nil)))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "7" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, Retry-After %q, WWW-Authenticate %q; want 503, Retry-After 7, no challenge",
			rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"))
	}
	if b := testkit.ErrorBody(t, rec.Header(), rec.Body.String()); b["error"] != "temporarily_unavailable" {
		t.Errorf("body = %v", b)
	}
	if n := testkit.CounterValue(t, tg.reg, "obo_gateway_upstream_claims_challenges_total", map[string]string{"route": "orders", "result": "unavailable"}); n != 1 {
		t.Errorf("claims_challenges{result=unavailable} = %v, want 1", n)
	}
	if line := tg.logs.Only(t, "request"); line["upstream_error"] != "token_unavailable" || line["shed"] != nil {
		t.Errorf("access log = %v, want upstream_error=token_unavailable and no shed (no limit of the gateway's)", line)
	}
}

// throttledForClaims answers first exchanges as fakeTokens does and those
// with claims with err.
type throttledForClaims struct {
	*fakeTokens
	err error
}

func (f throttledForClaims) Exchange(ctx context.Context, req obo.Request) (obo.Token, error) {
	if req.Claims != "" {
		return obo.Token{}, f.err
	}
	return f.fakeTokens.Exchange(ctx, req)
}

// The client gives up while the upstream works: the access log and the
// metrics count 499, the client's giving up, not net/http's implicit 200.
func TestClientGoneIsCounted499(t *testing.T) {
	arrived := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(api.Close)
	tg := newTestGateway(t, ordersRoute(api.URL))
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	tg.serve(t, request("/orders/slow", userToken(t, nil)).WithContext(ctx))
	line := tg.logs.Only(t, "request")
	if line["status"] != 499.0 || line["upstream_error"] != "canceled" {
		t.Errorf("access log = %v, want status 499, upstream_error canceled", line)
	}
	if n := testkit.CounterValue(t, tg.reg, "obo_gateway_http_requests_total", map[string]string{"route": "orders", "method": "GET", "code": "499"}); n != 1 {
		t.Errorf("requests_total{code=499} = %v, want 1", n)
	}
}
