package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const challengeJSON = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`

// challengingUpstream answers 401 with a claims challenge to any token but
// "good-token", and records the Authorization headers it saw.
func challengingUpstream(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") == "Bearer good-token" {
			_, _ = io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+
			base64.StdEncoding.EncodeToString([]byte(challengeJSON))+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func TestUpstreamClaimsChallenge(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       string
		retryErr   error
		retryToken string // default "good-token"
		noRetry    bool
		wantStatus int
		wantSeen   []string
		wantResult string
		// wantRetryAfter is the 503's Retry-After; "" means "1".
		wantRetryAfter string
	}{
		{name: "replayable request is retried with a token for the claims", method: "GET",
			wantStatus: 200, wantSeen: []string{"Bearer stale-token", "Bearer good-token"}, wantResult: "retried"},
		{name: "request with a body is not replayed", method: "POST", body: `{"a":1}`,
			wantStatus: 401, wantSeen: []string{"Bearer stale-token"}, wantResult: "passed_body"},
		{name: "exchange with the claims refused: challenge passed on", method: "GET", retryErr: errors.New("interaction_required"),
			wantStatus: 401, wantSeen: []string{"Bearer stale-token"}, wantResult: "passed_exchange_failed"},
		{name: "new token carrying the user's token: never sent, challenge passed on", method: "GET", retryToken: "good-token." + userToken,
			wantStatus: 401, wantSeen: []string{"Bearer stale-token"}, wantResult: "passed_exchange_failed"},
		{name: "no retry hook: challenge passed on", method: "GET", noRetry: true,
			wantStatus: 401, wantSeen: []string{"Bearer stale-token"}},
		{name: "no exchange place for the new token: 503, not the challenge", method: "GET",
			retryErr: &RetryLaterError{Shed: "exchanges", Err: errors.New("busy")}, wantStatus: 503, wantSeen: []string{"Bearer stale-token"}, wantResult: "shed"},
		{name: "identity provider throttling: 503 with its Retry-After, not the challenge", method: "GET",
			retryErr:   fmt.Errorf("exchange: %w", &RetryLaterError{After: 7 * time.Second, Err: errors.New("AADSTS50196")}),
			wantStatus: 503, wantRetryAfter: "7", wantSeen: []string{"Bearer stale-token"}, wantResult: "unavailable"},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				up, seen := challengingUpstream(t)
				reg := prometheus.NewRegistry()
				p := New(Config{Metrics: NewMetrics(reg)})
				t.Cleanup(p.CloseIdleConnections)
				u, _ := url.Parse(up.URL)
				var gotClaims string
				rt := Route{Name: "api", PathPrefix: "/api", Upstream: u, Leg: leg}
				if !tt.noRetry {
					rt.ClaimsRetry = func(_ context.Context, claims string) (string, error) {
						gotClaims = claims
						if tt.retryToken != "" {
							return tt.retryToken, tt.retryErr
						}
						return "good-token", tt.retryErr
					}
				}
				h := p.Handler(rt)
				f := &Forward{}
				f.SetSecret(userToken)
				f.SetUpstreamToken("stale-token")
				ctx := NewContext(context.Background(), f)
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				req := httptest.NewRequest(tt.method, "/api/x", body).WithContext(ctx)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.wantStatus {
					t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
				}
				if got := seen(); strings.Join(got, "|") != strings.Join(tt.wantSeen, "|") {
					t.Errorf("upstream saw %v, want %v", got, tt.wantSeen)
				}
				wantRetryAfter := tt.wantRetryAfter
				if wantRetryAfter == "" {
					wantRetryAfter = "1"
				}
				if tt.wantStatus == 503 && (rec.Header().Get("Retry-After") != wantRetryAfter || rec.Header().Get("WWW-Authenticate") != "") {
					t.Errorf("503 with Retry-After %q and WWW-Authenticate %q: want Retry-After %s and no challenge", rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"), wantRetryAfter)
				}
				if tt.wantStatus == 401 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_claims", claims="`) {
					t.Errorf("the challenge did not reach the frontend: %q", rec.Header().Get("WWW-Authenticate"))
				}
				if tt.wantResult == "retried" && gotClaims != challengeJSON {
					t.Errorf("retry got claims %q, want the decoded challenge", gotClaims)
				}
				if tt.wantResult != "" {
					if got := testutil.ToFloat64(p.metrics.claims.WithLabelValues("api", tt.wantResult)); got != 1 {
						t.Errorf("claims challenges{result=%s} = %v, want 1", tt.wantResult, got)
					}
				}
			})
		}
	})
}

func TestChallengeClaims(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte(challengeJSON))
	for name, tc := range map[string]struct {
		values []string
		want   string
	}{
		"Entra's form":          {[]string{`Bearer realm="", authorization_uri="https://x", error="insufficient_claims", claims="` + enc + `"`}, challengeJSON},
		"unquoted":              {[]string{`Bearer error="insufficient_claims", claims=` + enc}, challengeJSON},
		"in a second value":     {[]string{`Basic realm="x"`, `Bearer claims="` + enc + `"`}, challengeJSON},
		"no claims":             {[]string{`Bearer error="invalid_token"`}, ""},
		"claims not base64":     {[]string{`Bearer claims="not base64!"`}, ""},
		"claims not JSON":       {[]string{`Bearer claims="` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"`}, ""},
		"unterminated quote":    {[]string{`Bearer claims="` + enc}, ""},
		"base64url, no padding": {[]string{`Bearer claims="` + base64.RawURLEncoding.EncodeToString([]byte(challengeJSON)) + `"`}, challengeJSON},
	} {
		if got := challengeClaims(tc.values); got != tc.want {
			t.Errorf("%s: got %q, want %q", name, got, tc.want)
		}
	}
}

// When the replay itself fails (the upstream drops the connection), the
// first answer, the challenge, is still a valid one to give.
func TestClaimsRetryThatFailsPassesTheChallenge(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) { testClaimsRetryThatFailsPassesTheChallenge(t, leg) })
}

func testClaimsRetryThatFailsPassesTheChallenge(t *testing.T, leg Leg) {
	enc := base64.StdEncoding.EncodeToString([]byte(challengeJSON))
	var replays atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer good-token" {
			replays.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="`+enc+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(up.Close)
	reg := prometheus.NewRegistry()
	p := New(Config{Metrics: NewMetrics(reg)})
	t.Cleanup(p.CloseIdleConnections)
	u, _ := url.Parse(up.URL)
	h := p.Handler(Route{Name: "api", PathPrefix: "/api", Upstream: u, Leg: leg,
		ClaimsRetry: func(context.Context, string) (string, error) { return "good-token", nil }})
	f := &Forward{}
	f.SetUpstreamToken("stale-token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/x", nil).WithContext(NewContext(context.Background(), f)))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `claims="`+enc+`"`) {
		t.Errorf("answer %d %q, want the upstream's 401 and its challenge", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	if replays.Load() == 0 {
		t.Error("the request was not replayed")
	}
	if got := testutil.ToFloat64(p.metrics.claims.WithLabelValues("api", "passed_retry_failed")); got != 1 {
		t.Errorf("claims challenges{result=passed_retry_failed} = %v, want 1", got)
	}
}
