// Package proxy forwards a route's requests to its upstream API. The request
// carries the downstream token that an earlier middleware obtained On-Behalf-Of
// the user ([Forward.SetUpstreamToken]) and never the user's own token
// ([Forward.SetSecret]): the incoming Authorization header is always dropped, and so
// is any other header or query parameter that carries the user's token.
//
// Forwarding headers are a trust boundary. X-Forwarded-For, -Host and -Proto
// sent by a client are believed only when the direct peer is a trusted proxy
// ([Config.TrustedProxies]); otherwise they are replaced with what the
// connection says.
//
// Bodies are streamed both ways and never buffered. A route's [Route.Timeout]
// bounds the wait for the upstream's response headers only, so long
// server-sent event streams are not cut.
package proxy

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/apierror"
	"github.com/obo-gateway/obo-gateway/internal/metrics"
	"github.com/obo-gateway/obo-gateway/internal/reqid"
	"github.com/obo-gateway/obo-gateway/internal/reqlog"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
	"github.com/obo-gateway/obo-gateway/internal/urlpath"
)

// Route is one upstream API behind a path prefix.
type Route struct {
	// Name labels the route's metrics and log lines. It must be short and
	// fixed (it is a metric label), and it must not be empty.
	Name string
	// PathPrefix is the prefix the router matched, e.g. "/orders". The
	// router does the matching; the proxy uses the prefix only to strip it.
	PathPrefix string
	// Upstream is the base URL requests go to: http or https, with a host,
	// and possibly a path (http://h:1/api) that the request path is joined
	// to. Its query, if any, is prepended to the request's query.
	Upstream *url.URL
	// StripPrefix removes PathPrefix, at a segment boundary, from the path
	// before it is joined to the upstream path: /orders/1 → /1 and
	// /orders → /. A path that does not start with the prefix at a segment
	// boundary (/ordersX) is answered 404.
	StripPrefix bool
	// Timeout bounds the wait for the upstream's response headers; zero
	// means no bound. It does not cut a response body that is still being
	// streamed once the headers have arrived.
	Timeout time.Duration
	// WebSocket lets requests upgrade to WebSocket ("Upgrade: websocket").
	// Otherwise such a request is answered 400. Other upgrades (h2c, TLS)
	// are never forwarded: their Upgrade header is dropped and the request
	// is served as plain HTTP/1.1, as RFC 9110 lets a server ignore it.
	WebSocket bool
	// Cookies forwards the client's Cookie header and passes back the
	// upstream's Set-Cookie and Clear-Site-Data. Otherwise both are
	// dropped: the gateway is one origin shared by every upstream, and it
	// authenticates with bearer tokens, not cookies.
	Cookies bool
	// ClaimsRetry answers an upstream's claims challenge (continuous access
	// evaluation, conditional access): when the upstream answers 401 with
	// WWW-Authenticate carrying claims="…", the proxy gets a new token with
	// those claims from it once and replays the request, if it has no body.
	// Otherwise, or if that fails, the upstream's 401 and its challenge go
	// to the frontend unchanged, for it to step up. Nil passes every
	// challenge on.
	ClaimsRetry ClaimsRetry
	// Leg is the way to the upstream: LegAuto (the default), LegFast or
	// LegStandard.
	Leg Leg
}

// validate reports a route the proxy cannot serve.
func (rt Route) validate() error {
	switch {
	case rt.Name == "":
		return fmt.Errorf("proxy: route with prefix %q has no Name", rt.PathPrefix)
	case rt.Upstream == nil:
		return fmt.Errorf("proxy: route %q has no Upstream", rt.Name)
	case rt.Upstream.Scheme != "http" && rt.Upstream.Scheme != "https":
		return fmt.Errorf("proxy: route %q: upstream scheme must be http or https, not %q", rt.Name, rt.Upstream.Scheme)
	case rt.Upstream.Host == "":
		return fmt.Errorf("proxy: route %q: upstream URL has no host", rt.Name)
	case rt.StripPrefix && !strings.HasPrefix(rt.PathPrefix, "/"):
		return fmt.Errorf("proxy: route %q: StripPrefix needs a PathPrefix starting with /, not %q", rt.Name, rt.PathPrefix)
	case rt.Timeout < 0:
		return fmt.Errorf("proxy: route %q: negative Timeout %v", rt.Name, rt.Timeout)
	}
	return nil
}

