package share

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
)

// keyOn finds a key of group whose __share_group_state partition is part
// (of n partitions).
func keyOn(t *testing.T, part, n int32) coordinator.ShareKey {
	t.Helper()
	for p := int32(0); p < 10000; p++ {
		k := coordinator.ShareKey{Group: "g", TopicID: [16]byte{1}, Partition: p}
		if coordinator.SharePartitionFor(k, n) == part {
			return k
		}
	}
	t.Fatalf("no key hashes to state partition %d", part)
	return coordinator.ShareKey{}
}

// The store of a key is chosen from the image, once: this node's share
// coordinator for the state partitions it leads, the leader's otherwise,
// COORDINATOR_NOT_AVAILABLE without a leader or a state topic. A read of a
// remote key never touches the local coordinator, and a local one never
// the network.
func TestStoreSelection(t *testing.T) {
	h := newHarness(t)
	stores := h.m.States()
	probe := coordinator.ShareKey{Group: "g", TopicID: [16]byte{1}}
	if _, kerrv := stores.For(probe); kerrv != kerr.CoordinatorNotAvailable {
		t.Fatalf("without a state topic: %v, want COORDINATOR_NOT_AVAILABLE", kerrv)
	}
	st := h.addTopic(StateTopic, 2, 3, self, nil)
	st.Partitions[1].Leader = 2
	st.Partitions[2].Leader = -1
	local, remote, leaderless := keyOn(t, 0, 3), keyOn(t, 1, 3), keyOn(t, 2, 3)

	if s, kerrv := stores.For(local); kerrv != nil || s != stores.local {
		t.Fatalf("local key: %v %v, want the local store", s, kerrv)
	}
	s, kerrv := stores.For(remote)
	if r, ok := s.(*remoteStore); kerrv != nil || !ok || r.node != 2 {
		t.Fatalf("remote key: %T %v, want node 2's remote store", s, kerrv)
	}
	if again, _ := stores.For(remote); again != s {
		t.Fatalf("a node's remote store is not reused")
	}
	if _, kerrv := stores.For(leaderless); kerrv != kerr.CoordinatorNotAvailable {
		t.Fatalf("leaderless key: %v, want COORDINATOR_NOT_AVAILABLE", kerrv)
	}

	if _, _, kerrv := s.Read(context.Background(), remote, 0); kerrv != nil {
		t.Fatal(kerrv)
	}
	ls, _ := stores.For(local)
	if _, _, kerrv := ls.Read(context.Background(), local, 0); kerrv != nil {
		t.Fatal(kerrv)
	}
	h.peers.mu.Lock()
	asked := append([]int32(nil), h.peers.asked...)
	h.peers.mu.Unlock()
	h.coord.mu.Lock()
	reads := h.coord.reads
	h.coord.mu.Unlock()
	if len(asked) != 1 || asked[0] != 2 || reads != 1 {
		t.Fatalf("peers asked %v and local reads %d, want node 2 once and one local read", asked, reads)
	}

	// The admin view groups keys by store: the leaderless key fails alone.
	sums := stores.Summaries(context.Background(), "g", []coordinator.ShareKey{local, remote, leaderless})
	if sums[leaderless].Err != kerr.CoordinatorNotAvailable || sums[local].Err != nil || sums[remote].Err != nil {
		t.Fatalf("summaries %+v", sums)
	}
}

// States queued for a remote share coordinator are sent one at a time,
// newest first: states queued while a write is in flight collapse into
// the newest, and every waiter learns the outcome.
func TestRemoteWritesKeepTheNewest(t *testing.T) {
	peers := &fakePeers{gate: make(chan struct{})}
	r := newRemoteStore(context.Background(), 2, peers)
	key := coordinator.ShareKey{Group: "g", TopicID: [16]byte{1}}
	state := func(start int64) *coordinator.ShareState {
		st := &coordinator.ShareState{}
		st.StartOffset = start
		return st
	}
	first := r.Enqueue(key, state(1))
	// Wait until the first write is in flight (held at the gate).
	deadline := time.Now().Add(10 * time.Second)
	for {
		peers.mu.Lock()
		n := len(peers.asked)
		peers.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first write was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	second, third := r.Enqueue(key, state(2)), r.Enqueue(key, state(3))
	close(peers.gate)
	for i, done := range []<-chan error{first, second, third} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("write %d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("write %d never reported", i+1)
		}
	}
	peers.mu.Lock()
	sent := len(peers.asked)
	peers.mu.Unlock()
	if st, _ := peers.state(key); st.StartOffset != 3 || sent != 2 {
		t.Fatalf("remote holds start %d after %d writes, want the newest (3) after 2", st.StartOffset, sent)
	}
	r.mu.Lock()
	left := len(r.writers)
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d key writers left behind once idle", left)
	}
}
