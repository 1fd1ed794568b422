package docs

// What the pages quote of the code, checked against the code: each check
// collects its quotes from every page, then holds each to the code in a
// subtest named page:line, whose failure quotes the stale text.

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// checkQuotes runs check on each quote in a subtest named page:line.
// check returns "" when the quote holds, else what is wrong with it.
func checkQuotes(t *testing.T, qs []quote, check func(q quote) string) {
	t.Helper()
	if len(qs) == 0 {
		t.Fatal("found nothing to check: did the pages or this test's patterns change?")
	}
	for _, q := range qs {
		t.Run(q.name(), func(t *testing.T) {
			if problem := check(q); problem != "" {
				t.Errorf("%s: %s", q, problem)
			}
		})
	}
}

// repoPathRE is a path of the repository in a page: internal/…, cmd/…,
// deploy/…, docs/…, bench/…, ci/…, .ci/…, optionally written ./….
var repoPathRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./~$-])(?:\./)?((?:internal|cmd|deploy|docs|bench|ci|\.ci)/[A-Za-z0-9_.*/<>-]*)`)

// linkRE is a Markdown link's target.
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every path of the repository a page names exists: a glob matches
// something; a path with a <placeholder> has its directory (write one the
// reader makes so: deploy/overlays/<yours>/); internal/... is a
// directory. Paths made at run time are not in the repository and need not
// be: those .gitignore lists (bench/.bin/), and Go's fuzzing corpus (a
// package's testdata/fuzz/, written when a fuzz target fails).
func TestQuotedPaths(t *testing.T) {
	ignored := gitignored(t)
	qs := matches(readPages(t), repoPathRE, 1, false)
	checkQuotes(t, qs, func(q quote) string {
		p := strings.TrimRight(q.text, ".:") // also internal/... as a directory
		if i := strings.Index(p, "<"); i >= 0 {
			p = p[:strings.LastIndex(p[:i], "/")+1]
		}
		if pkg, _, fuzz := strings.Cut(p, "/testdata/fuzz"); fuzz {
			p = pkg // go test -fuzz writes there; the package must exist
		}
		if ignored(p) {
			return ""
		}
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.Contains(p, "*") {
			if m, _ := filepath.Glob(full); len(m) == 0 {
				return "matches no file of the repository"
			}
			return ""
		}
		if _, err := os.Stat(full); err != nil {
			return "is not in the repository: cite a path inside it (or a fixture's original URL)"
		}
		return ""
	})
}

// gitignored returns whether .gitignore ignores a path (slash-separated,
// from the root). It knows the patterns the repository's .gitignore uses:
// /anchored paths, with or without a trailing slash, and globs of names.
func gitignored(t *testing.T) func(p string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return func(p string) bool {
		p = strings.TrimSuffix(p, "/")
		for _, pat := range patterns {
			anchored := strings.HasPrefix(pat, "/")
			pat = strings.TrimSuffix(strings.TrimPrefix(pat, "/"), "/")
			if anchored {
				if ok, _ := path.Match(pat, p); ok || strings.HasPrefix(p, pat+"/") {
					return true
				}
				continue
			}
			for _, elem := range strings.Split(p, "/") {
				if ok, _ := path.Match(pat, elem); ok {
					return true
				}
			}
		}
		return false
	}
}

// Every relative link leads to a file of the repository, and every
// #anchor to a heading of its page.
func TestLinks(t *testing.T) {
	pages := readPages(t)
	anchors := map[string][]string{}
	for _, p := range pages {
		anchors[p.name] = p.anchors()
	}
	var qs []quote
	for _, q := range matches(pages, linkRE, 1, true) {
		if !strings.Contains(q.text, "://") && !strings.HasPrefix(q.text, "mailto:") {
			qs = append(qs, q)
		}
	}
	checkQuotes(t, qs, func(q quote) string {
		file, anchor, _ := strings.Cut(q.text, "#")
		target := q.page
		if file != "" {
			target = path.Clean(path.Join(path.Dir(q.page), file))
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
				return "links to " + target + ", which is not in the repository"
			}
		}
		if anchor == "" || !strings.HasSuffix(target, ".md") {
			return ""
		}
		as, ok := anchors[target]
		if !ok {
			as = readPage(t, target).anchors()
		}
		if !slices.Contains(as, anchor) {
			return "links to #" + anchor + ", which is no heading of " + target
		}
		return ""
	})
}

// envVarRE is a variable of the gateway's in a page: OBO_GATEWAY_… or
// AZURE_…, with <NAME> standing for a route's name.
var envVarRE = regexp.MustCompile(`\b(?:OBO_GATEWAY|AZURE)_(?:[A-Z0-9_]|<NAME>)*`)

// Every variable a page names is one the gateway reads: in config.EnvVars
// (a route's for any route name), or read by cmd/gateway itself
// (OBO_GATEWAY_CONFIG). A name ending in _ is a prefix of some.
func TestQuotedEnvVars(t *testing.T) {
	var known, patterns []string
	for _, v := range config.EnvVars() {
		known = append(known, v.Name)
		if strings.Contains(v.Name, "<NAME>") {
			patterns = append(patterns, "^"+strings.ReplaceAll(regexp.QuoteMeta(v.Name), "<NAME>", "[A-Z0-9_]+")+"$")
		}
	}
	for v := range getenvsOf(readGo(t), "cmd/gateway") {
		known = append(known, v)
	}
	routeVar := func(string) bool { return false }
	if len(patterns) > 0 {
		routeVar = regexp.MustCompile(strings.Join(patterns, "|")).MatchString
	}
	checkQuotes(t, matches(readPages(t), envVarRE, 0, false), func(q quote) string {
		switch {
		case slices.Contains(known, q.text):
			return ""
		case strings.HasSuffix(q.text, "_"):
			if slices.ContainsFunc(known, func(k string) bool { return strings.HasPrefix(k, q.text) }) {
				return ""
			}
			return "no variable the gateway reads starts so"
		case !strings.Contains(q.text, "<") && routeVar(q.text):
			return ""
		}
		return "is not a variable the gateway reads (config.EnvVars, or cmd/gateway's own)"
	})
}

// settingsOf returns the YAML paths of config.Config: entra.tenant_id,
// routes[].upstream, entra.audiences[] (a list of values), and each
// section itself (entra, cache.redis).
func settingsOf(typ reflect.Type, prefix string, out map[string]bool) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := prefix + name
		out[p] = true
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			p += "[]"
			out[p] = true
			ft = ft.Elem()
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
		}
		if ft.Kind() == reflect.Struct && hasYAMLFields(ft) {
			settingsOf(ft, p+".", out)
		}
	}
}

func hasYAMLFields(typ reflect.Type) bool {
	for i := range typ.NumField() {
		if typ.Field(i).Tag.Get("yaml") != "" {
			return true
		}
	}
	return false
}

// Every setting a page quotes in code (`entra.ca_file`, `routes[0].timeout`,
// `cache.redis.tls: true`) is a field of the configuration.
func TestQuotedSettings(t *testing.T) {
	settings := map[string]bool{}
	settingsOf(reflect.TypeFor[config.Config](), "", settings)
	var sections []string
	for s := range settings {
		if !strings.ContainsAny(s, ".[") {
			sections = append(sections, regexp.QuoteMeta(s))
		}
	}
	settingRE := regexp.MustCompile(`^((?:` + strings.Join(sections, "|") + `)(?:\.[a-z0-9_]+|\[\d*\])+)(?:$|[:=\s])`)
	var qs []quote
	for _, q := range spans(readPages(t)) {
		if m := settingRE.FindStringSubmatch(q.text); m != nil {
			qs = append(qs, quote{page: q.page, line: q.line, text: m[1]})
		}
	}
	index := regexp.MustCompile(`\[\d+\]`)
	checkQuotes(t, qs, func(q quote) string {
		if settings[index.ReplaceAllString(q.text, "[]")] {
			return ""
		}
		return "is not a setting of the configuration (internal/config's YAML fields)"
	})
}

// Error codes in the pages: in JSON bodies, after a status ("403
// consent_required", "400 `invalid_grant`"), in WWW-Authenticate, as
// a suberror.
var errorCodeREs = []*regexp.Regexp{
	regexp.MustCompile(`"error"\s*:\s*"([a-z_]+)"`),
	regexp.MustCompile("\\b[45]\\d\\d`?\\s+[`{]?(?:\"error\"\\s*:\\s*\")?([a-z]+(?:_[a-z]+)+)\\b"),
	regexp.MustCompile(`\berror="([a-z_]+)"`),
	regexp.MustCompile("\\bsuberror[\\s`:\"]+([a-z]+(?:_[a-z]+)+)\\b"),
}

