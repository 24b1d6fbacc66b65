//go:build !linux

package broker

import (
	"errors"
	"net"

	"github.com/shoalmq/shoal/log"
)

// canSendFile: record sets are sent from memory here; sendFile is never
// called. (sendfile(2) elsewhere takes its offset differently.)
const canSendFile = false

func sendFile(*net.TCPConn, *log.FileSlice) error { return errors.ErrUnsupported }
