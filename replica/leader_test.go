package replica

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// A follower outside the ISR that fetches from the high watermark (and
// from within this leader's epoch) is added to the ISR; a follower that
// has not caught up for replica.lag.time.max.ms is dropped from it. Both
// are decided on the injected clock and sent as AlterPartition.
func TestISRExpandAndShrink(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1}, nil)
	p, ps := n.leader(t)
	batch, h := testBatch(t, 3)
	if _, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), 1); err != nil {
		t.Fatal(err)
	}
	if p.HighWatermark() != 3 {
		t.Fatalf("HW %d with the leader alone in the ISR, want its log end 3", p.HighWatermark())
	}

	// Behind the HW: not in sync yet.
	n.followerFetch(t, 1)
	n.noISRChange(t, "follower behind the HW")
	n.followerFetch(t, 3)
	if it := n.waitAltered(t); !slices.Equal(it.NewISR, []int32{1, 2}) || it.Partition != 0 || it.PartitionEpoch != 0 {
		t.Fatalf("expand sent ISR %v for partition %d at partition epoch %d, want [1 2] for 0 at 0", it.NewISR, it.Partition, it.PartitionEpoch)
	}
	n.waitISRSettled(t)
	n.m.Reconcile() // the node applies the image the controller wrote

	// The leader appends, the follower stops fetching: after the lag time
	// on the node's clock it is dropped, not before.
	p, ps = n.leader(t)
	batch, h = testBatch(t, 1)
	if _, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), 1); err != nil {
		t.Fatal(err)
	}
	lag := n.m.cfg.Millis("replica.lag.time.max.ms")
	n.clock.Advance(lag)
	n.m.shrinkISRs(lag)
	n.noISRChange(t, "follower lagging for exactly the lag time")
	n.clock.Advance(time.Millisecond)
	n.m.shrinkISRs(lag)
	if it := n.waitAltered(t); !slices.Equal(it.NewISR, []int32{1}) || it.PartitionEpoch != 1 {
		t.Fatalf("shrink sent ISR %v at partition epoch %d, want [1] at 1", it.NewISR, it.PartitionEpoch)
	}
}

// While an ISR expansion is in flight the leader counts the joining
// follower in its high watermark (Kafka's maximal ISR): the controller may
// complete a reassignment in that very change and make the follower the
// leader, so nothing the follower lacks may be acknowledged meanwhile.
func TestHighWatermarkCountsJoiningFollower(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1}, nil)
	n.ctrl.hold = make(chan struct{})
	p, ps := n.leader(t)
	batch, h := testBatch(t, 3)
	if _, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), -1); err != nil {
		t.Fatal(err)
	}
	n.followerFetch(t, 3)
	if !n.altering(t) {
		t.Fatal("no ISR expansion in flight after the follower caught up")
	}
	batch, h = testBatch(t, 2)
	la, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("HW %d while follower 2 (at 3) is joining the ISR, want 3", hw)
	}
	if !la.Pending() {
		t.Fatal("an acks=all write the joining follower lacks was acknowledged at once")
	}
	n.followerFetch(t, 5)
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("HW %d once the joining follower fetched from 5, want 5", hw)
	}
	close(n.ctrl.hold)
	n.waitAltered(t)
	n.waitISRSettled(t)
}

// A fenced broker (one shutting down) is not added to an ISR however
// caught up it is.
func TestISRExpandSkipsFencedBroker(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1}, nil)
	n.meta.publish(func(img *raftmeta.Image) {
		img.Brokers = map[int32]*raftmeta.Broker{1: {ID: 1}, 2: {ID: 2, Fenced: true}}
	})
	n.followerFetch(t, 0)
	n.noISRChange(t, "fenced follower at the leader's end")
}

