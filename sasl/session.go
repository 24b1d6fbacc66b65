package sasl

import (
	"fmt"
	"slices"
	"time"
)

// Kafka's error codes this state machine answers with.
const (
	codeUnsupportedMechanism int16 = 33 // UNSUPPORTED_SASL_MECHANISM
	codeIllegalState         int16 = 34 // ILLEGAL_SASL_STATE
	codeAuthFailed           int16 = 58 // SASL_AUTHENTICATION_FAILED
)

// API keys the authentication state machine knows by number.
const (
	keySaslHandshake    int16 = 17
	keyApiVersions      int16 = 18
	keySaslAuthenticate int16 = 36
)

// Session is the authentication state of one SASL connection: Kafka's
// SaslServerAuthenticator rules for SaslHandshake and SaslAuthenticate,
// including re-authentication (KIP-368). The front end decodes requests,
// asks Admit before serving any, and passes SaslHandshake and
// SaslAuthenticate payloads in; Session holds no socket. Not safe for
// concurrent use: a connection's requests are handled in order.
//
//	unauthenticated --Handshake--> authenticating --Authenticate...--> authenticated
//	authenticated --Handshake (a session with a lifetime)--> reauthenticating --Authenticate...--> authenticated
//	any failure --> failed (the connection must be closed)
type Session struct {
	mechs     map[string]Mechanism
	enabled   []string
	maxReauth time.Duration
	maxRecv   int

	state     sessionState
	exchange  Exchange
	mechanism string // of the current (or last completed) exchange
	principal string
	expiry    time.Time // when the session must have re-authenticated; zero never

	// previous is the mechanism and principal of the session being
	// re-authenticated, which must not change.
	prevMechanism, prevPrincipal string
	// lastReauth is when the last re-authentication started.
	lastReauth time.Time
}

// minReauthInterval is how soon after one re-authentication Kafka lets a
// connection start another (KafkaChannel's one-second floor).
const minReauthInterval = time.Second

type sessionState int

const (
	unauthenticated sessionState = iota
	authenticating
	authenticated
	reauthenticating
	failed
)

// NewSession starts the authentication of one connection. mechs are the
// listener's enabled mechanisms in sasl.enabled.mechanisms order;
// maxReauth is connections.max.reauth.ms (0: never); maxReceive is
// sasl.server.max.receive.size.
func NewSession(mechs []Mechanism, maxReauth time.Duration, maxReceive int) *Session {
	s := &Session{mechs: map[string]Mechanism{}, maxReauth: maxReauth, maxRecv: maxReceive}
	for _, m := range mechs {
		s.mechs[m.Name()] = m
		s.enabled = append(s.enabled, m.Name())
	}
	return s
}

// Admit says whether a request with apiKey may be served now. A false
// answer means the connection must be closed without a response, as
// Kafka closes a connection that sends anything but ApiVersions and the
// SASL requests before it has authenticated, or anything else once its
// session has expired.
func (s *Session) Admit(apiKey int16, now time.Time) bool {
	switch {
	case s.state == failed:
		return false
	case apiKey == keyApiVersions || apiKey == keySaslHandshake:
		return true
	case apiKey == keySaslAuthenticate && (s.state == authenticating || s.state == reauthenticating):
		return true
	case s.state == authenticated || s.state == reauthenticating:
		// After authentication a SaslAuthenticate is served like any
		// request (Kafka's handler answers it ILLEGAL_SASL_STATE).
		if !s.expiry.IsZero() && !now.Before(s.expiry) {
			s.state = failed
			return false
		}
		return true
	}
	return false
}

// HandshakeResult is the answer to SaslHandshake.
type HandshakeResult struct {
	ErrorCode int16
	// Mechanisms lists the enabled mechanisms; Kafka returns them with
	// every answer.
	Mechanisms []string
	// Close says the connection must be closed after this answer is sent
	// (after connection.failed.authentication.delay.ms).
	Close bool
}

