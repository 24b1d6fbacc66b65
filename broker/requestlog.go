package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Two loggers describe client traffic, named after Kafka's request logger
// and connection logging so an operator can turn them up alone
// (log.level=info,request=debug):
//
//   - component=request: one DEBUG line per completed request, with the
//     API, version, client id, client address, latency and the distinct
//     error codes in the response;
//   - component=conn: one INFO line per connection the broker closed
//     because of the client (malformed frame, unsupported version, idle
//     timeout, ...), rate-limited so a misbehaving client fleet cannot
//     flood the log. A client that closes its own connection, or resets
//     it, is the normal end of a session and logs at DEBUG only.

// logRequest writes the request log line of one answered request. It costs
// nothing beyond the level check unless request logging is on.
func (c *conn) logRequest(rc *reqCtx, resp kmsg.Response, latency time.Duration) {
	l := c.srv.requestLog
	if !l.Enabled(c.ctx, slog.LevelDebug) {
		return
	}
	var codes []string
	if resp != nil {
		errorCodes(resp, func(code int16) {
			if code == 0 {
				return
			}
			name := errorCodeName(code)
			if !slices.Contains(codes, name) {
				codes = append(codes, name)
			}
		})
	}
	l.Debug("request",
		"api", kmsg.NameForKey(rc.header.key),
		"version", rc.header.version,
		"correlation_id", rc.header.correlationID,
		"client_id", rc.header.clientID,
		"client", c.nc.RemoteAddr().String(),
		"listener", c.listener,
		"latency", latency,
		"errors", codes,
	)
}

// errorCodeName is Kafka's name of an error code (UNKNOWN_TOPIC_OR_PARTITION).
func errorCodeName(code int16) string {
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return kerr.ErrorForCode(code).Error()
}

// closeReason classifies why readLoop ended. An empty reason is a normal
// end: the client closed or reset the connection, or the broker is
// shutting down.
func closeReason(err error) string {
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ""
	case errors.Is(err, errUnsupportedVersion):
		return "unsupported version"
	case errors.Is(err, errMalformed):
		return "malformed frame"
	case errors.Is(err, errIdleTimeout):
		return "idle timeout"
	case errors.Is(err, errRequestReadTimeout):
		return "request read timeout"
	case errors.Is(err, errAuthentication):
		return "authentication"
	case errors.Is(err, errConnectionThrottled):
		return "connection creation rate"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}

// logClosed logs the end of a connection; see the comment at the top.
func (c *conn) logClosed(err error) { c.srv.logConnClosed(c.nc, c.listener, err) }

// logConnClosed is conn.logClosed for a connection closed before it
// became a conn (a failed TLS handshake in serveAccepted).
func (s *Server) logConnClosed(nc net.Conn, listener string, err error) {
	reason := closeReason(err)
	if reason == "" || s.ctx.Err() != nil {
		s.connLog.Debug("connection closed", "client", nc.RemoteAddr().String(), "listener", listener, "err", err)
		return
	}
	suppressed, ok := s.connLimit.allow(s.now())
	if !ok {
		return
	}
	attrs := []any{"reason", reason, "client", nc.RemoteAddr().String(), "listener", listener, "err", err}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	s.connLog.Info("closed connection", attrs...)
}

// closeLogLimit bounds connection-close lines to closeLogBurst per
// closeLogWindow; the first line after a window with dropped lines says
// how many were dropped.
const (
	closeLogBurst  = 10
	closeLogWindow = 10 * time.Second
)

type logLimiter struct {
	mu          sync.Mutex
	windowStart time.Time
	logged      int
	suppressed  int
}

// allow reports whether a line may be written at now and how many lines
// were suppressed since the last one written.
func (l *logLimiter) allow(now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= closeLogWindow {
		l.windowStart, l.logged = now, 0
	}
	if l.logged >= closeLogBurst {
		l.suppressed++
		return 0, false
	}
	l.logged++
	suppressed, l.suppressed = l.suppressed, 0
	return suppressed, true
}
