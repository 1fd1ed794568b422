package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// victimOID is the identity the forgeries below try to borrow.
const victimOID = "99999999-dead-4bee-8eef-999999999999"

// idTokenClaims are the claims of a user's ID token for the frontend, the
// token an attacker most easily holds that the tenant's key signed.
func idTokenClaims(now time.Time) map[string]any {
	return map[string]any{
		"aud": "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11", "iss": "https://login.example/" + testTenant + "/v2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"tid": testTenant, "oid": "11111111-aaaa-4aaa-8aaa-111111111111", "sub": "pairwise-sub",
		"nonce": "n-0S6_WzA2Mj", "preferred_username": "attacker@contoso.test", "ver": "2.0",
	}
}

// forgedClaims are what a forgery puts beside the signed parts.
func forgedClaims() map[string]any {
	return map[string]any{
		"aud": testClientID, "tid": testTenant, "oid": victimOID, "sub": victimOID,
		"scp": "access_as_user admin", "roles": []string{"Orders.Admin"},
		"iss": "https://login.example/" + testTenant + "/v2.0", "exp": 4_000_000_000, "ver": "2.0",
	}
}

// nonCanonical signs claims with key (growing a filler claim until the
// payload segment has unused bits) and flips the unused low bits of the
// payload segment's last character: it decodes to the same bytes, yet is
// another string than the one signed.
func nonCanonical(t *testing.T, key *rsa.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	var segs []string
	for filler := ""; ; filler += "x" {
		claims["filler"] = filler
		segs = strings.Split(testkit.SignJWT(t, key, hdr, claims), ".")
		if len(segs[1])%4 != 0 {
			break
		}
	}
	p := segs[1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, p[len(p)-1])
	segs[1] = p[:len(p)-1] + string(alphabet[last|1])
	if b, err := base64.RawURLEncoding.DecodeString(segs[1]); err != nil || base64.RawURLEncoding.EncodeToString(b) == segs[1] {
		t.Fatalf("not a non-canonical spelling of the same bytes (err %v)", err)
	}
	return strings.Join(segs, ".")
}

