package opsmonitor

// The checks against a live gateway: its /metrics against the metric
// reference of docs/operations.md and promtool's linter; and, with a real
// Prometheus scraping it, every query of the dashboard and of the alerts.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// liveDeadline bounds the wait for Prometheus to have scraped enough for
// every query to return data (two scrapes a second apart, in practice).
const liveDeadline = 60 * time.Second

// liveMetrics is a scrape's obo_gateway_ families.
type liveMetrics map[string]*liveFamily

func parseLive(t *testing.T, text string) liveMetrics {
	t.Helper()
	fams, err := parseExposition(text)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	out := liveMetrics{}
	for name, f := range fams {
		if strings.HasPrefix(name, "obo_gateway_") {
			out[name] = f
		}
	}
	return out
}

func (l liveMetrics) isHistogram(name string) bool {
	f := l[name]
	return f != nil && f.typ == "histogram"
}

// missing sorts the metrics expr uses that the gateway does not expose
// into pending ones, those of a federated credential (federatedMetrics) and
// unknown ones.
func (l liveMetrics) missing(expr string) (pending, federated, unknown []string) {
	for _, n := range metricNames(expr) {
		f := familyName(n, l.isHistogram)
		if l[f] != nil {
			continue
		}
		if _, ok := pendingMetrics[f]; ok {
			pending = append(pending, f)
		} else if federatedMetrics[f] {
			federated = append(federated, f)
		} else {
			unknown = append(unknown, n)
		}
	}
	return pending, federated, unknown
}

// logPending logs, once per metric, that a pending metric is absent or present.
func (l liveMetrics) logPending(t *testing.T) {
	t.Helper()
	var names []string
	for n := range pendingMetrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if l[n] == nil {
			t.Logf("PENDING: %s is not exposed yet (%s): the checks that need it are skipped", n, pendingMetrics[n])
		} else {
			t.Logf("pending metric %s is exposed now: checked like the others (its pendingMetrics entry can go)", n)
		}
	}
}

// TestMetricReferenceMatchesLiveMetrics: every obo_gateway_ metric family
// the gateway exposes is in the metric reference of docs/operations.md,
// with its type and labels, and every metric listed there is exposed; and
// every metric the dashboard and the alerts use exists.
func TestMetricReferenceMatchesLiveMetrics(t *testing.T) {
	e := startEnv(t)
	st := newStatuses()
	e.round(context.Background(), st) // so that the families without pre-created series appear
	st.check(t)
	live := parseLive(t, e.scrape(t))
	live.logPending(t)
	doc := metricReference(t)

	var names []string
	for n := range live {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		checkReferenceRow(t, doc, live, n)
	}
	for n := range doc {
		if live[n] != nil {
			continue
		}
		if why, ok := pendingMetrics[n]; ok {
			t.Logf("PENDING: %s is documented but not exposed yet (%s)", n, why)
			continue
		}
		if federatedMetrics[n] {
			continue // a gateway with a certificate has none: TestLiveFederatedCredential
		}
		t.Errorf("%s is in the metric reference of docs/operations.md but the gateway does not expose it (shared cache: %s)", n, e.redis)
	}

	// The dashboard's and the alerts' metrics exist.
	var exprs []probe
	for _, pe := range loadDashboard(t).exprs() {
		exprs = append(exprs, probe{fmt.Sprintf("panel %q query %s", pe.panel, pe.refID), pe.expr})
	}
	for _, r := range loadRules(t).rules() {
		exprs = append(exprs, probe{"alert " + r.Alert, r.Expr})
	}
	for _, p := range exprs {
		if _, _, unknown := live.missing(p.expr); len(unknown) > 0 {
			t.Errorf("%s uses %v, which the gateway does not expose", p.what, unknown)
		}
	}
}

// checkReferenceRow checks the metric reference's row of the exposed family n.
func checkReferenceRow(t *testing.T, doc map[string]docMetric, live liveMetrics, n string) {
	t.Helper()
	f := live[n]
	d, ok := doc[n]
	if !ok {
		t.Errorf("%s (%s, labels %v) is exposed but not in the metric reference of docs/operations.md", n, f.typ, f.labelList())
		return
	}
	if d.typ != f.typ {
		t.Errorf("%s: docs/operations.md says type %s, /metrics says %s", n, d.typ, f.typ)
	}
	if got := f.labelList(); !slices.Equal(d.labels, got) {
		t.Errorf("%s: docs/operations.md lists labels %v, /metrics has %v", n, d.labels, got)
	}
	if d.meaning == "" {
		t.Errorf("%s: no meaning in docs/operations.md", n)
	}
}

