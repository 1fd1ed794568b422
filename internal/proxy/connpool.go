package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// FastConfig tunes the fast leg's connections. Zero fields take the
// defaults.
type FastConfig struct {
	// Dial opens a TCP connection; nil is a net.Dialer with DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS is the client TLS configuration for https upstreams (its
	// RootCAs, MinVersion); the leg sets ServerName and asks for HTTP/1.1.
	// Nil means the system's CAs and TLS 1.2 or later.
	TLS *tls.Config
	// MaxIdlePerHost is the idle connections kept per upstream host.
	// Default 256, as the httputil leg's transport.
	MaxIdlePerHost int
	// MaxConnsPerHost bounds the connections open to one upstream host,
	// idle or busy; a request beyond waits for one to be released (until
	// its context ends). Zero means no bound.
	MaxConnsPerHost int
	// IdleTimeout closes connections idle for this long. Default 90s.
	IdleTimeout time.Duration
	// DialTimeout bounds establishing a connection, the TLS handshake
	// included. Default 10s.
	DialTimeout time.Duration
	// MaxResponseHeaderBytes bounds an answer's head (its informational
	// answers included). Default 10 MiB, as net/http's Transport.
	MaxResponseHeaderBytes int64
}

func (c FastConfig) withDefaults() FastConfig {
	if c.MaxIdlePerHost <= 0 {
		c.MaxIdlePerHost = 256
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = 10 << 20
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if c.TLS == nil {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return c
}

// upstreamConn is one pooled HTTP/1.1 connection to an upstream.
type upstreamConn struct {
	net.Conn                // the TLS connection for https
	live      *liveness     // checks the TCP connection under it
	br        *bufio.Reader // reads responses, through head
	head      headLimit     // bounds the bytes br reads while a head is read
	bw        *bufio.Writer // writes requests
	interrupt func()        // ends any read or write in progress, for good
	idleAt    time.Time
	reused    bool // served a request before this one
}

// connPool holds the idle connections to one upstream host (scheme, host
// and port). It is safe for concurrent use.
type connPool struct {
	addr string      // host:port to dial
	tls  *tls.Config // nil for http
	cfg  FastConfig

	mu      sync.Mutex
	idle    []*upstreamConn // most recently used last
	open    int             // connections open, idle or busy
	waiters []chan struct{} // requests waiting for MaxConnsPerHost
	janitor *time.Timer
	closed  bool
}

func newConnPool(scheme, host string, cfg FastConfig) *connPool {
	p := &connPool{addr: host, cfg: cfg}
	if scheme == "https" {
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
		t := cfg.TLS.Clone()
		t.ServerName = name
		t.NextProtos = []string{"http/1.1"}
		p.tls = t
		if _, _, err := net.SplitHostPort(host); err != nil {
			p.addr = net.JoinHostPort(host, "443")
		}
	} else if _, _, err := net.SplitHostPort(host); err != nil {
		p.addr = net.JoinHostPort(host, "80")
	}
	return p
}

// get returns an idle connection that is still alive, or a new one. A
// non-zero deadline bounds the wait for a connection and the dial (the
// route timeout); taking an idle connection does not wait.
func (p *connPool) get(ctx context.Context, deadline time.Time) (*upstreamConn, error) {
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(c.idleAt) < p.cfg.IdleTimeout && c.br.Buffered() == 0 && c.live.alive() {
			p.mu.Unlock()
			c.reused = true
			return c, nil
		}
		p.open--
		c.Close()
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	for p.cfg.MaxConnsPerHost > 0 && p.open >= p.cfg.MaxConnsPerHost {
		ch := make(chan struct{})
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			if !p.dropWaiter(ch) {
				// Woken as it gave up: the wake-up goes to the next one.
				p.wakeLocked()
			}
			p.mu.Unlock()
			return nil, ctx.Err()
		}
		p.mu.Lock()
		if len(p.idle) > 0 {
			p.mu.Unlock()
			return p.get(ctx, deadline)
		}
	}
	p.open++
	p.mu.Unlock()
	c, err := p.dial(ctx)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.wakeLocked()
		p.mu.Unlock()
		return nil, err
	}
	return c, nil
}

