package config

import (
	"strings"
	"testing"
)

// When both OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS
// are set, the traces-specific one is used; the generic one is checked too,
// because the exporters read both from the process themselves and would log
// an unparsable one's value (the API key). The problem names the variable
// and shows neither the value nor the key. (Found by the second review.)
func TestEveryOTelHeadersVariableIsChecked(t *testing.T) {
	f := newFiles(t)
	const secret = "s3cr3t%zz-api-key"
	_, err := load(t, fullYAML(f), map[string]string{
		"OTEL_SDK_DISABLED":                  "false",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces",
		"OTEL_EXPORTER_OTLP_HEADERS":         "api-key=" + secret, // bad percent-encoding
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "api-key=good",
	})
	if err == nil {
		t.Fatal("Load accepted an unparsable OTEL_EXPORTER_OTLP_HEADERS beside OTEL_EXPORTER_OTLP_TRACES_HEADERS")
	}
	p := findProblem(t, err, "tracing.headers")
	if p.EnvVar != "OTEL_EXPORTER_OTLP_HEADERS" {
		t.Errorf("problem from %q, want OTEL_EXPORTER_OTLP_HEADERS", p.EnvVar)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(p.Value, "s3cr3t") {
		t.Errorf("the problem shows the key: %v (value %q)", err, p.Value)
	}
}
