package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
)

// How a node proves itself to another: the TLS and SASL a peer's listener
// asks for, applied to each connection the pool dials before its first
// request, as a Kafka client does. The mechanisms are franz-go's client
// side (PLAIN, SCRAM); the server side is shoal's sasl package.

// PeerSecurity is what connecting to one kind of listener on other nodes
// (the inter-broker or the controller listener) takes.
type PeerSecurity struct {
	// TLS, if set, returns the client configuration for a server reached
	// at host: the listener is SSL or SASL_SSL.
	TLS func(host string) *tls.Config
	// SASL, if set, logs every new connection in (SASL_PLAINTEXT,
	// SASL_SSL) with SaslHandshake and SaslAuthenticate before anything
	// else is sent on it.
	SASL sasl.Mechanism
}

// reauthShare is the part of a session's lifetime (KIP-368, the server's
// connections.max.reauth.ms) after which the pool logs in again, on a new
// connection, before the server would close the old one; Kafka's clients
// re-authenticate between 85% and 95% of it.
const reauthShare = 0.85

// DialTLS connects to addr and runs a TLS handshake as cfg says, within
// ctx. It is how a node dials a peer's SSL listener.
func DialTLS(ctx context.Context, addr string, cfg func(host string) *tls.Config) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{Config: cfg(host)}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn).NetConn().(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return nc, nil
}

// authenticateLocked logs the connection in with mech: SaslHandshake v1,
// then SaslAuthenticate rounds until the mechanism is done. It returns when
// the session must be renewed (zero: never). pc.mu is held; the caller
// drops the connection on error.
func (pc *peerConn) authenticateLocked(ctx context.Context, p *Pool, mech sasl.Mechanism) (time.Time, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech.Name()
	r, err := pc.roundTrip(p, hs)
	if err != nil {
		return time.Time{}, fmt.Errorf("SaslHandshake: %w", err)
	}
	if err := kerr.ErrorForCode(r.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return time.Time{}, fmt.Errorf("SaslHandshake %s: %w (the node offers %v)", mech.Name(), err, r.(*kmsg.SASLHandshakeResponse).SupportedMechanisms)
	}
	host, _, _ := net.SplitHostPort(pc.addr)
	session, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return time.Time{}, err
	}
	start := p.now()
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(2)
		req.SASLAuthBytes = msg
		r, err := pc.roundTrip(p, req)
		if err != nil {
			return time.Time{}, fmt.Errorf("SaslAuthenticate: %w", err)
		}
		resp := r.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			detail := ""
			if resp.ErrorMessage != nil {
				detail = ": " + *resp.ErrorMessage
			}
			return time.Time{}, fmt.Errorf("SaslAuthenticate %s: %w%s", mech.Name(), err, detail)
		}
		done, next, err := session.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return time.Time{}, err
		}
		if done && len(next) == 0 {
			if resp.SessionLifetimeMillis <= 0 {
				return time.Time{}, nil
			}
			life := time.Duration(float64(resp.SessionLifetimeMillis)*reauthShare) * time.Millisecond
			return start.Add(life), nil
		}
		msg = next
	}
}
