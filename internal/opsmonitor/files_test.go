package opsmonitor

// Reading the operations material: the dashboard, the rules, their unit
// tests, and the metric reference and alert sections of docs/operations.md.

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// Paths from this package's directory (go test runs tests there).
var (
	repoRoot      = filepath.Join("..", "..")
	dashboardFile = filepath.Join(repoRoot, "deploy", "grafana", "obo-gateway.json")
	rulesFile     = filepath.Join(repoRoot, "deploy", "prometheus", "obo-gateway-rules.yaml")
	rulesTestFile = filepath.Join(repoRoot, "deploy", "prometheus", "obo-gateway-rules.test.yaml")
	operationsDoc = filepath.Join(repoRoot, "docs", "operations.md")
)

// pendingMetrics are metrics the dashboard, the alerts or the reference use
// that the gateway may not expose yet, with what they are waiting for.
// Where one is missing from the live /metrics, the checks that need it are
// logged as PENDING instead of failing; where it is present, it is checked
// like any other (and its entry can go).
var pendingMetrics = map[string]string{}

// federatedMetrics are the metrics only a gateway without a certificate
// (entra.credential workload_identity or managed_identity) exposes. The
// gateway of startEnv has a certificate: the checks that need them there
// are skipped, and TestLiveFederatedCredential makes them on a gateway of
// startFederatedEnv.
var federatedMetrics = map[string]bool{
	"obo_gateway_client_assertion_expiry_timestamp_seconds": true,
	"obo_gateway_client_assertion_failures_total":           true,
}

// ---------------------------------------------------------------------------
// The dashboard

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"` // a string, or {query, refId}
	Definition string         `json:"definition"`
	Datasource *datasourceRef `json:"datasource"`
	IncludeAll bool           `json:"includeAll"`
	Multi      bool           `json:"multi"`
	AllValue   string         `json:"allValue"`
}

// queryString is the variable's query, whichever form it has.
func (v variable) queryString() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(testkit.ReadFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the panels, with those inside collapsed rows.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// panelExpr is one query of one panel.
type panelExpr struct {
	panel, refID, expr string
}

func (d dashboard) exprs() []panelExpr {
	var out []panelExpr
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, panelExpr{p.Title, tg.RefID, tg.Expr})
		}
	}
	return out
}

func (d dashboard) variable(name string) (variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

// grafanaVars are the variables the dashboard's queries may use, and what
// they become when a test sends the query to Prometheus itself.
var grafanaVars = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\$\{?__rate_interval\}?`), "1m"},
	{regexp.MustCompile(`\$\{?__interval\}?`), "1m"},
	{regexp.MustCompile(`\$\{?__range\}?`), "1h"},
	{regexp.MustCompile(`\$\{?(route|job)(:[a-z]+)?\}?`), ".*"},
}

// expandGrafana substitutes the dashboard's variables as Grafana would with
// "All" selected and a one-hour range.
func expandGrafana(expr string) string {
	for _, v := range grafanaVars {
		expr = v.re.ReplaceAllString(expr, v.repl)
	}
	return expr
}

// labelValuesQuery turns a Grafana label_values(selector, label) variable
// query into a PromQL query that returns data when the variable has values.
var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func labelValuesQuery(q string) (string, bool) {
	m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", false
	}
	return "count by (" + m[2] + ") (" + m[1] + ")", true
}

// ---------------------------------------------------------------------------
// The rules and their unit tests

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(testkit.ReadFile(t, rulesFile), &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

func (f ruleFile) rules() []rule {
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// alertNames returns the distinct alert names, sorted.
func (f ruleFile) alertNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range f.rules() {
		if r.Alert != "" && !seen[r.Alert] {
			seen[r.Alert] = true
			out = append(out, r.Alert)
		}
	}
	sort.Strings(out)
	return out
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadRuleTests(t *testing.T) ruleTests {
	t.Helper()
	var f ruleTests
	if err := yaml.Unmarshal(testkit.ReadFile(t, rulesTestFile), &f); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	return f
}

// ---------------------------------------------------------------------------
// docs/operations.md

// docMetric is one row of the metric reference.
type docMetric struct {
	name, typ, meaning string
	labels             []string // sorted
}

var backticked = regexp.MustCompile("`([^`]+)`")

// metricReference parses the table under "## Metric reference":
// | metric | type | labels | meaning |, names and labels in backticks,
// "none" for no labels.
func metricReference(t *testing.T) map[string]docMetric {
	t.Helper()
	text := string(testkit.ReadFile(t, operationsDoc))
	_, section, ok := strings.Cut(text, "\n## Metric reference\n")
	if !ok {
		t.Fatalf("%s has no \"## Metric reference\" section", operationsDoc)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	out := map[string]docMetric{}
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := splitRow(line)
		if len(cells) != 4 {
			t.Errorf("%s: metric reference row with %d cells, want 4 (metric | type | labels | meaning): %s", operationsDoc, len(cells), line)
			continue
		}
		m := backticked.FindStringSubmatch(cells[0])
		if m == nil || !strings.HasPrefix(m[1], "obo_gateway_") {
			continue // the header, the separator, or a row that is not a metric
		}
		d := docMetric{name: m[1], typ: strings.TrimSpace(cells[1]), meaning: strings.TrimSpace(cells[3])}
		for _, l := range backticked.FindAllStringSubmatch(cells[2], -1) {
			d.labels = append(d.labels, l[1])
		}
		sort.Strings(d.labels)
		if len(d.labels) == 0 && strings.TrimSpace(cells[2]) != "none" {
			t.Errorf("%s: %s: labels %q: want backticked label names or \"none\"", operationsDoc, d.name, cells[2])
		}
		if _, dup := out[d.name]; dup {
			t.Errorf("%s: %s is listed twice", operationsDoc, d.name)
		}
		out[d.name] = d
	}
	if len(out) == 0 {
		t.Fatalf("%s: the metric reference lists no obo_gateway_ metric", operationsDoc)
	}
	return out
}

// splitRow splits a Markdown table row into its cells ("\|" is not a separator).
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, cur.String())
}

// alertSections returns the "### Name" headings under "## Alerts".
func alertSections(t *testing.T) []string {
	t.Helper()
	text := string(testkit.ReadFile(t, operationsDoc))
	_, section, ok := strings.Cut(text, "\n## Alerts\n")
	if !ok {
		t.Fatalf("%s has no \"## Alerts\" section", operationsDoc)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var out []string
	for line := range strings.Lines(section) {
		if h, ok := strings.CutPrefix(strings.TrimSpace(line), "### "); ok {
			out = append(out, strings.TrimSpace(h))
		}
	}
	return out
}

// githubAnchor is the anchor GitHub gives a heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// metricNames returns the obo_gateway_ metric names an expression uses.
var metricNameRE = regexp.MustCompile(`\bobo_gateway_[a-zA-Z0-9_]+`)

func metricNames(expr string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range metricNameRE.FindAllString(expr, -1) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// familyName maps a series name to its family among known: a histogram's
// _bucket, _sum and _count series belong to the histogram.
func familyName(name string, isHistogram func(string) bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && isHistogram(base) {
			return base
		}
	}
	return name
}
