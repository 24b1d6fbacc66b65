// Package sasl holds the server side of Kafka's SASL mechanisms (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER) as state machines: the
// broker feeds each SaslAuthenticate payload to Exchange.Step and sends
// back what it returns, until the exchange is done. Nothing here touches a
// socket, so every mechanism is tested and fuzzed byte for byte.
//
// The cryptography is the libraries': xdg-go/scram for SCRAM and
// lestrrat-go/jwx for JWT and JWKS.
package sasl

import (
	"errors"
	"time"
)

// Mechanism names as sasl.enabled.mechanisms spells them.
const (
	PLAIN       = "PLAIN"
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
	OAUTHBEARER = "OAUTHBEARER"
)

// A Mechanism starts server-side exchanges for one SASL mechanism. It is
// safe for concurrent use; each Exchange belongs to one connection.
type Mechanism interface {
	Name() string
	Start() Exchange
}

// Exchange is one authentication attempt.
//
// Step takes the client's next message and returns the server's reply,
// which the broker sends even when Step also returns an error (an
// OAUTHBEARER failure carries a JSON status, for instance). After an
// error, or once Done reports true, the exchange is over; Step must not
// be called again (it returns ErrIllegalState if it is).
type Exchange interface {
	Step(in []byte) (out []byte, err error)
	Done() bool
	// Outcome returns the authenticated identity once Done is true and no
	// Step failed. Expiry is when the credential stops being valid (an
	// OAUTHBEARER token's exp), or the zero time when it does not expire.
	Outcome() (principal string, expiry time.Time)
}

// AuthError is a failed authentication. The broker answers
// SASL_AUTHENTICATION_FAILED with Error() as the message, so it says what
// went wrong without revealing whether a user exists.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return e.Msg }

// ErrIllegalState is returned by Step on an exchange that is already over;
// Kafka's code for it is ILLEGAL_SASL_STATE.
var ErrIllegalState = errors.New("SASL exchange is already complete")

// IsAuthError reports whether err is a failed authentication (as opposed
// to a state or server error).
func IsAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// SessionLifetime is what SaslAuthenticate v1+ returns as the session
// lifetime (KIP-368): the time until the credential expires or until
// connections.max.reauth.ms passes, whichever is first; 0 means the
// session never has to re-authenticate. A credential already expired
// yields the smallest positive lifetime, so the client re-authenticates at
// once rather than being told "forever".
func SessionLifetime(now, expiry time.Time, maxReauth time.Duration) time.Duration {
	var life time.Duration
	if !expiry.IsZero() {
		life = max(expiry.Sub(now), time.Millisecond)
	}
	if maxReauth > 0 && (life == 0 || maxReauth < life) {
		life = maxReauth
	}
	return life
}

// done is the shared completion state of the exchanges.
type done struct {
	over      bool
	principal string
	expiry    time.Time
}

func (d *done) Done() bool { return d.over }

func (d *done) Outcome() (string, time.Time) { return d.principal, d.expiry }

func (d *done) fail(msg string) error {
	d.over = true
	d.principal = ""
	return &AuthError{Msg: msg}
}

func (d *done) succeed(principal string, expiry time.Time) {
	d.over = true
	d.principal = principal
	d.expiry = expiry
}
