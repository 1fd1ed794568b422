package inspect

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/pki"
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

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/entra-real/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

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

func testGateway() *Gateway {
	return &Gateway{
		Name: "test.yaml", TenantID: testTenant, ClientID: testClientID,
		Audiences: []string{testAppIDURI}, AllowedTenants: []string{guestTenant},
		ClockSkew: time.Minute, Issuers: testIssuers,
		Routes: []Route{
			{Name: "orders", PathPrefix: "/orders", Resource: "api://orders-api", RequiredScopes: []string{"access_as_user"}},
			{Name: "reports", PathPrefix: "/reports", RequiredRoles: []string{"Reports.Read"}},
		},
	}
}

func userClaims(now time.Time) map[string]any {
	return map[string]any{
		"aud": testClientID, "iss": "https://login.example/" + testTenant + "/v2.0", "tid": testTenant,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"ver": "2.0", "scp": "access_as_user", "azp": frontendID, "azpacr": "0",
		"oid": "11111111-aaaa-4aaa-8aaa-111111111111", "sub": "pairwise", "preferred_username": "alice@contoso.test",
	}
}

// TestGatewayVerdictMatchesValidator checks inspect's gateway verdict
// against the gateway's own validator on the same tokens and keys: same
// acceptance, same reason.
func TestInspectGatewayVerdictMatchesValidator(t *testing.T) {
	t.Parallel()
	key := signingKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keysJSON := jwksOf(key, testKid)
	set, err := jwk.Parse(keysJSON)
	if err != nil {
		t.Fatal(err)
	}
	static, err := auth.NewStaticKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 0)
	g := testGateway()
	v, err := auth.NewValidator(auth.ValidatorConfig{
		Keys: static, Metadata: testIssuers.Metadata, TenantID: g.TenantID, AllowedTenants: g.AllowedTenants,
		ClientID: g.ClientID, Audiences: g.Audiences, Leeway: g.ClockSkew, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseKeySet("keys.json", keysJSON)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": testKid}
	with := func(edit func(c map[string]any)) map[string]any {
		c := userClaims(now)
		edit(c)
		return c
	}
	tests := []struct {
		name  string
		token string
		// reason is the gateway's reason, "" when it accepts.
		reason auth.Reason
	}{
		{"v2 user token", testkit.SignJWT(t, key, hdr, userClaims(now)), ""},
		{"v1 token for the App ID URI", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["aud"], c["iss"], c["ver"], c["appid"] = testAppIDURI+"/", "https://sts.example/"+testTenant+"/", "1.0", frontendID
			delete(c, "azp")
		})), ""},
		{"guest of an allowed tenant", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["tid"], c["iss"] = guestTenant, "https://login.example/"+guestTenant+"/v2.0"
		})), ""},
		{"expired within the clock skew", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() })), ""},
		{"expired beyond the clock skew", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), auth.ReasonExpired},
		{"not valid yet", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), auth.ReasonNotYetValid},
		{"issued in the future", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })), auth.ReasonNotYetValid},
		{"no exp", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { delete(c, "exp") })), auth.ReasonMalformed},
		{"another tenant", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["tid"], c["iss"] = otherTenant, "https://login.example/"+otherTenant+"/v2.0"
		})), auth.ReasonTenant},
		{"issuer of another host", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["iss"] = "https://login.microsoftonline.com/" + testTenant + "/v2.0"
		})), auth.ReasonIssuer},
		{"issuer of another tenant", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			c["iss"] = "https://login.example/" + guestTenant + "/v2.0"
		})), auth.ReasonIssuer},
		{"Graph audience", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["aud"] = "https://graph.microsoft.com" })), auth.ReasonAudience},
		{"spn: audience of the gateway", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) { c["aud"] = "spn:" + testClientID })), auth.ReasonAudience},
		{"app-only token", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			delete(c, "scp")
			c["idtyp"], c["roles"] = "app", []string{"Reports.Read"}
		})), ""},
		{"unknown kid", testkit.SignJWT(t, other, map[string]any{"alg": "RS256", "kid": "7c1f5d4e-2b3a-4c8d-9e0f-a1b2c3d4e5f6"}, userClaims(now)), auth.ReasonUnknownKey},
		{"right kid, wrong key", testkit.SignJWT(t, other, hdr, userClaims(now)), auth.ReasonSignature},
		{"x5t only", testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "x5t": testKid}, userClaims(now)), ""},
		{"Graph nonce header", testkit.SignJWT(t, key, map[string]any{"alg": "RS256", "kid": testKid, "nonce": "abc"}, userClaims(now)), auth.ReasonAudience},
		{"HS256", func() string {
			tok := testkit.SignJWT(t, key, hdr, userClaims(now))
			parts := strings.SplitN(tok, ".", 2)
			h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": testKid})
			return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1]
		}(), auth.ReasonAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, verr := v.Validate(context.Background(), tc.token)
			var te *auth.TokenError
			gotReason := auth.Reason("")
			if errors.As(verr, &te) {
				gotReason = te.Reason
			} else if verr != nil {
				t.Fatalf("Validate: %v", verr)
			}
			if gotReason != tc.reason {
				t.Fatalf("the gateway's validator says %q, the test expects %q", gotReason, tc.reason)
			}
			r := Inspect(tc.token, Options{At: now, Gateway: g, Keys: ks})
			if r.Gateway.Accepted != (tc.reason == "") || r.Gateway.Reason != string(tc.reason) || len(r.Gateway.Unchecked) > 0 {
				t.Errorf("inspect: accepted %v, reason %q, unchecked %v; the gateway: reason %q\nchecks: %+v",
					r.Gateway.Accepted, r.Gateway.Reason, r.Gateway.Unchecked, tc.reason, r.Gateway.Checks)
			}
		})
	}
}

