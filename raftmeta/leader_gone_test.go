package raftmeta

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

// campaign makes n start an election now, as if its election timeout had
// passed.
func campaign(t *testing.T, ctx context.Context, n *Node) {
	t.Helper()
	done := make(chan error, 1)
	select {
	case n.queryC <- func(rn *raft.RawNode) { done <- rn.Campaign() }:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestClusterLeaderGoneElectsWithoutTimeout stops the leader of three
// voters whose election timeout (10-20 ticks of 1 s) is far longer than the
// test waits, and expects a new leader anyway: a follower that finds its
// leader's process gone (connection closed, listener refusing) campaigns at
// once, and the other grants its vote although its leader lease has not
// run out.
func TestClusterLeaderGoneElectsWithoutTimeout(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCluster(t, []int32{1, 2, 3}, nil, 0)
	c.tick = time.Second
	for _, id := range []int32{1, 2, 3} {
		c.start(id)
	}
	// The first election is forced too; nobody leads yet, so nothing
	// can be gone.
	campaign(t, ctx, c.nodes[1])
	old := c.waitLeader(ctx)
	clusterPropose(t, ctx, old, 1, 0)
	c.waitConverged(ctx, old)
	term := old.Term()

	c.stop(old.cfg.NodeID)
	// Well under the shortest election timeout (10 s): only the
	// leader-gone path can elect in time.
	wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	leader := c.waitLeader(wctx)
	if leader.cfg.NodeID == old.cfg.NodeID {
		t.Fatalf("node %d still leads after it stopped", leader.cfg.NodeID)
	}
	// One election, no split vote: the survivors do not both campaign.
	if got := leader.Term(); got != term+1 {
		t.Fatalf("new leader %d at term %d, want %d (one election after term %d)", leader.cfg.NodeID, got, term+1, term)
	}
	clusterPropose(t, ctx, leader, 1, 10)
	c.waitConverged(ctx, leader)
}
