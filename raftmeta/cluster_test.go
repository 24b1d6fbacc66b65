package raftmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// testCluster runs quorum members in this process, connected by
// TCPTransports on loopback.
type testCluster struct {
	t         *testing.T
	voters    map[int32]string
	learners  []int32
	snapEvery uint64
	dirs      map[int32]string
	addrs     map[int32]string
	nodes     map[int32]*Node
	trans     map[int32]*TCPTransport
	// tick is the members' raft tick; clusterTick unless a test needs
	// elections slower than it can wait for.
	tick time.Duration
}

const clusterTick = 20 * time.Millisecond

// newTestCluster reserves a listener for every member but starts no node.
func newTestCluster(t *testing.T, voters []int32, learners []int32, snapEvery uint64) *testCluster {
	c := &testCluster{
		t:         t,
		voters:    map[int32]string{},
		learners:  learners,
		snapEvery: snapEvery,
		dirs:      map[int32]string{},
		addrs:     map[int32]string{},
		nodes:     map[int32]*Node{},
		trans:     map[int32]*TCPTransport{},
		tick:      clusterTick,
	}
	for _, id := range slices.Concat(voters, learners) {
		c.dirs[id] = t.TempDir()
		tr, err := NewTCPTransport(TCPTransportConfig{NodeID: id, ListenAddr: "127.0.0.1:0", Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		c.trans[id] = tr
		c.addrs[id] = tr.Addr().String()
	}
	for _, id := range voters {
		c.voters[id] = c.addrs[id]
	}
	for id, tr := range c.trans {
		for peer, addr := range c.addrs {
			if peer != id {
				tr.SetPeer(peer, addr)
			}
		}
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
		for _, tr := range c.trans {
			tr.Close()
		}
	})
	return c
}

// startThreeVoters starts a cluster of voters 1, 2 and 3 that snapshot
// every snapEvery entries and returns it with its leader.
func startThreeVoters(t *testing.T, ctx context.Context, snapEvery uint64) (*testCluster, *Node) {
	c := newTestCluster(t, []int32{1, 2, 3}, nil, snapEvery)
	for _, id := range []int32{1, 2, 3} {
		c.start(id)
	}
	return c, c.waitLeader(ctx)
}

func (c *testCluster) peersOf(id int32) map[int32]string {
	m := maps.Clone(c.addrs)
	delete(m, id)
	return m
}

// start starts member id, with a fresh transport on its old address if it
// was stopped before.
func (c *testCluster) start(id int32) *Node {
	c.t.Helper()
	tr := c.trans[id]
	if tr == nil {
		var err error
		tr, err = NewTCPTransport(TCPTransportConfig{NodeID: id, ListenAddr: c.addrs[id], Peers: c.peersOf(id), Logger: testLogger(c.t)})
		if err != nil {
			c.t.Fatal(err)
		}
		c.trans[id] = tr
	}
	return c.run(id, tr, c.learners)
}

// run starts member id's node over tr, with the cluster's voters and the
// given learners as its configured membership.
func (c *testCluster) run(id int32, tr *TCPTransport, learners []int32) *Node {
	c.t.Helper()
	n, err := Start(Config{
		NodeID:        id,
		Dir:           c.dirs[id],
		Voters:        c.voters,
		Learners:      learners,
		Logger:        testLogger(c.t),
		TickInterval:  c.tick,
		SnapshotEvery: c.snapEvery,
		ClusterID:     "cluster-test",
		Transport:     tr,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
	return n
}

// stop closes member id and its transport, like a process exit.
func (c *testCluster) stop(id int32) {
	c.t.Helper()
	if n := c.nodes[id]; n != nil {
		if err := n.Close(); err != nil {
			c.t.Errorf("close node %d: %v", id, err)
		}
		delete(c.nodes, id)
	}
	if tr := c.trans[id]; tr != nil {
		tr.Close()
		delete(c.trans, id)
	}
}

// statusChanged returns a channel closed when any running node's raft
// status or image changes.
func (c *testCluster) changed(ctx context.Context) <-chan struct{} {
	out := make(chan struct{})
	var chans []<-chan struct{}
	for _, n := range c.nodes {
		chans = append(chans, n.status.Load().changed, n.Changed(), n.Done())
	}
	go func() {
		defer close(out)
		cases := make([]reflect.SelectCase, 0, len(chans)+1)
		for _, ch := range chans {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
		reflect.Select(cases)
	}()
	return out
}

// waitUntil waits for cond to hold over the running nodes, re-checking on
// every status or image change.
func (c *testCluster) waitUntil(ctx context.Context, what string, cond func() bool) {
	c.t.Helper()
	for {
		wctx, cancel := context.WithCancel(ctx)
		ch := c.changed(wctx)
		if cond() {
			cancel()
			return
		}
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			cancel()
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitLeader waits until one running node leads and every running node
// knows it, and returns it.
func (c *testCluster) waitLeader(ctx context.Context) *Node {
	c.t.Helper()
	var leader *Node
	c.waitUntil(ctx, "a leader all running nodes agree on", func() bool {
		leader = nil
		for _, n := range c.nodes {
			if n.IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range c.nodes {
			if n.LeaderID() != leader.cfg.NodeID {
				return false
			}
		}
		return true
	})
	return leader
}

// waitConverged waits until every running node has applied what the
// leader has, and checks that their images are identical.
func (c *testCluster) waitConverged(ctx context.Context, leader *Node) *Image {
	c.t.Helper()
	c.waitUntil(ctx, "all nodes to apply everything the leader committed", func() bool {
		commit := leader.CommitIndex()
		for _, n := range c.nodes {
			if n.Image().Applied != commit {
				return false
			}
		}
		return true
	})
	want := leader.Image()
	for id, n := range c.nodes {
		got := n.Image()
		if got.Applied != want.Applied {
			c.t.Fatalf("node %d applied %d, leader %d: the log moved on while comparing", id, got.Applied, want.Applied)
		}
		if !bytes.Equal(encodeImage(got), encodeImage(want)) {
			c.t.Fatalf("node %d image differs from the leader's:\n%s\nleader:\n%s", id, fmtImage(got), fmtImage(want))
		}
	}
	return want
}

func clusterPropose(t *testing.T, ctx context.Context, n *Node, count int, from int) {
	t.Helper()
	c := NewController(n, nil)
	for i := range count {
		id := int32(100 + from + i)
		if err := c.RegisterBroker(ctx, Broker{ID: id, IncarnationID: [16]byte{byte(id)}, Rack: fmt.Sprintf("r%d", id%3)}); err != nil {
			t.Fatalf("register %d on node %d: %v", id, n.cfg.NodeID, err)
		}
	}
}

func TestClusterThreeVoters(t *testing.T) {
	ctx := testCtx(t)
	c, leader := startThreeVoters(t, ctx, 8)
	clusterPropose(t, ctx, leader, 5, 0)
	ctrl := NewController(leader, nil)
	if res := ctrl.CreateTopics(ctx, []CreateTopicRequest{{Name: "t", NumPartitions: 6, ReplicationFactor: 3}}, Defaults{1, 1}, false); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	img := c.waitConverged(ctx, leader)
	if len(img.Brokers) != 5 || img.Topic("t") == nil {
		t.Fatalf("image %s", fmtImage(img))
	}

	// Describe the quorum from the leader. Followers' acknowledgements of
	// the last entries may still be on their way.
	for {
		qs, err := leader.QuorumStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !qs.IsLeader || qs.LeaderID != leader.cfg.NodeID || len(qs.Voters) != 3 || len(qs.Learners) != 0 || qs.CommitIndex < img.Applied {
			t.Fatalf("quorum status %+v", qs)
		}
		caughtUp := true
		for _, v := range qs.Voters {
			caughtUp = caughtUp && v.MatchIndex >= int64(img.Applied) && !v.LastContact.IsZero()
		}
		if caughtUp {
			break
		}
		select {
		case <-time.After(clusterTick):
		case <-ctx.Done():
			t.Fatalf("followers' match index never reached %d: %+v", img.Applied, qs)
		}
	}

	// The leader dies: another is elected and the log moves on without it,
	// past enough snapshots that the log it missed is compacted away.
	old := leader.cfg.NodeID
	c.stop(old)
	leader = c.waitLeader(ctx)
	if leader.cfg.NodeID == old {
		t.Fatal("stopped node still leads")
	}
	clusterPropose(t, ctx, leader, 20, 5)
	first, _ := leader.st.FirstIndex()
	if first <= img.Applied+1 {
		t.Fatalf("leader log not compacted past %d: first index %d", img.Applied, first)
	}

	// The old leader restarts and catches up from a snapshot.
	n := c.start(old)
	leader = c.waitLeader(ctx)
	img = c.waitConverged(ctx, leader)
	if len(img.Brokers) != 25 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}
	if n.SnapshotsReceived() == 0 {
		t.Fatalf("node %d caught up without a snapshot", old)
	}

	// Two of three down: no progress.
	var survivor *Node
	for id, m := range c.nodes {
		if survivor == nil {
			survivor = m
			continue
		}
		c.stop(id)
	}
	commit := survivor.CommitIndex()
	short, cancel := context.WithTimeout(ctx, 20*electionTicks*clusterTick)
	_, err := survivor.Propose(short, &RegisterBroker{ID: 999})
	cancel()
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.NotController)) {
		t.Fatalf("proposal without a quorum: %v", err)
	}
	if survivor.CommitIndex() != commit || survivor.Image().Brokers[999] != nil {
		t.Fatal("committed without a quorum")
	}

	// One comes back: the quorum works again.
	for _, id := range []int32{1, 2, 3} {
		if c.nodes[id] == nil {
			c.start(id)
			break
		}
	}
	leader = c.waitLeader(ctx)
	clusterPropose(t, ctx, leader, 3, 30)
	img = c.waitConverged(ctx, leader)
	// Broker 999 may have been appended by a leader without a quorum and
	// committed once the quorum came back: its outcome was unknown.
	if nb := len(img.Brokers); nb != 28 && !(nb == 29 && img.Brokers[999] != nil) {
		t.Fatalf("%d brokers", len(img.Brokers))
	}
}

// A voter that starts only after the log was compacted catches up from the
// leader's snapshot.
func TestClusterLateJoiner(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCluster(t, []int32{1, 2, 3}, nil, 5)
	c.start(1)
	c.start(2)
	leader := c.waitLeader(ctx)
	clusterPropose(t, ctx, leader, 15, 0)
	if first, _ := leader.st.FirstIndex(); first <= 2 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	n := c.start(3)
	leader = c.waitLeader(ctx)
	img := c.waitConverged(ctx, leader)
	if len(img.Brokers) != 15 || n.SnapshotsReceived() == 0 {
		t.Fatalf("late joiner: %d brokers, %d snapshots received", len(img.Brokers), n.SnapshotsReceived())
	}
	// It keeps following afterwards, and restarts from its own state.
	clusterPropose(t, ctx, leader, 3, 20)
	c.waitConverged(ctx, leader)
	c.stop(3)
	c.start(3)
	img = c.waitConverged(ctx, c.waitLeader(ctx))
	if len(img.Brokers) != 18 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}
}

// neverFor fails the test if cond holds at any status or image change
// within d.
func (c *testCluster) neverFor(ctx context.Context, d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		cctx, ccancel := context.WithCancel(wctx)
		ch := c.changed(cctx)
		if cond() {
			ccancel()
			c.t.Fatal(what)
		}
		select {
		case <-ch:
			ccancel()
			if wctx.Err() != nil {
				return
			}
		case <-wctx.Done():
			ccancel()
			return
		}
	}
}

// A learner follows the log and is never elected, even when it is the only
// member left running.
func TestClusterLearner(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCluster(t, []int32{1, 2, 3}, []int32{4}, 6)
	for _, id := range []int32{1, 2, 3, 4} {
		c.start(id)
	}
	learner := c.nodes[4]
	leader := c.waitLeader(ctx)
	clusterPropose(t, ctx, leader, 10, 0)
	img := c.waitConverged(ctx, leader)
	if len(img.Brokers) != 10 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}
	qs, err := leader.QuorumStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs.Voters) != 3 || len(qs.Learners) != 1 || qs.Learners[0].NodeID != 4 {
		t.Fatalf("quorum status %+v", qs)
	}
	if _, err := learner.Propose(ctx, &RegisterBroker{ID: 50}); !errors.Is(err, ErrNotController) {
		t.Fatalf("propose on a learner: %v", err)
	}

	// Leader changes never pick the learner.
	for range 2 {
		c.stop(leader.cfg.NodeID)
		leader = c.waitLeader(ctx)
		if leader == learner {
			t.Fatal("the learner was elected")
		}
		c.start(c.missingVoter())
		leader = c.waitLeader(ctx)
	}
	clusterPropose(t, ctx, leader, 2, 20)
	c.waitConverged(ctx, leader)

	// With every voter gone the learner waits; it never campaigns.
	for _, id := range []int32{1, 2, 3} {
		c.stop(id)
	}
	c.neverFor(ctx, 3*electionTicks*clusterTick, "the learner became leader", learner.IsLeader)
	if st, err := learner.QuorumStatus(ctx); err != nil || st.IsLeader || st.Term != learner.Term() {
		t.Fatalf("learner status %+v, %v", st, err)
	}
}

