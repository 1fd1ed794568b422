package proxy

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

func TestMetrics(t *testing.T) {
	forEachLeg(t, func(t *testing.T, leg Leg) {
		up, _ := newUpstream(t, nil)
		g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{leg: leg})
		for range 3 {
			if resp, _ := g.get(t, "/orders/1?id=12345"); resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
		}
		if n := testkit.HistogramCount(t, g.reg, "obo_gateway_upstream_request_duration_seconds", map[string]string{"route": "orders"}); n != 3 {
			t.Errorf("duration observations = %d, want 3", n)
		}
		// The error series exist at zero from the start, labelled by route and
		// kind only: never a path.
		const want = `
# HELP obo_gateway_upstream_errors_total Upstream requests that got no response, by route and kind (timeout, connect, canceled by the client, other).
# TYPE obo_gateway_upstream_errors_total counter
obo_gateway_upstream_errors_total{kind="canceled",route="orders"} 0
obo_gateway_upstream_errors_total{kind="connect",route="orders"} 0
obo_gateway_upstream_errors_total{kind="other",route="orders"} 0
obo_gateway_upstream_errors_total{kind="timeout",route="orders"} 0
`
		if err := testutil.GatherAndCompare(g.reg, strings.NewReader(want), "obo_gateway_upstream_errors_total"); err != nil {
			t.Error(err)
		}
		mfs, err := g.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var names []string
				for _, l := range m.GetLabel() {
					names = append(names, l.GetName())
					if strings.Contains(l.GetValue(), "/") {
						t.Errorf("%s has a path-like label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
					}
				}
				if !slices.Equal(names, []string{"route"}) && !slices.Equal(names, []string{"kind", "route"}) && !slices.Equal(names, []string{"result", "route"}) {
					t.Errorf("%s has labels %v, want route (and kind or result) only", mf.GetName(), names)
				}
			}
		}
	})
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.addRoute("orders")
	m.observe(context.Background(), "orders", 1)
	m.failed("orders", kindOther)
}