// Config configures a [Proxy].
type Config struct {
	// Transport sends the upstream requests of every route; build it once
	// and share it, so connections are pooled. Nil means
	// NewTransport(TransportConfig{}).
	Transport http.RoundTripper
	// TrustedProxies are the peers (load balancers, ingress) whose
	// X-Forwarded-For, -Host and -Proto are believed. Empty means no peer is
	// trusted, which is right when clients connect directly.
	TrustedProxies []netip.Prefix
	// Logger receives one line per failed upstream request. Nil discards.
	Logger *slog.Logger
	// Metrics records upstream latencies and failures. Nil records nothing.
	Metrics *Metrics
	// Refusals counts the requests the proxy refuses itself (a body too
	// large or too slow, an upgrade not allowed). Nil counts nothing.
	Refusals *metrics.Refusals
	// Fast tunes the fast leg's connections (LegFast, LegAuto).
	Fast FastConfig
	// Tracer records a client span per upstream request and sends the
	// upstream its W3C trace context in place of the client's; nil
	// records nothing and passes the client's traceparent on untouched.
	Tracer *tracing.Tracer
}

// Proxy makes the per-route handlers. It is safe for concurrent use.
type Proxy struct {
	transport http.RoundTripper
	trusted   []netip.Prefix
	log       *slog.Logger
	errorLog  *log.Logger // for ReverseProxy's own messages (body copy errors)
	metrics   *Metrics
	refusals  *metrics.Refusals
	buffers   bufferPool
	afterFunc afterFunc // time.AfterFunc, replaced in tests
	fast      FastConfig
	tracer    *tracing.Tracer

	poolsMu sync.Mutex
	pools   map[string]*connPool // the fast leg's, by scheme://host
}

// New returns a Proxy.
func New(cfg Config) *Proxy {
	p := &Proxy{
		transport: cfg.Transport,
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		refusals:  cfg.Refusals,
		buffers:   newBufferPool(),
		afterFunc: timeAfterFunc,
		fast:      fastFromTransport(cfg.Fast, cfg.Transport).withDefaults(),
		pools:     map[string]*connPool{},
		tracer:    cfg.Tracer,
	}
	if p.transport == nil {
		p.transport = NewTransport(TransportConfig{})
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.errorLog = slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)
	for _, pfx := range cfg.TrustedProxies {
		p.trusted = append(p.trusted, pfx.Masked())
	}
	return p
}

