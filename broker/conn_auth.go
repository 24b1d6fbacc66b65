package broker

// Authentication of one connection: the TLS handshake of an SSL or
// SASL_SSL listener, the SASL session of a SASL listener (Kafka's
// SaslServerAuthenticator rules live in sasl.Session; this file applies
// them to frames), and the bound on how long both may take.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/sasl"
)

// closedAuthTimeout labels a connection closed because it did not
// authenticate in time.
const closedAuthTimeout = "authentication_timeout"

// errAuthentication marks a connection closed for its authentication: a
// failed TLS handshake or SASL exchange, a request sent before
// authenticating, or a session past its lifetime (KIP-368).
var errAuthentication = errors.New("authentication failed")

// authenticateTLS runs the TLS handshake of an SSL or SASL_SSL listener
// within the authentication bound, replacing the connection's socket by
// the TLS one, unless the connection arrives with its handshake done (the
// raft transport or serveAccepted ran it to look at the first bytes).
// Without SASL the principal is the client certificate's. A client that
// speaks plaintext to a TLS port fails here and is closed without a byte
// of Kafka protocol.
func (c *conn) authenticateTLS() error {
	la := c.auth
	if la.tls == nil {
		return nil
	}
	st, done := c.nc.(tlsState)
	if !done {
		tc, err := c.srv.handshakeTLS(c.ctx, c.nc, la)
		if err != nil {
			return err
		}
		c.nc, st = tc, tc
	}
	if la.mechs == nil {
		p, err := la.tlsPrincipal(st.ConnectionState())
		if err != nil {
			return fmt.Errorf("%w: %v", errAuthentication, err)
		}
		c.principal = p
	}
	return nil
}

// tlsState is a connection whose TLS handshake has run: a *tls.Conn, or
// one the raft transport buffered the first bytes of.
type tlsState interface {
	ConnectionState() tls.ConnectionState
}

// handshakeTLS runs the server side of la's TLS handshake on nc within the
// authentication bound.
func (s *Server) handshakeTLS(ctx context.Context, nc net.Conn, la *listenerAuth) (*tls.Conn, error) {
	tc := tls.Server(nc, la.tls)
	ctx, cancel := context.WithTimeout(ctx, s.sec.authTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			s.metrics.conns.closed.WithLabelValues(closedAuthTimeout).Inc()
		}
		return nil, fmt.Errorf("%w: TLS handshake: %v", errAuthentication, err)
	}
	return tc, nil
}

// startAuthTimer closes a SASL connection that has not authenticated
// within the authentication bound; it returns the timer's stop.
func (c *conn) startAuthTimer() func() bool {
	if c.sasl == nil {
		return func() bool { return false }
	}
	t := time.AfterFunc(c.srv.sec.authTimeout, func() {
		if !c.authenticated.Load() {
			c.srv.metrics.conns.closed.WithLabelValues(closedAuthTimeout).Inc()
			c.log.Info("closing a connection that did not authenticate in time", "timeout", c.srv.sec.authTimeout)
			c.nc.Close()
		}
	})
	return t.Stop
}

// admitRequest applies the SASL rules to a request about to be read
// (Kafka's SaslServerAuthenticator): before authentication only
// ApiVersions, SaslHandshake and SaslAuthenticate are served, and no frame
// may exceed sasl.server.max.receive.size; once the session's lifetime is
// over, nothing but a re-authentication is. Anything else closes the
// connection without an answer, as Kafka does.
func (c *conn) admitRequest(key int16, size int32) error {
	if c.sasl == nil {
		return nil
	}
	if !c.authenticated.Load() && c.srv.sec.maxReceive > 0 && int(size) > c.srv.sec.maxReceive {
		return fmt.Errorf("%w: a %d-byte request before authentication is over sasl.server.max.receive.size (%d)", errAuthentication, size, c.srv.sec.maxReceive)
	}
	if !c.sasl.Admit(key, c.srv.now()) {
		if c.authenticated.Load() {
			return fmt.Errorf("%w: %s after the session expired (connections.max.reauth.ms or the credential's lifetime) without re-authenticating", errAuthentication, kmsg.NameForKey(key))
		}
		return fmt.Errorf("%w: %s (key %d) before authenticating", errAuthentication, kmsg.NameForKey(key), key)
	}
	return nil
}

// saslOutcome records what a SaslHandshake or SaslAuthenticate did to the
// session: the principal once authenticated, and whether the connection
// must be closed once the answer is written.
func (c *conn) saslOutcome(closeAfter bool) {
	if p := c.sasl.Principal(); p != "" {
		c.principal = acl.User(p)
		c.authenticated.Store(true)
	}
	c.closeAfterAnswer = closeAfter
}

// newSASLSession starts the SASL state of a connection on a SASL listener.
func (c *conn) newSASLSession() {
	if c.auth.mechs != nil {
		c.sasl = sasl.NewSession(c.auth.mechs, c.auth.maxReauth, c.srv.sec.maxReceive)
	}
}
