package raftmeta

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/internal/testclock"
)

// startClockedController starts a single-node quorum whose controller runs
// on a fake clock, with brokers 1, 2 and 3 registered and a topic "t" of
// three partitions replicated on all of them.
func startClockedController(t *testing.T) (*Node, *Controller, *testclock.Clock) {
	n, c := startController(t, nil)
	clock := testclock.New(time.Unix(1000, 0))
	c.now = clock.Now
	c.d.PlacementStart = func(int) int { return 0 }
	for id := int32(1); id <= 3; id++ {
		mustRegister(t, c, id)
	}
	if res := c.CreateTopics(testCtx(t), []CreateTopicRequest{{Name: "t", NumPartitions: 3, ReplicationFactor: 3}}, Defaults{1, 1}, false); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return n, c, clock
}

func TestControllerSessions(t *testing.T) {
	n, c, clock := startClockedController(t)
	ctx := testCtx(t)
	epoch := func(id int32) int64 { return n.Image().Brokers[id].Epoch }
	const timeout = 9 * time.Second

	// Brokers 2 and 3 heartbeat; 1 does not.
	clock.Advance(5 * time.Second)
	for _, id := range []int32{2, 3} {
		if fenced, err := c.Heartbeat(ctx, id, epoch(id)); err != nil || fenced {
			t.Fatalf("heartbeat %d: fenced=%v err=%v", id, fenced, err)
		}
	}
	clock.Advance(4*time.Second + time.Millisecond)
	if err := c.FenceExpired(ctx, timeout); err != nil {
		t.Fatal(err)
	}
	img := n.Image()
	if !img.Brokers[1].Fenced || img.Brokers[2].Fenced || img.Brokers[3].Fenced {
		t.Fatalf("after expiry:\n%s", fmtImage(img))
	}
	for i, p := range img.Topic("t").Partitions {
		if p.Leader == 1 || len(p.ISR) != 2 {
			t.Fatalf("partition %d still on broker 1: %+v", i, p)
		}
	}

	// Stale and unknown heartbeats are refused.
	if _, err := c.Heartbeat(ctx, 1, epoch(1)-1); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	if _, err := c.Heartbeat(ctx, 42, 1); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("unknown broker: %v", err)
	}
	// A current one unfences.
	if fenced, err := c.Heartbeat(ctx, 1, epoch(1)); err != nil || fenced || n.Image().Brokers[1].Fenced {
		t.Fatalf("unfence: fenced=%v err=%v", fenced, err)
	}

	// The leader of t/0 (2 now) adds 1 back to the ISR; a preferred
	// election then makes 1 leader again.
	p0 := n.Image().Topic("t").Partitions[0]
	res, err := c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: p0.Leader, BrokerEpoch: epoch(p0.Leader), Partitions: []AlterPartitionItem{
		{Topic: "t", Partition: 0, LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch, NewISR: append(p0.ISR, 1)},
	}})
	if err != nil || res[0].Err != nil || res[0].State.PartitionEpoch != p0.PartitionEpoch+1 {
		t.Fatalf("alter partition: %+v %v", res, err)
	}
	if _, err := c.AlterPartition(ctx, AlterPartitionRequest{BrokerID: 2, BrokerEpoch: 1}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale alter partition: %v", err)
	}
	er, err := c.ElectLeaders(ctx, PreferredElection, []TopicPartition{{"t", 0}})
	if err != nil || er[0].Err != nil || n.Image().Topic("t").Partitions[0].Leader != 1 {
		t.Fatalf("elect leaders: %+v %v", er, err)
	}

	// Controlled shutdown of 1: it leads nothing, is fenced, and its
	// heartbeats do not unfence it until it registers again.
	if err := c.ControlledShutdown(ctx, 1, epoch(1)); err != nil {
		t.Fatal(err)
	}
	img = n.Image()
	for i, p := range img.Topic("t").Partitions {
		if p.Leader == 1 || (len(p.ISR) > 1 && containsInt32(p.ISR, 1)) {
			t.Fatalf("partition %d still on broker 1: %+v", i, p)
		}
	}
	if fenced, err := c.Heartbeat(ctx, 1, epoch(1)); err != nil || !fenced || !n.Image().Brokers[1].Fenced {
		t.Fatalf("heartbeat after shutdown: fenced=%v err=%v", fenced, err)
	}
	mustRegister(t, c, 1)
	if n.Image().Brokers[1].Fenced {
		t.Fatal("registration did not unfence")
	}
	if fenced, err := c.Heartbeat(ctx, 1, epoch(1)); err != nil || fenced {
		t.Fatalf("heartbeat after re-registration: fenced=%v err=%v", fenced, err)
	}
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Run on every voter fences a silent broker through whichever node leads,
// also after a leader change.
func TestControllerRunFencesAcrossLeaderChange(t *testing.T) {
	ctx := testCtx(t)
	c := newTestCluster(t, []int32{1, 2, 3}, nil, 0)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	run := func(n *Node) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			NewController(n, nil).Run(runCtx, 300*time.Millisecond, nil)
		}()
	}
	for _, id := range []int32{1, 2, 3} {
		run(c.start(id))
	}
	leader := c.waitLeader(ctx)
	if err := NewController(leader, nil).RegisterBroker(ctx, Broker{ID: 7}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		if _, err := n.WaitFor(ctx, func(img *Image) bool { return img.Brokers[7] != nil && img.Brokers[7].Fenced }); err != nil {
			t.Fatalf("node %d: broker 7 never fenced: %v", n.cfg.NodeID, err)
		}
	}

	c.stop(leader.cfg.NodeID)
	leader = c.waitLeader(ctx)
	if err := NewController(leader, nil).RegisterBroker(ctx, Broker{ID: 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.WaitFor(ctx, func(img *Image) bool { return img.Brokers[8] != nil && img.Brokers[8].Fenced }); err != nil {
		t.Fatalf("broker 8 never fenced by the new leader: %v", err)
	}
}
