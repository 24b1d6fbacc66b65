package sasl

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// ScramSpec is one credential as Kafka's tools write it:
//
//	SCRAM-SHA-256=[name=alice,password=alice-secret]
//	SCRAM-SHA-512=[name=alice,iterations=8192,salt="c2FsdA==",saltedpassword="..."]
//
// (kafka-storage format --add-scram; kafka-configs --add-config takes the
// same without name=, the user being named by --entity-name.)
type ScramSpec struct {
	Mechanism  ScramMechanism
	Name       string
	Password   string
	Iterations int
	// Salt and SaltedPassword are decoded from base64; SaltedPassword
	// replaces Password when given.
	Salt           []byte
	SaltedPassword []byte
}

// maxScramSpecLen bounds ParseScramSpecs' input.
const maxScramSpecLen = 64 << 10

// ParseScramSpecs parses one or more comma-separated MECHANISM=[k=v,...]
// entries. Values may be double-quoted, with \" and \\ as escapes, to
// hold commas, brackets or equals signs. Keys: name, password,
// iterations (default 4096), salt and saltedpassword (base64). Each entry
// needs password or saltedpassword; saltedpassword needs salt.
func ParseScramSpecs(s string) ([]ScramSpec, error) {
	if len(s) > maxScramSpecLen {
		return nil, fmt.Errorf("SCRAM credential text is %d bytes, over the limit of %d", len(s), maxScramSpecLen)
	}
	var out []ScramSpec
	rest := strings.TrimSpace(s)
	for {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return nil, fmt.Errorf("expected MECHANISM=[...] in %q", s)
		}
		mech, err := ParseScramMechanism(strings.TrimSpace(rest[:eq]))
		if err != nil {
			return nil, err
		}
		rest = strings.TrimSpace(rest[eq+1:])
		if !strings.HasPrefix(rest, "[") {
			return nil, fmt.Errorf("expected '[' after %s=", mech)
		}
		spec := ScramSpec{Mechanism: mech, Iterations: DefaultScramIterations}
		var seen = map[string]bool{}
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ")
			var key, val string
			key, val, rest, err = scramKeyValue(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mech, err)
			}
			if seen[key] {
				return nil, fmt.Errorf("%s: %s given twice", mech, key)
			}
			seen[key] = true
			if err := spec.set(key, val); err != nil {
				return nil, fmt.Errorf("%s: %w", mech, err)
			}
			rest = strings.TrimLeft(rest, " ")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if strings.HasPrefix(rest, "]") {
				rest = rest[1:]
				break
			}
			return nil, fmt.Errorf("%s: expected ',' or ']' after %s", mech, key)
		}
		if err := spec.check(); err != nil {
			return nil, err
		}
		out = append(out, spec)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return out, nil
		}
		if !strings.HasPrefix(rest, ",") {
			return nil, fmt.Errorf("unexpected %q after %s=[...]", rest, mech)
		}
		rest = strings.TrimSpace(rest[1:])
	}
}

// scramKeyValue reads key=value (value maybe quoted) from the front of s.
func scramKeyValue(s string) (key, val, rest string, err error) {
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return "", "", "", fmt.Errorf("expected key=value in %q", s)
	}
	key = strings.ToLower(strings.TrimSpace(s[:eq]))
	s = s[eq+1:]
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, ",]")
		if end < 0 {
			return "", "", "", fmt.Errorf("missing ']' after %s", key)
		}
		return key, strings.TrimSpace(s[:end]), s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return key, b.String(), s[i+1:], nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", "", fmt.Errorf("unterminated quoted value of %s", key)
}

func (sp *ScramSpec) set(key, val string) error {
	var err error
	switch key {
	case "name":
		sp.Name = val
	case "password":
		sp.Password = val
	case "iterations":
		sp.Iterations, err = strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("iterations %q is not a number", val)
		}
	case "salt":
		sp.Salt, err = base64.StdEncoding.DecodeString(val)
		if err != nil {
			return fmt.Errorf("salt is not base64: %w", err)
		}
		if len(sp.Salt) == 0 {
			return fmt.Errorf("salt must not be empty")
		}
	case "saltedpassword":
		sp.SaltedPassword, err = base64.StdEncoding.DecodeString(val)
		if err != nil {
			return fmt.Errorf("saltedpassword is not base64: %w", err)
		}
	default:
		return fmt.Errorf("unknown key %q (want name, password, iterations, salt or saltedpassword)", key)
	}
	return nil
}

func (sp *ScramSpec) check() error {
	switch {
	case sp.Password == "" && sp.SaltedPassword == nil:
		return fmt.Errorf("%s: password or saltedpassword is required", sp.Mechanism)
	case sp.Password != "" && sp.SaltedPassword != nil:
		return fmt.Errorf("%s: give password or saltedpassword, not both", sp.Mechanism)
	case sp.SaltedPassword != nil && sp.Salt == nil:
		return fmt.Errorf("%s: saltedpassword needs salt", sp.Mechanism)
	}
	return checkIterations(sp.Iterations)
}

// Credential derives the stored credential of the spec, salting with a
// random salt where none is given.
func (sp ScramSpec) Credential() (ScramCredential, error) {
	if sp.SaltedPassword != nil {
		return ScramCredentialFromSaltedPassword(sp.Mechanism, sp.Salt, sp.SaltedPassword, sp.Iterations)
	}
	return NewScramCredential(sp.Mechanism, sp.Password, sp.Salt, sp.Iterations)
}
