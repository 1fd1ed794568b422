package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
)

// OpenTelemetry's process-wide hooks are set by main, not by run: with two
// gateways in one process (the tests run run() concurrently), gateway A's
// failed exports (its collector is down) stay out of gateway B's log.
// (Found by the second review.)
func TestOTelErrorsGoToTheirOwnGateway(t *testing.T) {
	collector := testkit.ClosedAddr(t)
	a := newEnv(t, envOptions{environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + collector}})
	b := newEnv(t, envOptions{}) // no tracing at all; started after A
	_ = a.do(t, request{path: "/open/x"})
	a.gw.cancel()
	if err, ok := a.gw.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("gateway A stop: %v (returned: %v)", err, ok)
	}
	for _, r := range b.gw.stderr.Records() {
		if line := fmt.Sprint(r); strings.Contains(line, "opentelemetry") {
			t.Errorf("gateway B (no tracing) logged gateway A's OpenTelemetry error: %s", line)
		}
	}
}
