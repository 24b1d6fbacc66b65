package sasl

import (
	"fmt"
	"strings"
)

// Module is one login module entry of a JAAS configuration:
//
//	org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";
type Module struct {
	// LoginModule is the class name.
	LoginModule string
	// Flag is required, requisite, sufficient or optional.
	Flag    string
	Options map[string]string
}

// Login module classes Kafka's mechanisms use.
const (
	PlainLoginModule       = "org.apache.kafka.common.security.plain.PlainLoginModule"
	ScramLoginModule       = "org.apache.kafka.common.security.scram.ScramLoginModule"
	OAuthBearerLoginModule = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
)

// PlainUsers returns the users a PlainLoginModule defines with
// user_<name>=<password> options.
func (m Module) PlainUsers() map[string]string {
	users := map[string]string{}
	for k, v := range m.Options {
		if name, ok := strings.CutPrefix(k, "user_"); ok && name != "" {
			users[name] = v
		}
	}
	return users
}

// maxJAASLen bounds the text ParseJAAS accepts; a config is a few hundred
// bytes, and the parser must not be a way to make the broker chew on
// megabytes.
const maxJAASLen = 1 << 20

// ParseJAASConfig parses the value of sasl.jaas.config, which Kafka
// requires to hold exactly one login module.
func ParseJAASConfig(s string) (Module, error) {
	mods, err := ParseJAAS(s)
	if err != nil {
		return Module{}, err
	}
	if len(mods) != 1 {
		return Module{}, fmt.Errorf("JAAS config property contains %d login modules, should be 1 module", len(mods))
	}
	return mods[0], nil
}

// ParseJAAS parses login module entries the way Kafka's JaasConfig does
// (a java.io.StreamTokenizer with // and /* */ comments):
//
//	entry  = class flag { key "=" value } ";"
//	value  = word | "double-quoted" | 'single-quoted'
//
// A word is a letter, '_' or '$' followed by letters, digits, '.', '-',
// '_' and '$'; anything else (a bare number, say) must be quoted. Quoted
// strings take Java's escapes: \n \t \b \f \r, octal \ooo, and \x for any
// other x (so \" and \\).
func ParseJAAS(s string) ([]Module, error) {
	if len(s) > maxJAASLen {
		return nil, fmt.Errorf("JAAS config is %d bytes, over the limit of %d", len(s), maxJAASLen)
	}
	t := &jaasTokenizer{s: s}
	var mods []Module
	for {
		tok, err := t.next()
		if err != nil {
			return nil, err
		}
		if tok.kind == tokEOF {
			break
		}
		if tok.kind != tokWord {
			return nil, fmt.Errorf("expected a login module class name in JAAS config, found %s", tok)
		}
		m := Module{LoginModule: tok.text, Options: map[string]string{}}
		flag, err := t.next()
		if err != nil {
			return nil, err
		}
		if flag.kind == tokEOF {
			return nil, fmt.Errorf("login module control flag not specified in JAAS config")
		}
		switch f := strings.ToLower(flag.text); {
		case flag.kind == tokWord && (f == "required" || f == "requisite" || f == "sufficient" || f == "optional"):
			m.Flag = f
		default:
			return nil, fmt.Errorf("invalid login module control flag %s in JAAS config", flag)
		}
		for {
			key, err := t.next()
			if err != nil {
				return nil, err
			}
			if key.kind == tokSemicolon {
				break
			}
			if key.kind == tokEOF {
				return nil, fmt.Errorf("JAAS config entry not terminated by semi-colon")
			}
			if key.kind != tokWord {
				return nil, fmt.Errorf("expected an option name in JAAS config, found %s", key)
			}
			eq, err := t.next()
			if err != nil {
				return nil, err
			}
			val, err := t.next()
			if err != nil {
				return nil, err
			}
			if eq.kind != tokEquals || (val.kind != tokWord && val.kind != tokQuoted) {
				return nil, fmt.Errorf("value not specified for key '%s' in JAAS config", key.text)
			}
			m.Options[key.text] = val.text
		}
		mods = append(mods, m)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("JAAS config has no login modules")
	}
	return mods, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokQuoted
	tokEquals
	tokSemicolon
	tokOther
)

type token struct {
	kind tokKind
	text string
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokQuoted:
		return "quoted string"
	}
	return fmt.Sprintf("%q", t.text)
}

type jaasTokenizer struct {
	s string
	i int
}

func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c >= 0x80
}

func isWordPart(c byte) bool {
	return isWordStart(c) || c >= '0' && c <= '9' || c == '.' || c == '-'
}

func (t *jaasTokenizer) next() (token, error) {
	for t.i < len(t.s) {
		c := t.s[t.i]
		switch {
		case c <= ' ':
			t.i++
		case strings.HasPrefix(t.s[t.i:], "//"):
			end := strings.IndexAny(t.s[t.i:], "\r\n")
			if end < 0 {
				t.i = len(t.s)
			} else {
				t.i += end
			}
		case strings.HasPrefix(t.s[t.i:], "/*"):
			end := strings.Index(t.s[t.i+2:], "*/")
			if end < 0 {
				return token{}, fmt.Errorf("unterminated comment in JAAS config")
			}
			t.i += 2 + end + 2
		case c == '/':
			// StreamTokenizer's comment character: the rest of the line.
			end := strings.IndexAny(t.s[t.i:], "\r\n")
			if end < 0 {
				t.i = len(t.s)
			} else {
				t.i += end
			}
		case isWordStart(c):
			start := t.i
			for t.i < len(t.s) && isWordPart(t.s[t.i]) {
				t.i++
			}
			return token{kind: tokWord, text: t.s[start:t.i]}, nil
		case c == '"' || c == '\'':
			return t.quoted(c)
		case c == '=':
			t.i++
			return token{kind: tokEquals, text: "="}, nil
		case c == ';':
			t.i++
			return token{kind: tokSemicolon, text: ";"}, nil
		default:
			start := t.i
			t.i++
			for t.i < len(t.s) && isWordPart(t.s[t.i]) {
				t.i++
			}
			return token{kind: tokOther, text: t.s[start:t.i]}, nil
		}
	}
	return token{kind: tokEOF}, nil
}

func (t *jaasTokenizer) quoted(q byte) (token, error) {
	t.i++ // opening quote
	var b strings.Builder
	for t.i < len(t.s) {
		c := t.s[t.i]
		t.i++
		switch {
		case c == q:
			return token{kind: tokQuoted, text: b.String()}, nil
		case c == '\n' || c == '\r':
			return token{}, fmt.Errorf("unterminated quoted string in JAAS config")
		case c != '\\':
			b.WriteByte(c)
		case t.i >= len(t.s):
			return token{}, fmt.Errorf("unterminated quoted string in JAAS config")
		default:
			e := t.s[t.i]
			t.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case 'a':
				b.WriteByte('\a')
			case 'v':
				b.WriteByte('\v')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				// Up to three octal digits, at most \377, as StreamTokenizer reads them.
				v := int(e - '0')
				maxDigits := 2
				if e > '3' {
					maxDigits = 1
				}
				for range maxDigits {
					if t.i < len(t.s) && t.s[t.i] >= '0' && t.s[t.i] <= '7' {
						v = v*8 + int(t.s[t.i]-'0')
						t.i++
					}
				}
				b.WriteByte(byte(v))
			default:
				b.WriteByte(e)
			}
		}
	}
	return token{}, fmt.Errorf("unterminated quoted string in JAAS config")
}
