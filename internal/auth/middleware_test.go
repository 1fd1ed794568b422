package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddleware(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	v := newTestValidator(t, now, nil)
	user := sign(t, k[0], userClaims(now), nil)
	appClaims := userClaims(now)
	delete(appClaims, "scp")
	appClaims["roles"] = []string{"Gateway.Call"}
	appClaims["idtyp"] = "app"
	app := sign(t, k[0], appClaims, nil)
	expiredClaims := userClaims(now)
	expiredClaims["exp"] = now.Add(-time.Hour).Unix()
	expired := sign(t, k[0], expiredClaims, nil)

	tests := []struct {
		name       string
		policy     Policy
		headers    []string // Authorization values
		target     string
		wantStatus int
		wantAuth   string // substring of WWW-Authenticate, which 401 and 403 carry and 400 does not
		wantError  string // JSON error
	}{
		{name: "user token passes", policy: Policy{Scopes: []string{"access_as_user"}, RequireUser: true}, headers: []string{"Bearer " + user}, wantStatus: 200},
		{name: "scheme is case-insensitive", policy: Policy{}, headers: []string{"bearer " + user}, wantStatus: 200},
		{name: "no header", headers: nil, wantStatus: 401, wantAuth: `Bearer realm="obo-gateway"`, wantError: "unauthorized"},
		{name: "token in query is not read", target: "/x?access_token=" + user, wantStatus: 401, wantAuth: `realm="obo-gateway"`, wantError: "unauthorized"},
		{name: "basic scheme", headers: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantAuth: `error="invalid_request"`, wantError: "invalid_request"},
		{name: "two Authorization headers", headers: []string{"Bearer " + user, "Bearer " + user}, wantStatus: 400, wantError: "invalid_request"},
		{name: "expired", headers: []string{"Bearer " + expired}, wantStatus: 401, wantAuth: `error="invalid_token", error_description="the token has expired"`, wantError: "invalid_token"},
		{name: "missing scope", policy: Policy{Scopes: []string{"Orders.Admin"}}, headers: []string{"Bearer " + user}, wantStatus: 403,
			wantAuth: `error="insufficient_scope"`, wantError: "insufficient_scope"},
		{name: "app-only token on an OBO route", policy: Policy{RequireUser: true, Roles: []string{"Gateway.Call"}}, headers: []string{"Bearer " + app}, wantStatus: 401,
			wantAuth: `needs a user's token`, wantError: "invalid_token"},
		{name: "app-only token with the role", policy: Policy{Roles: []string{"Gateway.Call"}}, headers: []string{"Bearer " + app}, wantStatus: 200},
		{name: "app-only token, route declares no roles", policy: Policy{Scopes: []string{"access_as_user"}}, headers: []string{"Bearer " + app}, wantStatus: 403, wantError: "insufficient_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := Middleware(v, tt.policy, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				if FromContext(r.Context()) == nil {
					t.Error("no principal in the context")
				}
			}))
			target := tt.target
			if target == "" {
				target = "/x"
			}
			req := httptest.NewRequest("GET", target, nil)
			for _, a := range tt.headers {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if called != (tt.wantStatus == 200) {
				t.Errorf("next called = %v", called)
			}
			if tt.wantStatus == 200 {
				return
			}
			got := rec.Header().Get("WWW-Authenticate")
			switch {
			case tt.wantStatus == http.StatusBadRequest && got != "":
				t.Errorf("400 with WWW-Authenticate %q", got)
			case tt.wantStatus != http.StatusBadRequest && got == "":
				t.Error("no WWW-Authenticate")
			case !strings.Contains(got, tt.wantAuth):
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantAuth)
			}
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if body.Error != tt.wantError {
				t.Errorf("error = %q, want %q", body.Error, tt.wantError)
			}
			if strings.Contains(rec.Body.String(), user) || strings.Contains(got, user) {
				t.Error("the answer echoes the token")
			}
		})
	}
}

func TestQuote(t *testing.T) {
	if got := quote("a \"b\" \\c\nd"); got != `a \"b\" \\cd` {
		t.Errorf("quote = %q", got)
	}
}
