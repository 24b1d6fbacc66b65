package sasl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// TokenValidator checks an OAUTHBEARER token and returns its principal and
// expiry. It is Kafka's OAuthBearerValidatorCallbackHandler (KIP-768):
// signature against a JWKS, exp required and in the future, iat and nbf
// respected, audience and issuer as configured, the principal from the
// configured claim.
type TokenValidator struct {
	// Keys supplies the JWKS the signature is checked against.
	Keys *JWKS
	// ExpectedAudience is sasl.oauthbearer.expected.audience: when not
	// empty, the token's aud must contain one of these.
	ExpectedAudience []string
	// ExpectedIssuer is sasl.oauthbearer.expected.issuer: when set, iss
	// must equal it.
	ExpectedIssuer string
	// SubClaim is sasl.oauthbearer.sub.claim.name (default "sub").
	SubClaim string
	// ClockSkew is sasl.oauthbearer.clock.skew.seconds (default 30s).
	ClockSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxTokenLen bounds a token; real ones are a few kilobytes.
const maxTokenLen = 64 << 10

// Validate checks token and returns its principal and expiry.
func (v *TokenValidator) Validate(ctx context.Context, token string) (string, time.Time, error) {
	if len(token) > maxTokenLen {
		return "", time.Time{}, fmt.Errorf("token is %d bytes, over the limit of %d", len(token), maxTokenLen)
	}
	keys, err := v.Keys.Set(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("no keys to verify the token: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	opts := []jwt.ParseOption{
		// Keys in a JWKS often carry no alg; the key type decides it then,
		// which never admits "none" or an HMAC with a public key.
		jwt.WithKeySet(keys, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(now)),
		jwt.WithAcceptableSkew(v.ClockSkew),
		jwt.WithRequiredClaim("exp"),
	}
	if v.ExpectedIssuer != "" {
		opts = append(opts, jwt.WithIssuer(v.ExpectedIssuer))
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		return "", time.Time{}, err
	}
	if len(v.ExpectedAudience) > 0 {
		aud, _ := tok.Audience()
		if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.ExpectedAudience, a) }) {
			return "", time.Time{}, fmt.Errorf("the token's audience %v does not contain any of %v", aud, v.ExpectedAudience)
		}
	}
	claim := v.SubClaim
	if claim == "" {
		claim = "sub"
	}
	var sub string
	if err := tok.Get(claim, &sub); err != nil || strings.TrimSpace(sub) == "" {
		return "", time.Time{}, fmt.Errorf("the token has no %q claim with a principal name", claim)
	}
	exp, _ := tok.Expiration()
	return sub, exp, nil
}

// OAuthBearer is the OAUTHBEARER mechanism (RFC 7628) with JWT validation.
type OAuthBearer struct {
	validator *TokenValidator
}

// NewOAuthBearer returns OAUTHBEARER validating tokens with v.
func NewOAuthBearer(v *TokenValidator) *OAuthBearer { return &OAuthBearer{validator: v} }

func (*OAuthBearer) Name() string { return OAUTHBEARER }

func (o *OAuthBearer) Start() Exchange { return &oauthExchange{v: o.validator} }

type oauthExchange struct {
	done
	v *TokenValidator
	// awaitingAck is set after an invalid token: RFC 7628 has the server
	// send a JSON error and the client answer a lone kvsep before the
	// failure is final. Anything else is, as in Kafka, a new client
	// initial response: another token.
	awaitingAck bool
	failure     string
}

// validationTimeout bounds one token validation, JWKS fetch included.
const validationTimeout = 10 * time.Second

