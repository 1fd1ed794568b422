package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/obo-gateway/obo-gateway/internal/auth"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/proxy"
	"github.com/obo-gateway/obo-gateway/internal/tokencache"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
)

// benchBody is the upstream's answer, the same small JSON body as
// bench/benchenv's upstream.
const benchBody = `{"ok":true,"service":"bench-upstream","items":[1,2,3]}`

// newBenchGateway is the gateway's hot path as the production wiring builds
// it, without Entra: the validator with its verified-token cache on, a real
// tokencache.OBO (with its metrics) in front of a fake exchanger, the real
// proxy and transport, and a JSON logger at the production default level
// (info, so the access log is written, to io.Discard).
// next answers the exchanges; nil means a fakeTokens with one token for all.
func newBenchGateway(b *testing.B, upstream string, next tokencache.Exchanger) (http.Handler, *tokencache.OBO, *fakeTokens) {
	b.Helper()
	return newTracedBenchGateway(b, upstream, next, nil)
}

// newTracedBenchGateway is newBenchGateway with tracing through tracer
// (nil: off), wired as gateway.New wires it.
func newTracedBenchGateway(b *testing.B, upstream string, next tokencache.Exchanger, tracer *tracing.Tracer) (http.Handler, *tokencache.OBO, *fakeTokens) {
	b.Helper()
	_, set := testKeys(b)
	keys, err := auth.NewStaticKeySet(set)
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	authm := auth.NewMetrics(reg)
	v, err := auth.NewValidator(auth.ValidatorConfig{
		Keys: keys, Metadata: testMetadata, TenantID: testTenant, ClientID: testClientID,
		Metrics: authm, CacheBudget: 32 << 20, Tracer: tracer,
	})
	if err != nil {
		b.Fatal(err)
	}
	fake := &fakeTokens{token: downstreamToken}
	if next == nil {
		next = fake
	}
	cache, err := tokencache.NewOBO(tokencache.OBOConfig{
		Next: next, Budget: 512 << 20, Metrics: tokencache.NewMetrics(reg),
	})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if tracer.On() {
		log = slog.New(tracing.LogHandler(log.Handler()))
	}
	tr := proxy.NewTransport(proxy.TransportConfig{})
	b.Cleanup(tr.CloseIdleConnections)
	rt := ordersRoute(upstream)
	rt.RequiredScopes = []string{"access_as_user"}
	rt.Timeout = config.Duration(30 * time.Second)
	h, err := NewHandler(HandlerConfig{
		Routes:    []config.Route{rt},
		Validator: v,
		Tokens:    cache,
		Proxy:     proxy.New(proxy.Config{Transport: tr, Logger: log, Metrics: proxy.NewMetrics(reg), Tracer: tracer}),
		Edge:      newEdge(config.Limits{}, nil, nil, log),
		Metrics:   metrics.NewHTTP(reg),
		Logger:    log,
		Authority: testAuthority,
		Tracer:    tracer,
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, cache, fake
}

// benchUpstream is the upstream of the benchmarks: a loopback HTTP/1.1
// server that answers every request with the same canned response, reading
// each request's head into a buffer of its connection and allocating
// nothing per request, so that the allocations a benchmark reports are the
// gateway's (and its client's), not the upstream's. It serves bodiless
// requests only (the benchmarks send GETs).
type benchUpstream struct {
	URL string
	ln  net.Listener
}

func newBenchUpstream(b *testing.B) *benchUpstream {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(c, resp)
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return &benchUpstream{URL: "http://" + ln.Addr().String(), ln: ln}
}

// serveCanned answers each request head read from c with resp, until c
// closes. A request head ends with an empty line.
func serveCanned(c net.Conn, resp []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // "\r\n": the end of the head
				break
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// hotPath builds the gateway in front of up and returns its handler and a
// function serving one request with a user token whose validation and
// downstream token are cached after the first call (made here).
func hotPath(b *testing.B, upstream string) (serve func(b *testing.B), cache *tokencache.OBO, fake *fakeTokens) {
	h, cache, fake := newBenchGateway(b, upstream, nil)
	authz := "Bearer " + userToken(b, nil)
	serve = func(b *testing.B) { serveAuthorized(b, h, authz) }
	serve(b) // the one exchange and the one full validation
	return serve, cache, fake
}

// serveOK serves one GET /orders/items with tok through h; it must answer 200.
func serveOK(b *testing.B, h http.Handler, tok string) {
	serveAuthorized(b, h, "Bearer "+tok)
}

// serveAuthorized serves one GET /orders/items with the Authorization
// header authz through h, into a response writer like the one net/http's
// server gives a handler (a fresh header map, the body written out and
// counted); it must answer 200. The request costs what http.NewRequest
// allocates; the header value is the caller's, made once, as a server
// reads it from its buffer.
func serveAuthorized(b *testing.B, h http.Handler, authz string) {
	serveTraced(b, h, authz, "")
}

// serveTraced is serveAuthorized with a frontend's traceparent, when not "".
func serveTraced(b *testing.B, h http.Handler, authz, traceparent string) {
	// http.NewRequest rather than httptest.NewRequest, which allocates a
	// 4 KiB reader per request that a real server pools.
	r, err := http.NewRequest(http.MethodGet, "http://gateway.test/orders/items", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header["Authorization"] = []string{authz}
	if traceparent != "" {
		r.Header["Traceparent"] = []string{traceparent}
	}
	w := benchWriter{header: http.Header{}}
	h.ServeHTTP(&w, r)
	if w.status != http.StatusOK || w.n != len(benchBody) {
		b.Fatalf("status %d, %d bytes", w.status, w.n)
	}
}

// benchWriter is a ResponseWriter that keeps the status and counts the
// body: what a handler writes goes nowhere, as to a fast client.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// BenchmarkHotPath is one request through the gateway's API handler with a
// token whose validation and downstream token are cached: request ID,
// access log, metrics, verified-token cache hit, downstream-token cache hit,
// reverse proxy to a loopback upstream (an httptest server in the same
// process, whose cost is included). "direct" is the same upstream request
// without the gateway (an http.Client GET through the gateway's transport),
// the baseline of the same invocation. Each iteration includes building the
// request and a response recorder.
//
//	go test -run '^$' -bench HotPath -benchmem ./internal/gateway
func BenchmarkHotPath(b *testing.B) {
	up := newBenchUpstream(b)

	b.Run("direct", func(b *testing.B) {
		tr := proxy.NewTransport(proxy.TransportConfig{})
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Get(up.URL + "/items")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})

	serve, _, _ := hotPath(b, up.URL)
	b.Run("cached-token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b)
		}
	})
	b.Run("cached-token-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b)
			}
		})
	})

	// Tracing on, as gateway.New wires the request path: the SDK's batch
	// span processor in front of an exporter that drops the batches (not
	// the gateway's span limits and export counting) (the export itself
	// runs in the SDK's goroutine, not the request's). "sampled": every
	// request's five spans recorded (the frontend's sampled traceparent,
	// parent-based sampler); "unsampled": the frontend's traceparent says
	// not sampled: the context is carried and passed on, nothing recorded.
	for _, tc := range []struct{ name, flags string }{{"traced-sampled", "01"}, {"traced-unsampled", "00"}} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h, _, _ := newTracedBenchGateway(b, up.URL, nil, tracing.FromProvider(tp))
		authz := "Bearer " + userToken(b, nil)
		traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + tc.flags
		serveTraced(b, h, authz, traceparent)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serveTraced(b, h, authz, traceparent)
			}
		})
	}
}

