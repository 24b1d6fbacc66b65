package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	kgosasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmq/shoal/raftmeta"
)

// Raft numbers node n n+1 (0 is raft's "none"): node 1 is 2, node 2 is 3.

// stepRecorder is a raft node that only records what it is handed.
type stepRecorder chan *pb.Message

func (r stepRecorder) Step(_ context.Context, m *pb.Message) error {
	select {
	case r <- m:
	default:
	}
	return nil
}
func (stepRecorder) ReportUnreachable(int32)    {}
func (stepRecorder) ReportSnapshot(int32, bool) {}
func (stepRecorder) PeerGone(int32)             {}

// raftHello is the raft transport's hello from node from to node to.
func raftHello(from, to int32) []byte {
	b := []byte{'S', 'R', 'F', 'T', 1, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:9], uint32(from))
	binary.BigEndian.PutUint32(b[9:13], uint32(to))
	return b
}

// refused reports whether the server closed c (cleanly or with a reset:
// it may close with the client's bytes unread).
func refused(c *rawConn) bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := c.nc.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// raftReceiver runs the raft transport of node 2 on a listener of its
// own, logging connections in as s's INTERNAL listener does, and handing
// what arrives to node; it returns the listener's address.
func raftReceiver(t *testing.T, s *Server, node stepRecorder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	receiver, err := raftmeta.NewTCPTransport(raftmeta.TCPTransportConfig{
		NodeID: 2, Listener: ln, Logger: s.log,
		// Node 1 is a peer; nothing listens where this node would dial it.
		Peers: map[int32]string{1: "127.0.0.1:1"},
		Login: s.raftLogin("INTERNAL"),
	})
	if err != nil {
		t.Fatal(err)
	}
	receiver.SetNode(node)
	t.Cleanup(func() { receiver.Close() })
	return ln.Addr().String()
}

// On a SASL listener the metadata quorum's connections log in like any
// client, and only a principal allowed CLUSTER_ACTION may speak raft: a
// hello followed straight by raft frames is closed and nothing reaches
// the node; so is a wrong password, and a valid login of a principal
// without CLUSTER_ACTION. A transport that logs in with a super user's
// credentials gets its messages through.
func TestRaftConnectionLogsInOnASASLListener(t *testing.T) {
	s := startSecureServer(t)
	got := make(stepRecorder, 16)
	addr := raftReceiver(t, s, got)

	heartbeat := func(commit uint64) []byte {
		b, err := proto.Marshal(&pb.Message{Type: pb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(2), To: proto.Uint64(3), Commit: proto.Uint64(commit)})
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
	}

	t.Run("no login", func(t *testing.T) {
		c := dialRaw(t, addr)
		if _, err := c.nc.Write(append(raftHello(1, 2), heartbeat(7)...)); err != nil {
			t.Fatal(err)
		}
		if !refused(c) {
			t.Fatal("a raft connection without a SASL login stayed open")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := dialRaw(t, addr)
		if _, err := c.nc.Write(raftHello(1, 2)); err != nil {
			t.Fatal(err)
		}
		if r := c.plainLogin("admin", "not-the-secret"); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("SaslAuthenticate: %v, want SASL_AUTHENTICATION_FAILED", kerr.ErrorForCode(r.ErrorCode))
		}
		if !c.closed() {
			t.Fatal("a raft connection whose login failed stayed open")
		}
	})
	t.Run("no CLUSTER_ACTION", func(t *testing.T) {
		c := dialRaw(t, addr)
		if _, err := c.nc.Write(raftHello(1, 2)); err != nil {
			t.Fatal(err)
		}
		if r := c.plainLogin("alice", "alice-secret"); r.ErrorCode != 0 {
			t.Fatalf("alice's login: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		if !c.closed() {
			t.Fatal("a raft connection of a principal without CLUSTER_ACTION stayed open")
		}
	})
	select {
	case m := <-got:
		t.Fatalf("a refused connection delivered %v", m)
	default:
	}

	sender, err := raftmeta.NewTCPTransport(raftmeta.TCPTransportConfig{
		NodeID: 1, Logger: s.log,
		Peers: map[int32]string{2: addr},
		ClientSASL: func(int32) kgosasl.Mechanism {
			return plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sender.SetNode(make(stepRecorder, 1))
	t.Cleanup(func() { sender.Close() })
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// Resent until it arrives: the first may go before the
		// connection is up, and raft retries the same way.
		sender.Send([]*pb.Message{{Type: pb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(2), To: proto.Uint64(3), Commit: proto.Uint64(9)}})
		select {
		case m := <-got:
			if m.GetCommit() != 9 {
				t.Fatalf("delivered %v, want the logged-in sender's heartbeat", m)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("a transport that logged in as a super user never got a message through")
		}
	}
}

// A raft connection's SASL session ends it when its lifetime
// (connections.max.reauth.ms) runs out, as KIP-368 does for a client that
// does not re-authenticate: the sending node logs in again on a new one.
func TestRaftConnectionClosesWhenItsSessionExpires(t *testing.T) {
	s := startSecureServer(t, "connections.max.reauth.ms=500")
	addr := raftReceiver(t, s, make(stepRecorder, 1))

	c := dialRaw(t, addr)
	if _, err := c.nc.Write(raftHello(1, 2)); err != nil {
		t.Fatal(err)
	}
	r := c.plainLogin("admin", "admin-secret")
	if r.ErrorCode != 0 || r.SessionLifetimeMillis <= 0 || r.SessionLifetimeMillis > 500 {
		t.Fatalf("login: %v, session lifetime %d ms; want a lifetime of at most 500 ms", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis)
	}
	if !refused(c) {
		t.Fatal("a raft connection stayed open past its session's lifetime")
	}
}