// Handler returns the handler that forwards rt's requests. It builds one
// httputil.ReverseProxy, so call it once per route at start-up, not per
// request. It panics if rt is malformed (no Name, no http or https Upstream
// with a host, StripPrefix without a /-prefix): configuration is validated
// before, so that is a programmer error.
//
// Before anything is sent upstream, the handler answers 400 to a path not in
// canonical form (package urlpath: the edge brings every path to it before
// routing, so the upstream reads the path the router matched; a "." or ".."
// segment would also let a request escape the upstream's base path), to a
// path that contains the user's token and to a WebSocket upgrade the route
// does not allow, 404 to a path that does not start with the prefix to
// strip, and 500 if the upstream token contains the user's token (a bug in
// the exchange before the proxy). A request body that fails while it is
// forwarded is answered for what it is, the client's failure: 413 when it
// passed http.MaxBytesReader's bound, 408 when its read deadline passed,
// 400 otherwise.
//
// Headers: the upstream gets no Cookie (unless [Route.Cookies]), none of
// the headers some frameworks take as the real path or method
// (X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, …), no Upgrade but
// a WebSocket one the route allows, and the request ID as X-Request-Id set
// after the hop-by-hop headers are removed (a client cannot remove it by
// naming it in Connection). The client gets no Set-Cookie or
// Clear-Site-Data (unless [Route.Cookies]) and no Alt-Svc: the gateway's
// origin is shared by every upstream.
//
// The handler takes the upstream token and the user's token from the
// request's [Forward] ([NewContext]), and reports what happened upstream to
// the access log's writer, when it is given one (reqlog.From). The gateway
// owns CORS (browsers' preflights never reach an upstream), so Access-Control-* headers in upstream responses are dropped
// rather than doubled. When a streamed response fails half-way, the handler
// panics with http.ErrAbortHandler to abort it, as ReverseProxy does: a
// recoverer must re-panic that value.
func (p *Proxy) Handler(rt Route) *RouteHandler {
	if err := rt.validate(); err != nil {
		panic(err.Error())
	}
	p.metrics.addRoute(rt.Name)
	h := &RouteHandler{p: p, rt: rt, prefix: strings.TrimSuffix(rt.PathPrefix, "/"), fail: p.errorHandler(rt)}
	h.rp = &httputil.ReverseProxy{
		Rewrite: p.rewrite(rt),
		Transport: &claimsTransport{
			next: &routeTransport{
				next:      p.transport,
				route:     rt.Name,
				timeout:   rt.Timeout,
				metrics:   p.metrics,
				afterFunc: p.afterFunc,
			},
			retry: rt.ClaimsRetry, route: rt.Name, log: p.log, metrics: p.metrics,
		},
		ModifyResponse: modifyResponse(rt),
		ErrorHandler:   h.fail,
		BufferPool:     p.buffers,
		ErrorLog:       p.errorLog,
	}
	if p.fastLegFor(rt) {
		h.fast = &fastLeg{p: p, rt: rt, pool: p.pool(rt.Upstream.Scheme, rt.Upstream.Host), host: rt.Upstream.Host}
	}
	return h
}

// RouteHandler forwards one route's requests (Proxy.Handler).
type RouteHandler struct {
	p      *Proxy
	rt     Route
	prefix string // PathPrefix without its trailing slash
	rp     *httputil.ReverseProxy
	fast   *fastLeg // nil: every request takes the standard leg
	fail   func(http.ResponseWriter, *http.Request, error)
}

// ServeHTTP forwards r with the Forward in its context ([NewContext]).
func (h *RouteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var f Forward
	if fc := FromContext(r.Context()); fc != nil {
		f = *fc
	}
	h.Forward(w, r, f)
}

