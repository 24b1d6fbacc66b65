package broker

// The SASL login of a raft connection. On a SASL_PLAINTEXT or SASL_SSL
// listener the metadata quorum's traffic authenticates like everything
// else: after the raft transport's hello the dialling node sends
// SaslHandshake and SaslAuthenticate frames, served here by the same
// session and handlers as a Kafka client's login, and the principal it
// logs in as must be allowed CLUSTER_ACTION on the cluster, as the
// inter-broker APIs ask. Only then does the transport accept the hello.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/raftmeta"
)

const saslAuthenticateKey = 36

// raftLogin is how a raft connection arriving on listener logs in, nil on
// a listener without SASL (where TLS, and ssl.client.auth=required if
// set, are its only guard).
func (s *Server) raftLogin(listener string) raftmeta.Login {
	if s.sec.listener(listener).mechs == nil {
		return nil
	}
	return func(nc net.Conn) (time.Time, error) {
		c := newConn(s, nc, listener)
		defer c.cancel()
		return c.raftLogin()
	}
}

// raftLogin serves the SASL requests that follow a raft hello on c, within
// the authentication bound, and returns when the session ends (zero:
// never) once the principal has logged in and may take part in the
// quorum. Anything but SaslHandshake and SaslAuthenticate, a failed
// exchange, or a principal without CLUSTER_ACTION is an error; the caller
// closes the connection.
//
// c.nc buffers what the transport read past the hello; it is read without
// a buffer of its own here, so nothing of the raft frames that follow the
// login is consumed.
func (c *conn) raftLogin() (time.Time, error) {
	c.nc.SetDeadline(time.Now().Add(c.srv.sec.authTimeout))
	defer c.nc.SetDeadline(time.Time{})
	limit := c.srv.cfg.SocketRequestMaxBytes
	if m := c.srv.sec.maxReceive; m > 0 {
		limit = min(limit, int32(m))
	}
	for {
		var sizeBuf [4]byte
		if _, err := io.ReadFull(c.nc, sizeBuf[:]); err != nil {
			return time.Time{}, fmt.Errorf("%w: no SASL login after the raft hello: %v", errAuthentication, err)
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < minHeaderBytes || size > limit {
			return time.Time{}, fmt.Errorf("%w: a %d-byte frame where the raft connection's SASL login belongs", errAuthentication, size)
		}
		frame, err := readFrame(c.nc, int(size))
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: reading the SASL login: %v", errAuthentication, err)
		}
		h, req, err := decodeRequest(c.apis, frame)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %v", errAuthentication, err)
		}
		if h.key != saslHandshakeKey && h.key != saslAuthenticateKey {
			return time.Time{}, fmt.Errorf("%w: %s where the raft connection's SASL login belongs", errAuthentication, kmsg.NameForKey(h.key))
		}
		if err := c.admitRequest(h.key, size); err != nil {
			return time.Time{}, err
		}
		resp, _, err := c.handle(&reqCtx{conn: c, header: h}, req)
		if err != nil {
			return time.Time{}, err
		}
		resp.SetVersion(req.GetVersion())
		if _, err := c.nc.Write(encodeResponse(h.correlationID, resp)); err != nil {
			return time.Time{}, err
		}
		// Unlike a Kafka client, the dialling node does not retry on
		// the connection: any error ends the login.
		if refusal := loginRefusal(resp); refusal != "" {
			return time.Time{}, fmt.Errorf("%w: %s", errAuthentication, refusal)
		}
		if !c.authenticated.Load() {
			continue
		}
		if !c.srv.sec.authorize(c.principal, c.host, acl.OpClusterAction, clusterResource, "raft") {
			return time.Time{}, fmt.Errorf("principal %s is not allowed CLUSTER_ACTION on the cluster", c.principal)
		}
		var end time.Time
		if life := resp.(*kmsg.SASLAuthenticateResponse).SessionLifetimeMillis; life > 0 {
			end = time.Now().Add(time.Duration(life) * time.Millisecond)
		}
		return end, nil
	}
}

// loginRefusal says why a SASL answer ended the login, "" if it did not.
func loginRefusal(resp kmsg.Response) string {
	switch r := resp.(type) {
	case *kmsg.SASLHandshakeResponse:
		if r.ErrorCode != 0 {
			return fmt.Sprintf("SaslHandshake: %v (the listener offers %v)", kerr.ErrorForCode(r.ErrorCode), r.SupportedMechanisms)
		}
	case *kmsg.SASLAuthenticateResponse:
		if r.ErrorCode != 0 {
			msg := fmt.Sprintf("SaslAuthenticate: %v", kerr.ErrorForCode(r.ErrorCode))
			if r.ErrorMessage != nil {
				msg += ": " + *r.ErrorMessage
			}
			return msg
		}
	}
	return ""
}
