package docs

// What the tests read of the Markdown: lines, the fenced blocks they are
// in, inline code, headings and their anchors. Only what the checks need.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's root, from this package's directory.
const root = ".."

// page is one Markdown file.
type page struct {
	name  string // from the repository's root: README.md, docs/security.md
	lines []line
}

// line is one line of a page.
type line struct {
	n    int    // 1-based
	text string // without the newline
	// fence is the info string of the fenced code block the line is in
	// ("sh", "json"; "-" when the fence has none), or "" outside one. The
	// fence lines themselves are outside.
	fence string
}

// quote is a piece of a page a check holds to the code.
type quote struct {
	page string
	line int
	text string
}

// String names the quote as a failure message starts: docs/x.md:12: `text`.
func (q quote) String() string { return fmt.Sprintf("%s:%d: `%s`", q.page, q.line, q.text) }

// name is the subtest's name: x.md:12 (README.md:12 for the README).
func (q quote) name() string { return fmt.Sprintf("%s:%d", filepath.Base(q.page), q.line) }

// readPage reads one page, named from the repository's root.
func readPage(t *testing.T, name string) page {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return parsePage(name, string(b))
}

// parsePage splits Markdown text into lines, noting the fenced blocks.
func parsePage(name, text string) page {
	p := page{name: name}
	var fence, marker string // the open block's info string and its fence (``` or ~~~, at least)
	for i, s := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		trimmed := strings.TrimSpace(s)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			marker = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, trimmed[:1]))]
			fence = strings.TrimSpace(trimmed[len(marker):])
			if fence == "" {
				fence = "-"
			}
			p.lines = append(p.lines, line{n: i + 1, text: s})
		case fence != "" && strings.HasPrefix(trimmed, marker) && strings.Trim(trimmed, marker[:1]) == "":
			fence = ""
			p.lines = append(p.lines, line{n: i + 1, text: s})
		default:
			p.lines = append(p.lines, line{n: i + 1, text: s, fence: fence})
		}
	}
	return p
}

// readPages reads README.md and every page under docs/.
func readPages(t *testing.T) []page {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := []page{readPage(t, "README.md")}
	for _, n := range names {
		rel, _ := filepath.Rel(root, n)
		pages = append(pages, readPage(t, filepath.ToSlash(rel)))
	}
	if len(pages) < 5 {
		t.Fatalf("found only %d pages: read the wrong tree?", len(pages))
	}
	return pages
}

// block is a fenced code block: its info string and its lines.
type block struct {
	info  string
	lines []line
}

// blocks returns the page's fenced code blocks between the lines from and
// to (1-based, to excluded; 0 for the end).
func (p page) blocks(from, to int) []block {
	var bs []block
	for _, l := range p.lines {
		if l.n < from || (to > 0 && l.n >= to) || l.fence == "" {
			continue
		}
		if len(bs) == 0 || bs[len(bs)-1].lines[len(bs[len(bs)-1].lines)-1].n != l.n-1 {
			bs = append(bs, block{info: l.fence})
		}
		bs[len(bs)-1].lines = append(bs[len(bs)-1].lines, l)
	}
	return bs
}

// headingRE is a Markdown heading (outside code blocks).
var headingRE = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)

// section returns the lines [from, to) of the section whose heading starts
// with title (to is 0 at the end of the page), or ok false.
func (p page) section(title string) (from, to int, ok bool) {
	level := 0
	for _, l := range p.lines {
		m := headingRE.FindStringSubmatch(l.text)
		if l.fence != "" || m == nil {
			continue
		}
		switch {
		case level == 0 && strings.HasPrefix(m[2], title):
			level, from = len(m[1]), l.n
		case level > 0 && len(m[1]) <= level:
			return from, l.n, true
		}
	}
	return from, 0, level > 0
}

// anchors returns the anchors of the page's headings, as GitHub makes them
// (lower case, punctuation dropped, spaces as hyphens, -1, -2… for
// repeats), and those of explicit <a id="…"> and <a name="…"> tags.
func (p page) anchors() []string {
	var out []string
	seen := map[string]int{}
	tag := regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	for _, l := range p.lines {
		if l.fence != "" {
			continue
		}
		for _, m := range tag.FindAllStringSubmatch(l.text, -1) {
			out = append(out, m[1])
		}
		m := headingRE.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		a := slug(m[2])
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}

// slug is GitHub's anchor of a heading's text.
func slug(heading string) string {
	// Links keep their text: [text](url) → text.
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// inlineCodeRE is an inline code span on one line.
var inlineCodeRE = regexp.MustCompile("`([^`]+)`")

// spans returns the inline code spans of the lines outside code blocks of
// every page.
func spans(pages []page) []quote {
	var qs []quote
	for _, p := range pages {
		for _, l := range p.lines {
			if l.fence != "" {
				continue
			}
			for _, m := range inlineCodeRE.FindAllStringSubmatch(l.text, -1) {
				qs = append(qs, quote{page: p.name, line: l.n, text: m[1]})
			}
		}
	}
	return qs
}

// matches returns every match of re on the lines of every page (code
// blocks included, unless prose only), as quotes of group (0 for the whole
// match), once per line and text.
func matches(pages []page, re *regexp.Regexp, group int, proseOnly bool) []quote {
	var qs []quote
	for _, p := range pages {
		for _, l := range p.lines {
			if proseOnly && l.fence != "" {
				continue
			}
			var seen []string
			for _, m := range re.FindAllStringSubmatch(l.text, -1) {
				if m[group] == "" || slices.Contains(seen, m[group]) {
					continue
				}
				seen = append(seen, m[group])
				qs = append(qs, quote{page: p.name, line: l.n, text: m[group]})
			}
		}
	}
	return qs
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"The HTTP edge", "the-http-edge"},
		{"Limits (`limits`)", "limits-limits"},
		{"Getting a user token (password grant)", "getting-a-user-token-password-grant"},
		{"`bench/run.sh --mem-users 100000` (03:03 UTC, the gateway at 5564880)", "benchrunsh---mem-users-100000-0303-utc-the-gateway-at-5564880"},
		{"Hot path: 0.32–0.48× nginx (target ≥ 0.8×)", "hot-path-032048-nginx-target--08"},
		{"See [the docs](x.md) now", "see-the-docs-now"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

func TestReadPageFences(t *testing.T) {
	md := "# T\n\n```sh\ncurl x\n```\n\n   ```\n   # not a heading\n   ```\n\n````md\n```\ninside\n````\n## After\n"
	p := parsePage("x.md", md)
	var got []string
	for _, b := range p.blocks(0, 0) {
		var ls []string
		for _, l := range b.lines {
			ls = append(ls, strings.TrimSpace(l.text))
		}
		got = append(got, b.info+":"+strings.Join(ls, "|"))
	}
	want := []string{"sh:curl x", "-:# not a heading", "md:```|inside"}
	if !slices.Equal(got, want) {
		t.Errorf("blocks = %q, want %q", got, want)
	}
	if a := p.anchors(); !slices.Equal(a, []string{"t", "after"}) {
		t.Errorf("anchors = %q, want [t after]", a)
	}
}
