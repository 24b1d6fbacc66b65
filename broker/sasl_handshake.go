package broker

// SaslHandshake (key 17), v1: the client names the SASL mechanism it will
// authenticate with, first or to re-authenticate (KIP-368). A mechanism
// the listener does not enable is answered UNSUPPORTED_SASL_MECHANISM with
// the enabled ones, then the connection closes, as in Kafka. Kafka 4.0
// dropped v0 (KIP-896), and with it the raw, headerless token frames that
// followed a v0 handshake, so a v0 request closes the connection like any
// version outside the table.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const saslHandshakeKey = 17

func (s *Server) handleSaslHandshake(ctx context.Context, rc *reqCtx, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := rc.conn
	if c.sasl == nil {
		// Kafka answers a SASL request on a listener without SASL this way.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	res := c.sasl.Handshake(req.Mechanism, s.now())
	resp.ErrorCode = res.ErrorCode
	resp.SupportedMechanisms = res.Mechanisms
	if res.Close {
		// A handshake out of order, or naming a mechanism the listener
		// does not enable, fails the session: Kafka answers it late, as
		// any failed authentication, and closes the connection.
		c.log.Info("authentication failed", "listener", c.listener, "mechanism", req.Mechanism, "err", kerr.ErrorForCode(res.ErrorCode))
		s.delayFailedAuthentication(ctx)
	}
	c.saslOutcome(res.Close)
	return resp, nil
}