func (x *oauthExchange) Step(in []byte) ([]byte, error) {
	if x.over {
		return nil, ErrIllegalState
	}
	if x.awaitingAck {
		if string(in) == kvsep {
			return nil, x.fail(x.failure)
		}
		x.awaitingAck = false
	}
	msg, err := ParseOAuthBearerClientFirst(in)
	if err != nil {
		return nil, x.fail("Authentication failed: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), validationTimeout)
	defer cancel()
	principal, exp, err := x.v.Validate(ctx, msg.Token)
	if err != nil {
		x.awaitingAck = true
		x.failure = "Authentication failed: invalid token: " + err.Error()
		return oauthErrorJSON("invalid_token"), nil
	}
	if msg.AuthzID != "" && msg.AuthzID != principal {
		// The token is valid but names someone else: Kafka fails at once,
		// without an error status to acknowledge.
		return nil, x.fail(fmt.Sprintf("Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)", msg.AuthzID, principal))
	}
	x.succeed(principal, exp)
	return nil, nil
}

func oauthErrorJSON(status string) []byte {
	b, _ := json.Marshal(map[string]string{"status": status})
	return b
}

// OAuthBearerClientFirst is a parsed OAUTHBEARER client initial response.
type OAuthBearerClientFirst struct {
	AuthzID    string
	Token      string
	Extensions map[string]string
}

const kvsep = "\x01"

// ParseOAuthBearerClientFirst parses RFC 7628's client initial response:
//
//	gs2-header kvsep *(key "=" value kvsep) kvsep
//	gs2-header = "n," ["a=" authzid] ","
//
// with auth=Bearer <token> among the pairs and any others kept as SASL
// extensions (KIP-342). Channel binding ("p=" or "y") is refused: Kafka
// does not support it.
func ParseOAuthBearerClientFirst(in []byte) (OAuthBearerClientFirst, error) {
	var out OAuthBearerClientFirst
	if len(in) > maxTokenLen+4096 {
		return out, fmt.Errorf("OAUTHBEARER message too large")
	}
	s := string(in)
	header, rest, ok := strings.Cut(s, kvsep)
	if !ok {
		return out, fmt.Errorf("invalid OAUTHBEARER client first message: no kvsep")
	}
	gs2, ok := strings.CutPrefix(header, "n,")
	if !ok {
		return out, fmt.Errorf("invalid OAUTHBEARER GS2 header: channel binding is not supported")
	}
	authz, ok := strings.CutSuffix(gs2, ",")
	if !ok || strings.Contains(authz, ",") {
		return out, fmt.Errorf("invalid OAUTHBEARER GS2 header")
	}
	if authz != "" {
		a, ok := strings.CutPrefix(authz, "a=")
		if !ok || a == "" {
			return out, fmt.Errorf("invalid OAUTHBEARER authorization id")
		}
		a, err := decodeSASLName(a)
		if err != nil {
			return out, err
		}
		out.AuthzID = a
	}
	body, ok := strings.CutSuffix(rest, kvsep+kvsep)
	if !ok {
		return out, fmt.Errorf("invalid OAUTHBEARER client first message: not terminated by two kvsep")
	}
	out.Extensions = map[string]string{}
	for _, kv := range strings.Split(body, kvsep) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validKey(k) {
			return out, fmt.Errorf("invalid OAUTHBEARER key/value pair")
		}
		if _, dup := out.Extensions[k]; dup || (k == "auth" && out.Token != "") {
			return out, fmt.Errorf("OAUTHBEARER key %q given twice", k)
		}
		if k == "auth" {
			tok, ok := cutBearer(v)
			if !ok {
				return out, fmt.Errorf("invalid OAUTHBEARER auth value: want \"Bearer <token>\"")
			}
			out.Token = tok
			continue
		}
		out.Extensions[k] = v
	}
	if out.Token == "" {
		return out, fmt.Errorf("OAUTHBEARER client first message has no token")
	}
	return out, nil
}

// cutBearer strips the case-insensitive "Bearer " scheme.
func cutBearer(v string) (string, bool) {
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimLeft(v[7:], " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// validKey is RFC 7628's key = 1*(ALPHA).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// decodeSASLName undoes RFC 5801's saslname escaping (=2C and =3D).
func decodeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("invalid escape in authorization id")
		}
		i += 2
	}
	return b.String(), nil
}
