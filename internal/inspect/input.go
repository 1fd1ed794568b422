package inspect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Input kinds, Report.Input.Kind.
const (
	InputJWT    = "jwt"     // three segments: a signed token (JWS compact)
	InputJWE    = "jwe"     // five segments: an encrypted token
	InputNotJWT = "not_jwt" // anything else
	InputEmpty  = "empty"
)

// Input describes what was given, never the token itself.
type Input struct {
	// Kind is InputJWT, InputJWE, InputNotJWT or InputEmpty.
	Kind string `json:"kind"`
	// Bytes is the token's length once the wrapping was removed.
	Bytes int `json:"bytes"`
	// Segments is the number of '.'-separated segments.
	Segments int `json:"segments"`
	// Removed lists the wrapping taken off: "surrounding whitespace",
	// "Authorization: prefix", "Bearer prefix", "quotes", "token response JSON (access_token)".
	Removed []string `json:"removed,omitempty"`
	// Problem says, for InputNotJWT and InputJWE, why it cannot be read.
	Problem string `json:"problem,omitempty"`
}

// maxInputBytes bounds what is read: Entra tokens are a few KiB even with groups.
const maxInputBytes = 64 << 10

// normalize takes off what people paste around a token: whitespace, an
// "Authorization:" header name, the "Bearer " scheme, quotes, or a whole
// token-endpoint JSON answer (its access_token is inspected).
func normalize(s string) (string, []string) {
	var removed []string
	cut := func(what, t string) string {
		removed = append(removed, what)
		return t
	}
	t := strings.TrimSpace(s)
	if t != s {
		removed = append(removed, "surrounding whitespace")
	}
	if strings.HasPrefix(t, "{") {
		var resp struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(t), &resp) == nil && resp.AccessToken != "" {
			t = cut("token response JSON (its access_token is inspected; id_token and refresh_token are ignored)", strings.TrimSpace(resp.AccessToken))
		}
	}
	if len(t) > len("authorization:") && strings.EqualFold(t[:len("authorization:")], "authorization:") {
		t = cut("Authorization: prefix", strings.TrimSpace(t[len("authorization:"):]))
	}
	if len(t) > len("bearer ") && strings.EqualFold(t[:len("bearer")], "bearer") && (t[6] == ' ' || t[6] == '\t') {
		t = cut("Bearer prefix", strings.TrimSpace(t[len("bearer"):]))
	}
	if len(t) >= 2 && (t[0] == '"' && t[len(t)-1] == '"' || t[0] == '\'' && t[len(t)-1] == '\'') {
		t = cut("quotes", strings.TrimSpace(t[1:len(t)-1]))
	}
	return t, removed
}

// parsed is a token split and decoded. It keeps the signing input and the
// signature for verification only: neither is ever shown.
type parsed struct {
	headerJSON []byte // decoded header, as signed
	header     map[string]any
	claimsJSON []byte // decoded payload
	claims     map[string]any
	signing    string // header.payload, the signing input
	signature  []byte
}

// decodeSegment decodes base64url without padding, tolerating padding.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// split classifies the token and, for a JWS, decodes it. in.Problem says
// what is wrong when it cannot be read.
func split(tok string, in *Input) *parsed {
	in.Bytes = len(tok)
	if tok == "" {
		in.Kind, in.Problem = InputEmpty, "no token given"
		return nil
	}
	in.Segments = strings.Count(tok, ".") + 1
	segs := strings.Split(tok, ".")
	switch {
	case len(tok) > maxInputBytes:
		in.Kind, in.Problem = InputNotJWT, fmt.Sprintf("%d bytes: far larger than any Entra token", len(tok))
		return nil
	case in.Segments == 5:
		in.Kind = InputJWE
		in.Problem = "an encrypted token (JWE, 5 segments): its claims can only be read with the recipient's private key. " +
			"Entra encrypts tokens only for apps with token encryption configured, and the gateway accepts only signed tokens (JWS, 3 segments)"
		if h, err := decodeSegment(segs[0]); err == nil {
			var hdr map[string]any
			if json.Unmarshal(h, &hdr) == nil {
				alg, _ := hdr["alg"].(string)
				enc, _ := hdr["enc"].(string)
				in.Problem += fmt.Sprintf(" (header: alg %s, enc %s)", orNone(alg), orNone(enc))
			}
		}
		return nil
	case in.Segments != 3:
		in.Kind = InputNotJWT
		in.Problem = notJWTProblem(tok, in.Segments)
		return nil
	}
	p := &parsed{signing: segs[0] + "." + segs[1]}
	var err error
	if p.headerJSON, err = decodeSegment(segs[0]); err != nil {
		in.Kind, in.Problem = InputNotJWT, "3 segments, but the first (the header) is not base64url: was the token cut or altered when copied?"
		return nil
	}
	if p.header, err = decodeObject(p.headerJSON); err != nil {
		in.Kind, in.Problem = InputNotJWT, "3 segments, but the header is not a JSON object"
		return nil
	}
	if p.claimsJSON, err = decodeSegment(segs[1]); err != nil {
		in.Kind, in.Problem = InputNotJWT, "3 segments, but the second (the claims) is not base64url: was the token cut or altered when copied?"
		return nil
	}
	if p.claims, err = decodeObject(p.claimsJSON); err != nil {
		in.Kind, in.Problem = InputNotJWT, "3 segments, but the claims are not a JSON object"
		return nil
	}
	if p.signature, err = decodeSegment(segs[2]); err != nil {
		in.Kind, in.Problem = InputNotJWT, "3 segments, but the third (the signature) is not base64url: was the token cut when copied?"
		return nil
	}
	in.Kind = InputJWT
	return p
}

func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}

// notJWTProblem guesses what was pasted instead of a JWT.
func notJWTProblem(tok string, segments int) string {
	switch {
	case strings.HasPrefix(tok, "Ew"):
		return "an opaque token (not a JWT): it looks like a Microsoft personal-account (MSA) token, which only Microsoft's own APIs can read"
	case strings.HasPrefix(tok, "0.A") || strings.HasPrefix(tok, "1.A"):
		return "an opaque token (not a JWT): it looks like an Entra refresh token or authorization code, not an access token"
	case strings.HasPrefix(tok, "{"):
		return "JSON, not a token: paste the access_token of a token response, or the token itself"
	case strings.Contains(tok, "%2E") || strings.Contains(tok, "%2e"):
		return "URL-encoded: decode it first (it was probably copied from a URL or a form)"
	case segments == 2:
		return "2 segments: a JWT has 3 (header.claims.signature); the token was probably cut when copied"
	case segments == 4:
		return "4 segments: a JWT has 3 (header.claims.signature), a JWE 5; the token was probably cut or joined with another when copied"
	case strings.ContainsAny(tok, " \t\r\n"):
		return "it contains spaces or line breaks: paste one token"
	}
	return fmt.Sprintf("%d segment(s): a JWT has 3 (header.claims.signature)", segments)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
