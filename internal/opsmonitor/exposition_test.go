package opsmonitor

// A reader of the Prometheus text format, enough to list the families of a
// scrape with their type and label names.

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// liveFamily is one metric family of a scrape.
type liveFamily struct {
	name, typ string
	labels    map[string]bool // without le (histograms) and quantile (summaries)
	samples   int
}

func (f *liveFamily) labelList() []string {
	var out []string
	for l := range f.labels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// parseExposition reads the text format (version 0.0.4).
func parseExposition(text string) (map[string]*liveFamily, error) {
	fams := map[string]*liveFamily{}
	lineNo := 0
	for line := range strings.Lines(text) {
		lineNo++
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, fmt.Errorf("line %d: malformed TYPE line %q", lineNo, line)
			}
			fams[name] = &liveFamily{name: name, typ: typ, labels: map[string]bool{}}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		f := fams[name]
		if f == nil {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil &&
					(fams[base].typ == "histogram" || fams[base].typ == "summary") {
					f = fams[base]
					break
				}
			}
		}
		if f == nil {
			f = &liveFamily{name: name, typ: "untyped", labels: map[string]bool{}}
			fams[name] = f
		}
		f.samples++
		for _, l := range labels {
			if (l == "le" && f.typ == "histogram") || (l == "quantile" && f.typ == "summary") {
				continue
			}
			f.labels[l] = true
		}
	}
	return fams, nil
}

// parseSample returns a sample line's metric name and label names.
func parseSample(line string) (string, []string, error) {
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", nil, fmt.Errorf("malformed sample %q", line)
	}
	name := line[:i]
	if line[i] != '{' {
		return name, nil, nil
	}
	var labels []string
	s := line[i+1:]
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return name, labels, nil
		}
		eq := strings.Index(s, `="`)
		if eq <= 0 {
			return "", nil, fmt.Errorf("malformed labels in %q", line)
		}
		labels = append(labels, strings.TrimSpace(s[:eq]))
		s = s[eq+2:]
		// The value ends at the first unescaped quote.
		j := 0
		for ; j < len(s); j++ {
			if s[j] == '\\' {
				j++
				continue
			}
			if s[j] == '"' {
				break
			}
		}
		if j >= len(s) {
			return "", nil, fmt.Errorf("unterminated label value in %q", line)
		}
		s = s[j+1:]
	}
}

func TestParseExposition(t *testing.T) {
	text := `# HELP a_total A counter.
# TYPE a_total counter
a_total{route="x",code="200"} 1
a_total{route="y\"}, z=\"",code="500"} 2
# TYPE h_seconds histogram
h_seconds_bucket{route="x",le="0.5"} 1
h_seconds_bucket{route="x",le="+Inf"} 1
h_seconds_sum{route="x"} 0.1
h_seconds_count{route="x"} 1
# TYPE g gauge
g 3
`
	fams, err := parseExposition(text)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		typ    string
		labels string
	}{
		"a_total":   {"counter", "code,route"},
		"h_seconds": {"histogram", "route"},
		"g":         {"gauge", ""},
	} {
		f := fams[name]
		if f == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		if f.typ != want.typ || strings.Join(f.labelList(), ",") != want.labels {
			t.Errorf("%s: %s %v, want %s [%s]", name, f.typ, f.labelList(), want.typ, want.labels)
		}
	}
	if len(fams) != 3 {
		t.Errorf("%d families, want 3", len(fams))
	}
}
