package replica

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/internal/testwait"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// flush.messages decides whether a write is fsynced before it is
// acknowledged: an acks=1 or acks=all write waits for the fsync, an acks=0
// write is never fsynced for, and a topic that does not ask for it is not
// fsynced per write.
func TestAppendFlushPolicy(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name          string
		flushMessages string // "": the default
		acks          int16
		wantFlushed   bool
	}{
		{"flush.messages=1 acks=1", "1", 1, true},
		{"flush.messages=1 acks=all", "1", -1, true},
		{"flush.messages=1 acks=0", "1", 0, false},
		{"default flush.messages acks=all", "", -1, false},
		{"flush.messages=3 first of three records", "3", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			configs := map[string]string{}
			if c.flushMessages != "" {
				configs["flush.messages"] = c.flushMessages
			}
			n := newTestNode(t, []int32{1}, []int32{1}, configs)
			p, ps := n.leader(t)
			batch, h := testBatch(t, 1)
			la, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), c.acks)
			if err != nil {
				t.Fatal(err)
			}
			if la.Pending() != c.wantFlushed {
				t.Fatalf("Pending() = %v, want %v (the ISR is this node alone: only an fsync can be pending)", la.Pending(), c.wantFlushed)
			}
			if err := n.m.AwaitAppend(ctx, la); err != nil {
				t.Fatal(err)
			}
			if rp, flushed := p.RecoveryPoint(), p.RecoveryPoint() == p.LogEndOffset(); flushed != c.wantFlushed {
				t.Errorf("recovery point %d, log end %d once acknowledged: flushed %v, want %v", rp, p.LogEndOffset(), flushed, c.wantFlushed)
			}
		})
	}
}

// The third record of a topic with flush.messages=3 is fsynced with the
// two before it.
func TestAppendFlushesEveryNMessages(t *testing.T) {
	n := newTestNode(t, []int32{1}, []int32{1}, map[string]string{"flush.messages": "3"})
	p, ps := n.leader(t)
	for i := range 3 {
		batch, h := testBatch(t, 1)
		la, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 2; la.Pending() != want {
			t.Fatalf("record %d: Pending() = %v, want %v", i, la.Pending(), want)
		}
		if err := n.m.AwaitAppend(context.Background(), la); err != nil {
			t.Fatal(err)
		}
	}
	if rp := p.RecoveryPoint(); rp != 3 {
		t.Errorf("recovery point %d after the third record, want 3", rp)
	}
}

// An acks=all write is committed only when every ISR member has it: the HW
// stays below it until the follower fetches past it, and the wait ends
// then.
func TestAppendWaitsForISR(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1, 2}, nil)
	n.followerFetch(t, 0) // the follower is at the leader's end, 0
	p, ps := n.leader(t)
	batch, h := testBatch(t, 2)
	la, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if !la.Pending() || p.HighWatermark() != 0 {
		t.Fatalf("before the follower fetched: Pending() = %v, HW %d; want true, 0", la.Pending(), p.HighWatermark())
	}
	done := make(chan error, 1)
	go func() { done <- n.m.AwaitAppend(context.Background(), la) }()
	pr := n.followerFetch(t, 2)
	if pr.HighWatermark != 2 || p.HighWatermark() != 2 {
		t.Errorf("after the follower fetched from 2: HW answered %d, partition HW %d; want 2", pr.HighWatermark, p.HighWatermark())
	}
	if err := testwait.Recv(t, "the acks=all write to be acknowledged once the ISR had it", done); err != nil {
		t.Fatal(err)
	}
}

// An acks=all write that times out waiting for the ISR is answered
// REQUEST_TIMED_OUT; one whose ISR shrank below min.insync.replicas while
// it waited is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
func TestAppendReplicationOutcomes(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1, 2}, map[string]string{"min.insync.replicas": "2"})
	n.followerFetch(t, 0)
	p, ps := n.leader(t)
	batch, h := testBatch(t, 1)
	la, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.m.AwaitAppend(ctx, la); !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("wait with its time up: %v, want REQUEST_TIMED_OUT", err)
	}
	// The controller drops the follower and the node applies the new
	// image: the leader alone commits the write, with fewer replicas than
	// asked for.
	n.meta.publish(func(img *raftmeta.Image) { img.Topics["t"].Partitions[0].ISR = []int32{1} })
	n.m.Reconcile()
	if err := n.m.AwaitAppend(context.Background(), la); !errors.Is(err, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("wait after the ISR shrank to the leader: %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", err)
	}
}

// BenchmarkAppendAsLeader is the in-order half of a produce on a leader
// alone in its ISR, acks=1: the log append, the follower wake-up and the HW.
func BenchmarkAppendAsLeader(b *testing.B) {
	n := newTestNode(b, []int32{1}, []int32{1}, nil)
	p, ps := n.leader(b)
	batch, h := testBatch(b, 10)
	now := n.clock.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := n.m.AppendAsLeader(p, ps, batch, h, now, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// A write the broker encodes itself (a coordinator's records, dead letters,
// transaction markers) takes the same min.insync.replicas rule as an
// acks=all produce: with the ISR below it the leader refuses the write
// before appending (NOT_ENOUGH_REPLICAS), so an acknowledged coordinator
// write never rests on one surviving replica.
func TestInternalAppendsRefusedBelowMinISR(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1}, map[string]string{"min.insync.replicas": "2"})
	p, ps := n.leader(t)
	batch, _ := testBatch(t, 1)
	if _, err := n.m.AppendCommitted(context.Background(), p, ps, batch, n.clock.Now()); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("AppendCommitted with the ISR below min.insync.replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if _, err := n.m.AppendMarker(p, ps, 7, 0, log.EndTxnMarker{Commit: true}, n.clock.Now()); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("AppendMarker with the ISR below min.insync.replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if leo := p.LogEndOffset(); leo != 0 {
		t.Errorf("log end offset %d after refused writes, want 0: nothing appended", leo)
	}
}

// A coordinator write whose ISR shrank below min.insync.replicas while it
// waited for replication is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
func TestAppendCommittedISRShrankBelowMinISR(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1, 2}, map[string]string{"min.insync.replicas": "2"})
	n.followerFetch(t, 0)
	p, ps := n.leader(t)
	batch, _ := testBatch(t, 1)
	done := make(chan error, 1)
	go func() {
		_, err := n.m.AppendCommitted(context.Background(), p, ps, batch, n.clock.Now())
		done <- err
	}()
	waitLogEnd(t, p, 1)
	n.meta.publish(func(img *raftmeta.Image) { img.Topics["t"].Partitions[0].ISR = []int32{1} })
	n.m.Reconcile()
	if err := testwait.Recv(t, "AppendCommitted to return after the ISR shrank to the leader", done); !errors.Is(err, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("AppendCommitted after the ISR shrank to the leader: %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", err)
	}
}

// waitLogEnd waits until p's log ends at leo.
func waitLogEnd(t *testing.T, p *log.Partition, leo int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.LogEndOffset() != leo {
		if time.Now().After(deadline) {
			t.Fatalf("log end offset %d, want %d", p.LogEndOffset(), leo)
		}
		time.Sleep(time.Millisecond)
	}
}