// Every error code a page quotes is one the code answers: the gateway's,
// or Entra's as the local tenant (and internal/obo's catalogue) knows it.
func TestQuotedErrorCodes(t *testing.T) {
	known := literalsOf(readGo(t), func(dir string) bool { return !strings.HasPrefix(dir, "bench/") })
	pages := readPages(t)
	var qs []quote
	for _, re := range errorCodeREs {
		qs = append(qs, matches(pages, re, 1, false)...)
	}
	checkQuotes(t, qs, func(q quote) string {
		if !known.strings[q.text] {
			return "is not an error code of the gateway's or the local tenant's (no such string in the code)"
		}
		return ""
	})
}

// Every AADSTS code a page quotes is one the code knows (internal/obo's
// catalogue, the doctor, the local tenant), and so is the code after a
// tenant's answer in fakeentra.md ("400 `invalid_grant` 50076").
func TestQuotedAADSTSCodes(t *testing.T) {
	files := readGo(t)
	tenant := literalsOf(files, underTenant)
	all := literalsOf(files, func(dir string) bool { return !strings.HasPrefix(dir, "bench/") })
	pages := readPages(t)
	qs := matches(pages, regexp.MustCompile(`\bAADSTS(\d+)\b`), 1, false)
	for _, p := range pages {
		if p.name == "docs/fakeentra.md" {
			qs = append(qs, matches([]page{p}, regexp.MustCompile("\\b[45]\\d\\d`? `[a-z_]+` (\\d{4,})\\b"), 1, false)...)
		}
	}
	checkQuotes(t, qs, func(q quote) string {
		known := all
		if q.page == "docs/fakeentra.md" {
			known = tenant
		}
		if !known.numbers[q.text] {
			return "is not an AADSTS code the code knows"
		}
		return ""
	})
}

