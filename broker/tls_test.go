package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{t: t, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key for cn, usable by a server on
// 127.0.0.1 and by a client, as one PEM (chain, then key).
func (ca *testCA) issue(cn string) []byte {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An SSL listener with ssl.client.auth=required: the client
// certificate's subject is the principal (super.users names it), another
// certificate gets no more than its ACLs allow, a client without a
// certificate and one that never completes the handshake are closed.
func TestSSLListenerMutualTLSPrincipal(t *testing.T) {
	ca := newTestCA(t)
	s := startTestServer(t,
		"listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map=CLIENT:SSL,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=CLIENT",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location="+writeFile(t, "server.pem", ca.issue("broker")),
		"ssl.truststore.type=PEM",
		"ssl.truststore.location="+writeFile(t, "ca.pem", ca.pem),
		"ssl.client.auth=required",
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:CN=admin",
		"socket.request.read.timeout.ms=500",
	)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	clientTLS := func(cn string) *tls.Config {
		cfg := &tls.Config{RootCAs: roots}
		if cn != "" {
			b := ca.issue(cn)
			pair, err := tls.X509KeyPair(b, b)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	describe := func(cn string) (int16, error) {
		cl := testClient(t, s, kgo.DialTLSConfig(clientTLS(cn)), kgo.RetryTimeout(time.Second))
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(testContext(t, 10*time.Second), cl)
		if err != nil {
			return 0, err
		}
		return resp.ErrorCode, nil
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
