package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testcerts"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// An OAUTHBEARER listener validates a client's JWT against the JWKS file
// and makes its sub the principal; a token signed by another key or
// expired is SASL_AUTHENTICATION_FAILED.
func TestOAuthBearerListener(t *testing.T) {
	good, other := testcerts.NewIssuer(t, "k1"), testcerts.NewIssuer(t, "k1")
	jwks := good.File(t)
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
		return describeACLsAs(t, s, kgo.SASL(oauth.Auth{Token: token}.AsMechanism()))
	}
	token := func(is *testcerts.Issuer, sub string, exp time.Time) string {
		return is.Token(map[string]any{"sub": sub, "exp": exp, "iat": time.Now().Add(-time.Minute)})
	}
	hour := time.Now().Add(time.Hour)
	if code, err := describeACLs(token(good, "svc", hour)); err != nil || code != 0 {
		t.Fatalf("super user svc: %v %v", err, kerr.ErrorForCode(code))
	}
	if code, err := describeACLs(token(good, "alice", hour)); err != nil || code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alice: %v %v, want CLUSTER_AUTHORIZATION_FAILED", err, kerr.ErrorForCode(code))
	}
	// RFC 7628, as Kafka runs it: an invalid token is answered with a JSON
	// status and no error; the client's lone 0x01 then gets
	// SASL_AUTHENTICATION_FAILED and the connection closes.
	for name, token := range map[string]string{
		"signed by another key": token(other, "svc", hour),
		"expired":               token(good, "svc", time.Now().Add(-time.Hour)),
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
