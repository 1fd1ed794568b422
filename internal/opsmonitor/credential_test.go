package opsmonitor

// A gateway without a certificate (entra.credential workload_identity):
// its readiness, its credential's metrics, and the dashboard and alerts
// that watch them, with a real Prometheus. Shorter than
// TestLiveDashboardAndAlerts: it sends only the requests the credential
// needs, and leaves the other panels' data to that test.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLiveFederatedCredential(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	start := time.Now()
	ctx := context.Background()

	e := startFederatedEnv(t)
	if status, body := e.readyz(t); status != http.StatusOK {
		t.Fatalf("/readyz of a gateway with a valid token file: %d %s, want 200", status, body)
	}
	// An exchange, authenticated by the token file: the assertion's expiry is set.
	if status, err := e.get(ctx, "/orders/items", e.tokens["alice"]); status != http.StatusOK {
		t.Fatalf("GET /orders/items as alice: %d %v, want 200", status, err)
	}
	exposition := e.scrape(t)
	live := parseLive(t, exposition)

	t.Run("metrics", func(t *testing.T) {
		doc := metricReference(t)
		for n := range federatedMetrics {
			if live[n] == nil {
				t.Errorf("%s is not exposed by a gateway without a certificate", n)
				continue
			}
			checkReferenceRow(t, doc, live, n)
		}
		if v, ok := sampleValue(exposition, "obo_gateway_certificate_not_after_timestamp_seconds", ""); !ok || v != 0 {
			t.Errorf("certificate expiry = %v (present %v), want 0 for a gateway without a certificate", v, ok)
		}
		now := float64(time.Now().Unix())
		if v, ok := sampleValue(exposition, "obo_gateway_client_assertion_expiry_timestamp_seconds", `kind="workload_identity"`); !ok || v < now+30*60 || v > now+61*60 {
			t.Errorf("client assertion expiry = %v (present %v), want about an hour from %v (the token's exp)", v, ok, now)
		}
		for _, reason := range []string{"unreadable", "empty", "not_a_jwt", "expired"} {
			labels := fmt.Sprintf(`kind="workload_identity",reason=%q`, reason)
			if v, ok := sampleValue(exposition, "obo_gateway_client_assertion_failures_total", labels); !ok || v != 0 {
				t.Errorf("client assertion failures{%s} = %v (present %v), want 0", labels, v, ok)
			}
		}
	})

	prom := startPrometheus(t, promBin, hostPort(t, e.adminURL), rulesFile)
	deadline := time.Now().Add(liveDeadline)
	t.Logf("gateway and Prometheus up in %v", time.Since(start).Round(time.Millisecond))
	if !t.Run("Prometheus has the credential's series", func(t *testing.T) {
		prom.pollProbes(t, deadline, []probe{
			{"target up", fmt.Sprintf(`up{job=%q} == 1`, promJob)},
			{"the assertion's expiry", fmt.Sprintf(`obo_gateway_client_assertion_expiry_timestamp_seconds{job=%q,kind="workload_identity"} > time()`, promJob)},
			{"the certificate gauge at 0", fmt.Sprintf(`obo_gateway_certificate_not_after_timestamp_seconds{job=%q} == 0`, promJob)},
		})
	}) {
		t.FailNow()
	}

	// The queries on the credential's metrics must return data; every
	// other query, whose data TestLiveDashboardAndAlerts checks, must at
	// least be one Prometheus accepts.
	var credential, others []probe
	sortProbe := func(p probe) {
		for _, n := range metricNames(p.expr) {
			if federatedMetrics[n] {
				credential = append(credential, p)
				return
			}
		}
		others = append(others, p)
	}
	for _, pe := range loadDashboard(t).exprs() {
		sortProbe(probe{fmt.Sprintf("panel %q query %s", pe.panel, pe.refID), expandGrafana(pe.expr)})
	}
	for _, r := range loadRules(t).rules() {
		if strings.Contains(r.Expr, "obo_gateway_client_assertion_") {
			for i, q := range alertProbes(r.Expr) {
				credential = append(credential, probe{fmt.Sprintf("alert %s operand %d", r.Alert, i+1), q})
			}
			continue
		}
		others = append(others, probe{"alert " + r.Alert, r.Expr})
	}
	t.Run("the credential's queries return data", func(t *testing.T) {
		if len(credential) == 0 {
			t.Fatal("no dashboard query or alert uses the federated credential's metrics")
		}
		prom.pollProbes(t, deadline, credential)
	})
	t.Run("every other query is accepted", func(t *testing.T) {
		for _, p := range others {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := prom.query(qctx, p.expr)
			cancel()
			if err != nil {
				t.Errorf("%s: %v\n  query: %s", p.what, err, p.expr)
			}
		}
	})
	t.Run("rule groups loaded and healthy", func(t *testing.T) {
		prom.waitRulesHealthy(t, deadline)
	})
	t.Run("no credential alert", func(t *testing.T) {
		// The rules' own expressions, on the data now in Prometheus (the
		// certificate gauge at 0 is there: polled above), and their state.
		for _, r := range loadRules(t).rules() {
			if r.Alert != "OBOGatewayCertificateExpiringSoon" && !strings.HasPrefix(r.Alert, "OBOGatewayClientAssertion") {
				continue
			}
			if n, err := prom.query(ctx, r.Expr); err != nil || n != 0 {
				t.Errorf("alert %s (%s): its expression returns %d series (%v), want none\n  query: %s", r.Alert, r.Labels["severity"], n, err, r.Expr)
			}
		}
		q := `ALERTS{alertname=~"OBOGatewayCertificateExpiringSoon|OBOGatewayClientAssertion.*"}`
		if n, err := prom.query(ctx, q); err != nil || n != 0 {
			t.Errorf("%s: %d series (%v), want none", q, n, err)
		}
	})

	// The token file broken: not ready, with the reason; an exchange fails
	// with 503 (the gateway's credential), counted; the alert goes pending.
	t.Run("an unusable token file", func(t *testing.T) {
		e.writeTokenFile(t, "")
		status, body := e.readyz(t)
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "empty") {
			t.Errorf("/readyz with an empty token file: %d %s, want 503 saying it is empty", status, body)
		}
		// bob: no cached token, so an exchange, so an assertion.
		if status, err := e.get(ctx, "/orders/items", e.tokens["bob"]); status != http.StatusServiceUnavailable {
			t.Errorf("GET /orders/items as bob with an empty token file: %d %v, want 503", status, err)
		}
		exposition := e.scrape(t)
		if v, _ := sampleValue(exposition, "obo_gateway_client_assertion_failures_total", `kind="workload_identity",reason="empty"`); v < 1 {
			t.Errorf("client assertion failures{empty} = %v, want at least 1", v)
		}
		if v, _ := sampleValue(exposition, "obo_gateway_obo_exchanges_total", `error_code="credential",result="unavailable",route="orders"`); v < 1 {
			t.Errorf(`exchanges{result="unavailable",error_code="credential"} = %v, want at least 1`, v)
		}
		prom.pollProbes(t, time.Now().Add(liveDeadline), []probe{{
			"OBOGatewayClientAssertionFailing pending",
			`ALERTS{alertname="OBOGatewayClientAssertionFailing",alertstate="pending",kind="workload_identity",reason="empty",severity="critical"}`,
		}})
	})
	t.Logf("federated credential checks done in %v", time.Since(start).Round(time.Millisecond))
}

// readyz returns the admin listener's /readyz status and body.
func (e *env) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := e.client.Get(e.adminURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	return resp.StatusCode, string(body)
}

// sampleValue returns the value of the sample of name with exactly the
// labels given (as /metrics writes them: sorted, quoted; "" for none).
func sampleValue(exposition, name, labels string) (float64, bool) {
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}
