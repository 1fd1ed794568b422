//go:build linux

package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// liveness checks whether an idle connection can still carry a request:
// the upstream has neither closed it nor sent anything unasked (which would
// be read as the next answer). One non-blocking peek at the socket, so that
// a connection the upstream closed while idle is not used (and the request
// not sent twice) in most cases. Made once per connection: the check
// allocates nothing.
type liveness struct {
	rc   syscall.RawConn
	ok   bool
	buf  [1]byte
	peek func(fd uintptr) bool
}

func newLiveness(c net.Conn) *liveness {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	l := &liveness{rc: rc}
	l.peek = l.peekFD
	return l
}

func (l *liveness) peekFD(fd uintptr) bool {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&l.buf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		l.ok = true // nothing to read: alive
	default:
		l.ok = false // an error, the end of the stream, or bytes nobody asked for
	}
	_ = n
	return true // done: never wait for the socket to become readable
}

// alive reports whether the connection looks usable; a nil liveness (a
// connection without a socket, in tests) always does.
func (l *liveness) alive() bool {
	if l == nil {
		return true
	}
	l.ok = false
	if err := l.rc.Read(l.peek); err != nil {
		return false
	}
	return l.ok
}
