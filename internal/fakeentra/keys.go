package fakeentra

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"sync"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// signingKey is one of the tenant's token-signing keys. As in Entra, its kid
// is its certificate's SHA-1 thumbprint in base64url, the same as its x5t.
type signingKey struct {
	kid  string
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// keyRing holds the signing keys: the current one signs, all published ones
// verify and appear in the JWKS.
type keyRing struct {
	mu        sync.RWMutex
	current   *signingKey
	published []*signingKey // current first
}

func newSigningKey(now time.Time) (*signingKey, error) {
	cert, key, err := pki.SelfSigned("accounts.accesscontrol.windows.net", now.Add(-24*time.Hour), now.AddDate(5, 0, 0))
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: b64.EncodeToString(pki.ThumbprintSHA1(cert)), key: key, cert: cert}, nil
}

func newKeyRing(now time.Time) (*keyRing, error) {
	k, err := newSigningKey(now)
	if err != nil {
		return nil, err
	}
	return &keyRing{current: k, published: []*signingKey{k}}, nil
}

// rotate makes a new current key. With keepOld the previous keys stay
// published (Entra publishes the next and previous keys beside the current
// one), at most three in all; without, they are withdrawn at once.
func (r *keyRing) rotate(now time.Time, keepOld bool) (string, error) {
	k, err := newSigningKey(now)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pub := []*signingKey{k}
	if keepOld {
		pub = append(pub, r.published...)
		if len(pub) > 3 {
			pub = pub[:3]
		}
	}
	r.current, r.published = k, pub
	return k.kid, nil
}

func (r *keyRing) signer() *signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

// lookup finds a published key by kid or by x5t (they are equal for Entra's keys).
func (r *keyRing) lookup(kid, x5t string) *signingKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.published {
		if (kid != "" && k.kid == kid) || (x5t != "" && k.kid == x5t) {
			return k
		}
	}
	return nil
}

// jwk is the shape of a key in Entra's JWKS: RSA, no alg.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

func (r *keyRing) jwks(issuer string) []jwk {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]jwk, 0, len(r.published))
	for _, k := range r.published {
		out = append(out, jwk{
			Kty: "RSA", Use: "sig", Kid: k.kid, X5t: k.kid,
			N:      b64.EncodeToString(k.key.N.Bytes()),
			E:      b64.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
			X5c:    []string{base64.StdEncoding.EncodeToString(k.cert.Raw)},
			Issuer: issuer,
		})
	}
	return out
}
