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
	input := B64JSON(t, header) + "." + B64JSON(t, claims)
	alg, _ := header["alg"].(string)
	return input + "." + sign(t, key, alg, input)
}

// B64JSON returns v's JSON in unpadded base64url: a JWS header or payload
// segment, for forgeries assembled by hand.
func B64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("B64JSON: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignRS256 returns the base64url RS256 signature of input, any bytes:
// for forgeries whose header or payload is not a JSON encoding of a map.
func SignRS256(t testing.TB, key *rsa.PrivateKey, input string) string {
	t.Helper()
	return sign(t, key, "RS256", input)
}

func sign(t testing.TB, key *rsa.PrivateKey, alg, input string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		t.Fatalf("SignJWT: unsupported alg %v", alg)
	}
	if err != nil {
		t.Fatalf("SignJWT: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
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

// JWSJSONForgery wraps a validly signed compact token in a JWS JSON
// serialisation (flattened, or general with "signatures") with beside's
// claims at its top level, and hides every '.' but two (the first two of
// the JSON text) in \u002e escapes, so that the string has exactly the two
// dots of a compact JWS: the shape of a token whose claims a lenient
// parser reads from beside the signed parts.
func JWSJSONForgery(t testing.TB, compact string, beside map[string]any, general bool) string {
	t.Helper()
	segs := strings.Split(compact, ".")
	if len(segs) != 3 {
		t.Fatalf("JWSJSONForgery: %d segments", len(segs))
	}
	doc := map[string]any{}
	for k, v := range beside {
		doc[k] = v
	}
	if general {
		doc["payload"] = segs[1]
		doc["signatures"] = []map[string]string{{"protected": segs[0], "signature": segs[2]}}
	} else {
		doc["protected"], doc["payload"], doc["signature"] = segs[0], segs[1], segs[2]
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), ".", `\u002e`)
	for i := 0; i < 2; i++ {
		s = strings.Replace(s, `\u002e`, ".", 1)
	}
	if n := strings.Count(s, "."); n != 2 {
		t.Fatalf("JWSJSONForgery: %d dots, want 2 (beside needs values with dots)", n)
	}
	return s
}

// Respell re-encodes each segment of a compact JWS with enc (padded, or
// standard base64): the same bytes, spelt otherwise than they were signed.
func Respell(t testing.TB, compact string, enc *base64.Encoding) string {
	t.Helper()
	segs := strings.Split(compact, ".")
	for i, s := range segs {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		segs[i] = enc.EncodeToString(b)
	}
	return strings.Join(segs, ".")
}
