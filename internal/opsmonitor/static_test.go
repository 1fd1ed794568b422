package opsmonitor

// Checks of the dashboard, the rules and the documentation that need no
// running gateway; and promtool's checks of the rules.

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const runbookBase = "https://github.com/obo-gateway/obo-gateway/blob/main/docs/operations.md#"

// selectorRE matches a metric name and its selector, if any.
var selectorRE = regexp.MustCompile(`\b(obo_gateway_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?`)

// docFamily resolves a series name to its documented family.
func docFamily(doc map[string]docMetric, name string) (docMetric, bool) {
	f := familyName(name, func(base string) bool { return doc[base].typ == "histogram" })
	d, ok := doc[f]
	return d, ok
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	doc := metricReference(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (Grafana 9+)", d.SchemaVersion)
	}

	// Variables: the data source, and job and route, multi-valued with "All" as .*.
	if v, ok := d.variable("datasource"); !ok || v.Type != "datasource" || v.queryString() != "prometheus" {
		t.Errorf("variable datasource = %+v: want type datasource, query prometheus", v)
	}
	for _, name := range []string{"job", "route"} {
		v, ok := d.variable(name)
		if !ok {
			t.Errorf("no variable %s", name)
			continue
		}
		q := v.queryString()
		if v.Type != "query" || !strings.HasPrefix(q, "label_values(") || !strings.HasSuffix(q, ", "+name+")") {
			t.Errorf("variable %s: type %q, query %q: want a query label_values(…, %s)", name, v.Type, q, name)
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s: datasource %+v, want uid ${datasource}", name, v.Datasource)
		}
		if !v.IncludeAll || !v.Multi || v.AllValue != ".*" {
			t.Errorf("variable %s: includeAll %v, multi %v, allValue %q: want true, true, .*", name, v.IncludeAll, v.Multi, v.AllValue)
		}
	}

	ids := map[int]string{}
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share the id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want {prometheus ${datasource}}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q with refId %q: want an expression and a unique refId", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q, query %s: datasource %+v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}

	// Every selector filters by $job, and by $route where the metric has a route.
	for _, pe := range d.exprs() {
		if strings.Contains(expandGrafana(pe.expr), "$") {
			t.Errorf("panel %q, query %s uses a variable the tests do not know: %s", pe.panel, pe.refID, pe.expr)
		}
		for _, m := range selectorRE.FindAllStringSubmatch(pe.expr, -1) {
			fam, ok := docFamily(doc, m[1])
			if !ok {
				t.Errorf("panel %q: %s is not in the metric reference of docs/operations.md", pe.panel, m[1])
				continue
			}
			if !strings.Contains(m[2], `job=~"$job"`) {
				t.Errorf("panel %q: %s%s does not filter by job=~\"$job\"", pe.panel, m[1], m[2])
			}
			if slices.Contains(fam.labels, "route") && !strings.Contains(m[2], `route=~"$route"`) {
				t.Errorf("panel %q: %s%s has a route label but does not filter by route=~\"$route\"", pe.panel, m[1], m[2])
			}
		}
	}

	// What the issue asks the dashboard to show.
	has := func(subs ...string) func(string) bool {
		return func(e string) bool {
			for _, s := range subs {
				if !strings.Contains(e, s) {
					return false
				}
			}
			return true
		}
	}
	for _, topic := range []struct {
		name string
		ok   func(expr string) bool
	}{
		{"traffic by route", has("obo_gateway_http_requests_total", "by (route)")},
		{"5xx errors", has("obo_gateway_http_requests_total", `code=~"5.."`)},
		{"p50 latency", has("histogram_quantile(0.5,", "obo_gateway_http_request_duration_seconds_bucket")},
		{"p99 latency", has("histogram_quantile(0.99,", "obo_gateway_http_request_duration_seconds_bucket")},
		{"in-flight requests", has("obo_gateway_http_requests_in_flight")},
		{"OBO health by AADSTS code", has("obo_gateway_obo_exchanges_total", "error_code)")},
		{"cache hit ratio", has("obo_gateway_token_cache_requests_total", `result="hit"`, "/")},
		{"signing-key freshness", has("time() -", "obo_gateway_signing_keys_last_refresh_timestamp_seconds")},
		{"certificate expiry", has("obo_gateway_certificate_not_after_timestamp_seconds", "time()")},
		{"federated assertion expiry", has("obo_gateway_client_assertion_expiry_timestamp_seconds", "time()")},
		{"federated assertion failures", has("obo_gateway_client_assertion_failures_total", "reason")},
		{"upstream errors", has("obo_gateway_upstream_errors_total")},
		{"token validations by reason", has("obo_gateway_token_validations_total", "by (reason)")},
	} {
		found := false
		for _, pe := range d.exprs() {
			if topic.ok(pe.expr) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no panel shows %s", topic.name)
		}
	}
}

