package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/obo-gateway/obo-gateway/internal/reqid"
)

// Leg is the way a route's requests take to the upstream.
type Leg string

const (
	// LegAuto is the fast leg, unless an HTTP proxy from the environment
	// (HTTP_PROXY, HTTPS_PROXY) applies to the upstream.
	LegAuto Leg = ""
	// LegFast sends requests as HTTP/1.1 on the proxy's own pool of
	// keep-alive connections, written and read in the handler's
	// goroutine: no handoff to a transport's goroutines, no copy of the
	// request. Upgrades (WebSocket) and requests with trailers still take
	// the standard leg.
	LegFast Leg = "fast"
	// LegStandard is httputil.ReverseProxy over net/http's Transport:
	// HTTP/2 to https upstreams that offer it, HTTP proxies from the
	// environment.
	LegStandard Leg = "standard"
)

// fastLeg carries one route's requests.
type fastLeg struct {
	p    *Proxy
	rt   Route
	pool *connPool
	host string // the upstream's host[:port], the Host header sent
}

// takes reports whether the fast leg carries r: not an upgrade, which the
// standard leg hands over, nor a request with trailers, which it frames.
func (f *fastLeg) takes(r *http.Request) bool {
	return upgradeType(r.Header) == "" && len(r.Trailer) == 0
}

// serve forwards r with fw to path (r's, without the route's prefix when it
// strips it; its body is g.body) and copies the answer to g, reporting
// failures to the route's error handler as the standard leg does.
func (f *fastLeg) serve(g *guardWriter, r *http.Request, fw Forward, path, rawPath string, fail func(http.ResponseWriter, *http.Request, error)) {
	ctx := r.Context()
	start := time.Now()
	// The exchange lives in the pooled guard: a request allocates neither.
	x := &g.x
	*x = exchange{leg: f, g: g, r: r, fw: fw, path: path, rawPath: rawPath, hasBody: g.body != nil}
	if f.rt.Timeout > 0 {
		// One deadline for the whole wait for the answer's head: a
		// connection from the pool, the dial, a retry, the claims retry.
		x.deadline = start.Add(f.rt.Timeout)
	}
	resp, c, err := x.roundTrip(ctx, fw.token())
	if err == nil && resp.StatusCode == http.StatusUnauthorized && f.rt.ClaimsRetry != nil {
		resp, c, err = x.answerChallenge(ctx, resp, c)
	}
	if err != nil {
		fail(g, r, f.timeoutCause(err, start))
		return
	}
	f.p.metrics.observe(ctx, f.rt.Name, time.Since(start))
	if f.rt.Timeout > 0 && c != nil {
		// The route timeout bounds the wait for the headers only: a
		// streamed body is not cut by it. The client's end still ends
		// the connection (watch), also if it came meanwhile.
		_ = c.SetDeadline(time.Time{})
		if ctx.Err() != nil {
			c.interrupt()
		}
	}
	f.respond(g, r, resp, c, x)
}

// timeoutCause tells the error handler that the route timeout, not the
// network, ended the wait: once the deadline has passed, whatever the read
// made of it (a deadline error, or a header line cut in the middle).
func (f *fastLeg) timeoutCause(err error, start time.Time) error {
	if f.rt.Timeout > 0 && time.Since(start) >= f.rt.Timeout {
		return fmt.Errorf("%w (%v): %w", errTimeout, f.rt.Timeout, err)
	}
	return err
}

// exchange is one request on the fast leg: what it needs to send the
// request again (a new token, a dead kept-alive connection).
type exchange struct {
	leg      *fastLeg
	g        *guardWriter
	r        *http.Request
	fw       Forward
	path     string // the path upstream of the route's prefix, decoded
	rawPath  string // and escaped, when not path's own escaping
	hasBody  bool
	deadline time.Time   // the route timeout's end; zero without one
	sent     bool        // the body was read, wholly or in part: it cannot be sent again
	stop     func() bool // ends the watch of the request's context on the connection
}

// roundTrip sends the request with token on a pooled connection and reads
// the answer's head, once more on a new connection when a kept-alive one
// turns out closed before it answered.
func (x *exchange) roundTrip(ctx context.Context, token string) (*http.Response, *upstreamConn, error) {
	for attempt := 0; ; attempt++ {
		c, err := x.leg.pool.get(ctx, x.deadline)
		if err != nil {
			return nil, nil, err
		}
		resp, err := x.send(ctx, c, token)
		if err == nil {
			return resp, c, nil
		}
		x.leg.pool.discard(c)
		x.unwatch()
		if attempt == 0 && c.reused && errors.Is(err, errConnClosedEarly) && !x.sent && replayable(x.r) {
			continue
		}
		return nil, nil, err
	}
}