// Handshake handles SaslHandshake: it selects the mechanism, first or for
// a re-authentication. A handshake in the middle of an exchange is
// ILLEGAL_SASL_STATE, and a mechanism the listener does not enable is
// UNSUPPORTED_SASL_MECHANISM: either fails the session, as in Kafka,
// where the client cannot try another mechanism on the same connection.
// After authentication, a handshake starts a re-authentication only in a
// session with a lifetime and at most once a second (KIP-368); otherwise
// it is answered ILLEGAL_SASL_STATE and the session goes on, as Kafka's
// request handler answers it.
func (s *Session) Handshake(mechanism string, now time.Time) HandshakeResult {
	res := HandshakeResult{Mechanisms: slices.Clone(s.enabled)}
	switch s.state {
	case unauthenticated:
	case authenticated:
		if s.expiry.IsZero() || (!s.lastReauth.IsZero() && now.Sub(s.lastReauth) < minReauthInterval) {
			res.ErrorCode = codeIllegalState
			return res
		}
		s.lastReauth = now
	default:
		return s.failHandshake(res, codeIllegalState)
	}
	m, ok := s.mechs[mechanism]
	if !ok {
		return s.failHandshake(res, codeUnsupportedMechanism)
	}
	if s.state == authenticated {
		s.prevMechanism, s.prevPrincipal = s.mechanism, s.principal
		s.state = reauthenticating
	} else {
		s.state = authenticating
	}
	s.mechanism = mechanism
	s.exchange = m.Start()
	return res
}

func (s *Session) failHandshake(res HandshakeResult, code int16) HandshakeResult {
	s.state = failed
	s.exchange = nil
	res.ErrorCode, res.Close = code, true
	return res
}

// AuthenticateResult is the answer to SaslAuthenticate.
type AuthenticateResult struct {
	ErrorCode    int16
	ErrorMessage string
	AuthBytes    []byte
	// SessionLifetime is SessionLifetimeMs (v1+) once authentication
	// completes; 0 means no re-authentication is required.
	SessionLifetime time.Duration
	// Close says the connection must be closed after this answer is sent
	// (after connection.failed.authentication.delay.ms, for a failure).
	Close bool
}

// Authenticate feeds one SaslAuthenticate payload to the exchange.
func (s *Session) Authenticate(in []byte, now time.Time) AuthenticateResult {
	switch s.state {
	case authenticating, reauthenticating:
	case authenticated:
		return AuthenticateResult{ErrorCode: codeIllegalState, ErrorMessage: "SaslAuthenticate request received after successful authentication"}
	default:
		s.state = failed
		return AuthenticateResult{ErrorCode: codeIllegalState, ErrorMessage: "SaslAuthenticate before SaslHandshake", Close: true}
	}
	if s.state == reauthenticating && s.mechanism != s.prevMechanism {
		// KIP-368: a re-authentication cannot switch mechanisms; Kafka
		// refuses its first token without looking at it.
		return s.fail(nil, fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'", s.mechanism, s.prevMechanism))
	}
	if s.maxRecv > 0 && len(in) > s.maxRecv {
		return s.fail(nil, fmt.Sprintf("SASL message of %d bytes is over sasl.server.max.receive.size (%d)", len(in), s.maxRecv))
	}
	out, err := s.exchange.Step(in)
	if err != nil {
		return s.fail(out, err.Error())
	}
	if !s.exchange.Done() {
		return AuthenticateResult{AuthBytes: out}
	}
	principal, credExpiry := s.exchange.Outcome()
	s.exchange = nil
	if s.state == reauthenticating && principal != s.prevPrincipal {
		// KIP-368: a re-authentication proves the same identity again.
		return s.fail(out, fmt.Sprintf("Cannot change principals during re-authentication from User.%s: User.%s", s.prevPrincipal, principal))
	}
	s.state = authenticated
	s.principal = principal
	life := SessionLifetime(now, credExpiry, s.maxReauth)
	s.expiry = time.Time{}
	if life > 0 {
		s.expiry = now.Add(life)
	}
	return AuthenticateResult{AuthBytes: out, SessionLifetime: life}
}

func (s *Session) fail(out []byte, msg string) AuthenticateResult {
	s.state = failed
	s.exchange = nil
	return AuthenticateResult{ErrorCode: codeAuthFailed, ErrorMessage: msg, AuthBytes: out, Close: true}
}

// Principal returns the authenticated user name, or "" before
// authentication completes. During a re-authentication it is still the
// previous one.
func (s *Session) Principal() string {
	if s.state == authenticated || s.state == reauthenticating {
		return s.principal
	}
	return ""
}

// Mechanism returns the mechanism of the current session.
func (s *Session) Mechanism() string { return s.mechanism }
