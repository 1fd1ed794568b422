package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// TransportConfig tunes [NewTransport]. Zero fields take the defaults.
type TransportConfig struct {
	// MaxIdleConnsPerHost is the idle connections kept per upstream host.
	// Default 256: a gateway sends many concurrent requests to few hosts.
	MaxIdleConnsPerHost int
	// DialTimeout bounds establishing a TCP connection. Default 10s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Default 10s.
	TLSHandshakeTimeout time.Duration
	// IdleConnTimeout closes connections idle for this long. Default 90s.
	IdleConnTimeout time.Duration
	// RootCAs verifies upstream certificates. Nil means the system pool.
	RootCAs *x509.CertPool
}

// NewTransport returns the upstream transport: a clone of
// http.DefaultTransport (so HTTP_PROXY and friends still apply) with
// connection-pool limits sized for a gateway, dial and TLS handshake
// timeouts, TLS 1.2 or later, and HTTP/2 for https upstreams (plain http
// upstreams get HTTP/1.1). Compression is left to client and upstream: the
// transport neither asks for gzip nor decompresses, so bodies pass through
// as they are. Build one in main and share it across routes.
func NewTransport(c TransportConfig) *http.Transport {
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 256
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 10 * time.Second
	}
	if c.IdleConnTimeout <= 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ExpectContinueTimeout: time.Second}
	}
	t.DialContext = (&net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = c.TLSHandshakeTimeout
	t.IdleConnTimeout = c.IdleConnTimeout
	t.MaxIdleConns = 0 // no total limit: the per-host one bounds it, and hosts are few
	t.MaxIdleConnsPerHost = c.MaxIdleConnsPerHost
	t.DisableCompression = true
	t.TLSClientConfig = &tls.Config{RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	t.Protocols.SetHTTP2(true) // over TLS only: UnencryptedHTTP2 stays off
	t.ForceAttemptHTTP2 = true
	return t
}

// errTimeout is the cause the route timer cancels an upstream request with.
var errTimeout = errors.New("proxy: no upstream response headers within the route timeout")

// stopper is the part of *time.Timer the route timer needs.
type stopper interface{ Stop() bool }

type afterFunc func(time.Duration, func()) stopper

func timeAfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// routeTransport sends one route's upstream requests: it applies the route
// timeout and measures the time to response headers for the metrics.
type routeTransport struct {
	next      http.RoundTripper
	route     string
	timeout   time.Duration
	metrics   *Metrics
	afterFunc afterFunc
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.roundTrip(req)
	d := time.Since(start)
	if err == nil {
		t.metrics.observe(req.Context(), t.route, d)
	}
	return resp, err
}

// roundTrip bounds the wait for response headers with a timer that cancels
// the upstream request. Once the headers are in, the timer is stopped and
// the request's context lives until the response body is closed, so a
// streamed body is not cut.
func (t *routeTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if t.timeout <= 0 {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := t.afterFunc(t.timeout, func() { cancel(errTimeout) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		// The timer fired: even if headers arrived in the same instant, the
		// context is canceled and the body is unreadable.
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("%w (%v)", errTimeout, t.timeout)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	release := func() { cancel(nil) }
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body: ReverseProxy needs it writable.
		resp.Body = cancelOnCloseRW{cancelOnClose{rwc, release}, rwc}
	} else {
		resp.Body = cancelOnClose{resp.Body, release}
	}
	return resp, nil
}

// cancelOnClose ends the upstream request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

type cancelOnCloseRW struct {
	cancelOnClose
	io.Writer
}

// bufferPool lends the 32 KiB buffers ReverseProxy copies response bodies
// through. It is safe for concurrent use.
type bufferPool struct{ pool *sync.Pool }

const bufferSize = 32 << 10

func newBufferPool() bufferPool {
	return bufferPool{pool: &sync.Pool{New: func() any {
		b := make([]byte, bufferSize)
		return &b
	}}}
}

func (bp bufferPool) Get() []byte { return *bp.get() }

// get and put lend a buffer without the allocation of Put's new pointer
// (the fast leg's way; ReverseProxy's BufferPool works on slices).
func (bp bufferPool) get() *[]byte  { return bp.pool.Get().(*[]byte) }
func (bp bufferPool) put(b *[]byte) { bp.pool.Put(b) }

func (bp bufferPool) Put(b []byte) {
	if cap(b) < bufferSize {
		return
	}
	b = b[:bufferSize]
	bp.pool.Put(&b)
}

var (
	_ http.RoundTripper   = (*routeTransport)(nil)
	_ httputil.BufferPool = bufferPool{}
	_ io.ReadWriteCloser  = cancelOnCloseRW{}
)
