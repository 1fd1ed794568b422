// Package urlpath turns the path of a request into the one canonical form
// the gateway routes on and forwards, or says why the path has none.
//
// Routers, proxies and upstream frameworks disagree about what a path
// means: whether %61 is "a", whether %2F separates segments, whether "\" is
// a slash (IIS), whether ";…" is a parameter to drop (Tomcat, Spring),
// whether "/../" climbs, whether "//" is one slash. A gateway that routes on
// one reading and lets the upstream apply another can be walked past its
// own rules, so every request path is brought to one form here before
// anything decides on it, and a path that has no single meaning is refused.
//
// The canonical form of a path (escaped, as on the wire):
//   - starts with "/", and has no empty segment: runs of "/" are merged
//     (a trailing "/" is kept);
//   - a byte that may appear literally in a path segment (RFC 3986 pchar:
//     letters, digits, "-._~!$&'()*+,=:@") is written literally, however it
//     was sent (%61 becomes "a", %3A becomes ":");
//   - every other byte is percent-encoded with upper-case hex: space, the
//     gen-delims "?#[]", the characters RFC 3986 does not allow in a path
//     ("\"<>^`{|}") and every byte of a non-ASCII character;
//   - no segment is "." or ".." (in any spelling: %2e, %2E), nor any other
//     segment of dots and spaces only ("...", ".. "), which Windows reads
//     as "." or "..".
//
// Refused, because one reader or another gives them a different meaning:
// "/" encoded as %2F; "\" in any spelling; ";" in any spelling (path
// parameters); "%" encoded as %25 (double encoding: a second decoding by the
// upstream would yield another path); NUL and other control characters in
// any spelling; a "%" not followed by two hex digits; dot segments; a
// decoded path that is not valid UTF-8 (overlong forms of "/" and "."); a
// character that Unicode compatibility normalisation (NFKC, which some
// frameworks apply) turns into "/", "\", ";", "%", a control character or a
// dot segment, such as the fullwidth solidus U+FF0F.
//
// Two paths have the same canonical form exactly when they decode to the
// same bytes, so the router and the upstream cannot read one request two
// ways. Matching is case-sensitive; [HasPrefixFold] finds the paths that
// case-insensitive upstreams (IIS, ASP.NET) would still confuse with a prefix.
package urlpath

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Reason says why a path has no canonical form. Its values are short, fixed
// and safe as metric label values.
type Reason string

// The reasons a path is refused.
const (
	ReasonNotAbsolute  Reason = "path_not_absolute"  // does not start with "/"
	ReasonBadEscape    Reason = "path_bad_escape"    // "%" not followed by two hex digits
	ReasonEncodedSlash Reason = "path_encoded_slash" // %2F
	ReasonBackslash    Reason = "path_backslash"     // "\" or %5C
	ReasonParameter    Reason = "path_parameter"     // ";" or %3B
	ReasonDoubleEncode Reason = "path_double_encoding"
	ReasonControl      Reason = "path_control_character" // NUL, other C0 controls, DEL
	ReasonDotSegment   Reason = "path_dot_segment"       // "." or ".." in any spelling
	ReasonInvalidUTF8  Reason = "path_invalid_utf8"
	ReasonConfusable   Reason = "path_confusable" // normalises (NFKC) to a delimiter or a dot segment
)

// Reasons lists every Reason, for pre-created metric series and docs.
func Reasons() []Reason {
	return []Reason{ReasonNotAbsolute, ReasonBadEscape, ReasonEncodedSlash, ReasonBackslash,
		ReasonParameter, ReasonDoubleEncode, ReasonControl, ReasonDotSegment, ReasonInvalidUTF8, ReasonConfusable}
}

// Error is a refused path: why, and where (a byte offset into the path as
// given). It never holds the path itself, which may carry a secret.
type Error struct {
	Reason Reason
	Offset int
}

func (e *Error) Error() string {
	return "urlpath: " + describe[e.Reason]
}

// Description is a sentence for the caller: what was refused and why.
func (e *Error) Description() string { return describe[e.Reason] }

var describe = map[Reason]string{
	ReasonNotAbsolute:  "the path must start with /",
	ReasonBadEscape:    "the path has a % not followed by two hexadecimal digits",
	ReasonEncodedSlash: "the path has an encoded slash (%2F), which servers read in different ways",
	ReasonBackslash:    "the path has a backslash, which some servers read as a slash",
	ReasonParameter:    "the path has a semicolon (path parameters are not accepted)",
	ReasonDoubleEncode: "the path has an encoded percent sign (%25): double encoding is not accepted",
	ReasonControl:      "the path has a control character",
	ReasonDotSegment:   "the path has a . or .. segment",
	ReasonInvalidUTF8:  "the path does not decode to valid UTF-8",
	ReasonConfusable:   "the path has a character that normalizes to a path delimiter or a dot segment",
}

const upperHex = "0123456789ABCDEF"

