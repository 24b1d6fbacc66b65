package share

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
)

// produceKeyed appends one batch of records with the given keys (value
// "v<offset-in-batch>") to partition 0 of the jobs topic.
func (h *harness) produceKeyed(keys ...string) {
	h.t.Helper()
	topic := h.img.Load().Topics["jobs"]
	p, _, kerrv := h.replicas.LeaderPartition(topic, 0)
	if kerrv != nil {
		h.t.Fatal(kerrv)
	}
	recs := make([]log.Record, len(keys))
	for i, k := range keys {
		recs[i] = log.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", i)}
	}
	b := log.EncodeBatch(recs, h.clock.now())
	hdr, err := log.ParseBatchHeader(b)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := p.Append(b, hdr, 5, h.clock.now()); err != nil {
		h.t.Fatal(err)
	}
	p.SetHighWatermark(p.LogEndOffset())
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

// With share.delivery.ordering=key a fetch acquires one record per key,
// scattered over a batch; it must carry just those records, not the whole
// batch, or the consumer receives and decodes the records it may not have
// with every fetch (records in flight are few, fetches many).
func TestKeyOrderedFetchCarriesOnlyAcquiredRecords(t *testing.T) {
	h := newHarness(t)
	topic := h.addTopic("jobs", 1, 1, self, nil)
	h.addTopic(StateTopic, 2, 1, self, nil)
	h.setGroupConfig("g", map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.ordering": "key"})
	tp := TopicPart{ID: topic.ID, Partition: 0}
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i%4)
	}
	h.produceKeyed(keys...)
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
