package broker

import (
	"fmt"
	"net"
	"syscall"

	"github.com/shoalmq/shoal/log"
)

// canSendFile: sendFile is implemented here.
const canSendFile = true

// sendFile sends a file range to the socket with sendfile(2), waiting
// (in the runtime's poller, as a Write does) whenever the socket's buffer
// is full, until the whole range is sent.
//
// The offset is passed to sendfile explicitly, so concurrent sends from
// one segment file do not share the file position. (io.Copy into a
// TCPConn from an *os.File, or an io.LimitedReader over one, also uses
// sendfile on Linux, but from the file position: two fetches of the same
// segment would race on it.)
func sendFile(tc *net.TCPConn, fs *log.FileSlice) error {
	dst, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	src, err := fs.File().SyscallConn()
	if err != nil {
		return err
	}
	off, left := fs.Pos, fs.Size
	var serr error
	cerr := src.Control(func(sfd uintptr) {
		werr := dst.Write(func(dfd uintptr) bool {
			for left > 0 {
				n, err := syscall.Sendfile(int(dfd), int(sfd), &off, int(min(left, 1<<30)))
				if n > 0 {
					left -= int64(n)
				}
				switch {
				case err == syscall.EAGAIN:
					return false // socket full: wait until writable
				case err == syscall.EINTR:
				case err != nil:
					serr = fmt.Errorf("sendfile: %w", err)
					return true
				case n == 0:
					serr = errShortFile
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr != nil {
		return serr
	}
	return cerr
}
