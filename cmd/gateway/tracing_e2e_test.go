package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/obo-gateway/obo-gateway/internal/testkit"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestTracingEndToEnd runs the gateway with tracing on against the
// OpenTelemetry Collector's OTLP receiver, over OTLP/HTTP and OTLP/gRPC,
// and follows one frontend trace through it: the spans' tree, the trace
// context the upstream receives, the access log's IDs and audit fields,
// the exemplars, and that no span carries a token.
func TestTracingEndToEnd(t *testing.T) {
	t.Parallel()
	recv := tracingtest.Start(t)
	for _, tc := range []struct{ name, protocol, endpoint string }{
		{"otlp-http", "http/protobuf", recv.HTTPEndpoint},
		{"otlp-grpc", "grpc", recv.GRPCEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			service := "gateway-" + tc.name
			e := newEnv(t, envOptions{environ: []string{
				"OTEL_EXPORTER_OTLP_ENDPOINT=" + tc.endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL=" + tc.protocol,
				"OTEL_SERVICE_NAME=" + service,
			}})
			alice := e.user(t, "alice@contoso.test")
			tok := e.passwordToken(t, alice.name, "")

			// 1: the frontend's trace, sampled, with a tracestate: a miss
			// everywhere, so an exchange with the tenant.
			trace1, parent1 := randomHex(t, 16), randomHex(t, 8)
			r := e.do(t, request{path: "/orders/items?x=1", token: tok, header: map[string]string{
				"traceparent": "00-" + trace1 + "-" + parent1 + "-01", "tracestate": "frontend=abc",
			}})
			wantStatus(t, r, http.StatusOK)
			// 2: another trace, the same token: both caches hit.
			trace2 := randomHex(t, 16)
			r = e.do(t, request{path: "/orders/items", token: tok, header: map[string]string{
				"traceparent": "00-" + trace2 + "-" + randomHex(t, 8) + "-01",
			}})
			wantStatus(t, r, http.StatusOK)
			// 3: no trace context: the gateway starts the trace.
			wantStatus(t, e.do(t, request{path: "/orders/items", token: tok}), http.StatusOK)
			// 4: a malformed traceparent is ignored: a new trace.
			wantStatus(t, e.do(t, request{path: "/orders/items", token: tok, header: map[string]string{
				"traceparent": "00-" + strings.Repeat("0", 32) + "-" + parent1 + "-01",
			}}), http.StatusOK)

			reqs := e.up.requests()
			if len(reqs) != 4 {
				t.Fatalf("upstream got %d requests, want 4", len(reqs))
			}
			upTrace := make([][]string, 4) // trace ID, parent span ID, flags
			for i, rq := range reqs {
				tp := rq.Header.Values("Traceparent")
				if len(tp) != 1 {
					t.Fatalf("request %d: upstream Traceparent %q, want one", i+1, tp)
				}
				m := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$`).FindStringSubmatch(tp[0])
				if m == nil {
					t.Fatalf("request %d: upstream Traceparent %q is not W3C", i+1, tp[0])
				}
				upTrace[i] = m[1:]
			}
			if upTrace[0][0] != trace1 || upTrace[0][1] == parent1 || upTrace[0][2] != "01" {
				t.Errorf("upstream traceparent %v: want trace %s continued, with the gateway's span as parent (not the frontend's %s)", upTrace[0], trace1, parent1)
			}
			if ts := reqs[0].Header.Get("Tracestate"); ts != "frontend=abc" {
				t.Errorf("upstream Tracestate %q, want the frontend's", ts)
			}
			if upTrace[1][0] != trace2 {
				t.Errorf("upstream trace %s, want %s", upTrace[1][0], trace2)
			}
			if upTrace[2][0] == trace1 || upTrace[2][0] == trace2 || upTrace[3][0] == strings.Repeat("0", 32) {
				t.Errorf("requests without a valid traceparent did not start their own trace: %v", upTrace)
			}

			// The access log: IDs and the audit fields.
			lines := accessLines(e)
			if len(lines) != 4 {
				t.Fatalf("%d access log lines, want 4", len(lines))
			}
			first := lines[0]
			if first.Str("trace_id") != trace1 || first.Str("span_id") == "" {
				t.Errorf("access log trace_id %q span_id %q, want trace %s", first.Str("trace_id"), first.Str("span_id"), trace1)
			}
			for k, want := range map[string]string{
				"client_id": e.info.Apps["frontend"].ClientID, "granted_scope": "access_as_user",
				"downstream_resource": "api://orders-api", "token_source": "exchange",
			} {
				if got := first.Str(k); got != want {
					t.Errorf("access log %s = %q, want %q", k, got, want)
				}
			}
			if _, ok := first["exchange_ms"]; !ok {
				t.Errorf("access log has no exchange_ms: %v", first)
			}
			if got := lines[1].Str("token_source"); got != "l1" {
				t.Errorf("second request token_source %q, want l1", got)
			}
			if _, ok := lines[1]["exchange_ms"]; ok {
				t.Errorf("an L1 hit has exchange_ms: %v", lines[1])
			}

			// Exemplars, in the OpenMetrics exposition.
			exemplar := scrapeExemplar(t, e, "obo_gateway_http_request_duration_seconds_bucket", []string{trace1, trace2, upTrace[2][0], upTrace[3][0]})
			if !exemplar {
				t.Error("no exemplar of the requests' traces on obo_gateway_http_request_duration_seconds")
			}

			// Stop the gateway: its shutdown exports what is buffered.
			e.gw.cancel()
			if err, ok := e.gw.wait(stopTimeout); !ok || err != nil {
				t.Fatalf("gateway stop: %v (returned: %v)", err, ok)
			}
			spans, ok := recv.WaitFor(eventTimeout, func(s []tracingtest.Span) bool {
				return hasSpan(s, trace1, "GET /orders", ptrace.SpanKindClient) && hasSpan(s, trace2, "GET /orders", ptrace.SpanKindClient)
			})
			if !ok {
				t.Fatalf("the receiver did not get both traces; got %d spans", len(spans))
			}

			t1 := recv.Trace(trace1)
			server := only(t, t1, "GET /orders", ptrace.SpanKindServer)
			if server.ParentID != parent1 {
				t.Errorf("server span parent %s, want the frontend's span %s", server.ParentID, parent1)
			}
			if server.Service != service {
				t.Errorf("service.name %q, want %q", server.Service, service)
			}
			wantAttrs(t, server, map[string]string{"http.request.method": "GET", "http.route": "/orders",
				"http.response.status_code": "200", "url.path": "/orders/items", "obo_gateway.route": "orders"})
			if q, ok := server.Attrs["url.query"]; ok {
				t.Errorf("server span has the query %q", q)
			}
			if first.Str("span_id") != server.SpanID {
				t.Errorf("access log span_id %s, want the server span's %s", first.Str("span_id"), server.SpanID)
			}
			validation := only(t, t1, "token validation", ptrace.SpanKindInternal)
			wantParent(t, validation, server)
			wantAttrs(t, validation, map[string]string{"obo_gateway.token.cache": "miss",
				"obo_gateway.client.id": e.info.Apps["frontend"].ClientID, "obo_gateway.grant": "scp:access_as_user"})
			down := only(t, t1, "downstream token", ptrace.SpanKindInternal)
			wantParent(t, down, server)
			wantAttrs(t, down, map[string]string{"obo_gateway.downstream.token_source": "exchange",
				"obo_gateway.downstream.resource": "api://orders-api"})
			var entra *tracingtest.Span
			for i, s := range t1 {
				if s.Kind == ptrace.SpanKindClient && strings.HasSuffix(s.Name, "/oauth2/v2.0/token") {
					entra = &t1[i]
				}
			}
			if entra == nil {
				t.Fatalf("no client span for the token endpoint in %v", names(t1))
			}
			wantParent(t, *entra, down)
			wantAttrs(t, *entra, map[string]string{"http.request.method": "POST", "http.response.status_code": "200"})
			up := only(t, t1, "GET /orders", ptrace.SpanKindClient)
			wantParent(t, up, server)
			if up.SpanID != upTrace[0][1] {
				t.Errorf("the upstream's parent span %s is not the gateway's upstream span %s", upTrace[0][1], up.SpanID)
			}
			wantAttrs(t, up, map[string]string{"http.response.status_code": "200", "server.address": "127.0.0.1"})
			if !strings.HasSuffix(up.Attrs["url.full"], "/orders/items") {
				t.Errorf("upstream url.full %q", up.Attrs["url.full"])
			}

			t2 := recv.Trace(trace2)
			wantAttrs(t, only(t, t2, "token validation", ptrace.SpanKindInternal), map[string]string{"obo_gateway.token.cache": "hit"})
			wantAttrs(t, only(t, t2, "downstream token", ptrace.SpanKindInternal), map[string]string{"obo_gateway.downstream.token_source": "l1"})
			for _, s := range t2 {
				if strings.HasSuffix(s.Name, "/oauth2/v2.0/token") {
					t.Errorf("an L1 hit called the token endpoint: %v", s)
				}
			}
			root := only(t, recv.Trace(upTrace[2][0]), "GET /orders", ptrace.SpanKindServer)
			if root.ParentID != "" {
				t.Errorf("a request without traceparent has a parent span %s", root.ParentID)
			}

			// No token, nor any secret the test knows, in any span.
			for _, l := range leaks(fmt.Sprint(recv.Spans()), e.secrets.list()) {
				t.Errorf("a span holds a secret: %s", l)
			}
			for _, rq := range reqs {
				if b := rq.bearer(); b != "" && strings.Contains(fmt.Sprint(recv.Spans()), b) {
					t.Error("a span holds the downstream token")
				}
			}
		})
	}
}

// TestTracingRefusedRequest checks the spans of a request the gateway
// refuses: the server span says why, and no upstream span is made.
func TestTracingRefusedRequest(t *testing.T) {
	t.Parallel()
	recv := tracingtest.Start(t)
	e := newEnv(t, envOptions{environ: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + recv.HTTPEndpoint + "/v1/traces"}})
	traceID := randomHex(t, 16)
	r := e.do(t, request{path: "/orders/items", token: "not-a-token", header: map[string]string{
		"traceparent": "00-" + traceID + "-" + randomHex(t, 8) + "-01",
	}})
	wantStatus(t, r, http.StatusUnauthorized)
	e.gw.cancel()
	if err, ok := e.gw.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("gateway stop: %v (returned: %v)", err, ok)
	}
	spans, ok := recv.WaitFor(eventTimeout, func(s []tracingtest.Span) bool { return hasSpan(s, traceID, "GET /orders", ptrace.SpanKindServer) })
	if !ok {
		t.Fatalf("no server span; got %v", names(spans))
	}
	tr := recv.Trace(traceID)
	server := only(t, tr, "GET /orders", ptrace.SpanKindServer)
	wantAttrs(t, server, map[string]string{"http.response.status_code": "401"})
	if server.StatusError {
		t.Error("a 401 marks the server span as an error: only 5xx are the server's")
	}
	v := only(t, tr, "token validation", ptrace.SpanKindInternal)
	wantAttrs(t, v, map[string]string{"obo_gateway.token.refusal": "malformed"})
	for _, s := range tr {
		if s.Kind == ptrace.SpanKindClient || s.Name == "downstream token" {
			t.Errorf("a refused request has span %q", s.Name)
		}
	}
}

func hasSpan(spans []tracingtest.Span, traceID, name string, kind ptrace.SpanKind) bool {
	for _, s := range spans {
		if s.TraceID == traceID && s.Name == name && s.Kind == kind {
			return true
		}
	}
	return false
}

func only(t *testing.T, spans []tracingtest.Span, name string, kind ptrace.SpanKind) tracingtest.Span {
	t.Helper()
	var found []tracingtest.Span
	for _, s := range spans {
		if s.Name == name && s.Kind == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q (kind %v), want 1; the trace: %v", len(found), name, kind, names(spans))
	}
	return found[0]
}

func names(spans []tracingtest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"("+s.Kind.String()+")")
	}
	return out
}

func wantParent(t *testing.T, child, parent tracingtest.Span) {
	t.Helper()
	if child.ParentID != parent.SpanID || child.TraceID != parent.TraceID {
		t.Errorf("span %q: parent %s, want %q (%s)", child.Name, child.ParentID, parent.Name, parent.SpanID)
	}
	if child.Start.Before(parent.Start) {
		t.Errorf("span %q starts before its parent %q", child.Name, parent.Name)
	}
}

func wantAttrs(t *testing.T, s tracingtest.Span, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := s.Attrs[k]; !ok || got != v {
			t.Errorf("span %q: %s = %q, want %q (attributes %v)", s.Name, k, got, v, s.Attrs)
		}
	}
}

// accessLines are the gateway's access log lines, in order.
func accessLines(e *env) []testkit.Record {
	var out []testkit.Record
	for _, r := range e.gw.stderr.Records() {
		if r.Str("msg") == "request" {
			out = append(out, r)
		}
	}
	return out
}

// scrapeExemplar reports whether metric has an exemplar of one of the
// traces in the OpenMetrics exposition of the admin listener.
func scrapeExemplar(t *testing.T, e *env, metric string, traces []string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gw.admin+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("/metrics answered %q to an OpenMetrics scraper", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, " # {") {
			continue
		}
		for _, tr := range traces {
			if strings.Contains(line, `trace_id="`+tr+`"`) {
				return true
			}
		}
	}
	return false
}

// TestDemoTracing: the OTEL_* variables turn tracing on in "gateway demo"
// (here over gRPC), and the demo says where its traces go.
func TestDemoTracing(t *testing.T) {
	t.Parallel()
	recv := tracingtest.Start(t)
	p, line := startDemoWith(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.GRPCEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_SERVICE_NAME=demo-gateway",
	}, "-json", "-dir", t.TempDir())
	var info struct {
		GatewayURL  string `json:"gateway_url"`
		AccessToken string `json:"access_token"`
		Traces      string `json:"traces"`
	}
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("demo line %q: %v", line, err)
	}
	if !strings.Contains(info.Traces, recv.GRPCEndpoint) || !strings.Contains(info.Traces, "grpc") {
		t.Errorf("demo traces = %q, want the gRPC endpoint", info.Traces)
	}
	traceID := randomHex(t, 16)
	r := doHTTP(t, &http.Client{}, info.GatewayURL, request{path: "/orders/items", token: info.AccessToken,
		header: map[string]string{"traceparent": "00-" + traceID + "-" + randomHex(t, 8) + "-01"}})
	wantStatus(t, r, http.StatusOK)
	p.cancel()
	if err, ok := p.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("demo stop: %v (returned: %v)", err, ok)
	}
	spans, ok := recv.WaitFor(eventTimeout, func(s []tracingtest.Span) bool {
		return hasSpan(s, traceID, "GET /orders", ptrace.SpanKindServer) && hasSpan(s, traceID, "GET /orders", ptrace.SpanKindClient)
	})
	if !ok {
		t.Fatalf("the demo's trace did not arrive: %v", names(spans))
	}
	if s := only(t, recv.Trace(traceID), "GET /orders", ptrace.SpanKindServer); s.Service != "demo-gateway" {
		t.Errorf("service.name %q", s.Service)
	}
}

// TestTracingFailedExchange: when Entra refuses the exchange, the
// downstream-token span carries the AADSTS code and Entra's correlation
// ID, and the call to Entra is a failed client span under it.
func TestTracingFailedExchange(t *testing.T) {
	t.Parallel()
	recv := tracingtest.Start(t)
	e := newEnv(t, envOptions{environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.HTTPEndpoint}})
	tok := e.passwordToken(t, e.user(t, "alice@contoso.test").name, "")
	traceID := randomHex(t, 16)
	r := e.do(t, request{path: "/hr/payslips", token: tok, header: map[string]string{
		"traceparent": "00-" + traceID + "-" + randomHex(t, 8) + "-01",
	}})
	wantStatus(t, r, http.StatusUnauthorized) // the HR API needs MFA: a claims challenge
	line := accessLines(e)[0]
	e.gw.cancel()
	if err, ok := e.gw.wait(stopTimeout); !ok || err != nil {
		t.Fatalf("gateway stop: %v (returned: %v)", err, ok)
	}
	if _, ok := recv.WaitFor(eventTimeout, func(s []tracingtest.Span) bool {
		return hasSpan(s, traceID, "downstream token", ptrace.SpanKindInternal)
	}); !ok {
		t.Fatal("no downstream token span")
	}
	tr := recv.Trace(traceID)
	down := only(t, tr, "downstream token", ptrace.SpanKindInternal)
	if !down.StatusError || down.Attrs["obo_gateway.entra.error_code"] != "AADSTS50076" || down.Attrs["obo_gateway.entra.correlation_id"] == "" {
		t.Errorf("downstream token span: error %v, attributes %v; want AADSTS50076 with Entra's correlation ID", down.StatusError, down.Attrs)
	}
	var entra *tracingtest.Span
	for i, s := range tr {
		if strings.HasSuffix(s.Name, "/oauth2/v2.0/token") {
			entra = &tr[i]
		}
	}
	if entra == nil || entra.ParentID != down.SpanID || !entra.StatusError || entra.Attrs["http.response.status_code"] != "400" {
		t.Errorf("Entra's client span %+v, want a 400 under the downstream token span", entra)
	}
	server := only(t, tr, "GET /hr", ptrace.SpanKindServer)
	if server.StatusError {
		t.Error("a claims challenge (401) marks the server span as an error")
	}
	// The error line of the exchange carries the trace, and Entra's IDs apart.
	for _, rec := range e.gw.stderr.Records() {
		if rec.Str("msg") == "on-behalf-of exchange failed" {
			if rec.Str("trace_id") != traceID || rec.Str("span_id") == "" || rec.Str("entra_trace_id") == "" {
				t.Errorf("exchange failure line: trace_id %q span_id %q entra_trace_id %q", rec.Str("trace_id"), rec.Str("span_id"), rec.Str("entra_trace_id"))
			}
		}
	}
	if line.Str("trace_id") != traceID {
		t.Errorf("access log trace_id %q", line.Str("trace_id"))
	}
	for _, s := range tr {
		if s.Kind == ptrace.SpanKindClient && !strings.HasSuffix(s.Name, "/oauth2/v2.0/token") && !strings.Contains(s.Name, "openid-configuration") {
			t.Errorf("a request refused at the exchange went upstream: %q", s.Name)
		}
	}
}