func TestLeaderPartitionAt(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1, 2}, nil)
	n.meta.publish(func(img *raftmeta.Image) {
		img.Topics["t"].Partitions[0].LeaderEpoch = 5
		img.Topics["t"].Partitions = append(img.Topics["t"].Partitions, raftmeta.PartitionState{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2, LeaderEpoch: 1})
	})
	tp := n.meta.Image().Topics["t"]
	for _, c := range []struct {
		name      string
		idx, epoc int32
		want      error
	}{
		{"no epoch named", 0, -1, nil},
		{"the current epoch", 0, 5, nil},
		{"a client ahead of this node's metadata", 0, 6, kerr.UnknownLeaderEpoch},
		{"a client behind", 0, 4, kerr.FencedLeaderEpoch},
		{"led by another node", 1, -1, kerr.NotLeaderForPartition},
		{"no such partition", 2, -1, kerr.UnknownTopicOrPartition},
	} {
		p, _, kerrv := n.m.LeaderPartitionAt(tp, c.idx, c.epoc)
		var err error
		if kerrv != nil {
			err = kerrv
		}
		if !errors.Is(err, c.want) || (c.want == nil && p == nil) {
			t.Errorf("%s: LeaderPartitionAt = %v, %v; want %v", c.name, p, err, c.want)
		}
	}
}

// Reconcile creates the replicas the image assigns this node and deletes
// those of a topic that is gone.
func TestReconcileCreatesAndDeletesReplicas(t *testing.T) {
	n := newTestNode(t, []int32{1}, []int32{1}, map[string]string{"segment.bytes": "1048576"})
	p := n.m.logs.Partition("t", 0)
	if p == nil {
		t.Fatal("no log for the partition this node leads")
	}
	if got := p.Config().SegmentBytes; got != 1048576 {
		t.Errorf("segment.bytes %d, want the topic's 1048576", got)
	}
	n.meta.publish(func(img *raftmeta.Image) {
		delete(img.TopicIDs, img.Topics["t"].ID)
		delete(img.Topics, "t")
	})
	n.m.Reconcile()
	if p := n.m.logs.Partition("t", 0); p != nil {
		t.Error("log of a deleted topic still held")
	}
}

// The leader-append path checks leadership itself, against the newest
// metadata: a caller holding a partition state from before this node lost
// the leadership, or from an earlier leader epoch, is refused with
// NOT_LEADER_OR_FOLLOWER and nothing is appended.
func TestAppendRefusedWhenNotLeader(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(ps *raftmeta.PartitionState)
	}{
		{"leadership moved to another node", func(ps *raftmeta.PartitionState) { ps.Leader, ps.LeaderEpoch = 2, ps.LeaderEpoch+1 }},
		{"this node leads at a newer epoch", func(ps *raftmeta.PartitionState) { ps.LeaderEpoch++ }},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newTestNode(t, []int32{1, 2}, []int32{1, 2}, nil)
			p, ps := n.leader(t)
			n.meta.publish(func(img *raftmeta.Image) { c.edit(&img.Topics["t"].Partitions[0]) })
			batch, h := testBatch(t, 1)
			if _, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), 1); !errors.Is(err, kerr.NotLeaderForPartition) {
				t.Errorf("AppendAsLeader: %v, want NOT_LEADER_OR_FOLLOWER", err)
			}
			// Bounded: a write that got past the check would wait for a
			// follower that never fetches.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := n.m.AppendCommitted(ctx, p, ps, batch, n.clock.Now()); !errors.Is(err, kerr.NotLeaderForPartition) {
				t.Errorf("AppendCommitted: %v, want NOT_LEADER_OR_FOLLOWER", err)
			}
			if _, err := n.m.AppendMarker(p, ps, 7, 0, log.EndTxnMarker{Commit: true}, n.clock.Now()); !errors.Is(err, kerr.NotLeaderForPartition) {
				t.Errorf("AppendMarker: %v, want NOT_LEADER_OR_FOLLOWER", err)
			}
			if leo := p.LogEndOffset(); leo != 0 {
				t.Errorf("log end offset %d after refused writes, want 0", leo)
			}
		})
	}
}
