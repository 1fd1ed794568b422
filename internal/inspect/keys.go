package inspect

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

// Key is one RSA public key of a key set.
type Key struct {
	// KeyID is the key's kid. Keys read from a PEM certificate get the
	// certificate's thumbprint, as Entra names its keys.
	KeyID string
	// X5t is the certificate's SHA-1 thumbprint, base64url: the key's
	// name in tokens whose header has no kid.
	X5t string
	// Source is how the key was read: "n/e", "x5c certificate" or "PEM certificate".
	Source string
	pub    *rsa.PublicKey
}

// name is how messages call the key.
func (k *Key) name() string {
	if k.KeyID != "" {
		return k.KeyID
	}
	return "x5t " + k.X5t
}

// KeySet is a saved key set: a JWKS document (Entra's discovery/keys), a
// single JWK, or PEM certificates. Only RSA keys are kept.
type KeySet struct {
	// Name is where the set came from (a file name), for messages.
	Name string
	Keys []Key
	// Notes are keys skipped or oddities found while reading, in words.
	Notes []string
}

// jsonKey is a JWK as Entra and others publish it. Entra's keys carry no
// alg; some old sets have n in standard base64 (with + / =); some keys have
// only an x5c certificate.
type jsonKey struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	X5t string   `json:"x5t"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X5c []string `json:"x5c"`
}

// ParseKeySet reads a key set: JWKS JSON ({"keys": [...]}), a single JWK,
// or one or more PEM certificates. name labels the set in messages. It
// fails when no RSA key can be read.
func ParseKeySet(name string, data []byte) (*KeySet, error) {
	s := &KeySet{Name: name}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		certs, err := pki.ParseCertsPEM(trimmed)
		if err != nil {
			return nil, fmt.Errorf("inspect: key set %s: %w", name, err)
		}
		for i, c := range certs {
			pub, ok := c.PublicKey.(*rsa.PublicKey)
			if !ok {
				s.Notes = append(s.Notes, fmt.Sprintf("certificate %d (%s) skipped: not an RSA key", i+1, c.Subject))
				continue
			}
			x5t := thumbprint(c)
			s.Keys = append(s.Keys, Key{KeyID: x5t, X5t: x5t, Source: "PEM certificate", pub: pub})
		}
	case bytes.HasPrefix(trimmed, []byte("{")):
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
			Kty  string            `json:"kty"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("inspect: key set %s: not JSON: %w", name, err)
		}
		raw := doc.Keys
		if raw == nil && doc.Kty != "" {
			raw = []json.RawMessage{trimmed} // a single JWK
		}
		if raw == nil {
			return nil, fmt.Errorf("inspect: key set %s: no \"keys\": save the key set (jwks_uri, e.g. https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys), not the OpenID configuration", name)
		}
		for i, r := range raw {
			var jk jsonKey
			if err := json.Unmarshal(r, &jk); err != nil {
				s.Notes = append(s.Notes, fmt.Sprintf("key %d skipped: %v", i+1, err))
				continue
			}
			k, note := jk.key()
			if note != "" {
				s.Notes = append(s.Notes, fmt.Sprintf("key %d (kid %q) %s", i+1, jk.Kid, note))
			}
			if k != nil {
				s.Keys = append(s.Keys, *k)
			}
		}
	default:
		return nil, fmt.Errorf("inspect: key set %s: neither JWKS JSON nor PEM certificates", name)
	}
	if len(s.Keys) == 0 {
		return nil, fmt.Errorf("inspect: key set %s holds no RSA key (%s)", name, strings.Join(s.Notes, "; "))
	}
	return s, nil
}

