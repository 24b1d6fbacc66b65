package log

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testwait"
)

// woken reports whether w holds a wake-up token, consuming it.
func woken(w *Waiter) bool {
	select {
	case <-w.C():
		return true
	default:
		return false
	}
}

// A waiter registered on some partitions is woken by an HW move on any of
// them, by exactly one token however many moves, and never by a move on a
// partition it does not watch.
func TestWaiterWakesOnWatchedPartitionsOnly(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	parts := make([]*Partition, 3)
	for i := range parts {
		p := mustCreate(t, m, "orders", int32(i), testTopicID, DefaultPartitionConfig())
		mustAppend(t, p, simpleBatch(t, 2, 0, "v"), 0)
		parts[i] = p
	}
	w := NewWaiter()
	defer w.Release()
	parts[0].WatchHighWatermark(w)
	parts[1].WatchHighWatermark(w)
	parts[1].WatchHighWatermark(w) // twice: still one registration

	parts[2].SetHighWatermark(2)
	if woken(w) {
		t.Fatal("woken by an HW move on a partition it does not watch")
	}
	parts[1].SetHighWatermark(1)
	parts[1].SetHighWatermark(2)
	if !woken(w) {
		t.Fatal("not woken by an HW move on a watched partition")
	}
	if woken(w) {
		t.Fatal("two tokens for moves before the waiter looked: wake-ups must coalesce")
	}
	parts[0].SetHighWatermark(2)
	if !woken(w) {
		t.Fatal("not woken by an HW move on the other watched partition")
	}
	parts[0].SetHighWatermark(2) // no move
	if woken(w) {
		t.Fatal("woken without a move")
	}

	w.Release()
	mustAppend(t, parts[1], simpleBatch(t, 2, 0, "v"), 0)
	parts[1].SetHighWatermark(4)
	if woken(w) {
		t.Fatal("woken after Release")
	}
	for _, p := range parts {
		p.hwWaiters.mu.Lock()
		n := len(p.hwWaiters.waiters)
		p.hwWaiters.mu.Unlock()
		if n != 0 {
			t.Fatalf("partition %d still holds %d waiters after Release", p.Index(), n)
		}
	}
}

// The long poll's protocol, register then check then park, loses no
// wake-up: an HW move after the check and before the park leaves a token,
// so the park returns at once. Run concurrently, every move is seen.
func TestWaiterNoLostWakeup(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()

	// Deterministic: the move lands between the check and the park.
	w := NewWaiter()
	p.WatchHighWatermark(w)
	seen := p.HighWatermark()
	mustAppend(t, p, simpleBatch(t, 1, 0, "v"), 0)
	p.SetHighWatermark(1)
	testwait.Recv(t, fmt.Sprintf("an HW move after the check (hw %d) to wake the parked waiter", seen), w.C())
	w.Release()

	// Concurrent: a reader that registers, checks and parks until it has
	// seen every offset the writer publishes; a lost wake-up leaves it
	// parked and the deadline fails the test.
	const moves = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < moves; i++ {
			mustAppend(t, p, simpleBatch(t, 1, 0, "v"), 0)
			p.SetHighWatermark(p.LogEndOffset())
		}
	}()
	r := NewWaiter()
	defer r.Release()
	deadline := time.After(30 * time.Second)
	for {
		p.WatchHighWatermark(r)
		if p.HighWatermark() >= moves+1 {
			break
		}
		select {
		case <-r.C():
		case <-deadline:
			t.Fatalf("parked at hw %d of %d: a wake-up was lost", p.HighWatermark(), moves+1)
		}
	}
	wg.Wait()
}

// Closing or deleting a partition wakes its waiters: they read again and
// find it gone.
func TestWaiterWokenByDelete(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	w := NewWaiter()
	defer w.Release()
	p.WatchHighWatermark(w)
	if err := m.DeletePartition("orders", 0); err != nil {
		t.Fatal(err)
	}
	if !woken(w) {
		t.Fatal("deleting the partition did not wake its waiter")
	}
}
