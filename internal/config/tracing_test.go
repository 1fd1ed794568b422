package config

import (
	"fmt"
	"strings"
	"testing"
)

// A collector endpoint carrying its API key in the query (some SaaS
// backends accept ?api-key=): tracing refuses it, its message does not
// quote the key, and neither the FieldError's Value ("the offending value
// when it is safe to show") nor the redacted configuration shows it.
func TestTracingEndpointQueryIsRedacted(t *testing.T) {
	f := newFiles(t)
	const secret = "hunter2-api-key"
	endpoint := "https://otlp.example.com/v1/traces?api-key=" + secret
	_, err := load(t, fullYAML(f), map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint})
	if err == nil {
		t.Fatal("Load accepted an endpoint with a query")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the message quotes the key: %v", err)
	}
	p := findProblem(t, err, "tracing.traces_endpoint")
	if strings.Contains(p.Value, secret) {
		t.Errorf("FieldError.Value %q holds the key", p.Value)
	}
	// Tracing off: the endpoint is not checked, and the configuration to
	// print or log shows it.
	c := mustLoad(t, fullYAML(f), map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint})
	if s := fmt.Sprint(c.Redacted().Tracing, c.Tracing.String()); strings.Contains(s, secret) {
		t.Errorf("the redacted configuration shows the key: %s", s)
	}
}