// key reads one JWK: n and e when they decode, else the x5c certificate.
// note says what was odd or why the key was skipped.
func (jk jsonKey) key() (*Key, string) {
	if jk.Kty != "RSA" && jk.Kty != "" {
		return nil, fmt.Sprintf("skipped: kty %s (Entra signs with RSA keys)", jk.Kty)
	}
	k := &Key{KeyID: jk.Kid, X5t: jk.X5t}
	var cert *x509.Certificate
	if len(jk.X5c) > 0 {
		if der, err := decodeLenient(jk.X5c[0]); err == nil {
			cert, _ = x509.ParseCertificate(der)
		}
	}
	var notes []string
	if jk.N != "" && jk.E != "" {
		pub, err := rsaFromNE(jk.N, jk.E)
		switch {
		case err == nil:
			k.pub, k.Source = pub, "n/e"
			if strings.ContainsAny(jk.N, "+/=") {
				notes = append(notes, "has n in standard base64 (+ / =), read leniently")
			}
		default:
			notes = append(notes, fmt.Sprintf("has unreadable n/e (%v)", err))
		}
	}
	if cert != nil {
		certPub, isRSA := cert.PublicKey.(*rsa.PublicKey)
		switch {
		case !isRSA:
			notes = append(notes, "has an x5c certificate that is not RSA")
		case k.pub == nil:
			k.pub, k.Source = certPub, "x5c certificate"
		case !k.pub.Equal(certPub):
			notes = append(notes, "has n/e that differ from its x5c certificate's key (n/e used)")
		}
		if k.X5t == "" {
			k.X5t = thumbprint(cert)
		}
	}
	if k.pub == nil {
		notes = append(notes, "skipped: no usable n/e or x5c certificate")
		return nil, strings.Join(notes, "; ")
	}
	if k.KeyID == "" && k.X5t == "" {
		notes = append(notes, "has neither kid nor x5t: no token can name it")
	}
	return k, strings.Join(notes, "; ")
}

// decodeLenient decodes base64 in either alphabet, padded or not.
func decodeLenient(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '+':
			return '-'
		case '/':
			return '_'
		case '=', ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, s)
	return base64.RawURLEncoding.DecodeString(s)
}

func rsaFromNE(n, e string) (*rsa.PublicKey, error) {
	nb, err := decodeLenient(n)
	if err != nil {
		return nil, fmt.Errorf("n: %w", err)
	}
	eb, err := decodeLenient(e)
	if err != nil {
		return nil, fmt.Errorf("e: %w", err)
	}
	ei := new(big.Int).SetBytes(eb)
	if len(nb) < 64 || !ei.IsInt64() || ei.Int64() < 3 || ei.Int64() > 1<<31-1 {
		return nil, errors.New("not an RSA public key")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(ei.Int64())}, nil
}

func thumbprint(c *x509.Certificate) string {
	return base64.RawURLEncoding.EncodeToString(pki.ThumbprintSHA1(c))
}

// lookup finds the key as the gateway does: by kid when the token names
// one, else by x5t (old v1 tokens carry only x5t).
func (s *KeySet) lookup(kid, x5t string) *Key {
	for i := range s.Keys {
		k := &s.Keys[i]
		if kid != "" && k.KeyID == kid || kid == "" && x5t != "" && k.X5t == x5t {
			return k
		}
	}
	return nil
}

