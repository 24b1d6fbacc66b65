package raftmeta

import (
	"slices"
	"testing"
	"time"
)

func TestControllerFenceGone(t *testing.T) {
	n, c, clock := startClockedController(t)
	ctx := testCtx(t)
	epoch := func(id int32) int64 { return n.Image().Brokers[id].Epoch }

	// Late brokers: only those whose last heartbeat is older than asked.
	clock.Advance(3 * time.Second)
	for _, id := range []int32{2, 3} {
		if _, err := c.Heartbeat(ctx, id, epoch(id)); err != nil {
			t.Fatal(err)
		}
	}
	late := c.LateBrokers(2 * time.Second)
	if want := []BrokerProbe{{ID: 1, Epoch: epoch(1)}}; !slices.Equal(late, want) {
		t.Fatalf("late brokers %v, want %v", late, want)
	}
	if all := c.UnfencedBrokers(); len(all) != 3 {
		t.Fatalf("unfenced brokers %v, want all three", all)
	}

	// A probe from an older registration fences nothing: a new process
	// registered since and is running.
	if fenced, err := c.FenceGone(ctx, BrokerProbe{ID: 1, Epoch: epoch(1) - 1}); err != nil || fenced {
		t.Fatalf("stale probe: fenced=%v err=%v", fenced, err)
	}
	if fenced, err := c.FenceGone(ctx, BrokerProbe{ID: 1, Epoch: epoch(1)}); err != nil || !fenced {
		t.Fatalf("gone broker: fenced=%v err=%v", fenced, err)
	}
	img := n.Image()
	if !img.Brokers[1].Fenced {
		t.Fatalf("broker 1 not fenced:\n%s", fmtImage(img))
	}
	for i, p := range img.Topic("t").Partitions {
		if p.Leader == 1 || slices.Contains(p.ISR, 1) {
			t.Fatalf("partition %d still on broker 1: %+v", i, p)
		}
	}
	// Fenced already: nothing more to do, and it is no longer late.
	if fenced, err := c.FenceGone(ctx, BrokerProbe{ID: 1, Epoch: epoch(1)}); err != nil || fenced {
		t.Fatalf("second fence: fenced=%v err=%v", fenced, err)
	}
	if late := c.LateBrokers(2 * time.Second); len(late) != 0 {
		t.Fatalf("late brokers after fencing: %v", late)
	}

	// Suspects are queued without blocking, even past the queue's size.
	for i := 0; i < 1000; i++ {
		c.Suspect(BrokerProbe{ID: 2, Epoch: epoch(2)})
	}
	if p := <-c.Suspects(); p.ID != 2 {
		t.Fatalf("suspect %+v", p)
	}
}
