package inspect

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// TestInspectAgreesWithTheGateway is the one-rulebook test: over one table
// of tokens (valid ones, every forgery shape, every kind, expired, foreign
// tenants), the gateway's own middleware and gateway inspect give the same
// verdict: accepted or not, with the same reason, and per route the same
// status.
func TestInspectAgreesWithTheGateway(t *testing.T) {
	t.Parallel()
	key := signingKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keysJSON := jwksOf(key, testKid)
	keys, err := auth.ParseKeySet(keysJSON)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 0)
	g := testGateway()
	v, err := g.validator(keys, now) // what serve builds from the same settings
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": testKid}
	with := func(edit func(c map[string]any)) map[string]any {
		c := userClaims(now)
		edit(c)
		return c
	}
	signed := func(c map[string]any) string { return testkit.SignJWT(t, key, hdr, c) }
	valid := signed(userClaims(now))
	idToken := signed(map[string]any{
		"aud": testClientID, "iss": "https://login.example/" + testTenant + "/v2.0", "tid": testTenant,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": "n-1",
		"oid": "11111111-aaaa-4aaa-8aaa-111111111111", "sub": "pairwise", "ver": "2.0",
	})
	beside := map[string]any{"aud": testClientID, "tid": testTenant, "oid": "victim", "scp": "access_as_user",
		"roles": []string{"Orders.Admin"}, "iss": "https://login.example/" + testTenant + "/v2.0", "exp": 4_000_000_000}
	segs := strings.Split(valid, ".")

	tokens := []struct{ name, token string }{
		{"v2 user token", valid},
		{"user token with the admin role", signed(with(func(c map[string]any) { c["roles"] = []string{"Orders.Admin"} }))},
		{"v1 token for the App ID URI", signed(with(func(c map[string]any) {
			c["aud"], c["iss"], c["ver"], c["appid"] = testAppIDURI+"/", "https://sts.example/"+testTenant+"/", "1.0", frontendID
			delete(c, "azp")
		}))},
		{"guest of an allowed tenant", signed(with(func(c map[string]any) {
			c["tid"], c["iss"] = guestTenant, "https://login.example/"+guestTenant+"/v2.0"
		}))},
		{"allowed tenant, home App ID URI", signed(with(func(c map[string]any) {
			c["tid"], c["iss"], c["aud"] = guestTenant, "https://login.example/"+guestTenant+"/v2.0", testAppIDURI
		}))},
		{"app-only token with the role", signed(with(func(c map[string]any) {
			delete(c, "scp")
			c["idtyp"], c["roles"] = "app", []string{"Reports.Read"}
		}))},
		{"app-only token by oid = sub", signed(with(func(c map[string]any) {
			delete(c, "scp")
			c["sub"], c["roles"] = c["oid"], []string{"Orders.Admin"}
		}))},
		{"roles without scp, oid not sub", signed(with(func(c map[string]any) {
			delete(c, "scp")
			c["roles"] = []string{"Reports.Read"}
		}))},
		{"ID token for the gateway", idToken},
		{"neither scp nor roles", signed(with(func(c map[string]any) { delete(c, "scp") }))},
		{"expired within the clock skew", signed(with(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }))},
		{"expired beyond the clock skew", signed(with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }))},
		{"not valid yet", signed(with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() }))},
		{"no exp", signed(with(func(c map[string]any) { delete(c, "exp") }))},
		{"tenant not allowed", signed(with(func(c map[string]any) {
			c["tid"], c["iss"] = otherTenant, "https://login.example/"+otherTenant+"/v2.0"
		}))},
		{"issuer of another host", signed(with(func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + testTenant + "/v2.0" }))},
		{"Graph audience", signed(with(func(c map[string]any) { c["aud"] = "https://graph.microsoft.com" }))},
		{"spn: audience", signed(with(func(c map[string]any) { c["aud"] = "spn:" + testClientID }))},
		{"App ID URI in another case", signed(with(func(c map[string]any) { c["aud"] = strings.ToUpper(testAppIDURI) }))},
		{"unknown kid", testkit.SignJWT(t, other, map[string]any{"alg": "RS256", "kid": "7c1f5d4e-2b3a-4c8d-9e0f-a1b2c3d4e5f6"}, userClaims(now))},
		{"right kid, wrong key", testkit.SignJWT(t, other, hdr, userClaims(now))},
		{"x5t only", testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "x5t": testKid}, userClaims(now))},
		{"Graph nonce header", testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "kid": testKid, "nonce": "abc"}, userClaims(now))},
		{"HS256 header", func() string {
			h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": testKid})
			return base64.RawURLEncoding.EncodeToString(h) + "." + segs[1] + "." + segs[2]
		}()},
		{"b64 false", testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "kid": testKid, "b64": false, "crit": []string{"b64"}}, userClaims(now))},
		{"flattened JSON forgery", testkit.JWSJSONForgery(t, idToken, beside, false)},
		{"general JSON forgery", testkit.JWSJSONForgery(t, idToken, beside, true)},
		{"padded", testkit.Respell(t, valid, base64.URLEncoding)},
		{"standard base64", testkit.Respell(t, valid, base64.RawStdEncoding)},
		{"line break inside", segs[0] + "." + segs[1][:8] + "\n" + segs[1][8:] + "." + segs[2]},
		{"unsigned", segs[0] + "." + segs[1] + "."},
		{"not a JWT", "hello"},
	}
	for _, tc := range tokens {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Inspect(tc.token, Options{At: now, Gateway: g, Keys: keys, KeysName: "keys.json"})
			if r.Gateway.Accepted && len(r.Gateway.Unchecked) > 0 {
				t.Fatalf("inspect accepts it with %v unchecked, with a key set", r.Gateway.Unchecked)
			}
			if len(r.Gateway.Routes) != len(g.Routes) {
				t.Fatalf("inspect decided %d routes, want %d", len(r.Gateway.Routes), len(g.Routes))
			}
			for i, rt := range g.Routes {
				status, reason := throughGateway(t, v, rt.Policy, tc.token)
				d := r.Gateway.Routes[i]
				wantStatus, wantReason := http.StatusOK, ""
				switch {
				case !r.Gateway.Accepted:
					wantStatus, wantReason = statusOfReason(r.Gateway.Reason), r.Gateway.Reason
				case !d.PolicyAllows:
					wantStatus, wantReason = d.Status, d.Reason
				}
				if d.Allowed != (wantStatus == http.StatusOK) {
					t.Errorf("route %s: inspect says allowed %v, yet predicts %d", rt.Name, d.Allowed, wantStatus)
				}
				if status != wantStatus || reason != wantReason {
					t.Errorf("route %s: the gateway answers %d %q; inspect predicts %d %q\nchecks %+v",
						rt.Name, status, reason, wantStatus, wantReason, r.Gateway.Checks)
				}
			}
		})
	}
}

// throughGateway sends token to a handler behind the gateway's auth
// middleware with pol, and returns the status and the reason it logged.
func throughGateway(t *testing.T, v *auth.Validator, pol auth.Policy, token string) (int, string) {
	t.Helper()
	var logs testkit.SyncBuffer
	h := auth.Middleware(v, pol, slog.New(slog.NewJSONHandler(&logs, nil)))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	var line struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
		t.Fatalf("the refusal logged %q: %v", logs.String(), err)
	}
	return rec.Code, line.Reason
}

// statusOfReason is the status the gateway answers a refused token with.
func statusOfReason(reason string) int {
	if reason == string(auth.ReasonKeysNotReady) || reason == string(auth.ReasonKeysRefreshFailed) {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}
