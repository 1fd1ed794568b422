package opsmonitor

// Taking an alert's expression apart into the queries whose data it needs:
// the operands of its top-level and/or/unless, each without its threshold
// comparison. "(errors / total) > 0.05 and increase(errors[5m]) >= 5"
// becomes "errors / total" and "increase(errors[5m])": both must return
// data on a live gateway, or the alert can never fire.

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// scan walks expr, PromQL text, skipping its strings and comments: it
// calls code for each other byte with the depth of the brackets ((), {},
// []) around it, a bracket counting as outside the pair it opens or closes,
// and returns the depth at the end. A closing bracket that was not opened
// is given a negative depth.
func scan(expr string, code func(i, depth int)) int {
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++
			case c == quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case '(', '{', '[':
			code(i, depth)
			depth++
		case ')', '}', ']':
			depth--
			code(i, depth)
		default:
			code(i, depth)
		}
	}
	return depth
}

func isBracket(c byte) bool { return strings.IndexByte("(){}[]", c) >= 0 }

// topLevel marks the bytes of expr outside parentheses, braces, brackets,
// strings and comments.
func topLevel(expr string) []bool {
	mask := make([]bool, len(expr))
	scan(expr, func(i, depth int) { mask[i] = depth == 0 && !isBracket(expr[i]) })
	return mask
}

func isIdent(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// keywordAt reports whether the top-level word kw starts at i.
func keywordAt(expr string, mask []bool, i int, kw string) bool {
	if !strings.HasPrefix(expr[i:], kw) || !mask[i] {
		return false
	}
	if i > 0 && isIdent(expr[i-1]) {
		return false
	}
	end := i + len(kw)
	return end >= len(expr) || !isIdent(expr[end])
}

// skipModifiers skips the vector-matching modifiers and "bool" that may
// follow a binary operator: bool, on(…), ignoring(…), group_left(…), group_right(…).
func skipModifiers(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		found := false
		for _, kw := range []string{"bool", "on", "ignoring", "group_left", "group_right"} {
			if !strings.HasPrefix(s, kw) || (len(s) > len(kw) && isIdent(s[len(kw)])) {
				continue
			}
			s = strings.TrimLeft(s[len(kw):], " \t\r\n")
			if strings.HasPrefix(s, "(") {
				if end := strings.IndexByte(s, ')'); end >= 0 {
					s = s[end+1:]
				}
			}
			found = true
			break
		}
		if !found {
			return s
		}
	}
}

// stripParens removes parentheses around the whole of expr.
func stripParens(expr string) string {
	for {
		expr = strings.TrimSpace(expr)
		if !strings.HasPrefix(expr, "(") || !strings.HasSuffix(expr, ")") {
			return expr
		}
		// The opening parenthesis must close at the very end: "(a) + (b)"
		// is not wrapped in one pair.
		inner := expr[1 : len(expr)-1]
		if unbalanced(inner) {
			return expr
		}
		expr = inner
	}
}

// unbalanced reports whether s closes a bracket it did not open, or
// leaves one open (brackets in strings and comments do not count).
func unbalanced(s string) bool {
	closesUnopened := false
	end := scan(s, func(_, depth int) { closesUnopened = closesUnopened || depth < 0 })
	return closesUnopened || end != 0
}

// splitSetOps splits expr at its top-level and, or and unless.
func splitSetOps(expr string) []string {
	mask := topLevel(expr)
	var parts []string
	start := 0
	for i := 0; i < len(expr); i++ {
		for _, kw := range []string{"and", "or", "unless"} {
			if keywordAt(expr, mask, i, kw) {
				parts = append(parts, expr[start:i])
				rest := skipModifiers(expr[i+len(kw):])
				start = len(expr) - len(rest)
				i = start - 1
				break
			}
		}
	}
	return append(parts, expr[start:])
}

var comparisonOps = []string{"==", "!=", ">=", "<=", ">", "<"}

// scalarLiteral matches a threshold: numbers and arithmetic on them.
var scalarLiteral = regexp.MustCompile(`^[0-9.eE+\-*/%^()\s]+$`)

// withoutComparison returns the operands of expr's last top-level
// comparison, dropping a constant threshold; expr itself if it has none.
func withoutComparison(expr string) []string {
	expr = stripParens(expr)
	mask := topLevel(expr)
	at, op := -1, ""
	for i := 0; i < len(expr); i++ {
		if !mask[i] {
			continue
		}
		for _, o := range comparisonOps {
			if strings.HasPrefix(expr[i:], o) {
				at, op = i, o
				i += len(o) - 1
				break
			}
		}
	}
	if at < 0 {
		return []string{expr}
	}
	left := withoutComparison(expr[:at])
	right := stripParens(skipModifiers(expr[at+len(op):]))
	if scalarLiteral.MatchString(right) {
		return left
	}
	return append(left, withoutComparison(right)...)
}

// alertProbes returns the queries an alert expression needs data from.
func alertProbes(expr string) []string {
	var out []string
	for _, part := range splitSetOps(expr) {
		for _, q := range withoutComparison(part) {
			if q = strings.TrimSpace(q); q != "" && !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

func TestAlertProbes(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up > 0.05`, []string{`up`}},
		{`x{a!="b",c=~"d>e|f<g"} != 0`, []string{`x{a!="b",c=~"d>e|f<g"}`}},
		{"(\n  sum(rate(a[5m]))\n  /\n  sum(rate(b[5m]))\n) > 0.05\nand\nsum(increase(a[5m])) >= 5\n",
			[]string{"sum(rate(a[5m]))\n  /\n  sum(rate(b[5m]))", `sum(increase(a[5m]))`}},
		{`time() - m > 2 * 3600`, []string{`time() - m`}},
		{`m - time() < 14 * 86400`, []string{`m - time()`}},
		{`sum by (a, b) (x) / ignoring (b) group_left sum by (a) (y) > 0.25`,
			[]string{`sum by (a, b) (x) / ignoring (b) group_left sum by (a) (y)`}},
		{`a > bool 1`, []string{`a`}},
		{`a > on (job) group_left b`, []string{`a`, `b`}},
		{`a unless on (job) b`, []string{`a`, `b`}},
		{`(a) + (b) > 1`, []string{`(a) + (b)`}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{route!="unmatched"}[5m]))) > 2`,
			[]string{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{route!="unmatched"}[5m])))`}},
		{`orders_total > 1 or ordinal > 2`, []string{`orders_total`, `ordinal`}},
		{`(a{b=")"}) > 1`, []string{`a{b=")"}`}},
		{`(a) / (b{c="("}) > 1`, []string{`(a) / (b{c="("})`}},
	} {
		if got := alertProbes(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("alertProbes(%q)\n got  %q\n want %q", tc.expr, got, tc.want)
		}
	}
}

func TestUnbalanced(t *testing.T) {
	for s, want := range map[string]bool{
		"rate(a[5m])":          false,
		"a) + (b":              true,
		"a(b":                  true,
		`a{b=")"}`:             false,
		`a{b="\")"}`:           false,
		"a # (\n":              false,
		"sum(a) by (b)":        false,
		"sum(a{b=`(`}) by (b)": false,
	} {
		if got := unbalanced(s); got != want {
			t.Errorf("unbalanced(%q) = %v, want %v", s, got, want)
		}
	}
}
