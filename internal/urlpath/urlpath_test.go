package urlpath

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // "" when refused
		why  Reason
	}{
		// Already canonical: returned as is.
		{raw: "/", want: "/"},
		{raw: "/orders", want: "/orders"},
		{raw: "/orders/", want: "/orders/"},
		{raw: "/orders/admin/users", want: "/orders/admin/users"},
		{raw: "/a-b_c.d~e/!$&'()*+,=:@", want: "/a-b_c.d~e/!$&'()*+,=:@"},
		{raw: "/files/a%20b", want: "/files/a%20b"},
		{raw: "/q/%3F%23%5B%5D", want: "/q/%3F%23%5B%5D"},
		{raw: "/caf%C3%A9", want: "/caf%C3%A9"},
		{raw: "/v1.0/x..y/.well-known", want: "/v1.0/x..y/.well-known"},

		// One meaning, another spelling: brought to the canonical one.
		{raw: "/orders/%61dmin/users", want: "/orders/admin/users"},
		{raw: "/orders/%41DMIN", want: "/orders/ADMIN"},
		{raw: "/orders/%3a%40%21", want: "/orders/:@!"},
		{raw: "/q/%3f", want: "/q/%3F"},
		{raw: "/caf%c3%a9", want: "/caf%C3%A9"},
		{raw: "/caf\xc3\xa9", want: "/caf%C3%A9"},
		{raw: "/a b", want: "/a%20b"},
		{raw: "/a\"<>^`{|}", want: "/a%22%3C%3E%5E%60%7B%7C%7D"},
		{raw: "/a[1]", want: "/a%5B1%5D"},
		{raw: "/orders//admin/users", want: "/orders/admin/users"},
		{raw: "//orders", want: "/orders"},
		{raw: "/orders///", want: "/orders/"},
		{raw: "/v1%2E0", want: "/v1.0"},

		// No single meaning: refused.
		{raw: "", why: ReasonNotAbsolute},
		{raw: "orders", why: ReasonNotAbsolute},
		{raw: "*", why: ReasonNotAbsolute},
		{raw: "/orders/admin%2Fusers", why: ReasonEncodedSlash},
		{raw: "/orders/admin%2fusers", why: ReasonEncodedSlash},
		{raw: "/orders/admin\\users", why: ReasonBackslash},
		{raw: "/orders/admin%5Cusers", why: ReasonBackslash},
		{raw: "/orders/admin%5cusers", why: ReasonBackslash},
		{raw: "/orders/..%5c/admin", why: ReasonBackslash},
		{raw: "/orders/admin;/users", why: ReasonParameter},
		{raw: "/orders/admin;jsessionid=1", why: ReasonParameter},
		{raw: "/orders/..;/admin", why: ReasonParameter},
		{raw: "/orders/admin%3B/users", why: ReasonParameter},
		{raw: "/orders/%2561dmin", why: ReasonDoubleEncode},
		{raw: "/orders/%252e%252e/admin", why: ReasonDoubleEncode},
		{raw: "/orders/admin%00/users", why: ReasonControl},
		{raw: "/orders/admin\x00", why: ReasonControl},
		{raw: "/orders/%0d%0aX-Injected:1", why: ReasonControl},
		{raw: "/orders/%7F", why: ReasonControl},
		{raw: "/orders/%", why: ReasonBadEscape},
		{raw: "/orders/%4", why: ReasonBadEscape},
		{raw: "/orders/%zz", why: ReasonBadEscape},
		{raw: "/orders/%u0061dmin", why: ReasonBadEscape},
		{raw: "/orders/../admin", why: ReasonDotSegment},
		{raw: "/orders/./admin", why: ReasonDotSegment},
		{raw: "/orders/%2e%2e/admin", why: ReasonDotSegment},
		{raw: "/orders/.%2E/admin", why: ReasonDotSegment},
		{raw: "/orders/..", why: ReasonDotSegment},
		{raw: "/orders/.", why: ReasonDotSegment},
		{raw: "/orders/.../admin", why: ReasonDotSegment},
		{raw: "/orders/..%20/admin", why: ReasonDotSegment},
		{raw: "/orders/.%20/admin", why: ReasonDotSegment},
		{raw: "/orders/%C0%AE%C0%AE/admin", why: ReasonInvalidUTF8},
		{raw: "/orders%C0%AFadmin", why: ReasonInvalidUTF8},
		{raw: "/orders/\xff", why: ReasonInvalidUTF8},
		{raw: "/orders%EF%BC%8Fadmin", why: ReasonConfusable},      // U+FF0F fullwidth solidus
		{raw: "/orders/%EF%BC%8E%EF%BC%8E", why: ReasonConfusable}, // U+FF0E ×2: ".."
		{raw: "/orders%EF%B9%A8admin", why: ReasonConfusable},      // U+FE68 small reverse solidus
		{raw: "/orders%EF%BC%9Badmin", why: ReasonConfusable},      // U+FF1B fullwidth semicolon
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := Canonical(tc.raw)
			if tc.want == "" {
				var pe *Error
				if !errors.As(err, &pe) || pe.Reason != tc.why {
					t.Fatalf("Canonical(%q) = %q, %v; want refused with %s", tc.raw, got, err, tc.why)
				}
				if strings.Contains(err.Error(), tc.raw) && tc.raw != "" {
					t.Errorf("the error repeats the path: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Canonical(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
			if !IsCanonical(got) {
				t.Errorf("IsCanonical(%q) = false", got)
			}
		})
	}
}