// metricRE is a metric of the gateway's in a page, with its labels if
// given: obo_gateway_x_total{route,code="503"}, obo_gateway_*.
var metricRE = regexp.MustCompile(`\bobo_gateway_[a-z0-9_]*(?:\*|\{[^}]*\})?`)

// Every metric a page names is one the gateway registers, with labels it
// has. The metric reference of operations.md is left to
// internal/opsmonitor, which holds it to a live gateway's /metrics.
func TestQuotedMetrics(t *testing.T) {
	metrics := metricsOf(readGo(t))
	pages := readPages(t)
	for i, p := range pages {
		if p.name != "docs/operations.md" {
			continue
		}
		from, to, ok := p.section("Metric reference")
		if !ok {
			t.Fatal("docs/operations.md has no section \"Metric reference\", which this test leaves to internal/opsmonitor: update the test")
		}
		pages[i].lines = slices.DeleteFunc(slices.Clone(p.lines), func(l line) bool { return l.n >= from && (to == 0 || l.n < to) })
	}
	checkQuotes(t, matches(pages, metricRE, 0, false), func(q quote) string {
		name, labels, _ := strings.Cut(strings.TrimSuffix(q.text, "}"), "{")
		if strings.HasSuffix(name, "*") || strings.HasSuffix(name, "_") {
			prefix := strings.TrimSuffix(name, "*")
			for m := range metrics {
				if strings.HasPrefix(m, prefix) {
					return ""
				}
			}
			return "no metric of the gateway starts so"
		}
		have, ok := metrics[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if h, found := metrics[strings.TrimSuffix(name, suffix)]; found && strings.HasSuffix(name, suffix) {
					have, ok = h, true
					if suffix == "_bucket" && h != nil {
						have = append(slices.Clone(h), "le")
					}
				}
			}
		}
		if !ok {
			return "is not a metric the gateway registers"
		}
		if labels == "" || have == nil {
			return ""
		}
		for _, l := range strings.Split(labels, ",") {
			l = strings.TrimSpace(l)
			if i := strings.IndexAny(l, "=!~"); i >= 0 {
				l = strings.TrimSpace(l[:i])
			}
			if l != "" && !slices.Contains(have, l) {
				return "has no label " + l + " (it has " + strings.Join(have, ", ") + ")"
			}
		}
		return ""
	})
}

