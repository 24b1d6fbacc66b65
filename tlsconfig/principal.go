package tlsconfig

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
)

// MappingRule is one entry of ssl.principal.mapping.rules.
type MappingRule struct {
	// Default passes the distinguished name through unchanged.
	Default     bool
	Pattern     *regexp.Regexp
	Replacement string // in Go's expansion syntax
	Case        byte   // 'L', 'U' or 0
}

// MappingRules are ssl.principal.mapping.rules: the first rule whose
// pattern matches the whole distinguished name decides the principal name.
type MappingRules []MappingRule

// ParseMappingRules parses Kafka's syntax: a comma-separated list of
// DEFAULT and RULE:pattern/replacement/[LU] entries, where '/' and '\'
// inside pattern and replacement are escaped with '\' and the pattern may
// itself contain commas. The replacement refers to groups as $1; Java's
// regular expressions and Go's agree on the constructs DN rules use, but
// not on all (no backreferences or lookaround in Go).
func ParseMappingRules(s string) (MappingRules, error) {
	var rules MappingRules
	rest := strings.TrimSpace(s)
	if rest == "" {
		return MappingRules{{Default: true}}, nil
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			rules = append(rules, MappingRule{Default: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pat, r, ok := cutUnescaped(rest)
			if !ok {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: rule %q has no '/' after its pattern", "RULE:"+rest)
			}
			repl, r, ok := cutUnescaped(r)
			if !ok {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: rule %q has no '/' after its replacement", "RULE:"+rest)
			}
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: invalid pattern %q: %w", pat, err)
			}
			rule := MappingRule{Pattern: re, Replacement: javaReplacement(repl)}
			if r != "" && (r[0] == 'L' || r[0] == 'U') {
				rule.Case = r[0]
				r = r[1:]
			}
			rules = append(rules, rule)
			rest = r
		default:
			return nil, fmt.Errorf("ssl.principal.mapping.rules: invalid rule %q", rest)
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("ssl.principal.mapping.rules: expected ',' before %q", rest)
		}
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return rules, nil
}

// cutUnescaped splits s at the first '/' not escaped by '\'; the part
// before keeps its escapes (the regexp or replacement reads them).
func cutUnescaped(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '/':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// javaReplacement turns a Java replacement string ($1, \x) into Go's
// (${1}, x, $$ for a literal dollar).
func javaReplacement(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '\\' && i+1 < len(r):
			i++
			if r[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(r[i])
			}
		case c == '$':
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			if j == i+1 {
				b.WriteString("$$")
			} else {
				b.WriteString("${" + r[i+1:j] + "}")
				i = j - 1
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Apply maps a distinguished name to a principal name, or fails when no
// rule applies (Kafka then fails the authentication).
func (rs MappingRules) Apply(dn string) (string, error) {
	for _, r := range rs {
		if r.Default {
			return dn, nil
		}
		if !r.Pattern.MatchString(dn) {
			continue
		}
		name := r.Pattern.ReplaceAllString(dn, r.Replacement)
		switch r.Case {
		case 'L':
			name = strings.ToLower(name)
		case 'U':
			name = strings.ToUpper(name)
		}
		return name, nil
	}
	return "", fmt.Errorf("no rules apply to %s", dn)
}

// SubjectDN renders a certificate's subject in RFC 2253 form, most
// specific attribute first ("CN=alice,OU=eng,O=acme,C=US"), as Java's
// X500Principal.getName() does for the common attributes.
func SubjectDN(cert *x509.Certificate) string {
	return cert.Subject.ToRDNSequence().String()
}

// PrincipalName is the name of the principal a client certificate
// authenticates, after the mapping rules.
func PrincipalName(cert *x509.Certificate, rules MappingRules) (string, error) {
	return rules.Apply(SubjectDN(cert))
}