// Canonical returns the canonical form of raw, an escaped path as sent in
// a request target (without the query), or an *Error. When raw is already
// canonical it is returned as is, without allocating.
func Canonical(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", &Error{Reason: ReasonNotAbsolute}
	}
	var stack [256]byte
	b := stack[:0]
	segStart := 0  // index in b of the current segment's first byte
	nonASCII := -1 // offset in raw of the first non-ASCII byte, decoded or not
	for i := 0; i < len(raw); {
		c, width := raw[i], 1
		encoded := false
		if c == '%' {
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", &Error{Reason: ReasonBadEscape, Offset: i}
			}
			c, width, encoded = unhex(raw[i+1])<<4|unhex(raw[i+2]), 3, true
		}
		switch {
		case c == '/' && encoded:
			return "", &Error{Reason: ReasonEncodedSlash, Offset: i}
		case c == '\\':
			return "", &Error{Reason: ReasonBackslash, Offset: i}
		case c == ';':
			return "", &Error{Reason: ReasonParameter, Offset: i}
		case c == '%': // only reachable encoded: a literal '%' starts an escape
			return "", &Error{Reason: ReasonDoubleEncode, Offset: i}
		case c < 0x20 || c == 0x7f:
			return "", &Error{Reason: ReasonControl, Offset: i}
		}
		if c >= 0x80 && nonASCII < 0 {
			nonASCII = i
		}
		if c == '/' {
			if isDotSegment(b[segStart:]) {
				return "", &Error{Reason: ReasonDotSegment, Offset: i}
			}
			if len(b) == 0 || b[len(b)-1] != '/' { // merge runs of '/'
				b = append(b, '/')
			}
			segStart = len(b)
		} else if literal(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
		i += width
	}
	if isDotSegment(b[segStart:]) {
		return "", &Error{Reason: ReasonDotSegment, Offset: len(raw)}
	}
	if nonASCII >= 0 {
		if r := checkUnicode(decode(b)); r != "" {
			return "", &Error{Reason: r, Offset: nonASCII}
		}
	}
	if string(b) == raw { // no allocation: the compiler compares in place
		return raw, nil
	}
	return string(b), nil
}

// IsCanonical reports whether p is a path in canonical form.
func IsCanonical(p string) bool {
	c, err := Canonical(p)
	return err == nil && c == p
}

// Decode returns the decoded form of a canonical path: every escape
// replaced by its byte. Canonical forms decode one to one: no escape in
// them stands for "/" or "%".
func Decode(canonical string) string {
	if strings.IndexByte(canonical, '%') < 0 {
		return canonical
	}
	return decode([]byte(canonical))
}

func decode(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return string(out)
}

// literal reports a byte that a path segment may hold unencoded (RFC 3986
// pchar, less ';', which the gateway refuses): unreserved, sub-delims, ':'
// and '@'.
func literal(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}

// IsLiteral reports whether every byte of s is one a canonical path writes
// literally, or '/': what a configured path prefix may hold.
func IsLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '/' && !literal(s[i]) {
			return false
		}
	}
	return true
}

// checkUnicode checks a decoded path with non-ASCII bytes: valid UTF-8,
// and no character that NFKC turns into a delimiter or a dot segment.
func checkUnicode(decoded string) Reason {
	if !utf8.ValidString(decoded) {
		return ReasonInvalidUTF8
	}
	for seg := range strings.SplitSeq(decoded, "/") {
		if isASCII(seg) {
			continue
		}
		n := norm.NFKC.String(seg)
		if strings.ContainsAny(n, "/\\;%") || strings.ContainsFunc(n, isControl) || isDotSegment([]byte(n)) {
			return ReasonConfusable
		}
	}
	return ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (0x80 <= r && r < 0xa0) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isDotSegment reports a segment (escaped or decoded) of dots and spaces
// only, with at least one dot: ".", "..", and what Windows reads as them
// ("...", ".. ", ". .").
func isDotSegment(seg []byte) bool {
	dots := 0
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] == '.':
			dots++
		case seg[i] == ' ':
		case seg[i] == '%' && i+2 < len(seg) && seg[i+1] == '2' && seg[i+2] == '0':
			i += 2
		default:
			return false
		}
	}
	return dots > 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// HasPrefix reports whether path is prefix or lies under it, at a segment
// boundary: /orders has the prefix /orders, /orders/ and /orders/1 too,
// /ordersx does not. Every path has the prefix "/".
func HasPrefix(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// HasPrefixFold is HasPrefix as lenient servers compare paths, segment by
// segment: without case (also as .NET and Java map ı, ſ and the Kelvin sign),
// NFKC-normalised (fullwidth "ａｄｍｉｎ" is "admin"), without the trailing
// dots and spaces Windows ignores in names, and with a format suffix
// (Rails' "(.:format)", Spring's suffix pattern matching: admin.json is
// admin). /ORDERS/Admin./x, /orders/admın/x and /orders/admin.json have the
// prefix /orders/admin. Both arguments are decoded paths. The gateway
// refuses a request routed to a looser route whose path has, so compared,
// the prefix of a stricter one.
func HasPrefixFold(path, prefix string) bool {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return true
	}
	rest, more := strings.TrimPrefix(path, "/"), true
	for want := range strings.SplitSeq(prefix, "/") {
		if !more {
			return false // the path has fewer segments than the prefix
		}
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if f, w := fold(seg), fold(want); f != w && !strings.HasPrefix(f, w+".") {
			return false
		}
	}
	return true
}

// fold is a segment as lenient servers compare it: NFKC-normalised, its
// case folded both ways (upper then lower, so that ı and I, ſ and s, the
// Kelvin sign and k meet), without trailing dots and spaces.
func fold(seg string) string {
	if isASCII(seg) {
		return strings.ToLower(strings.TrimRight(seg, ". "))
	}
	return strings.TrimRight(strings.ToLower(strings.ToUpper(norm.NFKC.String(seg))), ". ")
}
