package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// SignJWT signs header and claims as a compact JWS with key, by the alg in
// header: RS256 (PKCS#1 v1.5) or PS256 (PSS, salt as long as the hash). It
// is for tokens no tenant issued: forgeries, reproduced mistakes, inputs of
// gateway inspect. Written here by hand, so that neither the gateway's nor
// the local tenant's JOSE code is used to test itself.
func SignJWT(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("SignJWT: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch header["alg"] {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		t.Fatalf("SignJWT: unsupported alg %v", header["alg"])
	}
	if err != nil {
		t.Fatalf("SignJWT: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// JWTHeader decodes a compact JWS's header, verifying nothing.
func JWTHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	return jwtPart(t, token, 0, "header")
}

// JWTClaims decodes a compact JWS's claims, verifying nothing.
func JWTClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	return jwtPart(t, token, 1, "claims")
}

func jwtPart(t testing.TB, token string, i int, name string) map[string]any {
	t.Helper()
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		t.Fatalf("token has %d segments, want 3", len(segs))
	}
	raw, err := base64.RawURLEncoding.DecodeString(segs[i])
	if err != nil {
		t.Fatalf("token %s is not base64url: %v", name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("token %s is not a JSON object: %v", name, err)
	}
	return m
}
