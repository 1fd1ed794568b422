package main

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// End to end: an anonymous client sends one request whose User-Agent holds
// a byte that is not UTF-8 (net/http accepts obs-text). Had its server
// span carried it, the OTLP export of the batch would fail (protobuf
// strings must be UTF-8), and an honest user's trace batched with it would
// never reach the collector: anyone could blind the operators' tracing.
func TestTracingAnonymousUTF8DoesNotBlindTracing(t *testing.T) {
	t.Parallel()
	recv := tracingtest.Start(t)
	e := newEnv(t, envOptions{environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.HTTPEndpoint}})
	alice := e.user(t, "alice@contoso.test")
	tok := e.passwordToken(t, alice.name, "")
	honest := randomHex(t, 16)
	wantStatus(t, e.do(t, request{path: "/orders/items", token: tok, header: map[string]string{
		"traceparent": "00-" + honest + "-" + randomHex(t, 8) + "-01",
	}}), http.StatusOK)
	// The attacker: no token at all.
	r := e.do(t, request{path: "/orders/items", header: map[string]string{"User-Agent": "curl/8\xff"}})
	wantStatus(t, r, http.StatusUnauthorized)

	e.gw.cancel()
	if err, ok := e.gw.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("gateway stop: %v (returned: %v)", err, ok)
	}
	spans, ok := recv.WaitFor(eventTimeout, func(s []tracingtest.Span) bool {
		return hasSpan(s, honest, "GET /orders", ptrace.SpanKindServer)
	})
	if !ok {
		t.Errorf("the honest request's trace never arrived (%d spans received): the anonymous request's User-Agent lost the batch", len(spans))
	}
}