// Every Go name a page quotes exists: pkg.Name (a package of the
// repository's and one of its declarations, or a method of one of its
// types, as edge.Listen for (*edge.Edge).Listen), pkg.Type.Member (a field
// or method), and TestX, FuzzX, BenchmarkX (a function of some test file).
func TestQuotedGoNames(t *testing.T) {
	files := readGo(t)
	names, tests := namesOf(files), testFuncsOf(files)
	var pkgs []string
	for n := range names {
		pkgs = append(pkgs, n)
	}
	slices.Sort(pkgs)
	pages := readPages(t)
	qualified := regexp.MustCompile(`\b(?:` + strings.Join(pkgs, "|") + `)\.[A-Z]\w*(?:\.[A-Z]\w*)?`)
	testName := regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z]\w*`)
	qs := append(matches(pages, qualified, 0, false), matches(pages, testName, 0, false)...)
	checkQuotes(t, qs, func(q quote) string {
		parts := strings.Split(q.text, ".")
		if len(parts) == 1 {
			if !tests[q.text] {
				return "is no function of the repository's tests"
			}
			return ""
		}
		p := names[parts[0]]
		if !p.decls[parts[1]] && !p.methods[parts[1]] {
			return "package " + parts[0] + " (" + strings.Join(p.dirs, ", ") + ") declares no " + parts[1] + ", and none of its types has such a method"
		}
		if len(parts) == 3 && !p.members[parts[1]][parts[2]] {
			return parts[0] + "." + parts[1] + " has no field or method " + parts[2]
		}
		return ""
	})
}

// commandRE finds where a command of the repository's starts in a line:
// the gateway or fakeentra binary (also as ./cmd/gateway, /tmp/fakeentra),
// or bench/run.sh.
var commandRE = regexp.MustCompile("(?:^|[\\s`(/\"$])(gateway|fakeentra|bench/run\\.sh)(?:$|[\\s`])")

// flagRE is an argument that is a flag: -x, --x, -x=v (not "-", stdin).
var flagRE = regexp.MustCompile(`^--?[A-Za-z]`)

// commandEnd cuts a command's arguments where the command ends.
var commandEnd = regexp.MustCompile("[|;&<>#`)]")

// Every flag of a quoted command (`gateway doctor -config FILE -json`,
// `fakeentra -dir /tmp/fe`, `bench/run.sh --mem-users 100000`) is one the
// command takes, as its -h lists (bench/run.sh: as it parses).
func TestQuotedFlags(t *testing.T) {
	bin := binaries(t)
	gateway, fakeentra := filepath.Join(bin, "gateway"), filepath.Join(bin, "fakeentra")
	usage, _ := help(t, gateway, "-h")
	// By command: the flags' names for the Go programs (h and help
	// always), --name and -h for bench/run.sh.
	flags := map[string]map[string]bool{
		"fakeentra":    helpFlags(t, fakeentra),
		"bench/run.sh": {"-h": true, "--help": true},
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+gateway (\w+)`).FindAllStringSubmatch(usage, -1) {
		if m[1] != "version" {
			flags["gateway "+m[1]] = helpFlags(t, gateway, m[1])
		}
	}
	if len(flags) < 5 {
		t.Fatalf("gateway -h lists fewer subcommands than serve, demo, doctor and inspect:\n%s", usage)
	}
	for flag := range benchFlags(t) {
		flags["bench/run.sh"][flag] = true
	}

	var qs []quote
	for _, p := range readPages(t) {
		for _, l := range joinContinued(p.lines) {
			for _, m := range commandRE.FindAllStringSubmatchIndex(l.text, -1) {
				cmd := l.text[m[2]:m[3]]
				args := l.text[m[3]:]
				if i := commandEnd.FindStringIndex(args); i != nil {
					args = args[:i[0]]
				}
				fields := strings.Fields(args)
				if cmd == "gateway" {
					if len(fields) == 0 || flags["gateway "+fields[0]] == nil {
						continue // not a subcommand: prose, or `gateway version`
					}
					cmd, fields = "gateway "+fields[0], fields[1:]
				}
				for _, f := range fields {
					f = strings.TrimRight(strings.Trim(f, "[]()"), ",.:;")
					if flagRE.MatchString(f) {
						qs = append(qs, quote{page: p.name, line: l.n, text: cmd + " " + f})
					}
				}
			}
		}
	}
	checkQuotes(t, qs, func(q quote) string {
		i := strings.LastIndex(q.text, " ")
		cmd, flag := q.text[:i], q.text[i+1:]
		name, _, _ := strings.Cut(flag, "=")
		if cmd != "bench/run.sh" {
			name = strings.TrimLeft(name, "-") // Go's flag package takes -x and --x alike
		}
		if flags[cmd][name] {
			return ""
		}
		return cmd + " has no flag " + flag
	})
}

// joinContinued joins the lines of code blocks that end in a backslash
// with the next, under the first one's number.
func joinContinued(lines []line) []line {
	var out []line
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		for l.fence != "" && strings.HasSuffix(l.text, "\\") && i+1 < len(lines) && lines[i+1].fence != "" {
			i++
			l.text = strings.TrimSuffix(l.text, "\\") + " " + strings.TrimSpace(lines[i].text)
		}
		out = append(out, l)
	}
	return out
}