// watch makes the request's end (the client gone) and the route timeout
// interrupt any read or write on c.
func (x *exchange) watch(ctx context.Context, c *upstreamConn) {
	if !x.deadline.IsZero() {
		_ = c.SetDeadline(x.deadline)
	}
	x.stop = context.AfterFunc(ctx, c.interrupt)
}

// unwatch ends watch; false means the context ended and c's deadline is
// spent.
func (x *exchange) unwatch() bool {
	if x.stop == nil {
		return true
	}
	ok := x.stop()
	x.stop = nil
	return ok
}

var aLongTimeAgo = time.Unix(1, 0)

// send writes the request on c and reads the answer's head, skipping (or
// relaying) the informational answers before it.
func (x *exchange) send(ctx context.Context, c *upstreamConn, token string) (*http.Response, error) {
	x.watch(ctx, c)
	if err := x.writeRequest(c.bw, token); err != nil {
		if c.reused && !x.sent && isConnReset(err) {
			return nil, errConnClosedEarly
		}
		if x.sent && x.g.body.failure() == nil { // sent: there is a body
			// The upstream stopped reading the body: it may have answered
			// first (413, 401) and closed, as net/http's Transport would
			// find. Its answer is the one to give; the connection ends.
			if resp := x.earlyAnswer(c); resp != nil {
				return resp, nil
			}
		}
		return nil, err
	}
	resp, err := x.readHead(c)
	if err != nil && c.reused && (err == io.EOF || isConnReset(err)) {
		return nil, errConnClosedEarly
	}
	return resp, err
}

// readHead reads the answer's head, skipping (or relaying) the
// informational answers before it, at most maxInformational of them, all
// within MaxResponseHeaderBytes.
func (x *exchange) readHead(c *upstreamConn) (*http.Response, error) {
	c.head.n = x.leg.p.fast.MaxResponseHeaderBytes
	defer func() { c.head.n = -1 }()
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(c.br, x.r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, errors.New("proxy: the upstream switched protocols unasked")
			}
			return resp, nil
		}
		if i == maxInformational {
			return nil, errTooManyInformational
		}
		x.relayInformational(resp)
	}
}

// earlyAnswerWait is how long an answer the upstream sent before it stopped
// reading the body is waited for.
const earlyAnswerWait = 250 * time.Millisecond

// earlyAnswer reads an answer the upstream gave before reading the whole
// body, or returns nil. The answer's connection is closed after it.
func (x *exchange) earlyAnswer(c *upstreamConn) *http.Response {
	wait := time.Now().Add(earlyAnswerWait)
	if !x.deadline.IsZero() && x.deadline.Before(wait) {
		wait = x.deadline
	}
	_ = c.SetReadDeadline(wait)
	resp, err := x.readHead(c)
	if err != nil {
		return nil
	}
	resp.Close = true
	return resp
}

// relayInformational passes a 103 Early Hints to the client, as the
// standard leg's ReverseProxy does (the guard keeps only its Link
// headers); other 1xx answers are the leg's own business.
func (x *exchange) relayInformational(resp *http.Response) {
	if resp.StatusCode != http.StatusEarlyHints {
		return
	}
	g := x.g
	h := g.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	g.WriteHeader(http.StatusEarlyHints)
	clear(h) // as ReverseProxy: the guard puts the gateway's headers back
}

