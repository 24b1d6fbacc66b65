package raftmeta

import (
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"
)

// sharedListener stands in for a broker's Kafka listener: connections that
// open with the transport's hello go to the current transport (ServeConn),
// the others are answered with "kafka" and closed.
type sharedListener struct {
	ln      net.Listener
	tr      atomic.Pointer[TCPTransport]
	foreign atomic.Int64
	wg      sync.WaitGroup
}

func newSharedListener(t *testing.T) *sharedListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sharedListener{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				raft, err := PeekHello(conn)
				if tr := s.tr.Load(); err == nil && raft && tr != nil {
					tr.ServeConn(conn, nil)
					return
				}
				if err == nil {
					s.foreign.Add(1)
					conn.Write([]byte("kafka"))
				}
				conn.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sharedListener) addr() string { return s.ln.Addr().String() }

// startLearner starts node id as a member outside the configured
// membership, with a transport that has no listener of its own and
// receives through sl.
func (c *testCluster) startLearner(id int32, sl *sharedListener) *Node {
	c.t.Helper()
	if c.dirs[id] == "" {
		c.dirs[id] = c.t.TempDir()
	}
	tr, err := NewTCPTransport(TCPTransportConfig{NodeID: id, Peers: maps.Clone(c.voters), Logger: testLogger(c.t)})
	if err != nil {
		c.t.Fatal(err)
	}
	if tr.Addr() != nil {
		c.t.Fatalf("transport without a listen address listens on %v", tr.Addr())
	}
	sl.tr.Store(tr)
	c.trans[id] = tr
	return c.run(id, tr, nil)
}

// A broker joins as a learner knowing only the voters: the voters learn
// its address from the membership change, keep it across restarts (from
// their snapshots), and follow it when it moves. The learner catches up
// from a snapshot, survives restarts and never campaigns.
func TestLearnerJoinsWithItsAddress(t *testing.T) {
	ctx := testCtx(t)
	c, leader := startThreeVoters(t, ctx, 5)
	clusterPropose(t, ctx, leader, 12, 0)

	sl := newSharedListener(t)
	n4 := c.startLearner(4, sl)
	if n4.LeaderID() >= 0 || n4.IsVoter(4) || n4.IsLearner(4) {
		t.Fatalf("before joining: leader %d, voter %v, learner %v", n4.LeaderID(), n4.IsVoter(4), n4.IsLearner(4))
	}
	if err := n4.AddLearnerAt(ctx, 4, sl.addr()); !errors.Is(err, ErrNotController) {
		t.Fatalf("AddLearnerAt on a non-leader: %v", err)
	}
	if err := leader.AddLearnerAt(ctx, leader.cfg.NodeID, "127.0.0.1:1"); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("making a voter a learner: %v", err)
	}
	if err := leader.AddLearnerAt(ctx, 4, sl.addr()); err != nil {
		t.Fatal(err)
	}
	img := c.waitConverged(ctx, leader)
	if len(img.Brokers) != 12 || n4.SnapshotsReceived() == 0 || n4.LeaderID() != leader.cfg.NodeID {
		t.Fatalf("learner: %d brokers, %d snapshots received, leader %d", len(img.Brokers), n4.SnapshotsReceived(), n4.LeaderID())
	}
	for id, n := range c.nodes {
		if a, ok := n.LearnerAddr(4); !ok || a != sl.addr() || !n.IsLearner(4) {
			t.Fatalf("node %d: learner 4 at %q (%v), learner %v", id, a, ok, n.IsLearner(4))
		}
	}
	// Joining again is a no-op: no new entry.
	applied := leader.Image().Applied
	if err := leader.AddLearnerAt(ctx, 4, sl.addr()); err != nil || leader.Image().Applied != applied {
		t.Fatalf("joining again: %v, applied %d -> %d", err, applied, leader.Image().Applied)
	}

	// Every voter restarts with a fresh transport that knows only the
	// voters: whoever leads next reaches the learner from what its
	// snapshot remembers.
	for _, id := range []int32{1, 2, 3} {
		c.stop(id)
	}
	for _, id := range []int32{1, 2, 3} {
		c.start(id)
	}
	leader = c.waitLeader(ctx)
	if leader == n4 {
		t.Fatal("the learner was elected")
	}
	clusterPropose(t, ctx, leader, 3, 20)
	if img := c.waitConverged(ctx, leader); len(img.Brokers) != 15 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}

	// The learner restarts from its own state.
	c.stop(4)
	n4 = c.startLearner(4, sl)
	clusterPropose(t, ctx, leader, 2, 30)
	if img := c.waitConverged(ctx, leader); len(img.Brokers) != 17 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}

	// It comes back on another address: joining again moves it.
	c.stop(4)
	sl2 := newSharedListener(t)
	n4 = c.startLearner(4, sl2)
	if err := leader.AddLearnerAt(ctx, 4, sl2.addr()); err != nil {
		t.Fatal(err)
	}
	clusterPropose(t, ctx, leader, 1, 40)
	c.waitConverged(ctx, leader)
	for id, n := range c.nodes {
		if a, _ := n.LearnerAddr(4); a != sl2.addr() {
			t.Fatalf("node %d: learner 4 at %q after moving", id, a)
		}
	}
	if sl.foreign.Load() != 0 || sl2.foreign.Load() != 0 {
		t.Fatalf("raft connections taken for foreign ones: %d, %d", sl.foreign.Load(), sl2.foreign.Load())
	}

	// With every voter gone the learner never campaigns.
	for _, id := range []int32{1, 2, 3} {
		c.stop(id)
	}
	c.neverFor(ctx, 3*electionTicks*clusterTick, "the learner became leader", n4.IsLeader)
	if st, err := n4.QuorumStatus(ctx); err != nil || st.IsLeader || len(st.Voters) != 3 || len(st.Learners) != 1 {
		t.Fatalf("learner status %+v, %v", st, err)
	}
}

