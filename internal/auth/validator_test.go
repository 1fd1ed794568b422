package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func newTestValidator(t testing.TB, now time.Time, m *Metrics) *Validator {
	t.Helper()
	k := sharedKeys(t)
	ks, err := NewStaticKeySet(setOf(t, k[0]))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(ValidatorConfig{
		Keys: ks, Metadata: testMetadata, TenantID: testTenant, AllowedTenants: []string{otherTenant},
		ClientID: testClientID, Audiences: []string{testAppIDURI}, Leeway: time.Minute,
		Now: func() time.Time { return now }, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidate(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	with := func(changes map[string]any) map[string]any { return userClaimsWith(now, changes) }
	forgedHS256 := func() string {
		input := testkit.B64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": k[0].kid}) + "." + testkit.B64JSON(t, userClaims(now))
		mac := hmac.New(sha256.New, []byte("a shared secret guessed by an attacker"))
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}()
	valid := sign(t, k[0], userClaims(now), nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + strings.Split(sign(t, k[0], with(map[string]any{"oid": "someone-else"}), nil), ".")[1] + "." + parts[2]
	algNone := parts[0][:0] + "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."

	tests := []struct {
		name   string
		token  string
		reason Reason // "" = valid
		check  func(t *testing.T, p *Principal)
	}{
		{name: "v2 user token", token: valid, check: func(t *testing.T, p *Principal) {
			if p.ObjectID != "11111111-aaaa-4aaa-8aaa-111111111111" || p.TenantID != testTenant || p.AppOnly ||
				!p.HasScope("access_as_user") || p.ClientID != "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11" || p.KeyID != k[0].kid {
				t.Errorf("principal = %+v", p)
			}
			if p.Token() != valid {
				t.Error("Token() is not the token as received")
			}
		}},
		{name: "v1 token with App ID URI audience and appid", token: sign(t, k[0], with(map[string]any{
			"iss": "https://sts.example/" + testTenant + "/", "aud": testAppIDURI, "ver": "1.0", "azp": nil, "appid": "client-app",
		}), nil), check: func(t *testing.T, p *Principal) {
			if p.Audience != testAppIDURI || p.ClientID != "client-app" || p.Version != "1.0" {
				t.Errorf("principal = %+v", p)
			}
		}},
		{name: "audience as a list", token: sign(t, k[0], with(map[string]any{"aud": []string{"https://graph.microsoft.com", testClientID}}), nil), check: func(t *testing.T, p *Principal) {
			if p.Audience != testClientID {
				t.Errorf("audience = %q, want %q", p.Audience, testClientID)
			}
		}},
		{name: "audience with a trailing slash", token: sign(t, k[0], with(map[string]any{"aud": testAppIDURI + "/"}), nil)},
		{name: "client ID audience in upper case", token: sign(t, k[0], with(map[string]any{"aud": strings.ToUpper(testClientID)}), nil)},
		{name: "App ID URI in another case", token: sign(t, k[0], with(map[string]any{"aud": "API://OBO-Gateway"}), nil), reason: ReasonAudience},
		{name: "allowed other tenant", token: sign(t, k[0], with(map[string]any{
			"tid": otherTenant, "iss": "https://login.example/" + otherTenant + "/v2.0"}), nil)},
		{name: "app-only token is valid (policy decides)", token: sign(t, k[0], with(map[string]any{"scp": nil, "roles": []string{"Gateway.Call"}, "idtyp": "app"}), nil),
			check: func(t *testing.T, p *Principal) {
				if !p.AppOnly || !p.HasRole("Gateway.Call") {
					t.Errorf("principal = %+v", p)
				}
			}},
		{name: "expired within leeway", token: sign(t, k[0], with(map[string]any{"exp": now.Add(-30 * time.Second).Unix()}), nil)},
		{name: "expired beyond leeway", token: sign(t, k[0], with(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), nil), reason: ReasonExpired},
		{name: "not yet valid", token: sign(t, k[0], with(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}), nil), reason: ReasonNotYetValid},
		{name: "no exp", token: sign(t, k[0], with(map[string]any{"exp": nil}), nil), reason: ReasonMalformed},
		{name: "issuer of another tenant than tid", token: sign(t, k[0], with(map[string]any{"iss": "https://login.example/" + otherTenant + "/v2.0"}), nil), reason: ReasonIssuer},
		{name: "foreign issuer", token: sign(t, k[0], with(map[string]any{"iss": "https://evil.example/" + testTenant + "/v2.0"}), nil), reason: ReasonIssuer},
		{name: "tenant not allowed", token: sign(t, k[0], with(map[string]any{
			"tid": "99999999-9999-4999-8999-999999999999", "iss": "https://login.example/99999999-9999-4999-8999-999999999999/v2.0"}), nil), reason: ReasonTenant},
		{name: "no tid", token: sign(t, k[0], with(map[string]any{"tid": nil}), nil), reason: ReasonTenant},
		{name: "Graph audience", token: sign(t, k[0], with(map[string]any{"aud": "https://graph.microsoft.com"}), nil), reason: ReasonAudience},
		{name: "Graph token with nonce header", token: sign(t, k[0], userClaims(now), map[string]any{"nonce": "abc"}), reason: ReasonAudience},
		{name: "unknown kid", token: sign(t, k[1], userClaims(now), nil), reason: ReasonUnknownKey},
		{name: "self-signed with kid of the tenant's key", token: sign(t, &testKey{kid: k[0].kid, priv: k[1].priv}, userClaims(now), nil), reason: ReasonSignature},
		{name: "tampered payload", token: tampered, reason: ReasonSignature},
		{name: "HS256 with the tenant key's kid", token: forgedHS256, reason: ReasonAlgorithm},
		{name: "alg none, empty signature", token: algNone, reason: ReasonMalformed},
		{name: "alg none, with a signature", token: algNone + parts[2], reason: ReasonAlgorithm},
		{name: "x5t only, no kid", token: sign(t, k[0], userClaims(now), map[string]any{"kid": nil, "x5t": "x5t-" + k[0].kid})},
		{name: "not a JWT", token: "not-a-jwt", reason: ReasonMalformed},
		{name: "garbage segments", token: "a.b.c", reason: ReasonMalformed},
		{name: "oversized", token: strings.Repeat("a", maxTokenBytes) + ".b.c", reason: ReasonMalformed},
	}
	reg := prometheus.NewRegistry()
	v := newTestValidator(t, now, NewMetrics(reg))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Validate(context.Background(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if tt.check != nil {
					tt.check(t, p)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("Validate = %v, %v; want a *TokenError with reason %s", p, err, tt.reason)
			}
			if te.Reason != tt.reason || te.Status != 401 || te.Code != "invalid_token" {
				t.Errorf("got reason %s status %d code %s (%v); want %s 401 invalid_token", te.Reason, te.Status, te.Code, te, tt.reason)
			}
			if strings.Contains(te.Description, tt.token) || (te.Err != nil && strings.Contains(te.Err.Error(), tt.token)) {
				t.Error("the error carries the token")
			}
		})
	}
	if got := testutil.ToFloat64(v.cfg.Metrics.validations.WithLabelValues("invalid", string(ReasonExpired))); got != 1 {
		t.Errorf("invalid/expired validations = %v, want 1", got)
	}
}

func TestVerifiedTokenCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := sharedKeys(t)
	js := newJWKSServer(t, setOf(t, k[0], k[1]))
	clock := testkit.NewClock(now)
	m := NewMetrics(prometheus.NewRegistry())
	ks := startKeySet(t, js, clock, m)
	v, err := NewValidator(ValidatorConfig{
		Keys: ks, Metadata: testMetadata, TenantID: testTenant, ClientID: testClientID,
		Now: clock.Now, Metrics: m, CacheBudget: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := userClaims(now)
	claims["exp"] = now.Add(10 * time.Minute).Unix()
	tok := sign(t, k[1], claims, nil)

	p1, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(tok)); p1.TokenHash() != want || p2.TokenHash() != want {
		t.Error("TokenHash is not the SHA-256 of the token, fresh or cached")
	}
	if p1.FromCache || !p2.FromCache {
		t.Errorf("FromCache: fresh %v, cached %v; want false, true", p1.FromCache, p2.FromCache)
	}
	fresh := *p1
	fresh.FromCache = true
	if !reflect.DeepEqual(fresh, *p2) {
		t.Errorf("cached principal differs from the fresh one:\n cached %+v\n fresh  %+v", *p2, *p1)
	}
	if e, ok := v.verified.Get(sha256.Sum256([]byte(tok))); !ok {
		t.Error("the validation was not cached")
	} else if strings.Contains(fmt.Sprintf("%+v %+v", e, *e.common), tok) {
		t.Error("the verified-token cache keeps the token itself (it needs only its hash)")
	}
	if got := testutil.ToFloat64(m.validCached); got != 1 {
		t.Errorf("cached validations = %v, want 1", got)
	}

	// A token signed by k[0], cached before the refresh below.
	kept := sign(t, k[0], claims, nil)
	if _, err := v.Validate(context.Background(), kept); err != nil {
		t.Fatal(err)
	}

	// The signing key leaves the key set: the cached entry dies with it.
	js.setKeys(setOf(t, k[0]))
	clock.Advance(31 * time.Second) // past the minimum refresh interval
	if _, err := ks.Key(context.Background(), "unknown-kid-forces-refresh", ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("refresh: %v", err)
	}
	_, err = v.Validate(context.Background(), tok)
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != ReasonUnknownKey {
		t.Fatalf("after the key left the set: err = %v, want unknown_key", err)
	}
	// A key that stayed in the refreshed set keeps its cached tokens (the
	// refresh made new key values: they compare equal, not identical).
	before := testutil.ToFloat64(m.validCached)
	if _, err := v.Validate(context.Background(), kept); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.validCached); got != before+1 {
		t.Errorf("a token whose key survived the refresh was verified again (cached %v -> %v)", before, got)
	}

	// A cached entry does not outlive the token's exp.
	tok0 := sign(t, k[0], claims, nil)
	if _, err := v.Validate(context.Background(), tok0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(12 * time.Minute) // beyond exp and the leeway
	if _, err := v.Validate(context.Background(), tok0); !errors.As(err, &te) || te.Reason != ReasonExpired {
		t.Fatalf("after exp: err = %v, want expired", err)
	}
}

// However a Principal is printed or logged, the token stays out of it.
func TestPrincipalPrintsNoToken(t *testing.T) {
	now := time.Now()
	tok := sign(t, sharedKeys(t)[0], userClaims(now), nil)
	p := &Principal{raw: tok, ObjectID: "oid-1", TenantID: testTenant, ExpiresAt: now}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "principal", p, "value", *p)
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", *p), fmt.Sprintf("%s", p), fmt.Sprint(*p), logs.String()} {
		if strings.Contains(s, tok) || !strings.Contains(s, "oid-1") {
			t.Errorf("printed principal shows the token or not its oid: %.200s", s)
		}
	}
}
