package inspect

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	testTenant   = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
	otherTenant  = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	guestTenant  = "1c2d3e4f-5061-4b7c-8d9e-0f1a2b3c4d5e"
	testClientID = "5c3b2f0e-91d4-4a57-8f0b-3e2d1c4b5a62"
	testAppIDURI = "api://obo-gateway"
	testKid      = "kid-one"
	frontendID   = "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func signingKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// jwksOf is the JWKS JSON of key under kid, shaped like Entra's (no alg).
func jwksOf(key *rsa.PrivateKey, kid string) []byte {
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	return b
}

var testIssuers = Issuers{
	Metadata: auth.Metadata{
		JWKSURI:          "https://login.example/" + testTenant + "/discovery/v2.0/keys",
		IssuerV2Template: "https://login.example/{tenantid}/v2.0",
		IssuerV1Template: "https://sts.example/{tenantid}/",
	},
	Source: "test",
}

// testGateway is what inspect makes of a gateway configuration
// (GatewayOf), the configuration given as the gateway reads it.
func testGateway() *Gateway {
	cfg := &config.Config{
		Entra: config.Entra{
			TenantID: testTenant, ClientID: testClientID,
			Audiences: []string{testAppIDURI}, AllowedTenants: []string{guestTenant},
			ClockSkew: config.Duration(time.Minute),
		},
		Routes: []config.Route{
			{Name: "orders", PathPrefix: "/orders", DownstreamScopes: []string{"api://orders-api/.default"}, RequiredScopes: []string{"access_as_user"}},
			{Name: "reports", PathPrefix: "/reports", RequiredRoles: []string{"Reports.Read"}},
			{Name: "admin", PathPrefix: "/admin", RequiredScopes: []string{"access_as_user"}, RequiredRoles: []string{"Orders.Admin"}},
		},
	}
	return GatewayOf("test.yaml", cfg, testIssuers)
}

func userClaims(now time.Time) map[string]any {
	return map[string]any{
		"aud": testClientID, "iss": "https://login.example/" + testTenant + "/v2.0", "tid": testTenant,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"ver": "2.0", "scp": "access_as_user", "azp": frontendID, "azpacr": "0",
		"oid": "11111111-aaaa-4aaa-8aaa-111111111111", "sub": "pairwise", "preferred_username": "alice@contoso.test",
	}
}

func TestInspectNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		removed  []string
	}{
		{"a.b.c", "a.b.c", nil},
		{" a.b.c\n", "a.b.c", []string{"surrounding whitespace"}},
		{"Bearer a.b.c", "a.b.c", []string{"Bearer prefix"}},
		{"bearer\ta.b.c", "a.b.c", []string{"Bearer prefix"}},
		{"Authorization: Bearer a.b.c", "a.b.c", []string{"Authorization: prefix", "Bearer prefix"}},
		{`"a.b.c"`, "a.b.c", []string{"quotes"}},
		{`{"access_token":"a.b.c","id_token":"x.y.z"}`, "a.b.c", []string{"token response JSON (its access_token is inspected; id_token and refresh_token are ignored)"}},
		{"Bearer", "Bearer", nil},
		{"Bearerish.b.c", "Bearerish.b.c", nil},
	}
	for _, tc := range tests {
		got, removed := normalize(tc.in)
		if got != tc.want || !slices.Equal(removed, tc.removed) {
			t.Errorf("normalize(%q) = %q, %q; want %q, %q", tc.in, got, removed, tc.want, tc.removed)
		}
	}
}

func TestInspectHumanDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {59 * time.Second, "59s"}, {41*time.Minute + 59*time.Second, "41m"},
		{3*time.Hour + 12*time.Minute + 30*time.Second, "3h12m"}, {47 * time.Hour, "47h0m"}, {50 * time.Hour, "2d2h"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestInspectResolveIssuers(t *testing.T) {
	t.Parallel()
	discovery := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "https://login.sovereign.example"
		switch r.URL.Path {
		case "/" + testTenant + "/v2.0/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base + "/" + testTenant + "/v2.0", "jwks_uri": base + "/" + testTenant + "/discovery/v2.0/keys"})
		case "/" + testTenant + "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://sts.sovereign.example/" + testTenant + "/"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(discovery.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		name, host, tenant string
		client             *http.Client
		v2, v1, source     string
	}{
		{"public cloud, offline", "https://login.microsoftonline.com/", testTenant, nil,
			"https://login.microsoftonline.com/{tenantid}/v2.0", "https://sts.windows.net/{tenantid}/", "computed for Microsoft's public cloud"},
		{"other host with discovery", discovery.URL, testTenant, client,
			"https://login.sovereign.example/{tenantid}/v2.0", "https://sts.sovereign.example/{tenantid}/", "OIDC discovery"},
		{"other host, discovery fails", discovery.URL, otherTenant, client,
			discovery.URL + "/{tenantid}/v2.0", "", "discovery failed"},
		{"other host, offline", "https://login.microsoftonline.us", testTenant, nil,
			"https://login.microsoftonline.us/{tenantid}/v2.0", "", "without discovery (-offline)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := ResolveIssuers(context.Background(), tc.client, tc.host, tc.tenant)
			if is.IssuerV2Template != tc.v2 || is.IssuerV1Template != tc.v1 || !strings.Contains(is.Source, tc.source) {
				t.Errorf("got v2 %q v1 %q (%s), want v2 %q v1 %q (%s)", is.IssuerV2Template, is.IssuerV1Template, is.Source, tc.v2, tc.v1, tc.source)
			}
		})
	}
}

// TestOBOVerdict covers what the command's tests with real and local
// tokens do not: edge shapes of tokens.
func TestInspectOBOVerdict(t *testing.T) {
	t.Parallel()
	key := signingKey(t)
	ks, err := auth.ParseKeySet(jwksOf(key, testKid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 0)
	hdr := map[string]any{"alg": "RS256", "kid": testKid}
	with := func(edit func(c map[string]any)) map[string]any {
		c := userClaims(now)
		edit(c)
		return c
	}
	tests := []struct {
		name     string
		token    string
		gateway  bool
		kind     string
		problems []string
		note     string
	}{
		{"user token for the gateway", testkit.SignJWT(t, key, hdr, userClaims(now)), true, KindUser, nil, ""},
		{"expired within the gateway's skew: the gateway accepts, Entra refuses", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["exp"] = now.Add(-30 * time.Second).Unix()
		})), true, KindUser, []string{"expired"}, ""},
		{"app-only token (roles, oid = sub)", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			delete(c, "scp")
			c["sub"], c["roles"] = c["oid"], []string{"Reports.Read"}
		})), true, KindApp, []string{"app_only"}, ""},
		{"neither scp nor roles nor a client: an ID token", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			delete(c, "scp")
			delete(c, "azp")
		})), true, KindIDToken, []string{"id_token"}, ""},
		{"neither scp nor roles, a client: an app's token the gateway refuses", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			delete(c, "scp")
		})), true, KindApp, []string{"app_only"}, ""},
		{"client assertion", testkit.SignJWT(t, key, hdr, map[string]any{
			"aud": "https://login.microsoftonline.com/" + testTenant + "/oauth2/v2.0/token", "iss": testClientID, "sub": testClientID,
			"jti": "0b6c0e0f", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		}), true, KindClientAssertion, []string{"client_assertion"}, ""},
		{"B2C token", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["iss"] = "https://contoso.b2clogin.com/" + testTenant + "/v2.0/"
		})), false, KindUser, []string{"b2c"}, ""},
		{"ver and iss disagree", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["ver"] = "1.0" })), true, KindUser, nil, "ver 1.0 but the issuer has the v2 shape"},
		{"another API's token without a gateway", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["aud"] = "api://orders-api" })), false, KindUser, nil, ""},
		{"another API's token with a gateway", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["aud"] = "api://orders-api" })), true, KindUser, []string{"other_audience"}, ""},
		{"the gateway's own downstream token", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["aud"], c["azp"] = "api://orders-api", testClientID
		})), true, KindUser, []string{"other_audience"}, "a downstream token from an On-Behalf-Of exchange"},
		{"MFA and CAE", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["amr"], c["xms_cc"] = []string{"pwd", "mfa"}, []string{"cp1"}
		})), true, KindUser, nil, "xms_cc has cp1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := Options{At: now, Keys: ks, KeysName: "keys.json"}
			if tc.gateway {
				opt.Gateway = testGateway()
			}
			r := Inspect(tc.token, opt)
			var codes []string
			for _, p := range r.OBO.Problems {
				codes = append(codes, p.Code)
			}
			if r.Kind != tc.kind || !slices.Equal(codes, tc.problems) || r.OBO.Usable != (len(tc.problems) == 0) {
				t.Errorf("kind %s, problems %v (usable %v); want %s, %v", r.Kind, codes, r.OBO.Usable, tc.kind, tc.problems)
			}
			if notes := strings.Join(r.Notes, "; "); !strings.Contains(notes, tc.note) {
				t.Errorf("notes %q lack %q", notes, tc.note)
			}
		})
	}
}
