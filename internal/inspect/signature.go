package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/obo-gateway/obo-gateway/internal/auth"
)

// Signature statuses, Signature.Status.
const (
	SigNotChecked = "not_checked" // no key set given
	SigVerified   = "verified"
	SigUnknownKey = "unknown_key" // no key of the set has the token's kid (or x5t)
	SigInvalid    = "invalid"     // the key is there, the signature does not verify
	SigNonce      = "nonce"       // a Graph token: not verifiable by design
	SigUnsigned   = "unsigned"    // alg none or no signature
	SigAlgorithm  = "unsupported_alg"
	SigRefused    = "refused" // not Entra's compact form, or a header Entra never signs
)

// Signature is the outcome of the signature check, as the gateway's
// validator made it (auth.Validator.Explain, or auth.ExplainSignature).
type Signature struct {
	Status string `json:"status"`
	// KeyID names the key that verified the token, or that was tried.
	KeyID string `json:"key_id,omitempty"`
	// KeySet names the key set given.
	KeySet  string `json:"key_set,omitempty"`
	Message string `json:"message"`
	// HashedNonceVerifies, for a Graph token (nonce header), says whether
	// the signature verifies once the nonce is replaced by its SHA-256, as
	// Graph checks it: then Entra issued the token, for Graph.
	HashedNonceVerifies *bool `json:"hashed_nonce_verifies,omitempty"`
}

const graphNonce = "the header carries a nonce: a Microsoft Graph token, which only Graph can validate (Graph checks the signature over the nonce's SHA-256)"

// signatureOf reads the format, header and signature checks of ex. p is the
// token as inspect decoded it for display (for the words only: what was
// verified is ex's).
func signatureOf(ex *auth.Explanation, p *parsed, h *Header, nonce string, opt Options) *Signature {
	sig := &Signature{Status: SigNotChecked}
	if opt.Keys != nil {
		sig.KeySet = opt.KeysName
	}
	checks := map[string]auth.Check{}
	for _, c := range ex.Checks {
		checks[c.Name] = c
	}
	name := keyName(h)
	switch format, header, s := checks[auth.CheckFormat], checks[auth.CheckHeader], checks[auth.CheckSignature]; {
	case strings.EqualFold(h.Alg, "none") || len(p.signature) == 0:
		sig.Status, sig.Message = SigUnsigned, fmt.Sprintf("unsigned (alg %s, %d-byte signature): nobody can trust its claims", orNone(h.Alg), len(p.signature))
	case format.Result == auth.Fail:
		sig.Status, sig.Message = SigRefused, "not verified: "+format.Message
	case header.Result == auth.Fail && h.Nonce:
		sig.Status, sig.Message = SigNonce, "cannot be verified, by design: "+graphNonce
		if opt.Keys != nil {
			sig.Message = "does not verify, by design: " + graphNonce
			ok := verifyHashedNonce(p, nonce, h, opt.Keys)
			sig.HashedNonceVerifies = &ok
			if ok {
				sig.Message += fmt.Sprintf("; with the nonce hashed it verifies with key %s: Entra issued it, for Graph", name)
			}
		}
	case header.Result == auth.Fail && header.Reason == auth.ReasonAlgorithm:
		sig.Status, sig.Message = SigAlgorithm, fmt.Sprintf("alg %s: Entra signs its tokens with RS256, and the gateway accepts only RS256", h.Alg)
	case header.Result == auth.Fail:
		sig.Status, sig.Message = SigRefused, "not verified: "+header.Message
	case s.Result == auth.Pass:
		sig.Status, sig.KeyID = SigVerified, name
		sig.Message = fmt.Sprintf("signature verified with key %s (from %s)", name, opt.KeysName)
	case s.Result == auth.NotChecked || opt.Keys == nil:
		sig.Message = "not checked: pass -jwks FILE, the tenant's key set saved from its jwks_uri"
	case s.Reason == auth.ReasonUnknownKey:
		sig.Status = SigUnknownKey
		if h.Kid == "" && h.X5t == "" {
			sig.Message = "the header names no key (neither kid nor x5t)"
		} else {
			sig.Message = fmt.Sprintf("no key with %s in %s (it holds %s)", name, opt.KeysName, strings.Join(opt.Keys.Names(), ", "))
		}
	default:
		sig.Status, sig.KeyID = SigInvalid, name
		sig.Message = fmt.Sprintf("signature does not verify with key %s (from %s): the token was altered, or signed by another key under the same name", name, opt.KeysName)
	}
	return sig
}

func keyName(h *Header) string {
	if h.Kid == "" && h.X5t != "" {
		return "x5t " + h.X5t
	}
	return h.Kid
}

// verifyHashedNonce checks the signature of a Graph token as Graph does:
// over the header with its nonce replaced by base64url(SHA-256(nonce)),
// with jwx and the key the gateway would use. It says who issued the token,
// never that the gateway would accept it.
func verifyHashedNonce(p *parsed, nonce string, h *Header, keys *auth.StaticKeySet) bool {
	key, err := keys.Key(context.Background(), h.Kid, h.X5t)
	if err != nil {
		return false
	}
	quoted, err := json.Marshal(nonce)
	if err != nil || nonce == "" || bytes.Count(p.headerJSON, quoted) != 1 {
		return false
	}
	sum := sha256.Sum256([]byte(nonce))
	hashed, _ := json.Marshal(base64.RawURLEncoding.EncodeToString(sum[:]))
	header := bytes.Replace(p.headerJSON, quoted, hashed, 1)
	_, payload, _ := strings.Cut(p.signing, ".")
	token := base64.RawURLEncoding.EncodeToString(header) + "." + payload + "." + base64.RawURLEncoding.EncodeToString(p.signature)
	_, err = jws.Verify([]byte(token), jws.WithCompact(), jws.WithKey(jwa.RS256, key))
	return err == nil
}
