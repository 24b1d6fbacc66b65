package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// signer makes ES256-signed JWTs and publishes its public key as a JWKS.
type signer struct {
	t    *testing.T
	priv jwk.Key
	jwks []byte
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, "k1"); err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{t: t, priv: priv, jwks: b}
}

func (s *signer) token(sub string, exp time.Time) string {
	s.t.Helper()
	tok := jwt.New()
	for k, v := range map[string]any{"sub": sub, "exp": exp, "iat": time.Now().Add(-time.Minute)} {
		if err := tok.Set(k, v); err != nil {
			s.t.Fatal(err)
		}
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), s.priv))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// An OAUTHBEARER listener validates a client's JWT against the JWKS file
// and makes its sub the principal; a token signed by another key or
// expired is SASL_AUTHENTICATION_FAILED.
func TestOAuthBearerListener(t *testing.T) {
	good, other := newSigner(t), newSigner(t)
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, good.jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t,
		"listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=CLIENT",
		"sasl.enabled.mechanisms=OAUTHBEARER",
		"sasl.mechanism.inter.broker.protocol=OAUTHBEARER",
		"sasl.oauthbearer.jwks.endpoint.url=file://"+jwks,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:svc",
		"connection.failed.authentication.delay.ms=0",
	)
	describeACLs := func(token string) (int16, error) {
		cl := testClient(t, s, kgo.SASL(oauth.Auth{Token: token}.AsMechanism()), kgo.RetryTimeout(time.Second))
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(testContext(t, 10*time.Second), cl)
		if err != nil {
			return 0, err
		}
		return resp.ErrorCode, nil
	}
	hour := time.Now().Add(time.Hour)
	if code, err := describeACLs(good.token("svc", hour)); err != nil || code != 0 {
		t.Fatalf("super user svc: %v %v", err, kerr.ErrorForCode(code))
	}
	if code, err := describeACLs(good.token("alice", hour)); err != nil || code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alice: %v %v, want CLUSTER_AUTHORIZATION_FAILED", err, kerr.ErrorForCode(code))
	}
	// RFC 7628, as Kafka runs it: an invalid token is answered with a JSON
	// status and no error; the client's lone 0x01 then gets
	// SASL_AUTHENTICATION_FAILED and the connection closes.
	for name, token := range map[string]string{
		"signed by another key": other.token("svc", hour),
		"expired":               good.token("svc", time.Now().Add(-time.Hour)),
	} {
		c := dialRaw(t, s.Addrs()[0])
		c.handshake("OAUTHBEARER")
		if r := c.authenticate([]byte("n,,\x01auth=Bearer " + token + "\x01\x01")); r.ErrorCode != 0 || !strings.Contains(string(r.SASLAuthBytes), "invalid_token") {
			t.Fatalf("%s: %v, %q; want an invalid_token status", name, kerr.ErrorForCode(r.ErrorCode), r.SASLAuthBytes)
		}
		if r := c.authenticate([]byte("\x01")); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, kerr.ErrorForCode(r.ErrorCode))
		}
		if !c.closed() {
			t.Fatalf("%s: connection open after the failure", name)
		}
	}
}
