package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/xdg-go/scram"
)

// ScramMechanism is Kafka's ScramMechanism, with its wire values (as
// AlterUserScramCredentials and DescribeUserScramCredentials carry them).
type ScramMechanism int8

// The SCRAM mechanisms Kafka supports.
const (
	ScramUnknown ScramMechanism = 0
	ScramSHA256  ScramMechanism = 1
	ScramSHA512  ScramMechanism = 2
)

// Kafka's iteration bounds for both mechanisms (ScramMechanism.minIterations
// and maxIterations); AlterUserScramCredentials refuses others with
// UNACCEPTABLE_CREDENTIAL.
const (
	MinScramIterations     = 4096
	MaxScramIterations     = 16384
	DefaultScramIterations = 4096
)

// ParseScramMechanism maps "SCRAM-SHA-256" or "SCRAM-SHA-512" to its value.
func ParseScramMechanism(s string) (ScramMechanism, error) {
	switch s {
	case SCRAMSHA256:
		return ScramSHA256, nil
	case SCRAMSHA512:
		return ScramSHA512, nil
	}
	return ScramUnknown, fmt.Errorf("unknown SCRAM mechanism %q (want %s or %s)", s, SCRAMSHA256, SCRAMSHA512)
}

func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return SCRAMSHA256
	case ScramSHA512:
		return SCRAMSHA512
	}
	return "UNKNOWN"
}

func (m ScramMechanism) hashGen() scram.HashGeneratorFcn {
	switch m {
	case ScramSHA256:
		return scram.SHA256
	case ScramSHA512:
		return scram.SHA512
	}
	return nil
}

func (m ScramMechanism) newHash() func() hash.Hash {
	if m == ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// ScramCredential is what the server stores for one user and mechanism
// (RFC 5802 section 3): never the password.
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// CredentialStore looks SCRAM credentials up; the metadata image is the
// store in a running broker.
type CredentialStore interface {
	ScramCredential(user string, mech ScramMechanism) (ScramCredential, bool)
}

// NewScramCredential salts password with salt (random if nil) and derives
// the stored credential, with the library's PBKDF2 and key derivation.
func NewScramCredential(mech ScramMechanism, password string, salt []byte, iterations int) (ScramCredential, error) {
	if err := checkIterations(iterations); err != nil {
		return ScramCredential{}, err
	}
	gen := mech.hashGen()
	if gen == nil {
		return ScramCredential{}, fmt.Errorf("unknown SCRAM mechanism %d", mech)
	}
	if salt == nil {
		var err error
		if salt, err = randomSalt(rand.Reader); err != nil {
			return ScramCredential{}, err
		}
	}
	client, err := gen.NewClient("", password, "")
	if err != nil {
		return ScramCredential{}, fmt.Errorf("invalid password: %w", err)
	}
	sc, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return ScramCredential{}, err
	}
	return ScramCredential{Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey, Iterations: int32(iterations)}, nil
}

// ScramCredentialFromSaltedPassword derives the stored credential from a
// salted password, the form AlterUserScramCredentials carries (the client
// salts the password; the broker never sees it). The derivation is RFC
// 5802's: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
// HMAC(SaltedPassword, "Server Key"); the scram library does not expose
// it for a salted password, and a test checks this against the library.
func ScramCredentialFromSaltedPassword(mech ScramMechanism, salt, saltedPassword []byte, iterations int) (ScramCredential, error) {
	if err := checkIterations(iterations); err != nil {
		return ScramCredential{}, err
	}
	if mech.hashGen() == nil {
		return ScramCredential{}, fmt.Errorf("unknown SCRAM mechanism %d", mech)
	}
	newHash := mech.newHash()
	if len(saltedPassword) != newHash().Size() {
		return ScramCredential{}, fmt.Errorf("salted password is %d bytes, %s needs %d", len(saltedPassword), mech, newHash().Size())
	}
	if len(salt) == 0 {
		return ScramCredential{}, fmt.Errorf("salt must not be empty")
	}
	mac := func(msg string) []byte {
		h := hmac.New(newHash, saltedPassword)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	h := newHash()
	h.Write(mac("Client Key"))
	return ScramCredential{Salt: salt, StoredKey: h.Sum(nil), ServerKey: mac("Server Key"), Iterations: int32(iterations)}, nil
}

func checkIterations(n int) error {
	if n < MinScramIterations {
		return fmt.Errorf("too few iterations: %d (at least %d)", n, MinScramIterations)
	}
	if n > MaxScramIterations {
		return fmt.Errorf("too many iterations: %d (at most %d)", n, MaxScramIterations)
	}
	return nil
}

func randomSalt(r io.Reader) ([]byte, error) {
	salt := make([]byte, 32)
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, err
	}
	return salt, nil
}

// Scram is one SCRAM mechanism over a credential store.
type Scram struct {
	mech   ScramMechanism
	server *scram.Server
}

// NewScram returns the SCRAM mechanism mech looking credentials up in store.
func NewScram(mech ScramMechanism, store CredentialStore) (*Scram, error) {
	gen := mech.hashGen()
	if gen == nil {
		return nil, fmt.Errorf("unknown SCRAM mechanism %d", mech)
	}
	lookup := func(user string) (scram.StoredCredentials, error) {
		c, ok := store.ScramCredential(user, mech)
		if !ok {
			return scram.StoredCredentials{}, fmt.Errorf("unknown user")
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	}
	srv, err := gen.NewServer(lookup)
	if err != nil {
		return nil, err
	}
	return &Scram{mech: mech, server: srv}, nil
}

func (s *Scram) Name() string { return s.mech.String() }

func (s *Scram) Start() Exchange {
	return &scramExchange{mech: s.mech, conv: s.server.NewConversation()}
}

// maxScramMessage bounds a SCRAM client message; real ones are under 300
// bytes.
const maxScramMessage = 4096

type scramExchange struct {
	done
	mech ScramMechanism
	conv *scram.ServerConversation
}

// Step runs one step of RFC 5802: client-first gets server-first,
// client-final gets server-final. Every failure reads the same to the
// client, as Kafka's does, so a wrong password and an unknown user cannot
// be told apart.
func (x *scramExchange) Step(in []byte) ([]byte, error) {
	if x.over {
		return nil, ErrIllegalState
	}
	if len(in) > maxScramMessage {
		return nil, x.fail("Authentication failed: SCRAM message too large")
	}
	out, err := x.conv.Step(string(in))
	if err != nil {
		return nil, x.fail("Authentication failed during authentication due to invalid credentials with SASL mechanism " + x.mech.String())
	}
	if x.conv.Done() {
		if !x.conv.Valid() {
			return nil, x.fail("Authentication failed during authentication due to invalid credentials with SASL mechanism " + x.mech.String())
		}
		if authz := x.conv.AuthzID(); authz != "" && authz != x.conv.Username() {
			return nil, x.fail("Authentication failed: Client requested an authorization id that is different from username")
		}
		x.succeed(x.conv.Username(), time.Time{})
	}
	return []byte(out), nil
}
