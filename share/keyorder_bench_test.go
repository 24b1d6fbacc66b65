package share

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
)

// rangeSink is a Sink that keeps only the ranges of the last acquisition.
type rangeSink struct{ ranges []queue.AcquiredRange }

func (s *rangeSink) Failed(TopicPart, int16) {}
func (s *rangeSink) Acquired(_ TopicPart, _ []byte, ranges []queue.AcquiredRange) {
	s.ranges = append(s.ranges, ranges...)
}

// BenchmarkKeyOrderedFetch drives one key-ordered share partition as the
// fetches of shoal bench share --compare-ordering do: producer batches of
// 1,000 records whose keys take 250 values in turn (1,000 keys over four
// partitions), four members fetching in turn, each first acknowledging
// (ACCEPT) what it acquired on its previous fetch, as a ShareFetch with
// piggybacked acknowledgements does. One op is one such fetch: its
// acknowledgement, its acquisition and the cut batches it carries (the
// records are produced off the clock). Values
// are 100 bytes, so the log a long run writes stays small.
func BenchmarkKeyOrderedFetch(b *testing.B) {
	const members, keys, batchLen = 4, 250, 1000
	h, topic, tp := keyOrderedHarness(b)
	recs := make([]log.Record, batchLen)
	for i := range recs {
		recs[i] = log.Record{Key: fmt.Appendf(nil, "k%d", i%keys), Value: bytes.Repeat([]byte{'v'}, 100)}
	}
	names := make([]string, members)
	sessions := make([]*Session, members)
	held := make([][]queue.AckBatch, members)
	for i := range members {
		names[i] = fmt.Sprint("m", i)
		sessions[i] = h.openSession("g", names[i], tp)
	}
	ctx := context.Background()
	var sink rangeSink
	var produced, acquired int64
	fetches := 0
	for b.Loop() {
		if produced-acquired < 4*batchLen {
			b.StopTimer()
			h.appendBatch(topic, 0, recs)
			produced += batchLen
			b.StartTimer()
		}
		m := fetches % members
		fetches++
		if len(held[m]) > 0 {
			ack := h.m.Acknowledge(ctx, "g", names[m], topic, 0, held[m], false)
			if err := ack.Settle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		sink.ranges = sink.ranges[:0]
		h.m.Acquire(ctx, AcquireRequest{Group: "g", Member: names[m], MaxRecords: 500, BatchSize: 500}, sessions[m], &sink)
		held[m] = held[m][:0]
		for _, r := range sink.ranges {
			held[m] = append(held[m], queue.AckBatch{First: r.First, Last: r.Last, Types: []queue.AckType{queue.AckAccept}})
			acquired += r.Last - r.First + 1
		}
		if fetches%1000 == 0 {
			// The fake coordinator keeps every state written.
			h.coord.mu.Lock()
			h.coord.writes = nil
			h.coord.mu.Unlock()
		}
	}
	b.ReportMetric(float64(acquired)/float64(fetches), "records/fetch")
}
