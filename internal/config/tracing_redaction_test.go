package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// An endpoint written without a scheme (host:port, the usual way for
// gRPC) but with user information: url.Parse would read "user:pw@host:4318"
// as scheme "user", with no User to redact. Neither the FieldError's Value
// (the value "safe to show"), Redacted(), String() nor LogValue() carries
// the password. (Found by the second review.)
func TestSchemelessEndpointUserInfoIsRedacted(t *testing.T) {
	f := newFiles(t)
	const secret = "s3cret-pw"
	for _, proto := range []string{"http/protobuf", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			endpoint := "gateway:" + secret + "@otel-collector:4317"
			_, err := load(t, fullYAML(f), map[string]string{"OTEL_SDK_DISABLED": "false",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": proto})
			if err == nil {
				t.Fatal("Load accepted an endpoint with credentials")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the message quotes the password: %v", err)
			}
			if p := findProblem(t, err, "tracing.traces_endpoint"); strings.Contains(p.Value, secret) {
				t.Errorf("FieldError.Value %q holds the password", p.Value)
			}
			c := mustLoad(t, fullYAML(f), map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint})
			var js bytes.Buffer
			slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "tracing", c.Tracing)
			if s := fmt.Sprint(c.Redacted().Tracing, c.Tracing.String()) + js.String(); strings.Contains(s, secret) {
				t.Errorf("the redacted configuration shows the password: %s", s)
			}
		})
	}
}

// Like Certificate and Redis, Tracing has a MarshalJSON, so that a *Config
// logged by slog's JSON handler does not show tracing.headers, the
// collector's API key. (Found by the second review.)
func TestTracingHeadersRedactedInJSON(t *testing.T) {
	f := newFiles(t)
	c := mustLoad(t, fullYAML(f), nil)
	if c.Tracing.Headers != "api-key=file-secret" {
		t.Fatalf("headers %q", c.Tracing.Headers)
	}
	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c)
	if strings.Contains(js.String(), "file-secret") {
		t.Errorf("the JSON log of the configuration shows the tracing headers:\n%s", js.String())
	}
	if !strings.Contains(js.String(), `"Password":"REDACTED"`) {
		t.Errorf("expected the certificate password redacted as a control:\n%s", js.String())
	}
}