// TestForgeries holds every forgery shape, by attack class, to a refusal
// with its reason: no claim of a token is believed unless it comes from
// the compact bytes whose signature was verified.
func TestForgeries(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	tenantKey := k[0].priv
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": k[0].kid}
	withHeader := func(changes map[string]any) map[string]any {
		h := map[string]any{}
		for n, v := range hdr {
			h[n] = v
		}
		for n, v := range changes {
			h[n] = v
		}
		return h
	}
	user := userClaims(now)
	idToken := testkit.SignJWT(t, tenantKey, hdr, idTokenClaims(now))
	valid := testkit.SignJWT(t, tenantKey, hdr, user)
	segs := strings.Split(valid, ".")
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK, _ := jwk.FromRaw(&attacker.PublicKey)
	_ = attackerJWK.Set(jwk.KeyIDKey, k[0].kid)
	claimsWith := func(changes map[string]any) map[string]any { return userClaimsWith(now, changes) }
	// A payload with a second object after the first: signed here with the
	// tenant's key, to show that the claims are the whole payload or none.
	trailing := func() string {
		c, _ := json.Marshal(user)
		c = append(c, []byte(`{"oid":"`+victimOID+`"}`)...)
		return signInput(t, tenantKey, testkit.B64JSON(t, hdr)+"."+base64.RawURLEncoding.EncodeToString(c))
	}()

	tests := []struct {
		class, name string
		token       string
		reason      Reason
	}{
		{"serialisation", "flattened JSON around a signed ID token", testkit.JWSJSONForgery(t, idToken, forgedClaims(), false), ReasonMalformed},
		{"serialisation", "general JSON around a signed ID token", testkit.JWSJSONForgery(t, idToken, forgedClaims(), true), ReasonMalformed},
		{"serialisation", "flattened JSON around a valid access token", testkit.JWSJSONForgery(t, valid, forgedClaims(), false), ReasonMalformed},
		{"serialisation", "JWE (five segments)", segs[0] + ".e30.e30.e30.e30", ReasonMalformed},
		{"serialisation", "four segments", valid + ".e30", ReasonMalformed},
		{"serialisation", "empty signature", segs[0] + "." + segs[1] + ".", ReasonMalformed},
		{"encoding", "padded segments", testkit.Respell(t, valid, base64.URLEncoding), ReasonMalformed},
		{"encoding", "standard base64", testkit.Respell(t, valid, base64.RawStdEncoding), ReasonMalformed},
		{"encoding", "standard base64, padded", testkit.Respell(t, valid, base64.StdEncoding), ReasonMalformed},
		{"encoding", "line break in the payload", segs[0] + "." + segs[1][:10] + "\r\n" + segs[1][10:] + "." + segs[2], ReasonMalformed},
		{"encoding", "space in the signature", segs[0] + "." + segs[1] + "." + segs[2][:10] + " " + segs[2][10:], ReasonMalformed},
		{"encoding", "non-canonical trailing bits", nonCanonical(t, tenantKey, hdr, userClaims(now)), ReasonMalformed},
		{"encoding", "percent-encoded dot", segs[0] + "%2E" + segs[1] + "." + segs[2], ReasonMalformed},
		{"header", "b64 false, signed by the tenant's key", testkit.SignJWT(t, tenantKey, withHeader(map[string]any{"b64": false, "crit": []string{"b64"}}), user), ReasonMalformed},
		{"header", "crit alone", testkit.SignJWT(t, tenantKey, withHeader(map[string]any{"crit": []string{"exp"}}), user), ReasonMalformed},
		{"header", "header not a JSON object", base64.RawURLEncoding.EncodeToString([]byte(`["RS256"]`)) + "." + segs[1] + "." + segs[2], ReasonMalformed},
		{"header", "embedded jwk of the attacker, kid of the tenant's key", testkit.SignJWT(t, attacker, withHeader(map[string]any{"jwk": attackerJWK}), user), ReasonSignature},
		{"header", "jku to the attacker's keys", testkit.SignJWT(t, attacker, withHeader(map[string]any{"jku": "https://evil.example/keys"}), user), ReasonSignature},
		{"header", "alg in lower case", signInput(t, tenantKey, testkit.B64JSON(t, withHeader(map[string]any{"alg": "rs256"}))+"."+segs[1]), ReasonAlgorithm},
		{"header", "PS256", testkit.SignJWT(t, tenantKey, withHeader(map[string]any{"alg": "PS256"}), user), ReasonAlgorithm},
		{"header", "kid that is a path", testkit.SignJWT(t, tenantKey, withHeader(map[string]any{"kid": "../../keys/" + k[0].kid}), user), ReasonUnknownKey},
		{"payload", "a second object after the claims", trailing, ReasonMalformed},
		{"payload", "scp as a list", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"scp": []string{"access_as_user"}})), ReasonMalformed},
		{"payload", "roles as a string", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"roles": "Orders.Admin"})), ReasonMalformed},
		{"payload", "tid as a number", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"tid": 7})), ReasonMalformed},
		{"payload", "aud as a number", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"aud": 7})), ReasonMalformed},
		{"kind", "an ID token whose audience is the gateway", testkit.SignJWT(t, tenantKey, hdr, func() map[string]any {
			c := idTokenClaims(now)
			c["aud"] = testClientID
			return c
		}()), ReasonTokenKind},
		{"kind", "an ID token whose audience is the gateway, without nonce", testkit.SignJWT(t, tenantKey, hdr, func() map[string]any {
			c := idTokenClaims(now)
			c["aud"] = testClientID
			delete(c, "nonce")
			return c
		}()), ReasonTokenKind},
		{"kind", "scp and a nonce claim", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"nonce": "abc"})), ReasonTokenKind},
		{"kind", "roles without scp, oid not sub", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"scp": nil, "roles": []string{"Orders.Admin"}})), ReasonTokenKind},
		{"kind", "idtyp app with scp", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"idtyp": "app"})), ReasonTokenKind},
		{"kind", "idtyp user without scp", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"idtyp": "user", "scp": nil, "roles": []string{"Orders.Admin"}})), ReasonTokenKind},
		{"kind", "idtyp of another kind", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{"idtyp": "device"})), ReasonTokenKind},
		{"audience", "foreign tenant naming the gateway by its home App ID URI", testkit.SignJWT(t, tenantKey, hdr, claimsWith(map[string]any{
			"tid": otherTenant, "iss": "https://login.example/" + otherTenant + "/v2.0", "aud": testAppIDURI})), ReasonAudience},
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	v := newTestValidator(t, now, m)
	for _, tt := range tests {
		t.Run(tt.class+"/"+tt.name, func(t *testing.T) {
			p, err := v.Validate(context.Background(), tt.token)
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("Validate accepted it: %v (err %v)", p, err)
			}
			if te.Reason != tt.reason || te.Status != 401 || te.Code != "invalid_token" {
				t.Errorf("got %s %d %s (%v); want %s 401 invalid_token", te.Reason, te.Status, te.Code, te, tt.reason)
			}
			if strings.Contains(te.Error(), victimOID) {
				t.Errorf("the refusal names the forged identity: %v", te)
			}
			// Explain, the rulebook gateway inspect reads, agrees.
			ex := v.Explain(context.Background(), tt.token)
			if ex.Accepted() || ex.Err == nil || ex.Err.Reason != tt.reason {
				t.Errorf("Explain: accepted %v, first failure %v; want %s", ex.Accepted(), ex.Err, tt.reason)
			}
		})
	}
	if got := testutil.ToFloat64(m.validations.WithLabelValues("valid", "")); got != 0 {
		t.Errorf("%v forgeries counted valid", got)
	}
}

