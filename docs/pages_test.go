package docs

// Single pages held to what they describe: fakeentra.md to the local
// tenant, performance.md's flag table to bench/run.sh.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// benchFlag is one flag of bench/run.sh.
type benchFlag struct {
	variable string // THREADS; KEEP=1 for a flag that takes no value
	def      string // the variable's default, "" for none
}

// benchFlags reads the flags bench/run.sh parses: the variables of its
// `case $var in A|B|…)` list as --a, --b, and its --flag) VAR=1 switches,
// with the defaults of VAR=${VAR:-default}.
func benchFlags(t *testing.T) map[string]benchFlag {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "bench", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	defaults := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}`).FindAllStringSubmatch(src, -1) {
		if m[1] == m[2] {
			defaults[m[1]] = m[3]
		}
	}
	flags := map[string]benchFlag{}
	list := regexp.MustCompile(`case \$var in\s*\n\s*([A-Z0-9_|]+)\)`).FindStringSubmatch(src)
	if list == nil {
		t.Fatal("bench/run.sh: no `case $var in A|B|…)` list of the flags that take a value: update this test with the script")
	}
	for _, v := range strings.Split(list[1], "|") {
		flags["--"+strings.ReplaceAll(strings.ToLower(v), "_", "-")] = benchFlag{variable: v, def: defaults[v]}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(--[a-z-]+)\)\s+([A-Z0-9_]+)=1\b`).FindAllStringSubmatch(src, -1) {
		flags[m[1]] = benchFlag{variable: m[2] + "=1", def: defaults[m[2]]}
	}
	if len(flags) < 5 {
		t.Fatalf("bench/run.sh: found only %d flags: update this test with the script", len(flags))
	}
	return flags
}

// tableRows returns the cells (backticks dropped, trimmed) of the rows of
// the first table in the section of page whose heading starts with title.
func tableRows(t *testing.T, p page, title string) []quote {
	t.Helper()
	from, to, ok := p.section(title)
	if !ok {
		t.Fatalf("%s has no section %q: update this test with the page", p.name, title)
	}
	var rows []quote
	for _, l := range p.lines {
		if l.n < from || (to > 0 && l.n >= to) || l.fence != "" {
			continue
		}
		s := strings.TrimSpace(l.text)
		if !strings.HasPrefix(s, "|") {
			if len(rows) > 0 {
				break // the table ended
			}
			continue
		}
		if strings.HasPrefix(s, "|---") || strings.HasPrefix(s, "| ---") {
			continue
		}
		rows = append(rows, quote{page: p.name, line: l.n, text: s})
	}
	if len(rows) < 2 {
		t.Fatalf("%s: no table in the section %q: update this test with the page", p.name, title)
	}
	return rows[1:] // the header aside
}

// cells splits a table row into its cells, backticks dropped.
func cells(row string) []string {
	parts := strings.Split(strings.Trim(row, "|"), "|")
	for i, c := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(c), "`")
	}
	return parts
}

// performance.md's table of bench/run.sh's flags is the script's: every
// flag, its variable and its default, in both directions.
func TestPerformanceFlagTable(t *testing.T) {
	flags := benchFlags(t)
	p := readPage(t, "docs/performance.md")
	seen := map[string]bool{}
	for _, row := range tableRows(t, p, "Run it") {
		c := cells(row.text)
		if len(c) < 3 {
			t.Errorf("%s:%d: a row of fewer than 3 cells", row.page, row.line)
			continue
		}
		flag, variable, def := c[0], c[1], c[2]
		seen[flag] = true
		f, ok := flags[flag]
		if !ok {
			t.Errorf("%s:%d: bench/run.sh takes no flag %s", row.page, row.line, flag)
			continue
		}
		if variable != f.variable {
			t.Errorf("%s:%d: %s sets %s, not %s", row.page, row.line, flag, f.variable, variable)
		}
		want := map[string]string{"": "unset", "0": "off"}[f.def]
		if want == "" {
			want = f.def
		}
		if def != want {
			t.Errorf("%s:%d: %s defaults to %q in bench/run.sh (%s), the table says %q", row.page, row.line, flag, f.def, want, def)
		}
	}
	for flag := range flags {
		if !seen[flag] {
			t.Errorf("docs/performance.md: the flag table of \"Run it\" lacks bench/run.sh's %s", flag)
		}
	}
}

