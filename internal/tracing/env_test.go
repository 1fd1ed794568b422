package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

func testCAFile(t *testing.T) string {
	t.Helper()
	ca, err := pki.NewCA("review CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path, err := pki.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM(), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The gateway reads the OTEL_* variables into config.Tracing and builds
// the exporter from it, but the OTLP exporters read the same variables
// from the process environment themselves, before the gateway's options.
// What the configuration validated must win: a CA with an http://
// endpoint, insecure with an https:// one, the file's https:// traces
// endpoint beside the environment's http:// generic one all start.
func TestTheEnvironmentDoesNotOverrideTheConfig(t *testing.T) {
	ca := testCAFile(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		c    Config
	}{
		{"ca file with an http endpoint", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca},
			Config{Endpoint: "http://127.0.0.1:1", CAFile: ca}},
		{"insecure=true with an https endpoint over http/protobuf", map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"},
			Config{Endpoint: "https://127.0.0.1:1", Insecure: true}},
		{"file's traces_endpoint https, environment's generic endpoint http", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
			Config{Endpoint: "http://127.0.0.1:1", TracesEndpoint: "https://127.0.0.1:2/v1/traces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if err := tc.c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tr, err := New(context.Background(), tc.c)
			if err != nil {
				t.Fatalf("New refused a configuration Validate accepts: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 0)
			cancel()
			_ = tr.Shutdown(ctx)
		})
	}
}

// gRPC: OTEL_EXPORTER_OTLP_CERTIFICATE in the environment and a plain-text
// http:// collector: the exporter speaks plain text, as the endpoint's
// scheme says, not TLS from the environment's CA.
func TestGRPCPlaintextDespiteACertificateInTheEnvironment(t *testing.T) {
	ca := testCAFile(t)
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)
	recv := tracingtest.Start(t)
	tr, err := New(context.Background(), Config{Endpoint: recv.GRPCEndpoint, Protocol: ProtocolGRPC, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(tr)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
	if _, ok := recv.WaitFor(3*time.Second, func(s []tracingtest.Span) bool { return len(s) > 0 }); !ok {
		t.Error("no span reached the plain-text gRPC collector: the exporter used TLS from OTEL_EXPORTER_OTLP_CERTIFICATE")
	}
}
