// Package tracingtest runs a real OTLP receiver for tests: the
// OpenTelemetry Collector's own otlpreceiver, on loopback, over OTLP/HTTP
// and OTLP/gRPC, collecting the spans it receives. Only tests import it.
package tracingtest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// Receiver is a running OTLP receiver.
type Receiver struct {
	// HTTPEndpoint is the OTLP/HTTP base endpoint, http://127.0.0.1:port
	// (traces at /v1/traces); GRPCEndpoint the OTLP/gRPC one.
	HTTPEndpoint, GRPCEndpoint string

	mu      sync.Mutex
	spans   []Span
	arrived chan struct{} // signalled on each batch
}

// Span is one received span, flattened.
type Span struct {
	TraceID, SpanID, ParentID string // hex
	Name                      string
	Kind                      ptrace.SpanKind
	Attrs                     map[string]string // values as strings
	StatusError               bool
	StatusMessage             string
	Service                   string // the resource's service.name
	Resource                  map[string]string
	Links                     []string // linked span IDs
	Start, End                time.Time
}

// Start starts a receiver on two free loopback ports and stops it when the
// test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{arrived: make(chan struct{}, 1)}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = grpcAddr
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = httpAddr
	sink, err := consumer.NewTraces(r.consume)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatalf("otlpreceiver: %v", err)
	}
	if err := recv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("otlpreceiver start: %v", err)
	}
	t.Cleanup(func() { _ = recv.Shutdown(context.Background()) })
	r.HTTPEndpoint, r.GRPCEndpoint = "http://"+httpAddr, "http://"+grpcAddr
	return r
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (r *Receiver) consume(_ context.Context, td ptrace.Traces) error {
	var got []Span
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := attrs(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j).Spans()
			for k := range ss.Len() {
				s := ss.At(k)
				sp := Span{
					TraceID: s.TraceID().String(), SpanID: s.SpanID().String(), Name: s.Name(), Kind: s.Kind(),
					Attrs: attrs(s.Attributes()), StatusError: s.Status().Code() == ptrace.StatusCodeError,
					StatusMessage: s.Status().Message(), Service: res["service.name"], Resource: res,
					Start: s.StartTimestamp().AsTime(), End: s.EndTimestamp().AsTime(),
				}
				sp.ParentID = s.ParentSpanID().String() // "" for a root
				for l := range s.Links().Len() {
					sp.Links = append(sp.Links, s.Links().At(l).SpanID().String())
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	return nil
}

func attrs(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

// Spans are the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Trace are the spans received of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// WaitForSpan waits until a span named name has arrived, or timeout.
func (r *Receiver) WaitForSpan(timeout time.Duration, name string) bool {
	_, ok := r.WaitFor(timeout, func(spans []Span) bool {
		for _, s := range spans {
			if s.Name == name {
				return true
			}
		}
		return false
	})
	return ok
}

// WaitFor waits until ok holds of the spans received, or timeout; it
// returns the spans and whether ok held.
func (r *Receiver) WaitFor(timeout time.Duration, ok func([]Span) bool) ([]Span, bool) {
	deadline := time.After(timeout)
	for {
		spans := r.Spans()
		if ok(spans) {
			return spans, true
		}
		select {
		case <-r.arrived:
		case <-deadline:
			return r.Spans(), false
		}
	}
}
