package broker

// SaslAuthenticate (key 36), v0-v2: one step of the SASL exchange the
// handshake chose. v1 adds the session lifetime (KIP-368), after which the
// client must re-authenticate or be closed. A failed authentication is
// answered SASL_AUTHENTICATION_FAILED after
// connection.failed.authentication.delay.ms, then the connection closes.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleSaslAuthenticate(ctx context.Context, rc *reqCtx, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := rc.conn
	if c.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	res := c.sasl.Authenticate(req.SASLAuthBytes, s.now())
	resp.ErrorCode = res.ErrorCode
	resp.SASLAuthBytes = res.AuthBytes
	if resp.SASLAuthBytes == nil {
		resp.SASLAuthBytes = []byte{}
	}
	if res.ErrorMessage != "" {
		resp.ErrorMessage = &res.ErrorMessage
	}
	resp.SessionLifetimeMillis = res.SessionLifetime.Milliseconds()
	if res.Close {
		c.log.Info("authentication failed", "listener", c.listener, "mechanism", c.sasl.Mechanism(), "err", res.ErrorMessage)
		s.delayFailedAuthentication(ctx)
	}
	c.saslOutcome(res.Close)
	return resp, nil
}

// delayFailedAuthentication waits connection.failed.authentication.delay.ms
// before a failed authentication is answered, as Kafka delays every
// failure that closes the connection: it slows down password guessing.
// The connection is finished either way, so its reader may wait.
func (s *Server) delayFailedAuthentication(ctx context.Context) {
	d := s.sec.failedAuthDelay
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