// discardExporter drops the spans it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkHotPathBigCache is BenchmarkHotPath's cached-token with 100,000
// other entries in the downstream-token cache: a hit must cost the same (a
// hash and a map lookup in one shard of the LRU).
func BenchmarkHotPathBigCache(b *testing.B) {
	up := newBenchUpstream(b)
	serve, cache, fake := hotPath(b, up.URL)
	const others = 100_000
	for i := range others {
		_, err := cache.Exchange(context.Background(), obo.Request{
			Assertion: fmt.Sprintf("other-user-token-%d", i), TenantID: testTenant,
			Scopes: []string{"api://orders-api/.default"}, Route: "orders",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if n := cache.Len(); n != others+1 {
		b.Fatalf("cache holds %d entries, want %d", n, others+1)
	}
	if n := len(fake.requests()); n != others+1 {
		b.Fatalf("%d exchanges, want %d (one per distinct token)", n, others+1)
	}
	b.Run("cached-token-100k-entries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b)
		}
	})
}

// mintingTokens is a TokenSource that answers each exchange with a new
// downstream token of an Entra-like size, allocated per call as MSAL's JSON
// decoding allocates it.
type mintingTokens struct{ n atomic.Int64 }

func (m *mintingTokens) Exchange(_ context.Context, _ obo.Request) (obo.Token, error) {
	i := m.n.Add(1)
	tok := fmt.Sprintf("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.%0*d.sig", downstreamTokenSize-43, i)
	return obo.Token{AccessToken: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// downstreamTokenSize is the length of a downstream token from the local
// tenant (bench/run.sh's obo_gateway_token_cache_bytes: 1,430 B per entry
// with the entry's overhead); real Entra tokens are 1.2–2 KB.
const downstreamTokenSize = 1380

// BenchmarkMemoryPerUser pushes distinct users through the gateway's handler
// (each a first request: a full validation and an exchange), then reports
// what stays on the Go heap per cached user after a full collection: bytes
// (live-B/user) and objects (live-objs/user, what each garbage collection
// has to mark). It measures memory, not time; one iteration is enough:
//
//	go test -run '^$' -bench MemoryPerUser -benchtime 1x ./internal/gateway
func BenchmarkMemoryPerUser(b *testing.B) {
	const users = 4000
	up := newBenchUpstream(b)
	toks := make([]string, users)
	for i := range toks {
		toks[i] = userToken(b, map[string]any{
			"oid": fmt.Sprintf("%08x-1111-4222-8333-%012x", i, i), "sub": fmt.Sprintf("sub-%039d", i),
			"uti": fmt.Sprintf("uti-%018d", i), "name": fmt.Sprintf("User %d", i),
			"preferred_username": fmt.Sprintf("user%d@contoso.example", i),
		})
	}
	for b.Loop() {
		h, cache, _ := newBenchGateway(b, up.URL, &mintingTokens{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, tok := range toks {
			serveOK(b, h, tok)
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := cache.Len(); n != users {
			b.Fatalf("the downstream-token cache holds %d entries, want %d", n, users)
		}
		runtime.KeepAlive(h)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/users, "live-B/user")
		b.ReportMetric(float64(int64(after.HeapObjects)-int64(before.HeapObjects))/users, "live-objs/user")
	}
}

// heapAndStacks is the memory a collection leaves in use, heap and
// goroutine stacks, in bytes.
func heapAndStacks() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// openConns opens n connections to addr and sends request on each, without
// reading the answer when hold is set (the upstream holds it), else reading
// it whole (the connection is then idle, kept alive).
func openConns(b *testing.B, addr, request string, n int, hold bool) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(c, request); err != nil {
			b.Fatal(err)
		}
		if !hold {
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%v %v", resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		}
		conns = append(conns, c)
	}
	return conns
}

// BenchmarkMemoryPerConnection reports the memory (Go heap and stacks, after
// a full collection) of an idle keep-alive connection to the gateway, and,
// the baseline of the same invocation, of one to a plain net/http server
// (the upstream). Client and server run in this process, so both figures
// include the client's side of the connection (a net.Conn and a 512-byte
// reader). It sizes limits.max_connections:
//
//	go test -run '^$' -bench MemoryPer -benchtime 1x ./internal/gateway
func BenchmarkMemoryPerConnection(b *testing.B) {
	const n = 500
	up := newBenchUpstream(b)
	h, _, _ := newBenchGateway(b, up.URL, nil)
	gw := httptest.NewServer(h)
	b.Cleanup(gw.Close)
	tok := userToken(b, nil)
	// The reference: a bare net/http server's connection.
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, benchBody) }))
	b.Cleanup(ref.Close)
	for b.Loop() {
		for _, tc := range []struct {
			name, addr, request string
		}{
			{"net/http", ref.Listener.Addr().String(), "GET /items HTTP/1.1\r\nHost: up\r\n\r\n"},
			{"gateway", gw.Listener.Addr().String(), "GET /orders/items HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + tok + "\r\n\r\n"},
		} {
			before := heapAndStacks()
			conns := openConns(b, tc.addr, tc.request, n, false)
			after := heapAndStacks()
			for _, c := range conns {
				c.Close()
			}
			b.ReportMetric(float64(after-before)/n, tc.name+"-B/conn")
		}
	}
}

// BenchmarkMemoryPerInFlightRequest reports the memory of a request the
// upstream holds: through the gateway (client, gateway, the gateway's
// connection to the upstream, upstream) and, the baseline, straight to the
// upstream (client, upstream). The difference is what the gateway adds per
// request in flight; it sizes limits.max_in_flight.
func BenchmarkMemoryPerInFlightRequest(b *testing.B) {
	const n = 500
	release := make(chan struct{})
	var arrived sync.WaitGroup
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
		_, _ = io.WriteString(w, benchBody)
	}))
	b.Cleanup(up.Close)
	h, _, _ := newBenchGateway(b, up.URL, nil)
	gw := httptest.NewServer(h)
	b.Cleanup(gw.Close)
	tok := userToken(b, nil)
	// Warm: the token validated and exchanged once.
	arrived.Add(1)
	warm := openConns(b, gw.Listener.Addr().String(), "GET /orders/w HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\n\r\n", 1, true)
	arrived.Wait()
	release <- struct{}{}
	warm[0].Close()
	for b.Loop() {
		var perReq [2]float64
		for i, tc := range []struct {
			name, addr, request string
		}{
			{"direct", up.Listener.Addr().String(), "GET /items HTTP/1.1\r\nHost: up\r\n\r\n"},
			{"gateway", gw.Listener.Addr().String(), "GET /orders/items HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + tok + "\r\n\r\n"},
		} {
			before := heapAndStacks()
			arrived.Add(n)
			conns := openConns(b, tc.addr, tc.request, n, true)
			arrived.Wait()
			after := heapAndStacks()
			for range n {
				release <- struct{}{}
			}
			for _, c := range conns {
				c.Close()
			}
			perReq[i] = float64(after-before) / n
			b.ReportMetric(perReq[i], tc.name+"-B/req")
		}
		b.ReportMetric(perReq[1]-perReq[0], "added-B/req")
	}
}
