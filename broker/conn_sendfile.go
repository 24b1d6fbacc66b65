package broker

import (
	"errors"
	"net"

	"github.com/shoalmq/shoal/log"
)

// sendFrame writes a fetch response whose record sets are ranges of
// segment files: the pieces in memory with writev, each file range with
// sendfile(2) in place of its nil piece, so record bytes go from the page
// cache to the socket without passing through the broker.
//
// Any error leaves part of the frame on the wire: the caller closes the
// connection, never writing another response after it.
func (c *conn) sendFrame(pieces net.Buffers, files []log.FileSlice) error {
	tc := c.nc.(*net.TCPConn)
	for len(pieces) > 0 {
		i := 0
		for i < len(pieces) && pieces[i] != nil {
			i++
		}
		if i > 0 {
			mem := pieces[:i]
			if _, err := mem.WriteTo(tc); err != nil {
				return err
			}
		}
		if i == len(pieces) {
			return nil
		}
		if err := sendFile(tc, &files[0]); err != nil {
			return err
		}
		pieces, files = pieces[i+1:], files[1:]
	}
	return nil
}

// errShortFile reports a segment file that ended before the range being
// sent from it: it was truncated in place after it was read (a follower
// truncating to its new leader). The frame cannot be completed.
var errShortFile = errors.New("segment file truncated under a send")