// dropWaiter forgets a waiter that gave up; false means it had been woken.
func (p *connPool) dropWaiter(ch chan struct{}) bool {
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// wakeLocked lets one waiting request try again.
func (p *connPool) wakeLocked() {
	if len(p.waiters) > 0 {
		close(p.waiters[0])
		p.waiters = p.waiters[1:]
	}
}

// dial opens a new connection, with its TLS handshake for https, within
// DialTimeout.
func (p *connPool) dial(ctx context.Context) (*upstreamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	raw, err := p.cfg.Dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &upstreamConn{Conn: raw, live: newLiveness(raw)}
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: err}
		}
		c.Conn = tc
	}
	c.head = headLimit{r: c.Conn, n: -1}
	c.br = bufio.NewReaderSize(&c.head, 4<<10)
	c.bw = bufio.NewWriterSize(c.Conn, 4<<10)
	c.interrupt = func() { _ = c.SetDeadline(aLongTimeAgo) }
	return c, nil
}

// put returns a connection whose last response was read to its end.
func (p *connPool) put(c *upstreamConn) {
	if p.tls != nil && c.br.Buffered() == 0 && !c.tlsDrained() {
		p.discard(c)
		return
	}
	c.idleAt = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Bytes already read past the answer were sent unasked (a second
	// answer, a body to a HEAD): they would be read as the next request's.
	if p.closed || len(p.idle) >= p.cfg.MaxIdlePerHost || c.br.Buffered() > 0 {
		p.open--
		c.Close()
		p.wakeLocked()
		return
	}
	p.idle = append(p.idle, c)
	p.wakeLocked()
	if p.janitor == nil {
		p.janitor = time.AfterFunc(p.cfg.IdleTimeout, p.sweep)
	}
}

// tlsDrained reports whether the TLS layer holds no plaintext past the
// answer. Bytes an upstream sent after the answer in the same TLS record
// are decrypted into tls.Conn's own buffer, where neither br nor the peek
// at the socket (liveness) sees them: they would be read as the next
// request's answer. A read that must not wait finds them; its timeout
// leaves tls.Conn usable.
func (c *upstreamConn) tlsDrained() bool {
	_ = c.SetReadDeadline(aLongTimeAgo)
	_, err := c.br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// headLimit bounds what is read from r while an answer's head is: n bytes
// more, or no bound when n is negative.
type headLimit struct {
	r io.Reader
	n int64
}

// errHeadTooLarge is an answer's head beyond MaxResponseHeaderBytes.
var errHeadTooLarge = errors.New("proxy: the upstream's response head is too large")

func (l *headLimit) Read(b []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(b)
	}
	if l.n == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}

// discard closes a connection that cannot serve again.
func (p *connPool) discard(c *upstreamConn) {
	c.Close()
	p.mu.Lock()
	p.open--
	p.wakeLocked()
	p.mu.Unlock()
}

// sweep closes the connections idle for longer than IdleTimeout, and runs
// again while some stay idle.
func (p *connPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleAt) >= p.cfg.IdleTimeout {
			p.open--
			c.Close()
			continue
		}
		kept = append(kept, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	if len(p.idle) > 0 && !p.closed {
		p.janitor.Reset(p.cfg.IdleTimeout / 2)
	} else {
		p.janitor = nil
	}
}

// closeIdle closes every idle connection (and those released later).
func (p *connPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		p.open--
		c.Close()
	}
	clear(p.idle)
	p.idle = p.idle[:0]
}

// errConnClosedEarly is a reused connection the upstream closed before it
// answered: the request can be sent again, on a new connection, if it has
// no body and may be repeated.
var errConnClosedEarly = errors.New("proxy: the upstream closed a kept-alive connection before answering")
