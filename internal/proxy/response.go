package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/reqlog"
)

// The response side of the proxy: what an upstream may say to the client.
// The gateway is one origin shared by every upstream, so an upstream must
// not set what acts on the whole origin (cookies, alternative services,
// reporting, HSTS, service workers, client hints), and the gateway owns CORS.

// dropResponseHeader reports an upstream response header (or trailer) that
// must not reach the client; cookies says the route forwards cookies.
func dropResponseHeader(name string, cookies bool) bool {
	const acPrefix = "access-control-"
	switch {
	case len(name) > len(acPrefix) && headerNameIs(name[:len(acPrefix)], acPrefix):
		return true
	case headerNameIs(name, "set-cookie"), headerNameIs(name, "set-cookie2"), headerNameIs(name, "clear-site-data"):
		return !cookies
	}
	for _, o := range originWideHeaders {
		if headerNameIs(name, o) {
			return true
		}
	}
	return false
}

// originWideHeaders act on the gateway's whole origin, not on one response.
var originWideHeaders = []string{
	"alt-svc", "nel", "report-to", "reporting-endpoints", "strict-transport-security",
	"service-worker-allowed", "accept-ch", "critical-ch", "origin-agent-cluster",
}

func filterHeader(h http.Header, cookies bool) {
	for name := range h {
		if dropResponseHeader(name, cookies) {
			delete(h, name)
		}
	}
}

// modifyResponse applies the response header rules to the headers, and to the trailers once the body has been
// read (a trailer reaches the client as a header would).
func modifyResponse(rt Route) func(*http.Response) error {
	return func(resp *http.Response) error {
		filterHeader(resp.Header, rt.Cookies)
		filterHeader(resp.Trailer, rt.Cookies) // those announced
		if mayHaveTrailers(resp) {
			resp.Body = &trailerFilter{ReadCloser: resp.Body, resp: resp, cookies: rt.Cookies}
		}
		return nil
	}
}

// mayHaveTrailers reports a response whose body can end with trailers: a
// chunked HTTP/1.1 body or an HTTP/2 one. A 101's body is the upgraded
// connection and stays as it is.
func mayHaveTrailers(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return false
	}
	if resp.ProtoMajor >= 2 {
		return true
	}
	for _, te := range resp.TransferEncoding {
		if te == "chunked" {
			return true
		}
	}
	return false
}

// trailerFilter applies the rules to the trailers, which the transport
// fills in when the body ends, before ReverseProxy copies them.
type trailerFilter struct {
	io.ReadCloser
	resp    *http.Response
	cookies bool
}

func (t *trailerFilter) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		filterHeader(t.resp.Trailer, t.cookies)
	}
	return n, err
}

// guardWriter stands between ReverseProxy and the client. It holds the
// proxy's state of one request: the client's body, and what happened
// upstream, reported to the access log's writer when the proxy is done.
//
// It also guards the client against the 1xx answers ReverseProxy relays
// from the upstream. ReverseProxy copies a 1xx's
// headers into the response's header map, writes the 1xx, then clears the
// map: the upstream's headers would reach the client unfiltered, and the
// gateway's own (X-Request-Id, CORS) would be lost from the final answer. The
// guard lets only 103 Early Hints through, with its Link headers alone (the
// client got its 100 Continue from net/http when the body was first read),
// and puts the gateway's headers back after the clear.
type guardWriter struct {
	http.ResponseWriter
	saved [8]savedHeader // the gateway's headers when the proxy began
	n     int
	more  http.Header // beyond eight, rarely
	wiped bool        // a 1xx cleared the header map

	log      *reqlog.Writer // where the outcome goes; nil: nowhere
	start    time.Time
	upstream reqlog.Upstream
	decided  bool        // the error handler set upstream; WriteHeader keeps it
	body     *clientBody // the request body forwarded, if any
	x        exchange    // the fast leg's state of the request

}

// maxInformational bounds the informational (1xx) answers an upstream may
// send before its final one, on both legs.
const maxInformational = 32

// errTooManyInformational ends a request whose upstream sent more.
var errTooManyInformational = errors.New("proxy: too many informational answers from the upstream")

type savedHeader struct {
	name  string
	value []string
}

// guards are reused: a guard is per request, and the hot path allocates none.
var guards = sync.Pool{New: func() any { return new(guardWriter) }}

func (g *guardWriter) reset(w http.ResponseWriter) {
	g.ResponseWriter, g.n, g.more, g.wiped = w, 0, nil, false
	g.upstream, g.decided, g.body = reqlog.Upstream{}, false, nil
	if g.log = reqlog.From(w); g.log != nil {
		g.start = time.Now()
	}
	for name, v := range w.Header() {
		if g.n < len(g.saved) {
			g.saved[g.n] = savedHeader{name, v}
			g.n++
			continue
		}
		if g.more == nil {
			g.more = http.Header{}
		}
		g.more[name] = v
	}
}

// guardOf is the guard the proxy gave ReverseProxy as w, or nil.
func guardOf(w http.ResponseWriter) *guardWriter {
	g, _ := w.(*guardWriter)
	return g
}

// answered records the upstream's answer, the first time a final status is
// written (or the connection is hijacked for its 101).
func (g *guardWriter) answered(status int) {
	if g.decided || g.upstream.Status != 0 {
		return
	}
	g.upstream.Status = status
	if g.log != nil {
		g.upstream.Duration = time.Since(g.start)
	}
}

// failed records a failure: status is the one the proxy chose (0: no
// upstream answer to speak of), kind the failure's.
func (g *guardWriter) failed(status int, kind string) {
	if g == nil {
		return
	}
	g.upstream.Status, g.upstream.Err, g.decided = status, kind, true
	if g.log != nil {
		g.upstream.Duration = time.Since(g.start)
	}
}

// bodyFailure is the error reading the client's body failed with, or nil.
func (g *guardWriter) bodyFailure() error {
	if g == nil || g.body == nil {
		return nil
	}
	return g.body.failure()
}

// finish reports the outcome and returns the guard to the pool.
func (g *guardWriter) finish() {
	if g.upstream != (reqlog.Upstream{}) {
		g.log.SetUpstream(g.upstream)
	}
	clear(g.saved[:])
	g.ResponseWriter, g.more, g.log, g.body = nil, nil, nil, nil
	g.x = exchange{}
	guards.Put(g)
}

func (g *guardWriter) restore() {
	if !g.wiped {
		return
	}
	g.wiped = false
	h := g.ResponseWriter.Header()
	for _, s := range g.saved[:g.n] {
		h[s.name] = s.value
	}
	for name, v := range g.more {
		h[name] = v
	}
}

func (g *guardWriter) Header() http.Header {
	g.restore()
	return g.ResponseWriter.Header()
}

func (g *guardWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		h := g.ResponseWriter.Header()
		for name := range h {
			if code != http.StatusEarlyHints || !headerNameIs(name, "link") {
				delete(h, name)
			}
		}
		if code == http.StatusEarlyHints {
			g.ResponseWriter.WriteHeader(code)
		}
		g.wiped = true // ReverseProxy clears the map next; restore lazily
		return
	}
	g.restore()
	g.answered(code)
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardWriter) Write(b []byte) (int, error) {
	g.restore()
	g.answered(http.StatusOK)
	return g.ResponseWriter.Write(b)
}

// Hijack hands the client's connection to ReverseProxy for an upgrade: the
// upstream answered 101, which ReverseProxy writes on the connection.
func (g *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	g.answered(http.StatusSwitchingProtocols)
	return http.NewResponseController(g.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the client's writer (flush,
// hijack for upgrades, deadlines).
func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }
