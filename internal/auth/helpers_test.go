package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

const (
	testTenant   = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
	otherTenant  = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	testClientID = "5c3b2f0e-91d4-4a57-8f0b-3e2d1c4b5a62"
	testAppIDURI = "api://obo-gateway"
)

var testMetadata = Metadata{
	JWKSURI:          "https://login.example/keys",
	IssuerV2Template: "https://login.example/{tenantid}/v2.0",
	IssuerV1Template: "https://sts.example/{tenantid}/",
}

// testKey is an RSA signing key with its public JWK (no alg, like Entra's).
type testKey struct {
	kid  string
	priv *rsa.PrivateKey
	pub  jwk.Key
}

var (
	keyOnce sync.Once
	keys    [2]*testKey
)

// sharedKeys returns two RSA keys generated once per test binary.
func sharedKeys(t testing.TB) [2]*testKey {
	t.Helper()
	keyOnce.Do(func() {
		for i, kid := range []string{"kid-one", "kid-two"} {
			priv, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			pub, err := jwk.FromRaw(&priv.PublicKey)
			if err != nil {
				panic(err)
			}
			_ = pub.Set(jwk.KeyIDKey, kid)
			_ = pub.Set(jwk.X509CertThumbprintKey, "x5t-"+kid)
			keys[i] = &testKey{kid: kid, priv: priv, pub: pub}
		}
	})
	return keys
}

func setOf(t testing.TB, ks ...*testKey) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range ks {
		if err := set.AddKey(k.pub); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

// userClaims are the claims of a valid v2 user token for the gateway.
func userClaims(now time.Time) map[string]any {
	return map[string]any{
		"aud": testClientID, "iss": "https://login.example/" + testTenant + "/v2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"tid": testTenant, "oid": "11111111-aaaa-4aaa-8aaa-111111111111", "sub": "pairwise-sub",
		"azp": "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11", "scp": "access_as_user", "ver": "2.0",
	}
}

// sign signs claims with k's key by RS256 under the header
// {"alg":"RS256","typ":"JWT","kid":k.kid}, which hdr changes (a nil value
// removes a field). It signs with testkit's hand-written signer, so that the
// JOSE library the validator verifies with is not used to test itself.
func sign(t testing.TB, k *testKey, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.kid}
	for name, v := range hdr {
		if v == nil {
			delete(h, name)
			continue
		}
		h[name] = v
	}
	return testkit.SignJWT(t, k.priv, h, claims)
}

// jwksServer serves a key set that tests can swap, counting fetches.
type jwksServer struct {
	srv     *httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	set     jwk.Set
	fail    bool
	gate    chan struct{} // when non-nil, each fetch waits for it to close
}

func newJWKSServer(t *testing.T, set jwk.Set) *jwksServer {
	t.Helper()
	js := &jwksServer{set: set}
	js.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		set, fail, gate := js.set, js.fail, js.gate
		js.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if fail {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(js.srv.Close)
	return js
}

func (js *jwksServer) setKeys(set jwk.Set) { js.mu.Lock(); js.set = set; js.mu.Unlock() }
func (js *jwksServer) setFail(f bool)      { js.mu.Lock(); js.fail = f; js.mu.Unlock() }

// userClaimsWith is userClaims with changes applied: a nil value removes the
// claim.
func userClaimsWith(now time.Time, changes map[string]any) map[string]any {
	c := userClaims(now)
	for name, v := range changes {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	return c
}
