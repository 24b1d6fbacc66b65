package raftmeta

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/shoalmq/shoal/internal/testcerts"
)

// testTLS returns a server configuration with a certificate for 127.0.0.1
// and a client configuration that trusts its issuer.
func testTLS(t *testing.T) (server *tls.Config, client func(peer int32, host string) *tls.Config) {
	t.Helper()
	ca := testcerts.NewCA(t, "raft ca")
	chain, key := ca.Issue(t, pkix.Name{CommonName: "node"}, testcerts.Server)
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	return server, func(_ int32, host string) *tls.Config { return &tls.Config{RootCAs: pool, ServerName: host} }
}

// On a TLS listener raft travels over TLS both ways; a plaintext hello is
// not served; a TLS connection that is not raft reaches Foreign with its
// handshake done.
func TestTransportOverTLS(t *testing.T) {
	ctx := testCtx(t)
	serverTLS, clientTLS := testTLS(t)
	foreign := make(chan bool, 1)
	t1, t2, r1, r2 := transportPair(t, func(id int32, ln net.Listener, peers map[int32]string, h MessageHandler) *TCPTransport {
		tr, err := NewTCPTransport(TCPTransportConfig{
			NodeID: id, Listener: ln, Peers: peers, Logger: testLogger(t),
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			ServerTLS: serverTLS, ClientTLS: clientTLS,
			Foreign: func(nc net.Conn) {
				_, handshaken := nc.(interface{ ConnectionState() tls.ConnectionState })
				foreign <- handshaken
				nc.Close()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		tr.SetNode(h)
		t.Cleanup(func() { tr.Close() })
		return tr
	})
	t1.Send([]*pb.Message{heartbeat(1, 2, 5)})
	t2.Send([]*pb.Message{heartbeat(2, 1, 6)})
	r2.waitFor(t, ctx, "a message at node 2", func(r *recorder) bool { return len(r.msgs) == 1 })
	r1.waitFor(t, ctx, "a message at node 1", func(r *recorder) bool { return len(r.msgs) == 1 })

	// A plaintext hello from a known peer id: the handshake fails and
	// nothing is delivered.
	plain := rawConn(t, t2, 1, 2)
	writeFrame(t, plain, heartbeat(1, 2, 9))
	expectClosed(t, plain)
	if n := r2.count(); n != 1 {
		t.Fatalf("%d messages at node 2 after a plaintext connection, want 1", n)
	}

	// A TLS client speaking something else goes to Foreign.
	kc, err := tls.Dial("tcp", t2.Addr().String(), clientTLS(2, "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if _, err := kc.Write([]byte{0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case handshaken := <-foreign:
		if !handshaken {
			t.Fatal("Foreign got a connection without its TLS state")
		}
	case <-ctx.Done():
		t.Fatal("the Kafka connection never reached Foreign")
	}
}
