package sasl

// The client side of Kafka's SASL login, for connections a node opens to
// another node: the inter-broker and controller RPCs (cluster.Pool) and the
// raft transport (raftmeta) both log in this way, with the mechanisms of
// franz-go's client (PLAIN, SCRAM), so the peer's listener authenticates
// them exactly as it does a Kafka client.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	kgosasl "github.com/twmb/franz-go/pkg/sasl"
)

// ReauthShare is the part of a session's lifetime (KIP-368, the server's
// connections.max.reauth.ms) after which a node logs in again, on a new
// connection, before the server would close the old one; Kafka's clients
// re-authenticate between 85% and 95% of it.
const ReauthShare = 0.85

// RoundTrip sends one request on a connection and returns its response.
type RoundTrip func(kmsg.Request) (kmsg.Response, error)

// Login logs a connection in with mech: SaslHandshake v1, then
// SaslAuthenticate v2 rounds until the mechanism is done. host is the
// server's, as the mechanism may bind it; start is when the login began.
// It returns when the session must be renewed (zero: never). The caller
// bounds the connection's I/O and drops it on error.
func Login(ctx context.Context, rt RoundTrip, mech kgosasl.Mechanism, host string, start time.Time) (time.Time, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech.Name()
	r, err := rt(hs)
	if err != nil {
		return time.Time{}, fmt.Errorf("SaslHandshake: %w", err)
	}
	hsResp := r.(*kmsg.SASLHandshakeResponse)
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return time.Time{}, fmt.Errorf("SaslHandshake %s: %w (the node offers %v)", mech.Name(), err, hsResp.SupportedMechanisms)
	}
	session, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return time.Time{}, err
	}
	for {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(2)
		req.SASLAuthBytes = msg
		r, err := rt(req)
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
			life := time.Duration(float64(resp.SessionLifetimeMillis)*ReauthShare) * time.Millisecond
			return start.Add(life), nil
		}
		msg = next
	}
}

// maxLoginResponse bounds one response frame read by FrameRoundTrip: SASL
// answers are a challenge or an error message, never near this.
const maxLoginResponse = 1 << 20

// FrameRoundTrip is a RoundTrip for the login of a connection that speaks
// the Kafka protocol only while it logs in (the raft transport's): it
// writes each request framed with clientID to w and reads its response
// from r, one at a time.
func FrameRoundTrip(w io.Writer, r *bufio.Reader, clientID string) RoundTrip {
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	var corr int32
	return func(req kmsg.Request) (kmsg.Response, error) {
		corr++
		if _, err := w.Write(formatter.AppendRequest(nil, req, corr)); err != nil {
			return nil, err
		}
		var sizeBuf [4]byte
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return nil, err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 4 || size > maxLoginResponse {
			return nil, fmt.Errorf("a %d-byte response frame to %s", size, kmsg.NameForKey(req.Key()))
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, err
		}
		if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
			return nil, fmt.Errorf("answered correlation id %d, want %d", got, corr)
		}
		body := frame[4:]
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if resp.IsFlexible() {
			// The response header's tagged fields: none are defined,
			// so only an empty set is expected.
			if len(body) == 0 || body[0] != 0 {
				return nil, fmt.Errorf("unexpected tagged fields in the %s response header", kmsg.NameForKey(req.Key()))
			}
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			return nil, fmt.Errorf("decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
		}
		return resp, nil
	}
}
