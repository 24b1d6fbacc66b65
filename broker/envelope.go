package broker

// Envelope (key 58) v0, on the controller listener only: an admin request a
// broker forwards to the active controller on behalf of its client
// (KIP-590), wrapped with the client's principal and address so the
// controller authorizes it as that client, not as the forwarding broker.
//
// Behaviour, as Kafka's controller:
//   - the forwarding connection's principal needs CLUSTER_ACTION on the
//     cluster (authorizeRequest), or the envelope answers
//     CLUSTER_AUTHORIZATION_FAILED and the embedded request is not looked at;
//   - a principal that does not decode answers
//     PRINCIPAL_DESERIALIZATION_FAILURE; an address that is not 4 or 16
//     bytes, an embedded request that does not decode or is not one a
//     broker forwards (an API table entry marked forwarded: see relayed
//     and forwarding), INVALID_REQUEST;
//   - otherwise the embedded request runs exactly as it would on a
//     connection of that principal from that address: the same
//     authorization, the same handler, never forwarded again. Its
//     response, with the embedded request's correlation id, is
//     ResponseData, with throttle_time_ms set when the client is over its
//     request_percentage (the forwarding broker mutes the client).
//
// The sending side is cluster.ControllerClient.ForwardAdmin.

import (
	"context"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

const envelopeKey = 58

func (s *Server) handleEnvelope(_ context.Context, rc *reqCtx, req *kmsg.EnvelopeRequest) (kmsg.Response, waitFunc, error) {
	resp := req.ResponseKind().(*kmsg.EnvelopeResponse)
	var pd kmsg.DefaultPrincipalData
	if err := pd.ReadFrom(req.RequestPrincipal); err != nil || pd.Type == "" {
		resp.ErrorCode = kerr.PrincipalDeserializationFailure.Code
		return resp, nil, nil
	}
	addr := net.IP(req.ClientHostAddress)
	if len(addr) != net.IPv4len && len(addr) != net.IPv6len {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil, nil
	}
	h, inner, err := s.decodeForwarded(req.RequestData)
	if err != nil {
		rc.conn.log.Info("refusing an Envelope whose embedded request does not decode", "err", err)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil, nil
	}
	from := rc.conn.forwardedFor(acl.Principal{Type: pd.Type, Name: pd.Name}, addr.String())
	irc := &reqCtx{conn: from, header: h}
	began := time.Now()
	innerResp, wait, err := from.process(irc, inner)
	irc.busy = time.Since(began)
	if err != nil {
		return nil, nil, err
	}
	wrap := func(r kmsg.Response) kmsg.Response {
		if r == nil {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
		r.SetVersion(inner.GetVersion())
		// As Kafka's controller: the client's request quota is
		// charged here and the throttle answered, and the forwarding
		// broker, which serves the client, mutes it.
		if t, ok := r.(kmsg.SetThrottleResponse); ok {
			if d := from.throttle(irc, inner, 0, irc.busy); d > 0 {
				t.SetThrottle(int32(d.Milliseconds()))
			}
		}
		resp.ResponseData = encodeResponse(h.correlationID, r)[4:]
		return resp
	}
	if wait == nil {
		return wrap(innerResp), nil, nil
	}
	return nil, func() (kmsg.Response, error) {
		r, err := wait()
		if err != nil {
			return nil, err
		}
		return wrap(r), nil
	}, nil
}

// decodeForwarded decodes an Envelope's embedded request: of an API a
// broker forwards (apiTables.forwarded), at a version this node serves
// clients, within the decode bound every request is held to.
func (s *Server) decodeForwarded(frame []byte) (requestHeader, kmsg.Request, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	if _, err := expansionCharge(h.key, len(body), int64(s.cfg.SocketRequestMaxBytes)); err != nil {
		return h, nil, err
	}
	return decodeRequest(s.apis.forwarded, frame)
}

// forwardedFor is the connection a forwarded request runs on: this one's
// server, listener and logger, with the principal and address of the
// client the forwarding broker serves, and the APIs an Envelope may carry.
// Nothing but the request's own handling reads it.
func (c *conn) forwardedFor(p acl.Principal, host string) *conn {
	return &conn{
		srv:       c.srv,
		listener:  c.listener,
		apis:      c.srv.apis.forwarded,
		nc:        c.nc,
		log:       c.log.With("forwarded_for", p.String(), "forwarded_host", host),
		ctx:       c.ctx,
		cancel:    c.cancel,
		auth:      c.auth,
		principal: p,
		host:      host,
		forwarded: true,
	}
}
