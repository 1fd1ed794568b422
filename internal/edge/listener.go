package edge

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/obo-gateway/obo-gateway/internal/metrics"
)

// maxExcess bounds the connections beyond MaxConnections that are being
// answered 503 at once; beyond it they are closed without an answer, so
// that a flood of connections costs a bounded number of goroutines.
const maxExcess = 64

// Listen splits ln by the edge's MaxConnections: accepted yields up to
// MaxConnections open connections (counted until closed, hijacked ones
// included), excess yields the connections beyond, which the caller serves
// with [ExcessHandler] on a server of their own (with the same TLS
// configuration, a short header timeout and keep-alives off), so that each
// gets a 503 it can read rather than a reset. Closing accepted closes ln
// and ends excess. With no MaxConnections, excess yields nothing until
// accepted is closed.
func (e *Edge) Listen(ln net.Listener) (accepted, excess net.Listener) {
	l := &limitListener{Listener: ln, e: e, max: int64(e.cfg.MaxConnections),
		excess: make(chan net.Conn, maxExcess), done: make(chan struct{})}
	return l, &excessListener{l: l}
}

type limitListener struct {
	net.Listener
	e         *Edge
	max       int64
	excess    chan net.Conn
	excessN   atomic.Int64 // excess connections being answered
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 || l.e.conns.Add(1) <= l.max {
			if l.max <= 0 {
				l.e.conns.Add(1)
			}
			return &countedConn{Conn: c, n: &l.e.conns}, nil
		}
		l.e.conns.Add(-1)
		l.e.cfg.Refusals.Shed(metrics.LimitConnections)
		if l.excessN.Add(1) > maxExcess {
			l.excessN.Add(-1)
			c.Close()
			continue
		}
		select {
		case l.excess <- &countedConn{Conn: c, n: &l.excessN}:
		default: // cannot happen while excessN bounds the queue; be sure
			l.excessN.Add(-1)
			c.Close()
		}
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// excessListener yields the connections beyond the limit.
type excessListener struct{ l *limitListener }

func (x *excessListener) Accept() (net.Conn, error) {
	select {
	case c := <-x.l.excess:
		return c, nil
	case <-x.l.done:
		return nil, net.ErrClosed
	}
}

func (x *excessListener) Close() error   { return nil } // closed with the main listener
func (x *excessListener) Addr() net.Addr { return x.l.Addr() }

// countedConn decrements n once when closed.
type countedConn struct {
	net.Conn
	n      *atomic.Int64
	closed atomic.Bool
}

// CloseWrite half-closes the connection when the underlying one can (TCP):
// net/http does so before closing, so that a client still sending its body
// reads the answer rather than a reset.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.n.Add(-1)
	}
	return c.Conn.Close()
}

// ExcessHandler answers every request 503 with Retry-After and closes the
// connection: the handler of the server that serves Listen's excess.
func ExcessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		Shed(w, r, "the gateway has as many connections as it may hold; retry shortly")
	})
}
