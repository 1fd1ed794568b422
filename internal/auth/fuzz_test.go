package auth

// Native fuzz targets for what parses untrusted input: the bearer token
// (its form, its signature, its claims) and a saved key set. They assert
// properties, not examples. Seeds: real Entra tokens with the key sets that
// sign them (testkit/testdata/entra-real, SOURCES.md there), tokens of the
// test key, and every forgery shape of forgery_test.go. CI runs each target
// for a short time (.ci/run); inputs that failed are kept under
// testdata/fuzz/<target> and run as regression cases by go test.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// fuzzValidator is a validator and the tokens that seed it.
type fuzzValidator struct {
	name  string
	v     *Validator
	seeds []string
}

// fuzzValidators are validators configured as a gateway for each real
// token's API would be (its tenant, audience, issuers, key set, and a
// clock at its iat + 60 s, so that it is accepted), and one for the test
// key with its tokens.
func fuzzValidators(t testing.TB) []fuzzValidator {
	t.Helper()
	entra := Metadata{
		JWKSURI:          "https://login.microsoftonline.com/common/discovery/v2.0/keys",
		IssuerV2Template: "https://login.microsoftonline.com/{tenantid}/v2.0",
		IssuerV1Template: "https://sts.windows.net/{tenantid}/",
	}
	build := func(keysFile string, cfg ValidatorConfig) *Validator {
		ks, err := ParseKeySet(testkit.EntraFixture(t, keysFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Keys, cfg.Metadata = ks, entra
		v, err := NewValidator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	at := func(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix+60, 0) } }
	token := func(name string) string { return strings.TrimSpace(string(testkit.EntraFixture(t, name))) }

	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	test := newTestValidator(t, now, nil)
	app := userClaims(now)
	delete(app, "scp")
	app["roles"], app["idtyp"] = []string{"Gateway.Call"}, "app"
	idToken := testkit.SignJWT(t, k[0].priv, map[string]any{"alg": "RS256", "kid": k[0].kid}, idTokenClaims(now))
	valid := sign(t, k[0], userClaims(now), nil)
	seeds := []string{
		valid, sign(t, k[0], app, nil), idToken,
		sign(t, k[0], userClaims(now), map[string]any{"kid": nil, "x5t": "x5t-" + k[0].kid}),
		sign(t, k[0], userClaimsWith(now, map[string]any{"aud": []string{testClientID}}), nil), // aud as a list, as RFC 7519 allows
		testkit.JWSJSONForgery(t, idToken, forgedClaims(), false),
		testkit.JWSJSONForgery(t, idToken, forgedClaims(), true),
		testkit.Respell(t, valid, base64.URLEncoding), testkit.Respell(t, valid, base64.StdEncoding),
		testkit.SignJWT(t, k[0].priv, map[string]any{"alg": "RS256", "kid": k[0].kid, "b64": false, "crit": []string{"b64"}}, userClaims(now)),
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
	}
	return []fuzzValidator{
		{name: "test key", v: test, seeds: seeds},
		{name: "v1 access token for a custom API (Microsoft's docs)", v: build("aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem", ValidatorConfig{
			TenantID: "26039cce-489d-4002-8293-5b0c5134eacb", ClientID: "b3150079-7beb-417f-a06a-3fdc78c32545",
			Audiences: []string{"https://ddobalianoutlook.onmicrosoft.com/1923f862-e6dc-41a3-81da-802bae00af6d"}, Now: at(1493423152),
		}), seeds: []string{token("msdocs_v1obo_incoming_assertion_custom_api_v1_access_token.jwt"), token("msdocs_v1obo_response_access_token_aadgraph_v1.jwt"),
			token("msdocs_v2obo_incoming_assertion_v2_token.jwt"), token("msdocs_v2obo_response_access_token_MSGRAPH_NONCE_unverifiable.jwt"),
			token("msdocs_v1obo_response_id_token_UNSIGNED_alg_none.jwt")}},
		{name: "v1 access token with an spn: audience (passport-azure-ad)", v: build("jose4j_aad_common_discovery_keys_2016-08-01.json", ValidatorConfig{
			TenantID: "268da1a1-9db4-48b9-b1fe-683250ba90cc", ClientID: "6514a8ca-d9e4-4155-b292-65258398f3aa",
			Audiences: []string{"spn:6514a8ca-d9e4-4155-b292-65258398f3aa"}, Now: at(1467311248),
		}), seeds: []string{token("passport_v1_access_token_custom_api_scp.jwt"), token("jose4j_v1_id_token.jwt"),
			token("passport_NEGATIVE_v1_id_token_wrong_signature.jwt"), token("idmodel_Cyrano_v1_token.jwt")}},
	}
}

// TestFuzzSeedsAccepted keeps the seeds honest: each validator accepts its
// first seed, so that the fuzz properties of accepted tokens are exercised.
func TestFuzzSeedsAccepted(t *testing.T) {
	for _, fv := range fuzzValidators(t) {
		if _, err := fv.v.Validate(context.Background(), fv.seeds[0]); err != nil {
			t.Errorf("%s: its first seed is refused: %v", fv.name, err)
		}
	}
}

// FuzzValidate: for any bearer token, Validate never panics; a token it
// accepts is the compact serialisation of exactly its bytes (each segment
// decodes and encodes back to itself) and its principal is what the signed
// payload says, decoded independently; and Explain, the rulebook gateway
// inspect reads, reaches the same verdict with the same reason.
func FuzzValidate(f *testing.F) {
	fvs := fuzzValidators(f)
	for _, fv := range fvs {
		for _, s := range fv.seeds {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, fv := range fvs {
			p, err := fv.v.Validate(context.Background(), raw)
			ex := fv.v.Explain(context.Background(), raw)
			var te *TokenError
			switch {
			case err == nil:
				if !ex.Accepted() {
					t.Fatalf("%s: Validate accepts what Explain refuses (%v)", fv.name, ex.Err)
				}
				checkAccepted(t, raw, p)
			case !errors.As(err, &te):
				t.Fatalf("%s: Validate failed with a %T, not a *TokenError: %v", fv.name, err, err)
			case ex.Accepted() || ex.Err == nil || ex.Err.Reason != te.Reason:
				t.Fatalf("%s: Validate refuses (%s), Explain says accepted %v, %v", fv.name, te.Reason, ex.Accepted(), ex.Err)
			case te.Status != 401:
				t.Fatalf("%s: a static key set answered %d (%v): only 401 is a verdict on the token", fv.name, te.Status, te)
			}
		}
	})
}

// checkAccepted asserts the properties of an accepted token.
func checkAccepted(t *testing.T, raw string, p *Principal) {
	t.Helper()
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		t.Fatalf("accepted a token of %d segments", len(segs))
	}
	var decoded [3][]byte
	for i, s := range segs {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != s || strings.ContainsAny(s, "\r\n") {
			t.Fatalf("accepted segment %d that is not canonical base64url (%v)", i, err)
		}
		decoded[i] = b
	}
	var claims map[string]any
	if err := json.Unmarshal(decoded[1], &claims); err != nil {
		t.Fatalf("accepted a payload that is not one JSON object: %v", err)
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	if p.ObjectID != str("oid") || p.TenantID != str("tid") || p.Subject != str("sub") || p.Issuer != str("iss") || p.Version != str("ver") {
		t.Fatalf("principal %v differs from the signed payload %s", p, decoded[1])
	}
	if client := str("azp"); client != "" && p.ClientID != client || client == "" && p.ClientID != str("appid") {
		t.Fatalf("client %q differs from the payload's azp/appid", p.ClientID)
	}
	if scp := strings.Fields(str("scp")); !slices.Equal(scp, p.Scopes) && !(len(scp) == 0 && len(p.Scopes) == 0) {
		t.Fatalf("scopes %v differ from the payload's scp %q", p.Scopes, str("scp"))
	}
	var roles []string
	if list, ok := claims["roles"].([]any); ok {
		for _, r := range list {
			s, _ := r.(string)
			roles = append(roles, s)
		}
	}
	if !reflect.DeepEqual(roles, p.Roles) && !(len(roles) == 0 && len(p.Roles) == 0) {
		t.Fatalf("roles %v differ from the payload's %v", p.Roles, roles)
	}
	auds := []string{str("aud")}
	if list, ok := claims["aud"].([]any); ok {
		auds = nil
		for _, a := range list {
			s, _ := a.(string)
			auds = append(auds, s)
		}
	}
	if !slices.Contains(auds, p.Audience) {
		t.Fatalf("audience %q is not one of the payload's %v", p.Audience, auds)
	}
	if exp, ok := claims["exp"].(float64); !ok || p.ExpiresAt.Unix() != int64(exp) {
		t.Fatalf("exp %v differs from the payload's %v", p.ExpiresAt, claims["exp"])
	}
}

// FuzzCheckCompact: the form check agrees with the standard library's
// strict decoder, segment by segment.
func FuzzCheckCompact(f *testing.F) {
	for _, fv := range fuzzValidators(f) {
		for _, s := range fv.seeds {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want := len(raw) <= maxTokenBytes && strings.Count(raw, ".") == 2
		if want {
			for _, s := range strings.Split(raw, ".") {
				_, err := base64.RawURLEncoding.Strict().DecodeString(s)
				want = want && s != "" && err == nil && !strings.ContainsAny(s, "\r\n")
			}
		}
		if got := checkCompact(raw) == ""; got != want {
			t.Fatalf("checkCompact accepts %v, the strict decoder %v, for %q", got, want, raw)
		}
	})
}

// FuzzParseKeySet: a saved key set, whatever its bytes, is read or refused
// without a panic; a set read holds keys that can be named.
func FuzzParseKeySet(f *testing.F) {
	for _, name := range []string{
		"jose4j_aad_common_discovery_keys_2016-08-01.json", "jose4j_aad_common_discovery_keys_2015-01-07_std_base64_n.json",
		"jose4j_aad_tenant_30aa0e58_discovery_v2.0_keys_2016-08-02.json", "aad_signing_cert_z039zdsFuizpBfBVK1Tn25QHYO0_2017-2019.pem",
	} {
		f.Add(testkit.EntraFixture(f, name))
	}
	f.Add([]byte(`{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"ec"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseKeySet(data)
		if err != nil {
			return
		}
		if len(ks.Names()) == 0 {
			t.Fatal("a key set was read with no key in it")
		}
	})
}