func TestAlertRules(t *testing.T) {
	f := loadRules(t)
	doc := metricReference(t)
	sections := alertSections(t)
	rules := f.rules()
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("recording rule %q: the file holds alerts only", r.Record)
			continue
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := runbookBase + githubAnchor(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !slices.Contains(sections, r.Alert) {
			t.Errorf("%s: docs/operations.md has no section \"### %s\" under \"## Alerts\"", r.Alert, r.Alert)
		}
		for _, m := range metricNames(r.Expr) {
			if _, ok := docFamily(doc, m); !ok {
				t.Errorf("%s: %s is not in the metric reference of docs/operations.md", r.Alert, m)
			}
		}
		if len(alertProbes(r.Expr)) == 0 {
			t.Errorf("%s: no query to probe in %q", r.Alert, r.Expr)
		}
	}
	names := f.alertNames()
	for _, s := range sections {
		if !slices.Contains(names, s) {
			t.Errorf("docs/operations.md: section %q under \"## Alerts\" names no alert of %s", s, rulesFile)
		}
	}

	// The alerts the issue asks for.
	for _, want := range []struct {
		what string
		subs []string
	}{
		{"the 5xx ratio", []string{"obo_gateway_http_requests_total", `code=~"5.."`, "/"}},
		{"OBO gateway_config failures", []string{"obo_gateway_obo_exchanges_total", `result="gateway_config"`}},
		{"OBO user-side failures", []string{"obo_gateway_obo_exchanges_total", "interaction_required", "consent_required"}},
		{"p99 latency", []string{"histogram_quantile(0.99", "obo_gateway_http_request_duration_seconds_bucket"}},
		{"stale signing keys (2h)", []string{"time() - obo_gateway_signing_keys_last_refresh_timestamp_seconds", "2 * 3600"}},
		{"signing-key refresh failures", []string{"obo_gateway_signing_key_refreshes_total", `result="failure"`}},
		{"certificate expiring within 14 days", []string{"obo_gateway_certificate_not_after_timestamp_seconds", "14 * 86400"}},
		{"client assertion failures", []string{"obo_gateway_client_assertion_failures_total"}},
		{"client assertion expiring", []string{"obo_gateway_client_assertion_expiry_timestamp_seconds - time()"}},
		{"Entra throttling", []string{"obo_gateway_obo_exchanges_total", `result="unavailable"`, `error_code=~"http_429|AADSTS50196"`}},
	} {
		found := false
		for _, r := range rules {
			ok := true
			for _, s := range want.subs {
				ok = ok && strings.Contains(r.Expr, s)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no alert on %s", want.what)
		}
	}

	// A gateway without a certificate exports the certificate's expiry as
	// 0: every rule on it must ignore 0 (TestLiveFederatedCredential checks
	// that it does on a live gateway).
	for _, r := range rules {
		if strings.Contains(r.Expr, "obo_gateway_certificate_not_after_timestamp_seconds") &&
			!strings.Contains(r.Expr, "obo_gateway_certificate_not_after_timestamp_seconds > 0") {
			t.Errorf("%s (%s): no \"obo_gateway_certificate_not_after_timestamp_seconds > 0\": it would fire for a gateway without a certificate", r.Alert, r.Labels["severity"])
		}
	}

	// Each alert has a unit test where it fires and one where it stays quiet.
	tests := loadRuleTests(t)
	if !slices.Contains(tests.RuleFiles, filepath.Base(rulesFile)) {
		t.Errorf("%s: rule_files %v does not load %s", rulesTestFile, tests.RuleFiles, filepath.Base(rulesFile))
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, n := range names {
		if !fires[n] || !quiet[n] {
			t.Errorf("%s: %s has a firing case %v, a quiet case %v: want both", n, rulesTestFile, fires[n], quiet[n])
		}
	}
	for _, severity := range []string{"warning", "critical"} {
		for _, r := range rules {
			if r.Labels["severity"] != severity {
				continue
			}
			if !firesWithSeverity(tests, r.Alert, severity) {
				t.Errorf("%s (severity %s): no unit test expects it to fire", r.Alert, severity)
			}
		}
	}
}

func firesWithSeverity(tests ruleTests, alert, severity string) bool {
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if a.Alertname != alert {
				continue
			}
			for _, e := range a.ExpAlerts {
				if e.ExpLabels["severity"] == severity {
					return true
				}
			}
		}
	}
	return false
}

// TestPromtoolRules runs promtool check rules and promtool test rules.
func TestPromtoolRules(t *testing.T) {
	bin := requireTool(t, "promtool")
	dir := filepath.Dir(rulesFile)
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(rulesFile)},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			out, err := promtool(bin, nil, dir, args...)
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			t.Log(strings.TrimSpace(out))
		})
	}
}

func TestGithubAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"OBOGatewayHigh5xxRatio": "obogatewayhigh5xxratio",
		"What to watch":          "what-to-watch",
		"A_b-c (d)":              "a_b-c-d",
	} {
		if got := githubAnchor(in); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandGrafana(t *testing.T) {
	in := `sum by (route) (rate(x{job=~"$job",route=~"${route}"}[$__rate_interval])) / increase(y{route=~"${route:regex}"}[$__range]) + z[${__interval}]`
	want := `sum by (route) (rate(x{job=~".*",route=~".*"}[1m])) / increase(y{route=~".*"}[1h]) + z[1m]`
	if got := expandGrafana(in); got != want {
		t.Errorf("expandGrafana:\n got  %s\n want %s", got, want)
	}
	if q, ok := labelValuesQuery(`label_values(m{job=~".*"}, route)`); !ok || q != `count by (route) (m{job=~".*"})` {
		t.Errorf("labelValuesQuery = %q, %v", q, ok)
	}
}
