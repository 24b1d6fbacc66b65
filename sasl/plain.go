package sasl

import (
	"bytes"
	"crypto/subtle"
	"strconv"
	"time"
)

// Plain is the PLAIN mechanism (RFC 4616) with users from a JAAS
// PlainLoginModule's user_<name>="<password>" options, as Kafka's
// PlainServerCallbackHandler reads them.
type Plain struct {
	users map[string]string
}

// NewPlain returns PLAIN over users (name to password).
func NewPlain(users map[string]string) *Plain { return &Plain{users: users} }

// NewPlainFromJAAS reads users from a JAAS config's PlainLoginModule.
func NewPlainFromJAAS(m Module) *Plain { return NewPlain(m.PlainUsers()) }

func (*Plain) Name() string { return PLAIN }

func (p *Plain) Start() Exchange { return &plainExchange{users: p.users} }

type plainExchange struct {
	done
	users map[string]string
}

// Step reads the one PLAIN message: [authzid] NUL authcid NUL passwd.
func (x *plainExchange) Step(in []byte) ([]byte, error) {
	if x.over {
		return nil, ErrIllegalState
	}
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return nil, x.fail("Invalid SASL/PLAIN response: expected 3 tokens, got " + strconv.Itoa(len(parts)))
	}
	authzid, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if user == "" {
		return nil, x.fail("Authentication failed: username not specified")
	}
	if len(pass) == 0 {
		return nil, x.fail("Authentication failed: password not specified")
	}
	want, ok := x.users[user]
	// Compare even for unknown users so timing does not tell which exist.
	match := subtle.ConstantTimeCompare(pass, []byte(want)) == 1
	if !ok || !match {
		return nil, x.fail("Authentication failed: Invalid username or password")
	}
	if authzid != "" && authzid != user {
		return nil, x.fail("Authentication failed: Client requested an authorization id that is different from username")
	}
	x.succeed(user, time.Time{})
	return nil, nil
}