// Removing a learner drops its address everywhere.
func TestRemoveLearnerForgetsAddress(t *testing.T) {
	ctx := testCtx(t)
	c, leader := startThreeVoters(t, ctx, 100)
	sl := newSharedListener(t)
	c.startLearner(4, sl)
	if err := leader.AddLearnerAt(ctx, 4, sl.addr()); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(ctx, leader)
	if err := leader.RemoveLearner(ctx, 4); err != nil {
		t.Fatal(err)
	}
	c.stop(4)
	c.waitConverged(ctx, leader)
	for id, n := range c.nodes {
		if _, ok := n.LearnerAddr(4); ok || n.IsLearner(4) {
			t.Fatalf("node %d still knows learner 4", id)
		}
	}
}

func TestMemberAddrsAfter(t *testing.T) {
	add := func(id int32, addr string) *pb.ConfChangeV2 {
		return &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: new(raftID(id))}}, Context: encodeMemberContext(addr)}
	}
	cs := &pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{raftID(4), raftID(5)}}
	before := map[int32]string{5: "h5:1"}
	got := memberAddrsAfter(before, add(4, "h4:1"), cs)
	if !maps.Equal(got, map[int32]string{4: "h4:1", 5: "h5:1"}) || len(before) != 1 {
		t.Fatalf("after add: %v (before %v)", got, before)
	}
	if got := memberAddrsAfter(got, add(4, ""), cs); got[4] != "h4:1" {
		t.Fatalf("a change without an address dropped it: %v", got)
	}
	if got := memberAddrsAfter(got, add(4, "h4:2"), cs); got[4] != "h4:2" {
		t.Fatalf("moving: %v", got)
	}
	cs2 := &pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{raftID(5)}}
	if got := memberAddrsAfter(got, &pb.ConfChangeV2{}, cs2); !maps.Equal(got, map[int32]string{5: "h5:1"}) {
		t.Fatalf("after removal: %v", got)
	}
	if decodeMemberContext([]byte{9, 1, 'x'}) != "" || decodeMemberContext(encodeMemberContext("a:1")) != "a:1" {
		t.Fatal("member context")
	}
}

func TestSnapshotEnvelope(t *testing.T) {
	img := newImage("c1")
	img.Brokers[3] = &Broker{ID: 3, Rack: "r"}
	plain := encodeSnapshot(img, nil)
	if string(plain) != string(encodeImage(img)) {
		t.Fatal("a snapshot without addresses is not the bare image")
	}
	b := encodeSnapshot(img, map[int32]string{7: "h:7", 4: "h:4"})
	got, addrs, err := decodeSnapshot(b)
	if err != nil || !maps.Equal(addrs, map[int32]string{7: "h:7", 4: "h:4"}) || string(encodeImage(got)) != string(plain) {
		t.Fatalf("round trip: %v, %v", addrs, err)
	}
	for i := 1; i < 8; i++ {
		if _, _, err := decodeSnapshot(b[:i]); err == nil {
			t.Fatalf("truncated envelope of %d bytes decoded", i)
		}
	}
}

// The controller listener serves both the transport and, through Foreign,
// everything else.
func TestTransportForeignConnections(t *testing.T) {
	ctx := testCtx(t)
	foreign := make(chan string, 1)
	rec := newRecorder()
	tr, err := NewTCPTransport(TCPTransportConfig{
		NodeID: 1, ListenAddr: "127.0.0.1:0", Peers: map[int32]string{2: "127.0.0.1:1"}, Logger: testLogger(t),
		Foreign: func(conn net.Conn) {
			b := make([]byte, 6)
			io.ReadFull(conn, b)
			foreign <- string(b)
			conn.Write([]byte("pong"))
			io.Copy(io.Discard, conn)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.SetNode(rec)
	conn, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("\x00\x00\x00\x02hi"))
	select {
	case got := <-foreign:
		if got != "\x00\x00\x00\x02hi" {
			t.Fatalf("foreign handler read %q", got)
		}
	case <-ctx.Done():
		t.Fatal("no foreign connection")
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "pong" {
		t.Fatalf("reply %q, %v", b, err)
	}
	// Raft traffic still arrives on the same listener.
	raw := rawConn(t, tr, 2, 1)
	writeFrame(t, raw, heartbeat(2, 1, 3))
	rec.waitFor(t, ctx, "a heartbeat", func(r *recorder) bool { return len(r.msgs) == 1 })
}

func TestPeekHelloLeavesBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		send string
		want bool
	}{{"SRFT\x01rest", true}, {"\x00\x00\x00\x10kafka", false}, {"SRxx", false}} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(tc.send))
		got, err := PeekHello(srv)
		if err != nil || got != tc.want {
			t.Fatalf("%q: %v, %v", tc.send, got, err)
		}
		b := make([]byte, len(tc.send))
		if _, err := io.ReadFull(srv, b); err != nil || string(b) != tc.send {
			t.Fatalf("%q: read back %q, %v", tc.send, b, err)
		}
		c.Close()
		srv.Close()
	}
}
