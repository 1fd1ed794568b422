package fakeentra

// A deliberately small JOSE implementation, written for the local tenant
// alone: the gateway validates tokens with jwx, and the tenant must not share
// that code, or a bug in one would hide in the other.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

var b64 = base64.RawURLEncoding

// strictB64 is how Entra reads a JWT's segments: unpadded base64url, each in
// its one canonical spelling (Go's decoders also skip CR and LF, which
// parseJWT refuses before decoding).
var strictB64 = base64.RawURLEncoding.Strict()

// jwtParts is a compact JWS split into its parts, not yet trusted.
type jwtParts struct {
	header    map[string]any
	claims    map[string]any
	signed    string // header.payload, the signing input
	signature []byte
}

var errMalformed = errors.New("malformed JWT")

// parseJWT splits a compact JWS, the only serialisation Entra takes: three
// canonical base64url segments, JSON objects in the first two. The JSON
// serialisations, padding, other alphabets and line breaks are refused.
func parseJWT(raw string) (*jwtParts, error) {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 || strings.ContainsAny(raw, "\r\n") || segs[2] == "" {
		return nil, errMalformed
	}
	p := &jwtParts{signed: segs[0] + "." + segs[1]}
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		data, err := strictB64.DecodeString(segs[i])
		if err != nil {
			return nil, errMalformed
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil || *dst == nil {
			return nil, errMalformed
		}
	}
	sig, err := strictB64.DecodeString(segs[2])
	if err != nil {
		return nil, errMalformed
	}
	if _, crit := p.header["crit"]; crit {
		return nil, errMalformed // no JWS extension (b64=false and the like) is Entra's
	}
	if _, b64Param := p.header["b64"]; b64Param {
		return nil, errMalformed
	}
	p.signature = sig
	return p, nil
}

func (p *jwtParts) headerString(k string) string { s, _ := p.header[k].(string); return s }
func (p *jwtParts) claimString(k string) string  { s, _ := p.claims[k].(string); return s }

// claimTime reads a NumericDate claim; ok is false when it is absent or not a number.
func (p *jwtParts) claimTime(k string) (int64, bool) {
	n, ok := p.claims[k].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	return int64(f), err == nil
}

// claimStrings reads a claim that may be a string or an array of strings (aud, amr).
func (p *jwtParts) claimStrings(k string) []string {
	switch v := p.claims[k].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verify checks the signature with pub for the header's alg, which must be RS256 or PS256.
func (p *jwtParts) verify(pub *rsa.PublicKey) error {
	h := sha256.Sum256([]byte(p.signed))
	switch alg := p.headerString("alg"); alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], p.signature)
	case "PS256":
		// MSAL uses a salt as long as the hash; accept any salt length, as
		// Entra does for standard PS256.
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], p.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

// signRS256 builds a compact JWS over header and claims.
func signRS256(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	header["alg"] = "RS256"
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return signed + "." + b64.EncodeToString(sig), nil
}