// names lists the set's key names, for "not in the set" messages.
func (s *KeySet) names() string {
	var ns []string
	for i := range s.Keys {
		ns = append(ns, s.Keys[i].name())
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}

// verifyRS256 checks an RS256 signature over signing.
func verifyRS256(pub *rsa.PublicKey, signing string, sig []byte) bool {
	sum := sha256.Sum256([]byte(signing))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// Signature statuses, Signature.Status.
const (
	SigNotChecked = "not_checked" // no key set given
	SigVerified   = "verified"
	SigUnknownKey = "unknown_key" // no key of the set has the token's kid (or x5t)
	SigInvalid    = "invalid"     // the key is there, the signature does not verify
	SigNonce      = "nonce"       // a Graph token: not verifiable by design
	SigUnsigned   = "unsigned"    // alg none or no signature
	SigAlgorithm  = "unsupported_alg"
)

// Signature is the outcome of the signature check.
type Signature struct {
	Status string `json:"status"`
	// KeyID names the key that verified the token, or that was tried.
	KeyID string `json:"key_id,omitempty"`
	// KeySource is how that key was read ("n/e", "x5c certificate", "PEM certificate").
	KeySource string `json:"key_source,omitempty"`
	// KeySet names the key set given.
	KeySet  string `json:"key_set,omitempty"`
	Message string `json:"message"`
	// HashedNonceVerifies, for a Graph token (nonce header), says whether
	// the signature verifies once the nonce is replaced by its SHA-256, as
	// Graph checks it: then Entra issued the token, for Graph.
	HashedNonceVerifies *bool `json:"hashed_nonce_verifies,omitempty"`
}

// checkSignature verifies p against keys (nil: not checked).
func checkSignature(p *parsed, h *Header, nonce string, keys *KeySet) *Signature {
	sig := &Signature{Status: SigNotChecked}
	if keys != nil {
		sig.KeySet = keys.Name
	}
	const graphNonce = "the header carries a nonce: a Microsoft Graph token, which only Graph can validate (Graph checks the signature over the nonce's SHA-256)"
	switch {
	case strings.EqualFold(h.Alg, "none") || len(p.signature) == 0:
		sig.Status, sig.Message = SigUnsigned, fmt.Sprintf("unsigned (alg %s, %d-byte signature): nobody can trust its claims", orNone(h.Alg), len(p.signature))
		return sig
	case h.Nonce && keys == nil:
		sig.Status, sig.Message = SigNonce, "cannot be verified, by design: "+graphNonce
		return sig
	case h.Alg != "RS256":
		sig.Status, sig.Message = SigAlgorithm, fmt.Sprintf("alg %s: Entra signs its tokens with RS256, and the gateway accepts only RS256", h.Alg)
		return sig
	case keys == nil:
		sig.Message = "not checked: pass -jwks FILE, the tenant's key set saved from its jwks_uri"
		return sig
	}
	k := keys.lookup(h.Kid, h.X5t)
	if k == nil {
		sig.Status = SigUnknownKey
		switch {
		case h.Kid != "":
			sig.Message = fmt.Sprintf("no key with kid %s in %s (it holds %s)", h.Kid, keys.Name, keys.names())
		case h.X5t != "":
			sig.Message = fmt.Sprintf("no key with x5t %s in %s (it holds %s)", h.X5t, keys.Name, keys.names())
		default:
			sig.Message = "the header names no key (neither kid nor x5t)"
		}
		return sig
	}
	sig.KeyID, sig.KeySource = k.name(), k.Source
	if verifyRS256(k.pub, p.signing, p.signature) {
		sig.Status, sig.Message = SigVerified, fmt.Sprintf("signature verified with key %s (%s, from %s)", k.name(), k.Source, keys.Name)
		return sig
	}
	if h.Nonce {
		ok := verifyHashedNonce(p, nonce, k.pub)
		sig.Status, sig.HashedNonceVerifies = SigNonce, &ok
		sig.Message = "does not verify, by design: " + graphNonce
		if ok {
			sig.Message += fmt.Sprintf("; with the nonce hashed it verifies with key %s: Entra issued it, for Graph", k.name())
		}
		return sig
	}
	sig.Status = SigInvalid
	sig.Message = fmt.Sprintf("signature does not verify with key %s (%s, from %s): the token was altered, or signed by another key under the same name", k.name(), k.Source, keys.Name)
	return sig
}

// verifyHashedNonce checks the signature of a Graph token as Graph does:
// over the header with its nonce replaced by base64url(SHA-256(nonce)).
func verifyHashedNonce(p *parsed, nonce string, pub *rsa.PublicKey) bool {
	quoted, err := json.Marshal(nonce)
	if err != nil || nonce == "" || bytes.Count(p.headerJSON, quoted) != 1 {
		return false
	}
	sum := sha256.Sum256([]byte(nonce))
	hashed, _ := json.Marshal(base64.RawURLEncoding.EncodeToString(sum[:]))
	header := bytes.Replace(p.headerJSON, quoted, hashed, 1)
	_, payload, _ := strings.Cut(p.signing, ".")
	return verifyRS256(pub, base64.RawURLEncoding.EncodeToString(header)+"."+payload, p.signature)
}