// Forward forwards r with the upstream token and the user's token of f.
// The caller that holds them passes them here rather than in the
// request's context.
func (h *RouteHandler) Forward(w http.ResponseWriter, r *http.Request, fv Forward) {
	p, rt := h.p, h.rt
	f := &fv
	if !urlpath.IsCanonical(r.URL.EscapedPath()) {
		// The edge canonicalises every path before routing; this is the
		// proxy's own guarantee, for a handler used without it.
		apierror.Write(w, r, http.StatusBadRequest, "invalid_request", "the path is not in canonical form (no . or .. segments, encoded slashes, backslashes or semicolons)")
		return
	}
	if up := upgradeType(r.Header); up != "" && strings.EqualFold(up, "websocket") && !rt.WebSocket {
		p.refusals.Refused(metrics.ReasonUpgrade)
		reqlog.From(w).SetRefused(metrics.ReasonUpgrade)
		apierror.Write(w, r, http.StatusBadRequest, "invalid_request", "this API does not accept WebSocket upgrades through the gateway")
		return
	}
	if s := f.secretValue(); s != "" && (strings.Contains(r.URL.Path, s) || strings.Contains(r.URL.RawPath, s)) {
		apierror.Write(w, r, http.StatusBadRequest, "invalid_request", "the path must not carry the access token")
		return
	}
	if f.carriesSecret(f.token()) {
		// Fail closed.
		p.log.LogAttrs(r.Context(), slog.LevelError, "proxy: the upstream token contains the user's token; not forwarding",
			slog.String("route", rt.Name), slog.String("request_id", reqid.FromContext(r.Context())))
		apierror.Write(w, r, http.StatusInternalServerError, "internal_error", "the gateway could not prepare the upstream request")
		return
	}
	path, rawPath := r.URL.Path, r.URL.RawPath
	if rt.StripPrefix {
		var ok bool
		if path, rawPath, ok = stripPrefix(r.URL, h.prefix); !ok {
			NotFound(w, r)
			return
		}
	}
	g := guards.Get().(*guardWriter)
	g.reset(w)
	// Deferred: a response aborted half-way (http.ErrAbortHandler) is
	// reported too.
	defer g.finish()
	if p.tracer.On() {
		var span trace.Span
		r, span = h.startSpan(r, f, path, rawPath)
		defer endSpan(span, g) // before g.finish, which clears g
	}
	if r.Body != nil && r.Body != http.NoBody {
		// Remember the client's body errors, for the error handler to tell
		// them from the upstream's.
		g.body = &clientBody{ReadCloser: r.Body}
	}
	if h.fast != nil && h.fast.takes(r) {
		h.fast.serve(g, r, fv, path, rawPath, h.fail)
		return
	}
	// The standard leg: ReverseProxy reads the Forward from the context,
	// and the stripped path from a copy of the request, so that the
	// caller's (and its access log) keeps the full path.
	fc := new(Forward)
	*fc = fv
	// ReverseProxy relays the 1xx answers without a bound of its own: the
	// transport ends the request when this hook says so, in the goroutine
	// reading the answer (ReverseProxy's own hook composes with it).
	informational := 0
	ctx := httptrace.WithClientTrace(NewContext(r.Context(), fc), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			if informational++; informational > maxInformational {
				return errTooManyInformational
			}
			return nil
		},
	})
	r2 := r.WithContext(ctx)
	u := *r.URL
	u.Path, u.RawPath = path, rawPath
	r2.URL = &u
	if g.body != nil {
		r2.Body = g.body
	}
	h.rp.ServeHTTP(g, r2)
}

// startSpan starts the client span of the upstream request and sets f's
// trace context headers to it: the upstream's parent is this span. The
// request carries the span on only when it is recorded (its exemplar, the
// claims retry's spans); an unsampled one needs only the headers.
func (h *RouteHandler) startSpan(r *http.Request, f *Forward, path, rawPath string) (*http.Request, trace.Span) {
	method := tracing.Method(r.Method)
	ctx, span := h.p.tracer.Start(r.Context(), method+" "+h.rt.PathPrefix, trace.SpanKindClient)
	f.traceparent, f.tracestate = h.p.tracer.Headers(ctx)
	if !span.IsRecording() {
		return r, span
	}
	up := h.rt.Upstream
	p, raw := joinURLPath(up, path, rawPath)
	if raw == "" {
		raw = (&url.URL{Path: p}).EscapedPath()
	}
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(method),
		semconv.ServerAddress(up.Hostname()),
		semconv.URLFull(tracing.Clean(up.Scheme+"://"+up.Host+reqlog.RedactPath(raw))),
		tracing.AttrRoute.String(h.rt.Name),
	)
	port := up.Port()
	switch {
	case port != "":
		if n, err := strconv.Atoi(port); err == nil {
			span.SetAttributes(semconv.ServerPort(n))
		}
	case up.Scheme == "https":
		span.SetAttributes(semconv.ServerPort(443))
	default:
		span.SetAttributes(semconv.ServerPort(80))
	}
	return r.WithContext(ctx), span
}

