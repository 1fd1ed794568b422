package auth

import "strings"

// Entra issues its tokens in one form only: the JWS compact serialisation
// (RFC 7515 §7.1), three base64url segments without padding. checkCompact
// holds every bearer token to exactly that form before any library reads
// it, because the libraries are more forgiving than Entra:
//   - jws.Parse also takes the JSON serialisations, where fields beside the
//     signed parts could pass for claims;
//   - jwx decodes base64 in either alphabet, with or without padding, and
//     re-encodes the segments it verifies, so a padded or re-spelt copy of a
//     token would verify as if it were the token;
//   - Go's base64 decoders skip CR and LF.
//
// Checked so, the signing input jwx verifies is byte for byte the token
// received, and the claims it returns are the payload that was signed.

// checkCompact reports why raw is not a compact JWS as Entra issues it, or "".
func checkCompact(raw string) string {
	if len(raw) > maxTokenBytes {
		return "the bearer token is too long to be an Entra token"
	}
	header, rest, ok := strings.Cut(raw, ".")
	payload, signature, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(signature, ".") {
		return "the bearer token is not a JWT (header.payload.signature)"
	}
	for _, seg := range [...]string{header, payload, signature} {
		if !canonicalBase64URL(seg) {
			return "the bearer token is not a JWT: each of its three parts must be unpadded base64url"
		}
	}
	return ""
}

// canonicalBase64URL reports whether s is non-empty, unpadded base64url
// (RFC 4648 §5) in its one canonical spelling: the unused low bits of its
// last character are zero, so that decoding and encoding again gives s.
func canonicalBase64URL(s string) bool {
	if s == "" || len(s)%4 == 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b64Value(s[i]) < 0 {
			return false
		}
	}
	last := b64Value(s[len(s)-1])
	switch len(s) % 4 {
	case 2: // one byte: 8 of 12 bits used
		return last&0x0f == 0
	case 3: // two bytes: 16 of 18 bits used
		return last&0x03 == 0
	}
	return true
}

// b64Value is the 6-bit value of a base64url character, or -1.
func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
