//go:build unix

package raftmeta

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// peekHello looks at the first bytes of conn with MSG_PEEK, so that a
// connection that turns out to speak Kafka reaches its server as the
// original *net.TCPConn (keeping writev for fetch responses).
func peekHello(conn net.Conn) (bool, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, err
	}
	var buf [len(transportMagic)]byte
	for {
		var n int
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
			// false: nothing yet, wait until readable.
			return !errors.Is(perr, syscall.EAGAIN)
		})
		switch {
		case errors.Is(perr, syscall.EINTR):
			continue
		case err != nil:
			return false, err
		case perr != nil:
			return false, perr
		case n == 0:
			return false, io.EOF
		case n == len(buf):
			return buf == transportMagic, nil
		case !bytes.HasPrefix(transportMagic[:], buf[:n]):
			// Every Kafka request differs from the magic in its first
			// byte, so this is where a client connection is decided.
			return false, nil
		}
		// A prefix of the magic: the rest is on its way.
		time.Sleep(time.Millisecond)
	}
}