func (c *testCluster) missingVoter() int32 {
	for _, id := range slices.Sorted(maps.Keys(c.voters)) {
		if c.nodes[id] == nil {
			return id
		}
	}
	c.t.Fatal("no voter is stopped")
	return -1
}

// addMember gives the cluster a transport for a new node id, known to every
// running member's transport, without adding it to the configured
// membership.
func (c *testCluster) addMember(id int32) {
	c.t.Helper()
	c.dirs[id] = c.t.TempDir()
	tr, err := NewTCPTransport(TCPTransportConfig{NodeID: id, ListenAddr: "127.0.0.1:0", Peers: maps.Clone(c.addrs), Logger: testLogger(c.t)})
	if err != nil {
		c.t.Fatal(err)
	}
	c.addrs[id] = tr.Addr().String()
	c.trans[id] = tr
	for other, otr := range c.trans {
		if other != id {
			otr.SetPeer(id, c.addrs[id])
		}
	}
}

// A broker that was not in the initial membership joins as a learner
// through a configuration change and catches up from a snapshot.
func TestClusterAddLearner(t *testing.T) {
	ctx := testCtx(t)
	c, leader := startThreeVoters(t, ctx, 5)
	clusterPropose(t, ctx, leader, 12, 0)

	c.addMember(5)
	n5 := c.start(5)
	if err := n5.AddLearner(ctx, 5); !errors.Is(err, ErrNotController) {
		t.Fatalf("AddLearner on a non-leader: %v", err)
	}
	if err := leader.AddLearner(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := leader.AddLearner(ctx, 5); err != nil {
		t.Fatalf("adding a member again: %v", err)
	}
	img := c.waitConverged(ctx, leader)
	if len(img.Brokers) != 12 || n5.SnapshotsReceived() == 0 {
		t.Fatalf("new learner: %d brokers, %d snapshots received", len(img.Brokers), n5.SnapshotsReceived())
	}
	qs, err := leader.QuorumStatus(ctx)
	if err != nil || len(qs.Learners) != 1 || qs.Learners[0].NodeID != 5 || len(qs.Voters) != 3 {
		t.Fatalf("quorum status %+v, %v", qs, err)
	}
	if err := leader.RemoveLearner(ctx, leader.cfg.NodeID); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("removing a voter: %v", err)
	}

	// The learner survives a leader change and a restart of its own.
	c.stop(leader.cfg.NodeID)
	leader = c.waitLeader(ctx)
	if leader == n5 {
		t.Fatal("the learner was elected")
	}
	c.stop(5)
	c.start(5)
	clusterPropose(t, ctx, leader, 3, 20)
	img = c.waitConverged(ctx, leader)
	if len(img.Brokers) != 15 {
		t.Fatalf("%d brokers", len(img.Brokers))
	}

	if err := leader.RemoveLearner(ctx, 5); err != nil {
		t.Fatal(err)
	}
	qs, err = leader.QuorumStatus(ctx)
	if err != nil || len(qs.Learners) != 0 {
		t.Fatalf("quorum status after removal %+v, %v", qs, err)
	}
}