// endSpan ends the upstream span with the outcome g recorded.
func endSpan(span trace.Span, g *guardWriter) {
	if !span.IsRecording() {
		span.End()
		return
	}
	u := g.upstream
	if u.Status != 0 && u.Err == "" {
		// The upstream's answer; on a failure, Status is the gateway's own
		// (502, 504, 499), not a response the upstream gave.
		span.SetAttributes(semconv.HTTPResponseStatusCode(u.Status))
	}
	switch {
	case u.Err != "":
		span.SetAttributes(semconv.ErrorTypeKey.String(u.Err), tracing.AttrUpstreamErrorKind.String(u.Err))
		span.SetStatus(codes.Error, "upstream request failed: "+u.Err)
	case u.Status >= 400:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(u.Status)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// fastFromTransport fills what c leaves unset from the standard leg's
// transport, so that both legs dial alike and trust the same CAs.
func fastFromTransport(c FastConfig, rt http.RoundTripper) FastConfig {
	t, ok := rt.(*http.Transport)
	if !ok {
		return c
	}
	if c.Dial == nil && t.DialContext != nil {
		c.Dial = t.DialContext
	}
	if c.TLS == nil && t.TLSClientConfig != nil {
		c.TLS = t.TLSClientConfig
	}
	if c.MaxIdlePerHost == 0 {
		c.MaxIdlePerHost = t.MaxIdleConnsPerHost
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = t.IdleConnTimeout
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = t.MaxConnsPerHost
	}
	if c.MaxResponseHeaderBytes == 0 {
		c.MaxResponseHeaderBytes = t.MaxResponseHeaderBytes
	}
	return c
}

// fastLegFor reports whether rt's requests take the fast leg: LegFast
// always, LegAuto unless an HTTP proxy from the environment applies to the
// upstream (the fast leg does not speak to HTTP proxies).
func (p *Proxy) fastLegFor(rt Route) bool {
	switch rt.Leg {
	case LegFast:
		return true
	case LegStandard:
		return false
	}
	if t, ok := p.transport.(*http.Transport); ok && t.Proxy != nil {
		if u, err := t.Proxy(&http.Request{URL: rt.Upstream}); err != nil || u != nil {
			return false
		}
	}
	return true
}

// pool is the fast leg's connection pool for scheme://host, shared by the
// routes to that host.
func (p *Proxy) pool(scheme, host string) *connPool {
	p.poolsMu.Lock()
	defer p.poolsMu.Unlock()
	key := scheme + "://" + host
	if c, ok := p.pools[key]; ok {
		return c
	}
	c := newConnPool(scheme, host, p.fast)
	p.pools[key] = c
	return c
}

// CloseIdleConnections closes the idle connections of both legs.
func (p *Proxy) CloseIdleConnections() {
	if t, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	p.poolsMu.Lock()
	defer p.poolsMu.Unlock()
	for _, c := range p.pools {
		c.closeIdle()
	}
}

// NotFound answers 404 with the gateway's JSON error body. Use it as the
// router's handler for paths no route matches.
func NotFound(w http.ResponseWriter, r *http.Request) {
	apierror.Write(w, r, http.StatusNotFound, "not_found", "no route matches this path")
}

// rewrite returns the ReverseProxy.Rewrite for a route. By the time it
// runs, ReverseProxy has dropped hop-by-hop headers (and those the client
// named in Connection), Forwarded and X-Forwarded-For/-Host/-Proto, and
// unparsable query parameters, and has put back Connection and Upgrade for
// an upgrade.
func (p *Proxy) rewrite(rt Route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		f := FromContext(pr.In.Context())
		secret := f.secretValue()
		out := pr.Out
		// As the fast leg (rules.go), and as pr.SetURL would.
		// The client's query, not ReverseProxy's re-encoding of it (which
		// sorts it when a parameter does not parse): scrubQuery drops those
		// one by one, on both legs.
		out.URL.Path, out.URL.RawPath, out.URL.RawQuery = upstreamURL(rt.Upstream, out.URL.Path, out.URL.RawPath, pr.In.URL.RawQuery, secret)
		out.URL.Scheme, out.URL.Host, out.Host = rt.Upstream.Scheme, rt.Upstream.Host, ""
		p.setForwarded(pr)
		h := out.Header
		if up := upgradeType(h); up != "" && !(rt.WebSocket && strings.EqualFold(up, "websocket")) {
			// h2c and the like: ignored, so the upstream answers HTTP/1.1
			// (and a 101 from it fails, as no upgrade was asked).
			delete(h, "Upgrade")
			delete(h, "Connection")
			delete(h, "Http2-Settings")
		}
		for name := range h {
			if isOverrideHeader(name) || (!rt.Cookies && (headerNameIs(name, "cookie") || headerNameIs(name, "cookie2"))) {
				delete(h, name)
			}
		}
		if id := reqid.FromContext(pr.In.Context()); id != "" {
			if v := h[reqid.Header]; len(v) != 1 || v[0] != id { // usually copied from the request already
				h[reqid.Header] = []string{id}
			}
		}
		if f.traceparent != "" {
			// The gateway's span is the upstream's parent, not the client's.
			delete(h, "Traceparent")
			delete(h, "Tracestate")
			h["Traceparent"] = []string{f.traceparent}
			if f.tracestate != "" {
				h["Tracestate"] = []string{f.tracestate}
			}
		}
		// Last, so nothing copied above can bring the token back.
		scrubHeaders(h, secret)
		if tok := f.token(); tok != "" {
			h["Authorization"] = []string{"Bearer " + tok}
		}
	}
}

// setForwarded sets X-Forwarded-For, -Host and -Proto. Behind a trusted
// proxy, the client-sent chain is kept and the peer appended, and the
// client-sent -Host and -Proto are kept. From any other peer, every
// forwarding header the client sent is dropped and the three are set from
// the connection. Forwarded (RFC 7239) is never passed on: ReverseProxy drops
// it and the proxy speaks X-Forwarded-* only.
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In.Header, pr.Out.Header
	if p.trustedPeer(pr.In.RemoteAddr) {
		if v := in["X-Forwarded-For"]; len(v) > 0 {
			out["X-Forwarded-For"] = slices.Clone(v)
		}
		pr.SetXForwarded()
		for _, name := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := in[name]; len(v) > 0 {
				out[name] = slices.Clone(v)
			}
		}
		return
	}
	for name := range out {
		if isForwardingHeader(name) {
			delete(out, name)
		}
	}
	pr.SetXForwarded()
}

