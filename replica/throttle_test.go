package replica

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's rule for both sides: only a listed replica that is out of sync
// is held back, and only while the rate is over its bound; the rate is not
// even consulted otherwise.
func TestHoldBackDecision(t *testing.T) {
	for _, c := range []struct {
		listed, inSync, exceeded, want bool
	}{
		{true, false, true, true},
		{true, false, false, false},
		{true, true, true, false},
		{false, false, true, false},
		{false, true, true, false},
	} {
		asked := false
		got := holdBack(c.listed, c.inSync, func() bool { asked = true; return c.exceeded })
		if got != c.want {
			t.Errorf("holdBack(listed=%v, inSync=%v, exceeded=%v) = %v, want %v", c.listed, c.inSync, c.exceeded, got, c.want)
		}
		if asked && (!c.listed || c.inSync) {
			t.Errorf("holdBack(listed=%v, inSync=%v) consulted the rate", c.listed, c.inSync)
		}
	}
}

// fetchAs is replica fetching partition 0 of "t" from offset with a large
// budget; it returns the record bytes sent.
func (n *testNode) fetchAs(t *testing.T, replica int32, offset int64) int {
	t.Helper()
	p, ps := n.leader(t)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	pr := kmsg.NewFetchResponseTopicPartition()
	got, err := n.m.ReadForFollower(replica, n.meta.Image().Topics["t"], rp, &pr, nil, p, ps, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.HighWatermark != p.HighWatermark() {
		t.Fatalf("a fetch answered HW %d, want the leader's %d even when throttled", pr.HighWatermark, p.HighWatermark())
	}
	return got
}

// The leader sends nothing to a throttled follower outside the ISR once
// leader.replication.throttled.rate is exceeded, sends again once the
// window has passed, and never holds back a follower in the ISR or a
// partition listed for another broker.
func TestLeaderThrottlesOutOfSyncFollower(t *testing.T) {
	for _, c := range []struct {
		name     string
		isr      []int32
		replicas string
		held     bool
	}{
		{"listed out of sync", []int32{1}, "0:1", true},
		{"wildcard out of sync", []int32{1}, "*", true},
		{"listed in sync", []int32{1, 2}, "0:1", false},
		{"listed for another broker", []int32{1}, "0:2", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newTestNode(t, []int32{1, 2}, c.isr, map[string]string{leaderThrottledReplicas: c.replicas})
			n.m.cfg.SetDynamic(1, map[string]string{leaderThrottledRate: "10"}, nil)
			p, ps := n.leader(t)
			batch, h := testBatch(t, 20)
			if _, err := n.m.AppendAsLeader(p, ps, batch, h, n.clock.Now(), 1); err != nil {
				t.Fatal(err)
			}
			// With the follower in the ISR the HW waits for it; fetch
			// from 0 either way, behind the log end.
			if got := n.fetchAs(t, 2, 0); got == 0 {
				t.Fatal("the first fetch, under the bound, got no records")
			}
			got := n.fetchAs(t, 2, 0)
			if held := got == 0; held != c.held {
				t.Fatalf("second fetch sent %d bytes over the bound; want held back %v", got, c.held)
			}
			if !c.held {
				return
			}
			window := replicationWindow(n.m.cfg)
			n.clock.Advance(time.Duration(window.Samples) * window.Size)
			if got := n.fetchAs(t, 2, 0); got == 0 {
				t.Fatal("after a whole window without traffic the follower is still held back")
			}
		})
	}
}

// The follower leaves a listed partition that has not caught up out of
// its fetches while follower.replication.throttled.rate is exceeded, for
// no longer than one sample at a time, and never holds back a caught-up
// one.
func TestFollowerThrottleDecision(t *testing.T) {
	n := newTestNode(t, []int32{1, 2}, []int32{1}, nil)
	n.m.cfg.SetDynamic(1, map[string]string{followerThrottledRate: "1000"}, nil)
	now := n.clock.Now()
	if held, _ := n.m.followerHoldsBack(true, false, now); held {
		t.Fatal("held back before any byte was fetched")
	}
	window := replicationWindow(n.m.cfg)
	n.m.followerQuota.Record(float64(1000*int(window.Samples)), now)
	held, wait := n.m.followerHoldsBack(true, false, now)
	if !held || wait <= 0 || wait > window.Size {
		t.Fatalf("over the bound: held %v for %v, want held for (0, %v]", held, wait, window.Size)
	}
	if held, _ := n.m.followerHoldsBack(true, true, now); held {
		t.Fatal("a caught-up replica was held back")
	}
	if held, _ := n.m.followerHoldsBack(false, false, now); held {
		t.Fatal("an unlisted partition was held back")
	}
	n.clock.Advance(time.Duration(window.Samples) * window.Size)
	if held, _ := n.m.followerHoldsBack(true, false, n.clock.Now()); held {
		t.Fatal("still held back after a whole window without traffic")
	}
}