// writeRequest writes the request head, under the rules of rules.go, and
// its body, then flushes.
func (x *exchange) writeRequest(bw *bufio.Writer, token string) error {
	f, r := x.leg, x.r
	secret := x.fw.secretValue()
	if token != "" && !httpguts.ValidHeaderFieldValue(token) {
		return errors.New("proxy: the upstream token is not a valid header value")
	}
	path, rawPath, query := upstreamURL(f.rt.Upstream, x.path, x.rawPath, r.URL.RawQuery, secret)
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if rawPath != "" {
		bw.WriteString(rawPath)
	} else {
		bw.WriteString(escapePath(path))
	}
	if query != "" {
		bw.WriteByte('?')
		bw.WriteString(query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(f.host)
	bw.WriteString("\r\n")

	trusted := f.p.trustedPeer(r.RemoteAddr)
	rules := requestRules{secret: secret, cookies: f.rt.Cookies, trusted: trusted, conn: r.Header["Connection"], traced: x.fw.traceparent != ""}
	id := reqid.FromContext(r.Context())
	for name, vals := range r.Header {
		if (id != "" && name == reqid.Header) || !rules.keep(name, vals) {
			continue
		}
		for _, v := range vals {
			writeHeader(bw, name, v)
		}
	}
	// X-Forwarded-*: as the standard leg sets them, and dropped, as there,
	// when a value a trusted proxy sent holds the user's token.
	fwd := forwardedOf(r, trusted)
	if !holdsSecret("", fwd.priorFor, secret) {
		bw.WriteString("X-Forwarded-For: ")
		for _, v := range fwd.priorFor {
			bw.WriteString(v)
			bw.WriteString(", ")
		}
		bw.WriteString(fwd.forIP)
		bw.WriteString("\r\n")
	}
	switch {
	case len(fwd.host) > 0:
		if !holdsSecret("", fwd.host, secret) {
			for _, v := range fwd.host {
				writeHeader(bw, "X-Forwarded-Host", v)
			}
		}
	case r.Host != "" && (secret == "" || !strings.Contains(r.Host, secret)):
		writeHeader(bw, "X-Forwarded-Host", r.Host)
	}
	switch {
	case len(fwd.protoKept) > 0:
		if !holdsSecret("", fwd.protoKept, secret) {
			for _, v := range fwd.protoKept {
				writeHeader(bw, "X-Forwarded-Proto", v)
			}
		}
	default:
		writeHeader(bw, "X-Forwarded-Proto", fwd.proto)
	}
	if id != "" && httpguts.ValidHeaderFieldValue(id) {
		writeHeader(bw, reqid.Header, id)
	}
	if tp := x.fw.traceparent; tp != "" {
		writeHeader(bw, "Traceparent", tp)
		if ts := x.fw.tracestate; ts != "" && httpguts.ValidHeaderFieldValue(ts) {
			writeHeader(bw, "Tracestate", ts)
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if token != "" {
		bw.WriteString("Authorization: Bearer ")
		bw.WriteString(token)
		bw.WriteString("\r\n")
	}
	switch {
	case x.hasBody && r.ContentLength > 0:
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		x.sent = true
		if err := x.copyBody(bw, r.ContentLength); err != nil {
			return err
		}
	case x.hasBody && r.ContentLength < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		x.sent = true
		cw := httputil.NewChunkedWriter(bw)
		if err := x.copyBody(cw, -1); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		bw.WriteString("\r\n")
	default:
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// copyBody streams the client's body to w: n bytes, or to its end (n < 0).
// A body that ends early is the client's failure (clientBody records it).
func (x *exchange) copyBody(w io.Writer, n int64) error {
	bp := x.leg.p.buffers.get()
	defer x.leg.p.buffers.put(bp)
	buf := *bp
	var src io.Reader = x.g.body
	if n >= 0 {
		src = io.LimitReader(x.g.body, n)
	}
	written, err := io.CopyBuffer(w, onlyReader{src}, buf)
	if err == nil && n >= 0 && written < n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// onlyReader hides a reader's WriteTo, so that io.CopyBuffer uses the
// buffer given.
type onlyReader struct{ io.Reader }

// writeHeader writes one header line. The client's names and values were
// checked by net/http's server; the gateway's own are checked where made.
func writeHeader(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// escapePath is the escaped form of a decoded path, as url.URL writes it.
func escapePath(path string) string {
	u := url.URL{Path: path}
	return u.EscapedPath()
}

// replayable reports a request that may be sent twice, as net/http's
// Transport decides it: no body, and a method that changes nothing (or an
// idempotency key).
func replayable(r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	_, xok := r.Header["X-Idempotency-Key"]
	return ok || xok
}

// isConnReset reports a connection the peer closed or reset.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}

// answerChallenge answers an upstream's claims challenge as the standard
// leg's claimsTransport does: a new token with the claims, the request sent
// once more; otherwise the challenge goes to the client.
func (x *exchange) answerChallenge(ctx context.Context, resp *http.Response, c *upstreamConn) (*http.Response, *upstreamConn, error) {
	f := x.leg
	claims := challengeClaims(resp.Header.Values("WWW-Authenticate"))
	if claims == "" {
		return resp, c, nil
	}
	if x.hasBody {
		f.p.metrics.claimsChallenge(f.rt.Name, "passed_body")
		return resp, c, nil
	}
	tok, rerr := f.rt.ClaimsRetry(ctx, claims)
	if rerr == nil && x.fw.carriesSecret(tok) {
		f.p.log.LogAttrs(ctx, slog.LevelError, "proxy: the upstream token contains the user's token; not forwarding",
			slog.String("route", f.rt.Name), slog.String("request_id", reqid.FromContext(ctx)))
		rerr = errors.New("the new upstream token contains the user's token")
	}
	if rl := (*RetryLaterError)(nil); errors.As(rerr, &rl) {
		x.release(resp, c)
		result := "shed"
		if rl.Shed == "" {
			result = "unavailable"
		}
		f.p.metrics.claimsChallenge(f.rt.Name, result)
		return nil, nil, rerr
	}
	if rerr != nil {
		f.p.metrics.claimsChallenge(f.rt.Name, "passed_exchange_failed")
		f.p.log.LogAttrs(ctx, slog.LevelInfo, "upstream claims challenge: new token refused; passing the challenge to the frontend",
			slog.String("route", f.rt.Name), slog.String("request_id", reqid.FromContext(ctx)), slog.String("error", rerr.Error()))
		return resp, c, nil
	}
	// The first answer is kept in memory, its connection released before
	// the retry takes one (it could be the only one the pool may open).
	first := x.drain(resp, c)
	resp2, c2, err := x.roundTrip(ctx, tok)
	if err != nil {
		// The first answer is still a valid one to give.
		f.p.metrics.claimsChallenge(f.rt.Name, "passed_retry_failed")
		if first == nil {
			return nil, nil, err
		}
		return first, nil, nil
	}
	result := "retried"
	if resp2.StatusCode == http.StatusUnauthorized {
		result = "retried_still_refused"
	}
	f.p.metrics.claimsChallenge(f.rt.Name, result)
	return resp2, c2, nil
}

// drain reads a small answer's body into memory, so that it can still be
// given once its connection is released, and releases the connection (to
// the pool when the answer ended cleanly); it returns nil for a large
// answer. The read is still watched: the client's end or the route
// timeout interrupts it.
func (x *exchange) drain(resp *http.Response, c *upstreamConn) *http.Response {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10+1))
	clean := x.unwatch()
	if err != nil || len(body) > 64<<10 || !clean || resp.Close {
		x.leg.pool.discard(c)
		if err != nil || len(body) > 64<<10 {
			return nil
		}
	} else {
		_ = c.SetDeadline(time.Time{})
		x.leg.pool.put(c)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	resp.ContentLength = int64(len(body))
	return resp
}

// release gives up an answer: its connection is closed.
func (x *exchange) release(resp *http.Response, c *upstreamConn) {
	x.unwatch()
	x.leg.pool.discard(c)
}

// respond writes the answer to the client, as ReverseProxy does: the
// hop-by-hop headers dropped, the response rules of response.go applied
// (to the trailers too), the body streamed (flushed at once when its
// length is unknown or it is an event stream), the trailers after it. The
// connection goes back to the pool when the body was read to its end.
func (f *fastLeg) respond(g *guardWriter, r *http.Request, resp *http.Response, c *upstreamConn, x *exchange) {
	removeHopByHop(resp.Header)
	filterHeader(resp.Header, f.rt.Cookies)
	filterHeader(resp.Trailer, f.rt.Cookies)
	h := g.Header()
	for k, vv := range resp.Header {
		if prior, ok := h[k]; ok {
			h[k] = append(prior, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	g.WriteHeader(resp.StatusCode)

	reuse := !resp.Close
	if resp.Body != http.NoBody && r.Method != http.MethodHead {
		flush := resp.ContentLength < 0 || isEventStream(resp.Header)
		if flush {
			// The head now, as ReverseProxy sends it: a stream's first
			// bytes may be long in coming.
			_ = http.NewResponseController(g).Flush()
		}
		switch err := f.copyResponse(g, resp.Body, flush); {
		case errors.Is(err, errClientWrite):
			reuse = false // the client went away: the rest is not read
		case err != nil:
			// The upstream failed half-way: the answer cannot be mended
			// now, only cut, as ReverseProxy cuts it.
			x.unwatch()
			if c != nil {
				f.pool.discard(c)
			}
			f.p.log.LogAttrs(r.Context(), slog.LevelWarn, "proxy: upstream response body failed",
				slog.String("route", f.rt.Name), slog.String("error", err.Error()),
				slog.String("request_id", reqid.FromContext(r.Context())))
			panic(http.ErrAbortHandler)
		}
	}
	if len(resp.Trailer) > 0 {
		filterHeader(resp.Trailer, f.rt.Cookies)
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				h[k] = vv
			}
		} else {
			for k, vv := range resp.Trailer {
				h[http.TrailerPrefix+k] = vv
			}
		}
	}
	if !x.unwatch() {
		reuse = false // the request's end interrupted the connection
	}
	switch {
	case c == nil: // an answer kept in memory (drain): its connection is gone
	case reuse:
		_ = c.SetDeadline(time.Time{})
		f.pool.put(c)
	default:
		f.pool.discard(c)
	}
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("proxy: writing to the client failed")

// copyResponse copies body to g until its end, flushing after each read
// when flush is set.
func (f *fastLeg) copyResponse(g *guardWriter, body io.Reader, flush bool) error {
	bp := f.p.buffers.get()
	defer f.p.buffers.put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(g)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := g.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports a server-sent event stream, which ReverseProxy
// flushes at once.
func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}

// removeHopByHop drops the hop-by-hop headers of an answer, and those it
// names in Connection, as ReverseProxy does.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}
