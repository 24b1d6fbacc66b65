package share

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// produceKeyed appends one batch of records with the given keys (value
// "v<offset-in-batch>") to partition 0 of the jobs topic.
func (h *harness) produceKeyed(keys ...string) {
	h.t.Helper()
	recs := make([]log.Record, len(keys))
	for i, k := range keys {
		recs[i] = log.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", i)}
	}
	h.appendBatch(h.img.Load().Topics["jobs"], 0, recs)
}

// cyclingKeys is n record keys going round k0 to k<distinct-1>, so that
// each key's records are spread evenly over the batch.
func cyclingKeys(n, distinct int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i%distinct)
	}
	return keys
}

// sentOffsets decodes the record batches a fetch carries and returns the
// offsets of their records.
func sentOffsets(t *testing.T, batches []byte) []int64 {
	t.Helper()
	var offs []int64
	for b := batches; len(b) > 0; {
		h, recs, err := log.DecodeRecords(b)
		if err != nil {
			t.Fatalf("the fetch carries a batch that does not decode: %v", err)
		}
		for _, r := range recs {
			offs = append(offs, r.Offset)
		}
		b = b[h.Size():]
	}
	return offs
}

// keyOrderedHarness is a harness with a one-partition topic, jobs, led
// here, and a group g that orders delivery by key from the earliest record;
// tp is the topic's partition.
func keyOrderedHarness(t testing.TB) (h *harness, topic *raftmeta.Topic, tp TopicPart) {
	h = newHarness(t)
	topic = h.addTopic("jobs", 1, 1, self, nil)
	h.addTopic(StateTopic, 2, 1, self, nil)
	h.setGroupConfig("g", map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.ordering": "key"})
	return h, topic, TopicPart{ID: topic.ID, Partition: 0}
}

// With share.delivery.ordering=key a fetch acquires one record per key,
// scattered over a batch; it must carry just those records, not the whole
// batch, or the consumer receives and decodes the records it may not have
// with every fetch (records in flight are few, fetches many).
func TestKeyOrderedFetchCarriesOnlyAcquiredRecords(t *testing.T) {
	h, _, tp := keyOrderedHarness(t)
	h.produceKeyed(cyclingKeys(100, 4)...)
	sess := h.openSession("g", "m1", tp)

	for round := range int64(3) {
		out := h.acquire("g", "m1", sess)
		want := []int64{4 * round, 4*round + 1, 4*round + 2, 4*round + 3}
		var acquired []int64
		for _, r := range out.acquired[tp] {
			for o := r[0]; o <= r[1]; o++ {
				acquired = append(acquired, o)
			}
		}
		if !slices.Equal(acquired, want) {
			t.Fatalf("round %d acquired %v, want %v (one record per key)", round, acquired, want)
		}
		if got := sentOffsets(t, out.batches[tp]); !slices.Equal(got, want) {
			t.Fatalf("round %d: the fetch carries records %v, want only the acquired %v", round, got, want)
		}
		ack := h.m.Acknowledge(context.Background(), "g", "m1", h.img.Load().Topics["jobs"], 0,
			[]queue.AckBatch{{First: want[0], Last: want[3], Types: []queue.AckType{queue.AckAccept}}}, false)
		if err := ack.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// A fetch parked because every record left is held back behind a key in
// flight is woken by the acknowledgement that lets the key go on, and
// acquires the successor then, not when its MaxWait runs out.
func TestKeyOrderedParkedFetchWokenByAcknowledgement(t *testing.T) {
	h, topic, tp := keyOrderedHarness(t)
	h.produceKeyed("k", "k")
	a, b := h.openSession("g", "a", tp), h.openSession("g", "b", tp)
	if got := h.acquire("g", "a", a).acquired[tp]; !slices.Equal(got, [][2]int64{{0, 0}}) {
		t.Fatalf("a acquired %v, want offset 0 alone", got)
	}

	const maxWait = time.Minute
	out := newCollect()
	poll := h.m.Acquire(context.Background(), AcquireRequest{Group: "g", Member: "b", MaxRecords: 500, BatchSize: 500, MaxWait: maxWait}, b, out)
	if poll == nil {
		t.Fatalf("b acquired %v while the key's head is held", out.acquired[tp])
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- poll() }()
	ack := h.m.Acknowledge(context.Background(), "g", "a", topic, 0,
		[]queue.AckBatch{{First: 0, Last: 0, Types: []queue.AckType{queue.AckAccept}}}, false)
	if err := ack.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(maxWait / 2):
		t.Fatal("the parked fetch was not woken by the acknowledgement")
	}
	if waited := time.Since(start); waited >= maxWait {
		t.Fatalf("the parked fetch returned after %s, its whole MaxWait", waited)
	}
	if got := out.acquired[tp]; !slices.Equal(got, [][2]int64{{1, 1}}) {
		t.Fatalf("b acquired %v after the acknowledgement, want offset 1", got)
	}
}

// cachedSpans returns the offsets of the batches the key-ordered share
// partition of the jobs topic keeps in its batch cache.
func (h *harness) cachedSpans() [][2]int64 {
	h.t.Helper()
	h.m.mu.Lock()
	var sp *Part
	for _, p := range h.m.parts {
		if p.topic == "jobs" {
			sp = p
		}
	}
	h.m.mu.Unlock()
	if sp == nil {
		h.t.Fatal("no share partition of jobs is loaded")
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out [][2]int64
	for _, b := range sp.cache.batches {
		out = append(out, [2]int64{b.span.First, b.span.Last})
	}
	return out
}

// Ordering by key, a fetch hands out a few records of each batch and the
// next fetches come back for the same batches: the share partition keeps
// the batches it read until SPSO passes them, so they are read from the log
// once, and the records it hands out from them are the log's.
func TestKeyOrderedBatchesCachedUntilStartPassesThem(t *testing.T) {
	h, topic, tp := keyOrderedHarness(t)
	for range 3 {
		h.produceKeyed("k0", "k1", "k2", "k3", "k0", "k1", "k2", "k3")
	}
	sess := h.openSession("g", "m1", tp)

	for round, wantCache := range [][][2]int64{
		{{0, 7}, {8, 15}, {16, 23}},
		{{0, 7}, {8, 15}, {16, 23}},
		{{8, 15}, {16, 23}},
	} {
		out := h.acquire("g", "m1", sess)
		first := int64(4 * round)
		want := []int64{first, first + 1, first + 2, first + 3}
		if got := sentOffsets(t, out.batches[tp]); !slices.Equal(got, want) {
			t.Fatalf("round %d: the fetch carries records %v, want %v", round, got, want)
		}
		if got := h.cachedSpans(); !slices.Equal(got, wantCache) {
			t.Fatalf("round %d: cached batches %v, want %v", round, got, wantCache)
		}
		ack := h.m.Acknowledge(context.Background(), "g", "m1", topic, 0,
			[]queue.AckBatch{{First: first, Last: first + 3, Types: []queue.AckType{queue.AckAccept}}}, false)
		if err := ack.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	// Without key ordering the cache is not used, and what it held is
	// dropped.
	h.setGroupConfig("g", map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.ordering": "none"})
	h.m.Reconcile(h.img.Load())
	if got := h.cachedSpans(); len(got) != 0 {
		t.Fatalf("cached batches %v after ordering was turned off, want none", got)
	}
}

// A member holding records of a key-ordered partition blocks their keys
// until it acknowledges them, and clients send acknowledgements on their
// next request: its ShareFetch must not park for MaxWait. The first such
// poll returns at once; a member that goes on holding without
// acknowledging waits longer each time, up to MaxWait, so a slow worker
// costs a few round trips, not a busy loop; acknowledging, or holding
// nothing, starts again. Without key ordering, and for a member holding
// nothing, the poll waits as Kafka's does.
func TestKeyOrderedHolderIsNotParked(t *testing.T) {
	h, _, tp := keyOrderedHarness(t)
	h.produceKeyed("k", "k", "k")
	m1, m2 := h.openSession("g", "m1", tp), h.openSession("g", "m2", tp)
	if got := h.acquire("g", "m1", m1); len(got.acquired[tp]) != 1 || got.acquired[tp][0] != [2]int64{0, 0} {
		t.Fatalf("m1 acquired %v, want offset 0 alone (one record per key)", got.acquired[tp])
	}

	const maxWait = 5 * time.Second
	fetch := func(member string, sess *Session, acked bool) (poll func() error) {
		return h.m.Acquire(context.Background(), AcquireRequest{Group: "g", Member: member, MaxRecords: 500, BatchSize: 500,
			MaxWait: maxWait, Acknowledged: acked}, sess, newCollect())
	}
	if fetch("m1", m1, false) != nil {
		t.Fatal("m1, holding the key every other record waits on, was parked")
	}
	if fetch("m2", m2, false) == nil {
		t.Fatal("m2, holding nothing, was not parked")
	}

	req := AcquireRequest{MaxWait: maxWait}
	var waits []time.Duration
	for range 18 {
		waits = append(waits, h.m.longPollWait(m1, req, true))
	}
	want := []time.Duration{heldPollBase, 2 * heldPollBase, 4 * heldPollBase}
	if !slices.Equal(waits[:3], want) || waits[len(waits)-1] != maxWait {
		t.Fatalf("m1's waits while it holds without acknowledging: %v; want %v ... %v", waits, want, maxWait)
	}
	req.Acknowledged = true
	if w := h.m.longPollWait(m1, req, true); w != 0 {
		t.Fatalf("a request with acknowledgements waits %v, want 0", w)
	}
	req.Acknowledged = false
	h.m.longPollWait(m1, req, true)
	if w := h.m.longPollWait(m1, req, false); w != maxWait {
		t.Fatalf("holding nothing, m1 waits %v, want MaxWait", w)
	}
	if w := h.m.longPollWait(m1, req, true); w != 0 {
		t.Fatalf("after a poll holding nothing, m1 waits %v, want 0", w)
	}

	h.setGroupConfig("g", map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.ordering": "none"})
	h.m.Reconcile(h.img.Load())
	if got := h.acquire("g", "m1", m1); len(got.acquired[tp]) != 1 || got.acquired[tp][0] != [2]int64{1, 2} {
		t.Fatalf("without key ordering m1 acquired %v, want the rest of the key's records", got.acquired[tp])
	}
	if fetch("m1", m1, false) == nil {
		t.Fatal("without key ordering a member holding records was not parked")
	}
}

// Ordering by key, a member's acknowledgements free its keys and the same
// request acquires next: without a limit it would take the successors of
// every key it freed and keep them, fetch after fetch, leaving nothing to
// the members that joined after it. An acquisition takes at most a fair
// share of the keys in flight among the sessions fetching the partition,
// and a member whose session closes no longer counts.
func TestKeyOrderedKeysSharedAmongMembers(t *testing.T) {
	h, topic, tp := keyOrderedHarness(t)
	h.produceKeyed(cyclingKeys(300, 100)...)
	count := func(c *collect) (n int64) {
		for _, r := range c.acquired[tp] {
			n += r[1] - r[0] + 1
		}
		return n
	}
	ack := func(member string, c *collect) {
		t.Helper()
		var batches []queue.AckBatch
		for _, r := range c.acquired[tp] {
			batches = append(batches, queue.AckBatch{First: r[0], Last: r[1], Types: []queue.AckType{queue.AckAccept}})
		}
		res := h.m.Acknowledge(context.Background(), "g", member, topic, 0, batches, false)
		if err := res.Settle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	a := h.openSession("g", "a", tp)
	first := h.acquire("g", "a", a)
	if n := count(first); n != 100 {
		t.Fatalf("a, alone, acquired %d records, want one of each of the 100 keys", n)
	}
	b := h.openSession("g", "b", tp)
	if n := count(h.acquire("g", "b", b)); n != 0 {
		t.Fatalf("b acquired %d records while a holds every key", n)
	}
	ack("a", first)
	second := h.acquire("g", "a", a)
	if n := count(second); n != 50 {
		t.Fatalf("after acknowledging, a acquired %d records, want its share, 50 of the 100 keys", n)
	}
	if n := count(h.acquire("g", "b", b)); n != 50 {
		t.Fatalf("b acquired %d records, want the other 50 keys", n)
	}

	// b leaves: what it held goes back, and a is the only member.
	ack("a", second)
	if _, closing, kerrv := h.m.OpenSession("g", "b", -1, true, h); kerrv != nil || !closing {
		t.Fatalf("closing b's session: %v", kerrv)
	}
	h.m.ReleaseSession("g", "b", b)
	if n := count(h.acquire("g", "a", a)); n != 100 {
		t.Fatalf("alone, a acquired %d records, want one of each key again", n)
	}
}
