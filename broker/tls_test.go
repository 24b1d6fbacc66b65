package broker

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testcerts"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeACLsAs asks s to describe every ACL, as the client that opts
// make, and returns the response's error code: 0 for a super user,
// CLUSTER_AUTHORIZATION_FAILED for a principal without DESCRIBE on the
// cluster. The error is the client's: it never got a response.
func describeACLsAs(t *testing.T, s *Server, opts ...kgo.Opt) (int16, error) {
	cl := testClient(t, s, append(opts, kgo.RetryTimeout(time.Second))...)
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(testContext(t, 10*time.Second), cl)
	if err != nil {
		return 0, err
	}
	return resp.ErrorCode, nil
}

// An SSL listener with ssl.client.auth=required: the client
// certificate's subject is the principal (super.users names it), another
// certificate gets no more than its ACLs allow, a client without a
// certificate and one that never completes the handshake are closed.
func TestSSLListenerMutualTLSPrincipal(t *testing.T) {
	ca := testcerts.NewCA(t, "test-ca")
	dir := t.TempDir()
	// The broker's certificate serves its listener and, as
	// inter.broker.listener.name is this listener, authenticates it to itself.
	brokerChain, brokerKey := ca.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server|testcerts.Client)
	s := startTestServer(t,
		"listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map=CLIENT:SSL,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=CLIENT",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location="+testcerts.WriteFile(t, dir, "server.pem", brokerChain, brokerKey),
		"ssl.truststore.type=PEM",
		"ssl.truststore.location="+testcerts.WriteFile(t, dir, "ca.pem", ca.PEM),
		"ssl.client.auth=required",
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:CN=admin",
		"socket.request.read.timeout.ms=500",
	)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	clientTLS := func(cn string) *tls.Config {
		cfg := &tls.Config{RootCAs: roots}
		if cn != "" {
			pair, err := tls.X509KeyPair(ca.Issue(t, pkix.Name{CommonName: cn}, testcerts.Client))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	describe := func(cn string) (int16, error) {
		return describeACLsAs(t, s, kgo.DialTLSConfig(clientTLS(cn)))
	}
	if code, err := describe("admin"); err != nil || code != 0 {
		t.Fatalf("CN=admin: %v %v", err, kerr.ErrorForCode(code))
	}
	if code, err := describe("bob"); err != nil || code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("CN=bob: %v %v, want CLUSTER_AUTHORIZATION_FAILED", err, kerr.ErrorForCode(code))
	}
	if _, err := describe(""); err == nil {
		t.Fatal("a client without a certificate was served")
	}

	// A connection that never sends its ClientHello is closed after the
	// authentication bound.
	nc, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	var b [1]byte
	if _, err := nc.Read(b[:]); err == nil || isTimeout(err) {
		t.Fatalf("silent connection: read %v after %v, want it closed", err, time.Since(start))
	}
}
