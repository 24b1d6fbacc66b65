package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	shoalsasl "github.com/shoalmq/shoal/sasl"
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

// authenticateLocked logs the connection in with mech (shoal's sasl.Login).
// It returns when the session must be renewed (zero: never). pc.mu is
// held; the caller drops the connection on error.
func (pc *peerConn) authenticateLocked(ctx context.Context, p *Pool, mech sasl.Mechanism) (time.Time, error) {
	host, _, _ := net.SplitHostPort(pc.addr)
	rt := func(req kmsg.Request) (kmsg.Response, error) { return pc.roundTrip(p, req) }
	return shoalsasl.Login(ctx, rt, mech, host, p.now())
}