func TestInspectRouteDecision(t *testing.T) {
	t.Parallel()
	orders := Route{Name: "orders", Resource: "api://orders-api", RequiredScopes: []string{"access_as_user", "Orders.Read"}}
	open := Route{Name: "open", Resource: "api://orders-api"}
	reports := Route{Name: "reports", RequiredRoles: []string{"Reports.Read"}}
	tests := []struct {
		name    string
		route   Route
		appOnly bool
		scopes  []string
		roles   []string
		allowed bool
		status  int
	}{
		{"user with one of the scopes", orders, false, []string{"Orders.Read"}, nil, true, 0},
		{"user without the scopes", orders, false, []string{"Reports.Read"}, nil, false, 403},
		{"user on a route requiring no scope", open, false, []string{"anything"}, nil, true, 0},
		{"user on an app-only route", reports, false, []string{"access_as_user"}, nil, true, 0},
		{"app-only on an exchanging route", orders, true, nil, []string{"Reports.Read"}, false, 401},
		{"app-only with the role", reports, true, nil, []string{"Reports.Read"}, true, 0},
		{"app-only without the role", reports, true, nil, []string{"Other"}, false, 403},
		{"app-only on a route with no roles", Route{Name: "x"}, true, nil, []string{"Reports.Read"}, false, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := routeDecision(tc.route, tc.appOnly, "an app-only token", tc.scopes, tc.roles)
			if d.PolicyAllows != tc.allowed || d.Status != tc.status {
				t.Errorf("allowed %v status %d (%s), want %v %d", d.PolicyAllows, d.Status, d.Message, tc.allowed, tc.status)
			}
		})
	}
}

func TestInspectParseKeySet(t *testing.T) {
	t.Parallel()
	certs, err := pki.ParseCertsPEM(fixture(t, "aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem"))
	if err != nil {
		t.Fatal(err)
	}
	x5c := base64.StdEncoding.EncodeToString(certs[0].Raw)
	key := signingKey(t)
	n := base64.RawURLEncoding.EncodeToString(key.N.Bytes())
	tests := []struct {
		name    string
		data    string
		keys    []string // key names, in order
		sources []string
		note    string // a phrase of the notes
		err     string
	}{
		{name: "Entra key set, no alg", data: string(fixture(t, "jose4j_aad_common_discovery_keys_2016-08-01.json")),
			keys: []string{"MnC_VZcATfM5pOYiJHMba9goEKY", "YbRAQRYcE_motWVJKHrwLBbd_9s"}, sources: []string{"n/e", "n/e"}},
		{name: "n in standard base64", data: string(fixture(t, "jose4j_aad_common_discovery_keys_2015-01-07_std_base64_n.json")),
			keys: []string{"kriMPdmBvx68skT8-mPAB3BseeA", "MnC_VZcATfM5pOYiJHMba9goEKY"}, note: "standard base64"},
		{name: "PEM certificate: named by its thumbprint", data: string(fixture(t, "aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem")),
			keys: []string{"z039zdsFuizpBfBVK1Tn25QHYO0"}, sources: []string{"PEM certificate"}},
		{name: "x5c only, no kid: named by its thumbprint", data: `{"keys":[{"kty":"RSA","x5c":["` + x5c + `"]}]}`,
			keys: []string{"x5t z039zdsFuizpBfBVK1Tn25QHYO0"}, sources: []string{"x5c certificate"}},
		{name: "a single JWK", data: `{"kty":"RSA","kid":"k","n":"` + n + `","e":"AQAB"}`, keys: []string{"k"}},
		{name: "n/e disagree with x5c", data: `{"keys":[{"kty":"RSA","kid":"k","n":"` + n + `","e":"AQAB","x5c":["` + x5c + `"]}]}`,
			keys: []string{"k"}, sources: []string{"n/e"}, note: "differ from its x5c"},
		{name: "an EC key beside an RSA one", data: `{"keys":[{"kty":"EC","kid":"ec","crv":"P-256","x":"a","y":"b"},{"kty":"RSA","kid":"k","n":"` + n + `","e":"AQAB"}]}`,
			keys: []string{"k"}, note: "kty EC"},
		{name: "only an EC key", data: `{"keys":[{"kty":"EC","kid":"ec"}]}`, err: "holds no RSA key"},
		{name: "an OpenID configuration", data: `{"issuer":"x","jwks_uri":"y"}`, err: "not the OpenID configuration"},
		{name: "neither JSON nor PEM", data: "hello", err: "neither JWKS JSON nor PEM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseKeySet("set", []byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names, sources []string
			for i := range s.Keys {
				names = append(names, s.Keys[i].name())
				sources = append(sources, s.Keys[i].Source)
			}
			if !slices.Equal(names, tc.keys) || tc.sources != nil && !slices.Equal(sources, tc.sources) {
				t.Errorf("keys %v from %v, want %v from %v", names, sources, tc.keys, tc.sources)
			}
			if notes := strings.Join(s.Notes, "; "); !strings.Contains(notes, tc.note) {
				t.Errorf("notes %q lack %q", notes, tc.note)
			}
		})
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
	ks, err := ParseKeySet("keys.json", jwksOf(key, testKid))
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
		{"app-only token without roles (oid = sub)", testkit.SignJWT(t, key, hdr, with(func(c map[string]any) {
			delete(c, "scp")
			c["sub"] = c["oid"]
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
			opt := Options{At: now, Keys: ks}
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
