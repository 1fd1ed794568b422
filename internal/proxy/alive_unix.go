//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection can still carry a request: the
// upstream has neither closed it nor sent anything unasked (which would be
// read as the next answer). One non-blocking peek at the socket, so that a
// connection the upstream closed while idle is not used (and the request
// not retried) in most cases.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK), errors.Is(rerr, syscall.EINTR):
			ok = true // nothing to read: alive
		case rerr != nil, n == 0:
			ok = false // an error, or end of stream: closed
		default:
			ok = false // bytes nobody asked for
		}
		return true // done: never wait for readability
	})
	return err == nil && ok
}