// fakeentra.md's flag table is fakeentra's -h, which exits 0 as the page
// says.
func TestFakeentraFlagTable(t *testing.T) {
	bin := filepath.Join(binaries(t), "fakeentra")
	out, code := help(t, bin, "-h")
	if code != 0 {
		t.Errorf("fakeentra -h exits %d; docs/fakeentra.md says it exits 0", code)
	}
	flags := helpFlags(t, bin)
	defaults := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([\w-]+)[^\n]*\n[^\n]*\(default "([^"]*)"\)`).FindAllStringSubmatch(out, -1) {
		defaults[m[1]] = m[2]
	}
	p := readPage(t, "docs/fakeentra.md")
	seen := map[string]bool{}
	for _, row := range tableRows(t, p, "Running it") {
		c := cells(row.text)
		flag := strings.TrimPrefix(c[0], "-")
		seen[flag] = true
		if !flags[flag] {
			t.Errorf("%s:%d: fakeentra has no flag -%s (its -h:\n%s)", row.page, row.line, flag, out)
			continue
		}
		if def, ok := defaults[flag]; ok && len(c) > 1 && c[1] != def {
			t.Errorf("%s:%d: -%s defaults to %q, the table says %q", row.page, row.line, flag, def, c[1])
		}
	}
	for flag := range flags {
		if !seen[flag] && flag != "h" && flag != "help" {
			t.Errorf("docs/fakeentra.md: the flag table of \"Running it\" lacks -%s", flag)
		}
	}
}

// fakeentra.md's JSON line is what fakeentra prints: its table of keys
// names every key (and no other), its example has the names fakeentra
// prints at every level (values differ: ports and paths change at every
// start) but for keys the table says come with a flag only; -sample-api's
// URL answers; and fakeentra exits 0 on SIGINT, as the page says.
func TestFakeentraJSONLine(t *testing.T) {
	t.Parallel()
	p := readPage(t, "docs/fakeentra.md")
	from, to, ok := p.section("The JSON line")
	if !ok {
		t.Fatal("docs/fakeentra.md has no section \"The JSON line\": update this test with the page")
	}
	var doc map[string]any
	var docLine int
	for _, b := range p.blocks(from, to) {
		if b.info != "json" {
			continue
		}
		var text []string
		for _, l := range b.lines {
			text = append(text, l.text)
		}
		docLine = b.lines[0].n
		if err := json.Unmarshal([]byte(strings.Join(text, "\n")), &doc); err != nil {
			t.Fatalf("docs/fakeentra.md:%d: the JSON line's example is not a JSON object: %v", docLine, err)
		}
		break
	}
	if doc == nil {
		t.Fatal("docs/fakeentra.md: no ```json block in \"The JSON line\"")
	}
	table := map[string]quote{} // top-level key → its row
	for _, row := range tableRows(t, p, "The JSON line") {
		key := cells(row.text)[0]
		key, _, _ = strings.Cut(key, ".")
		table[strings.TrimSuffix(key, "[]")] = row
	}

	tenant := start(t, nil, filepath.Join(binaries(t), "fakeentra"), "-dir", t.TempDir(), "-sample-api", "127.0.0.1:0")
	first := tenant.waitFor(t, "its JSON line", startTimeout, func(out string) ([]string, bool) {
		l, _, ok := strings.Cut(out, "\n")
		return []string{l}, ok
	})[0]
	var got map[string]any
	if err := json.Unmarshal([]byte(first), &got); err != nil {
		t.Fatalf("fakeentra printed no JSON line: %v\n%s", err, first)
	}

	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := table[k]; !ok {
			t.Errorf("docs/fakeentra.md:%d: the table of the JSON line's keys lacks %s", docLine, k)
		}
	}
	for k, row := range table {
		if _, ok := got[k]; !ok {
			t.Errorf("%s:%d: the table names %s, which fakeentra does not print", row.page, row.line, k)
		}
		// A key that comes with a flag only ("with `-sample-api` only")
		// may be left out of the example.
		if _, shown := doc[k]; !shown && withFlagOnlyRE.MatchString(cells(row.text)[1]) {
			delete(got, k)
		}
	}
	for _, d := range sameShape("", doc, got) {
		t.Errorf("docs/fakeentra.md:%d: the JSON line: %s", docLine, d)
	}

	if u, _ := got["sample_api_url"].(string); u != "" {
		resp, err := (&http.Client{Timeout: runTimeout}).Get(u + "/anything")
		if err != nil {
			t.Errorf("fakeentra -sample-api: %v", err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("fakeentra -sample-api: GET %s/anything answered %d, want 200", u, resp.StatusCode)
			}
		}
	}
	if err := tenant.stop(); err != nil {
		t.Errorf("fakeentra on SIGINT: %v; docs/fakeentra.md says it exits with status 0", err)
	}
}