// The hot path: an ASCII path already canonical, up to 256 bytes.
func TestCanonicalDoesNotAllocateForCanonicalPaths(t *testing.T) {
	for _, p := range []string{"/orders/items", "/orders/a%20b/", strings.Repeat("/abc", 64)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Canonical(p) }); n != 0 {
			t.Errorf("Canonical(%q) allocates %v times", p, n)
		}
	}
}

func TestDecode(t *testing.T) {
	for canonical, want := range map[string]string{
		"/orders":           "/orders",
		"/a%20b/%3F":        "/a b/?",
		"/caf%C3%A9":        "/café",
		"/%22%3C%3E%5B%5D/": `/"<>[]/`,
	} {
		if got := Decode(canonical); got != want {
			t.Errorf("Decode(%q) = %q, want %q", canonical, got, want)
		}
	}
}

func TestHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		want         bool
	}{
		{"/orders", "/orders", true},
		{"/orders/", "/orders", true},
		{"/orders/1", "/orders", true},
		{"/ordersx", "/orders", false},
		{"/order", "/orders", false},
		{"/anything", "/", true},
		{"/", "/", true},
		{"/orders/admin", "/orders/", true},
		{"/Orders/1", "/orders", false},
	} {
		if got := HasPrefix(tc.path, tc.prefix); got != tc.want {
			t.Errorf("HasPrefix(%q, %q) = %v, want %v", tc.path, tc.prefix, got, tc.want)
		}
	}
}

func TestHasPrefixFold(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		want         bool
	}{
		{"/orders/admin/users", "/orders/admin", true},
		{"/orders/ADMIN/users", "/orders/admin", true},
		{"/Orders/Admin", "/orders/admin", true},
		{"/orders/admin./users", "/orders/admin", true},
		{"/orders/admin. . /users", "/orders/admin", true},
		{"/orders/ａｄｍｉｎ/users", "/orders/admin", true},   // fullwidth, NFKC
		{"/orders/admın/users", "/orders/admin", true},   // dotless i: .NET's ToUpperInvariant gives I
		{"/orders/ADMİN/users", "/orders/admin", true},   // dotted capital I
		{"/orders/adminſ/users", "/orders/admins", true}, // long s
		{"/orders/admin.json", "/orders/admin", true},    // Rails and Spring format suffixes
		{"/orders/admin.xml/users", "/orders/admin", true},
		{"/orders/administrators", "/orders/admin", false},
		{"/orders/admin-x", "/orders/admin", false},
		{"/orders/adminx/users", "/orders/admin", false},
		{"/orders", "/orders/admin", false},
		{"/orders/", "/orders/admin", false},
		{"/x", "/", true},
		{"/ORDERS", "/orders", true},
	} {
		if got := HasPrefixFold(tc.path, tc.prefix); got != tc.want {
			t.Errorf("HasPrefixFold(%q, %q) = %v, want %v", tc.path, tc.prefix, got, tc.want)
		}
	}
}

