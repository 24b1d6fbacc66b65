package queue

import (
	"fmt"
	"testing"
	"time"
)

// keyedLog is a log of records whose keys take 1,000 values in turn, in
// batches of batchLen records, the way shoal bench share --compare-ordering
// fills a partition (there 1,000 keys hash over 4 partitions).
type keyedLog struct {
	keys     int
	batchLen int64
}

// spans returns the batches the runtime would read from offset from: readLen
// records' worth, whole batches, with their key hashes when withKeys.
func (l keyedLog) spans(dst []Span, from, readLen int64, withKeys bool) []Span {
	dst = dst[:0]
	for first := from - from%l.batchLen; first < from+readLen; first += l.batchLen {
		s := Span{First: first, Last: first + l.batchLen - 1}
		if withKeys {
			s.Keys = make([]KeyHash, l.batchLen)
			for i := range s.Keys {
				s.Keys[i] = KeyHash((first+int64(i))%int64(l.keys) + 1)
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// drainCycles drains records of the log through workers members in turn:
// each turn a member acknowledges (ACCEPT) what it acquired on its previous
// turn and acquires again (up to 500 records) from a read of readLen records
// where the partition wants to continue, as a ShareFetch with piggybacked
// acknowledgements does. It returns the acquisitions made.
func drainCycles(tb testing.TB, ordering Ordering, l keyedLog, records int64, workers int) int {
	const maxRecords, readLen = 500, 1000
	cfg := DefaultConfig()
	cfg.Ordering = ordering
	sp := New(cfg, 0)
	now := base
	held := make([][]AcquiredRange, workers)
	members := make([]string, workers)
	for w := range members {
		members[w] = fmt.Sprintf("member-%d", w)
	}
	var spans []Span
	var acks []AckBatch
	fetches := 0
	for w := 0; sp.StartOffset() < records; w = (w + 1) % workers {
		now = now.Add(time.Microsecond)
		acks = acks[:0]
		for _, r := range held[w] {
			acks = append(acks, AckBatch{First: r.First, Last: r.Last, Types: []AckType{AckAccept}})
		}
		if err := sp.Acknowledge(now, members[w], acks, false); err != nil {
			tb.Fatal(err)
		}
		held[w] = nil
		from := sp.NextFetchOffset(now)
		if from < 0 || from >= records {
			continue
		}
		spans = l.spans(spans, from, min(readLen, records-from), ordering == OrderKey)
		held[w] = sp.Acquire(now, members[w], spans, maxRecords, maxRecords, false)
		fetches++
		if fetches > int(records) {
			tb.Fatalf("no progress: SPSO %d after %d fetches", sp.StartOffset(), fetches)
		}
	}
	return fetches
}

// BenchmarkKeyOrderCycles measures the state machine's cost of key-ordered
// delivery: 16 members drain 20,000 records of 1,000 keys (in batches of
// 16) by acquire/acknowledge cycles with share.delivery.ordering none and
// key, and report records/s of each, the ratio key/none, and the records
// per fetch in key mode (one per key in flight at most).
func BenchmarkKeyOrderCycles(b *testing.B) {
	const records, workers = 20_000, 16
	l := keyedLog{keys: 1000, batchLen: 16}
	var noneTime, keyTime time.Duration
	keyFetches := 0
	for range b.N {
		start := time.Now()
		drainCycles(b, OrderNone, l, records, workers)
		noneTime += time.Since(start)
		start = time.Now()
		keyFetches += drainCycles(b, OrderKey, l, records, workers)
		keyTime += time.Since(start)
	}
	n := float64(b.N * records)
	b.ReportMetric(n/noneTime.Seconds(), "none-records/s")
	b.ReportMetric(n/keyTime.Seconds(), "key-records/s")
	b.ReportMetric(noneTime.Seconds()/keyTime.Seconds(), "key/none")
	b.ReportMetric(n/float64(keyFetches), "key-records/fetch")
}

// TestDrainCyclesDeliversEveryRecord checks the benchmark's workload: both
// orderings drain the whole log.
func TestDrainCyclesDeliversEveryRecord(t *testing.T) {
	l := keyedLog{keys: 1000, batchLen: 16}
	for _, o := range []Ordering{OrderNone, OrderKey} {
		if fetches := drainCycles(t, o, l, 5000, 16); fetches == 0 {
			t.Fatalf("ordering %d: no fetch", o)
		}
	}
}

// scatteredSpans returns the batch of 1,000 records holding offset from,
// in a log of 250 keys in no order (as a producer partitioning by key hash
// leaves them).
func scatteredSpans(from int64) []Span {
	const batchLen, keys = 1000, 250
	first := from - from%batchLen
	s := Span{First: first, Last: first + batchLen - 1, Keys: make([]KeyHash, batchLen)}
	for i := range s.Keys {
		// A multiplicative hash of the offset scatters the keys.
		s.Keys[i] = KeyHash(uint64(first+int64(i))*0x9e3779b97f4a7c15>>40%keys + 1)
	}
	return []Span{s}
}

// keyOrderedTurns plays turns of 16 members of a key-ordered share
// partition over scatteredSpans: each turn a member acknowledges (ACCEPT)
// what it holds and, fetching as one of the 16, acquires again from where
// the partition wants to continue.
type keyOrderedTurns struct {
	sp   *SharePartition
	held [][]AcquiredRange
	turn int
}

func newKeyOrderedTurns() *keyOrderedTurns {
	cfg := DefaultConfig()
	cfg.Ordering = OrderKey
	return &keyOrderedTurns{sp: New(cfg, 0), held: make([][]AcquiredRange, 16)}
}

func (k *keyOrderedTurns) play(tb testing.TB) {
	const maxRecords = 500
	w := k.turn % len(k.held)
	k.turn++
	member := fmt.Sprint("member-", w)
	var acks []AckBatch
	for _, r := range k.held[w] {
		acks = append(acks, AckBatch{First: r.First, Last: r.Last, Types: []AckType{AckAccept}})
	}
	if err := k.sp.Acknowledge(base, member, acks, false); err != nil {
		tb.Fatal(err)
	}
	k.held[w] = nil
	k.sp.StartFetch(len(k.held))
	if from := k.sp.NextFetchOffset(base); from >= 0 {
		k.held[w] = k.sp.Acquire(base, member, scatteredSpans(from), maxRecords, maxRecords, false)
	}
}

// BenchmarkKeyOrderedTurns measures one turn of keyOrderedTurns: the state
// machine's part of a ShareFetch with piggybacked acknowledgements, ordering
// by key among 16 members. It reports the records acquired per turn.
func BenchmarkKeyOrderedTurns(b *testing.B) {
	k := newKeyOrderedTurns()
	for range 200 {
		k.play(b)
	}
	acquired := 0
	for b.Loop() {
		k.play(b)
		for _, r := range k.held[(k.turn-1)%len(k.held)] {
			acquired += int(r.Last - r.First + 1)
		}
	}
	b.ReportMetric(float64(acquired)/float64(b.N), "records/turn")
}

// BenchmarkPersistedKeyOrdered measures Persisted, which runs on every
// acknowledgement, on a key-ordered window as keyOrderedTurns leaves it
// mid-drain: a patchwork of delivered, acknowledged and held-back records.
// It reports the batches of the persisted state.
func BenchmarkPersistedKeyOrdered(b *testing.B) {
	k := newKeyOrderedTurns()
	for range 200 {
		k.play(b)
	}
	var st PersistedState
	for b.Loop() {
		st = k.sp.Persisted()
	}
	b.ReportMetric(float64(len(st.Batches)), "batches")
}