// withFlagOnlyRE starts the meaning of a key of fakeentra's JSON line
// printed only with a flag.
var withFlagOnlyRE = regexp.MustCompile("^with `-[a-z-]+` only")

// sameShape compares the names of two JSON values at every level: objects
// have the same keys, arrays the same length. Values are not compared.
func sameShape(at string, doc, got any) []string {
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an object on the page, not in fakeentra's line", orRoot(at))}
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if _, ok := g[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("the page shows %s.%s, which fakeentra does not print", at, k))
				continue
			}
			diffs = append(diffs, sameShape(at+"."+k, d[k], g[k])...)
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := d[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("fakeentra prints %s.%s, which the page does not show", at, k))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(d) {
			return []string{fmt.Sprintf("%s: the page shows %d elements, fakeentra prints %v", orRoot(at), len(d), got)}
		}
		var diffs []string
		for i := range d {
			diffs = append(diffs, sameShape(fmt.Sprintf("%s[%d]", at, i), d[i], g[i])...)
		}
		return diffs
	}
	return nil
}

func orRoot(at string) string {
	if at == "" {
		return "the line"
	}
	return at
}

// fixtureRE is a fixture fakeentra.md names by its file name alone.
var fixtureRE = regexp.MustCompile("`([A-Za-z0-9][A-Za-z0-9_.-]*\\.(?:json|txt|jwt))`")

// The fixtures fakeentra.md names by their file name alone are under
// internal/fakeentra/testdata/entra-real/, as the page says.
func TestFakeentraFixtures(t *testing.T) {
	dir := filepath.Join(root, "internal", "fakeentra", "testdata", "entra-real")
	have := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			have[d.Name()] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	qs := matches([]page{readPage(t, "docs/fakeentra.md")}, fixtureRE, 1, false)
	checkQuotes(t, qs, func(q quote) string {
		if !have[q.text] {
			return "is no fixture under internal/fakeentra/testdata/entra-real/: name one there, or give its path in the repository or its original URL"
		}
		return ""
	})
}

// security.md's table of the checks on a token names, in its last column,
// the result and reasons of obo_gateway_token_validations_total as
// internal/auth counts them: a result it counts, reasons of its Reason
// type.
func TestSecurityChecksTable(t *testing.T) {
	files := readGo(t)
	reasons := typedConstsOf(files, "internal/auth", "Reason")
	results := literalsOf(files, func(dir string) bool { return dir == "internal/auth" }).strings
	if len(reasons) < 10 {
		t.Fatalf("internal/auth declares only %d constants of type Reason: update this test with the code", len(reasons))
	}
	p := readPage(t, "docs/security.md")
	rows := tableRows(t, p, "The checks, in order")
	checkQuotes(t, rows, func(q quote) string {
		c := strings.Split(strings.Trim(q.text, "|"), "|")
		var codes []string
		for _, m := range inlineCodeRE.FindAllStringSubmatch(c[len(c)-1], -1) {
			codes = append(codes, m[1])
		}
		if len(codes) < 2 {
			return "its last cell names no `result`, `reason`"
		}
		if !results[codes[0]] {
			return "internal/auth counts no result " + codes[0]
		}
		for _, r := range codes[1:] {
			if !reasons[r] {
				return "internal/auth has no reason " + r + " (a constant of type Reason)"
			}
		}
		return ""
	})
}