// TestLiveDashboardAndAlerts runs a real Prometheus against the gateway
// while traffic of every kind flows, then checks that promtool's linter
// finds nothing in /metrics, that every query of every dashboard panel
// returns data, that every alert's expression, without its threshold,
// returns data, and that the rule groups load and evaluate without errors.
func TestLiveDashboardAndAlerts(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	promtoolBin := requireTool(t, "promtool")
	start := time.Now()

	e := startEnv(t)
	st := e.drive(t)
	st.waitRounds(t, 1, startTimeout)
	prom := startPrometheus(t, promBin, hostPort(t, e.adminURL), rulesFile)
	deadline := time.Now().Add(liveDeadline)
	t.Logf("gateway and Prometheus up in %v (shared cache: %s)", time.Since(start).Round(time.Millisecond), e.redis)

	exposition := e.scrape(t)
	live := parseLive(t, exposition)
	live.logPending(t)

	t.Run("promtool check metrics", func(t *testing.T) {
		out, err := promtool(promtoolBin, []byte(exposition), "", "check", "metrics")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("promtool check metrics on the live /metrics: %v\n%s", err, out)
		}
	})

	if !t.Run("Prometheus scrapes the gateway", func(t *testing.T) {
		prom.pollProbes(t, deadline, []probe{{"target up", fmt.Sprintf(`up{job=%q} == 1`, promJob)}})
	}) {
		t.FailNow()
	}

	// skipPending filters out probes whose metrics are pending and absent;
	// a metric neither exposed nor pending fails the probe at once.
	skipPending := func(t *testing.T, probes []probe) []probe {
		var out []probe
		for _, p := range probes {
			pending, federated, unknown := live.missing(p.expr)
			switch {
			case len(unknown) > 0:
				t.Errorf("%s uses %v, which the gateway does not expose\n  query: %s", p.what, unknown, p.expr)
			case len(pending) > 0:
				t.Logf("PENDING: %s skipped: it needs %v", p.what, pending)
			case len(federated) > 0:
				t.Logf("%s skipped: a gateway with a certificate has no %v (TestLiveFederatedCredential checks it)", p.what, federated)
			default:
				out = append(out, p)
			}
		}
		return out
	}

	t.Run("dashboard queries return data", func(t *testing.T) {
		d := loadDashboard(t)
		var probes []probe
		for _, pe := range d.exprs() {
			expr := expandGrafana(pe.expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q query %s: unknown variable in %s", pe.panel, pe.refID, pe.expr)
				continue
			}
			probes = append(probes, probe{fmt.Sprintf("panel %q query %s", pe.panel, pe.refID), expr})
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, ok := labelValuesQuery(expandGrafana(v.queryString()))
			if !ok {
				t.Errorf("variable %s: query %q is not label_values(…)", v.Name, v.queryString())
				continue
			}
			probes = append(probes, probe{"variable " + v.Name, q})
		}
		if len(probes) == 0 {
			t.Fatal("the dashboard has no queries")
		}
		prom.pollProbes(t, deadline, skipPending(t, probes))
	})

	t.Run("alert expressions return data", func(t *testing.T) {
		var probes []probe
		for _, r := range loadRules(t).rules() {
			for i, q := range alertProbes(r.Expr) {
				probes = append(probes, probe{fmt.Sprintf("alert %s (%s) operand %d", r.Alert, r.Labels["severity"], i+1), q})
			}
		}
		prom.pollProbes(t, deadline, skipPending(t, probes))
	})

	t.Run("rule groups loaded and healthy", func(t *testing.T) {
		prom.waitRulesHealthy(t, deadline)
	})

	t.Run("every traffic scenario got its status", func(t *testing.T) {
		st.check(t)
	})
	t.Logf("live checks done in %v", time.Since(start).Round(time.Millisecond))
}

// waitRulesHealthy waits until Prometheus has loaded the rule file and
// evaluated every rule once without error, and reports what is wrong if
// it has not by the deadline (or as soon as a rule fails).
func (p *prometheus) waitRulesHealthy(t *testing.T, deadline time.Time) {
	t.Helper()
	want := loadRules(t)
	for {
		groups, err := p.rules(context.Background())
		problems := ruleHealth(want, groups, err)
		if len(problems) == 0 {
			t.Logf("%d rule groups evaluated without errors", len(groups))
			return
		}
		if time.Now().After(deadline) || hasRuleErrors(groups) {
			for _, p := range problems {
				t.Error(p)
			}
			return
		}
		time.Sleep(pollEvery) // polling until every rule has been evaluated once
	}
}

// ruleHealth compares the groups Prometheus loaded with the rule file:
// the same groups and rules, each evaluated, healthy, without error.
func ruleHealth(want ruleFile, got []ruleGroup, err error) []string {
	if err != nil {
		return []string{fmt.Sprintf("/api/v1/rules: %v", err)}
	}
	var problems []string
	byName := map[string]ruleGroup{}
	for _, g := range got {
		byName[g.Name] = g
	}
	for _, wg := range want.Groups {
		g, ok := byName[wg.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("rule group %q not loaded", wg.Name))
			continue
		}
		if len(g.Rules) != len(wg.Rules) {
			problems = append(problems, fmt.Sprintf("rule group %q: %d rules loaded, the file has %d", wg.Name, len(g.Rules), len(wg.Rules)))
		}
		for _, r := range g.Rules {
			if r.Health != "ok" || r.LastError != "" {
				problems = append(problems, fmt.Sprintf("rule %s in group %q: health %q, last error %q", r.Name, g.Name, r.Health, r.LastError))
			}
		}
	}
	return problems
}

func hasRuleErrors(groups []ruleGroup) bool {
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Health == "err" || r.LastError != "" {
				return true
			}
		}
	}
	return false
}