// TestAudiencesAcrossTenants: a token of another allowed tenant must name
// the gateway globally (its client ID, or api://<client ID> when listed);
// the home tenant may use any configured App ID URI.
func TestAudiencesAcrossTenants(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	ks, err := NewStaticKeySet(setOf(t, k[0]))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(ValidatorConfig{
		Keys: ks, Metadata: testMetadata, TenantID: testTenant, AllowedTenants: []string{otherTenant},
		ClientID: testClientID, Audiences: []string{testAppIDURI, "api://" + testClientID}, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tid, aud string
		ok       bool
	}{
		{testTenant, testClientID, true},
		{testTenant, testAppIDURI, true},
		{testTenant, "api://" + testClientID, true},
		{otherTenant, testClientID, true},
		{otherTenant, "api://" + testClientID, true},
		{otherTenant, testAppIDURI, false},
		{otherTenant, testAppIDURI + "/", false},
		{otherTenant, "api://" + otherTenant + "/" + testClientID, false},
	} {
		c := userClaims(now)
		c["tid"], c["iss"], c["aud"] = tt.tid, "https://login.example/"+tt.tid+"/v2.0", tt.aud
		_, err := v.Validate(context.Background(), sign(t, k[0], c, nil))
		var te *TokenError
		switch {
		case tt.ok && err != nil:
			t.Errorf("tid %s aud %s: %v, want accepted", tt.tid, tt.aud, err)
		case !tt.ok && (!errors.As(err, &te) || te.Reason != ReasonAudience):
			t.Errorf("tid %s aud %s: %v, want refused for its audience", tt.tid, tt.aud, err)
		}
	}
}

// TestTokenKinds: what counts as a user's token and what as an app's.
func TestTokenKinds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	v := newTestValidator(t, now, nil)
	app := func(changes map[string]any) map[string]any {
		c := userClaims(now)
		delete(c, "scp")
		c["roles"], c["sub"] = []string{"Orders.Read"}, c["oid"]
		for n, val := range changes {
			if val == nil {
				delete(c, n)
			} else {
				c[n] = val
			}
		}
		return c
	}
	for _, tt := range []struct {
		name    string
		claims  map[string]any
		appOnly bool
	}{
		{"delegated", userClaims(now), false},
		{"delegated with roles (a user's app-role assignment)", func() map[string]any { c := userClaims(now); c["roles"] = []string{"Orders.Admin"}; return c }(), false},
		{"delegated with idtyp user", func() map[string]any { c := userClaims(now); c["idtyp"] = "user"; return c }(), false},
		{"app-only by idtyp", app(map[string]any{"idtyp": "app", "sub": "other"}), true},
		{"app-only by oid = sub (v1, no idtyp)", app(nil), true},
	} {
		p, err := v.Validate(context.Background(), sign(t, k[0], tt.claims, nil))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if p.AppOnly != tt.appOnly {
			t.Errorf("%s: AppOnly = %v, want %v", tt.name, p.AppOnly, tt.appOnly)
		}
	}
}

// signInput signs a prepared signing input (header.payload) with RS256.
func signInput(t *testing.T, key *rsa.PrivateKey, input string) string {
	t.Helper()
	return input + "." + testkit.SignRS256(t, key, input)
}
