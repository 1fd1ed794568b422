package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// A collector that is down "loses spans, not requests" (docs), and the
// operator sees it: the gateway's JSON log says so (its exporter's warning,
// and the SDK's errors routed there), and the spans lost are counted.
func TestTracingExportFailuresReachTheLog(t *testing.T) {
	t.Parallel()
	collector := testkit.ClosedAddr(t)
	e := newEnv(t, envOptions{environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + collector}})
	_ = e.do(t, request{path: "/open/x"}) // any answer: its server span is to be exported
	e.gw.cancel()
	if err, ok := e.gw.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("gateway stop: %v (returned: %v)", err, ok)
	}
	found := false
	for _, r := range e.gw.stderr.Records() {
		if line := fmt.Sprint(r); strings.Contains(line, collector) || strings.Contains(line, "connection refused") {
			found = true
		}
	}
	if !found {
		t.Errorf("no line of the gateway's log says the spans could not be exported; its log:\n%s", e.gw.stderr)
	}
}