// readings are the ways servers behind the gateway read a path: decoded
// once (most frameworks), decoded twice (double-decoding filters), with
// backslashes as slashes (IIS), with ";…" parameters dropped (Tomcat,
// Spring), and with dot segments resolved and slashes merged (path.Clean).
var readings = map[string]func(string) string{
	"decode once": func(p string) string { d, _ := url.PathUnescape(p); return d },
	"decode twice": func(p string) string {
		d, _ := url.PathUnescape(p)
		d2, err := url.PathUnescape(d)
		if err != nil {
			return d
		}
		return d2
	},
	"backslash is slash": func(p string) string {
		d, _ := url.PathUnescape(p)
		return strings.ReplaceAll(d, "\\", "/")
	},
	"parameters dropped": func(p string) string {
		d, _ := url.PathUnescape(p)
		segs := strings.Split(d, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		return strings.Join(segs, "/")
	},
	"cleaned": func(p string) string {
		d, _ := url.PathUnescape(p)
		c := path.Clean(d)
		if strings.HasSuffix(d, "/") && c != "/" {
			c += "/"
		}
		return c
	},
}

// checkCanonical holds the properties of a canonical form c of raw.
func checkCanonical(t *testing.T, raw, c string) {
	t.Helper()
	if again, err := Canonical(c); err != nil || again != c {
		t.Fatalf("Canonical(%q) = %q; Canonical of that = %q, %v: not idempotent", raw, c, again, err)
	}
	if !strings.HasPrefix(c, "/") || strings.Contains(c, "//") {
		t.Fatalf("Canonical(%q) = %q: not one leading slash, or empty segments", raw, c)
	}
	dec := Decode(c)
	// Every server reading agrees with the router's: the same segments.
	for name, read := range readings {
		if got := read(c); got != dec {
			t.Fatalf("Canonical(%q) = %q: the router reads %q, a server that %s reads %q", raw, c, dec, name, got)
		}
	}
	// The canonical form means what raw meant, slashes merged.
	if d, err := url.PathUnescape(raw); err == nil {
		merged := d
		for strings.Contains(merged, "//") {
			merged = strings.ReplaceAll(merged, "//", "/")
		}
		if merged != dec {
			t.Fatalf("Canonical(%q) = %q decodes to %q, but the request meant %q", raw, c, dec, merged)
		}
	}
}

func TestCanonicalProperties(t *testing.T) {
	for _, raw := range []string{"/orders/%61dmin/users", "/a b", "//x//y//", "/caf%c3%a9", "/%3a%40", "/a%7e%2d"} {
		c, err := Canonical(raw)
		if err != nil {
			t.Fatalf("Canonical(%q): %v", raw, err)
		}
		checkCanonical(t, raw, c)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"/orders/%61dmin", "/orders/admin%2Fx", "/a/..;/b", "/x%5c..%5cy", "//a//b/", "/caf%C3%A9",
		"/%C0%AE", "/%EF%BC%8F", "/a/.%2e/b", "/a%25%32%66", "/a%00", "/ａｄｍｉｎ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Canonical(raw)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || describe[pe.Reason] == "" {
				t.Fatalf("Canonical(%q): error %v is not a known *Error", raw, err)
			}
			return
		}
		checkCanonical(t, raw, c)
	})
}
