package broker

// SaslHandshake (key 17), v1: the client names the SASL mechanism it will
// authenticate with, first or to re-authenticate (KIP-368). Kafka 4.0
// dropped v0 (KIP-896), and with it the raw, headerless token frames that
// followed a v0 handshake, so a v0 request closes the connection like any
// version outside the table.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const saslHandshakeKey = 17

func (s *Server) handleSaslHandshake(_ context.Context, rc *reqCtx, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := rc.conn
	if c.sasl == nil {
		// Kafka answers a SASL request on a listener without SASL this way.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	res := c.sasl.Handshake(req.Mechanism)
	resp.ErrorCode = res.ErrorCode
	resp.SupportedMechanisms = res.Mechanisms
	// A handshake out of order fails the session; the connection closes
	// once the answer is written.
	c.saslOutcome(res.ErrorCode == kerr.IllegalSaslState.Code)
	return resp, nil
}