func (p *Proxy) trustedPeer(remoteAddr string) bool {
	if len(p.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap().WithZone("")
	for _, pfx := range p.trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// stripPrefix returns u's path without prefix (no trailing slash; ""
// strips nothing), decoded and escaped, which must match whole segments of
// the escaped path: an encoded slash (%2F) is part of a segment, as the
// router sees it. rawPath is the canonical escaped form, forwarded as it
// is.
func stripPrefix(u *url.URL, prefix string) (path, rawPath string, ok bool) {
	if prefix == "" {
		return u.Path, u.RawPath, true
	}
	esc := u.EscapedPath()
	// Cut the escaped path after as many segments as the prefix has.
	n := strings.Count(prefix, "/")
	cut := len(esc)
	seen := 0
	for i := 0; i < len(esc); i++ {
		if esc[i] == '/' {
			if seen == n {
				cut = i
				break
			}
			seen++
		}
	}
	if esc[:cut] != prefix {
		// The prefix is canonical (config); so is the path (the edge's):
		// the escaped head matches when the decoded one does, unless the
		// head holds an escape, which a canonical prefix does not.
		head, err := url.PathUnescape(esc[:cut])
		if err != nil || head != prefix {
			return "", "", false
		}
	}
	rest := esc[cut:]
	if rest == "" {
		rest = "/"
	}
	if strings.IndexByte(rest, '%') < 0 {
		return rest, rest, true // nothing escaped: decoded, it is the same
	}
	path, err := url.PathUnescape(rest)
	if err != nil {
		return "", "", false
	}
	return path, rest, true
}

// clientBody is a request body that remembers why it failed: a body that
// broke off, passed its size bound or its read deadline. The error the
// transport returns may not say (when the server cancels the request's
// context for the failed read, the transport reports the cancellation), so
// the error handler asks the body.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// failure is the error reading the body failed with, or nil.
func (b *clientBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
