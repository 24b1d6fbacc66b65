package queue

import (
	"testing"
	"time"
)

// Spans that overlap what Acquire was given before (a batch read again
// from a different start) must not register a record's key twice: the
// key would wait behind itself, and acknowledging the records would walk
// the key index out of its bounds. Every record is still delivered, one at
// a time, in offset order.
func TestKeyOrderOverlappingSpans(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Ordering = OrderKey
	sp := Restore(cfg, PersistedState{StartOffset: 0, Batches: []StateBatch{{First: 0, Last: 9, State: Available, DeliveryCount: 1}}})
	keys := func(first, last int64) Span {
		s := Span{First: first, Last: last}
		for range last - first + 1 {
			s.Keys = append(s.Keys, 1)
		}
		return s
	}
	now := time.Unix(100, 0)
	first := sp.Acquire(now, "m", []Span{keys(0, 4)}, 500, 500, false)
	if len(first) != 1 || first[0] != (AcquiredRange{First: 0, Last: 0, DeliveryCount: 2}) {
		t.Fatalf("acquired %v, want record 0 alone", first)
	}
	if got := sp.Acquire(now, "m", []Span{keys(2, 9)}, 500, 500, false); len(got) != 0 {
		t.Fatalf("acquired %v while the key's record 0 is held", got)
	}
	if err := checkInvariants(sp); err != nil {
		t.Fatal(err)
	}
	if err := sp.Acknowledge(now, "m", []AckBatch{{First: 0, Last: 0, Types: []AckType{AckAccept}}}, false); err != nil {
		t.Fatal(err)
	}
	delivered := []int64{0}
	for _, spans := range [][]Span{{keys(0, 4)}, {keys(2, 9)}, {keys(0, 4), keys(3, 9)}} {
		for range 10 {
			got := sp.Acquire(now, "m", spans, 500, 500, false)
			if err := checkInvariants(sp); err != nil {
				t.Fatalf("after acquiring from %v: %v", spans, err)
			}
			if len(got) == 0 {
				break
			}
			if len(got) != 1 || got[0].First != got[0].Last {
				t.Fatalf("acquired %v from %v, want one record of the key", got, spans)
			}
			o := got[0].First
			delivered = append(delivered, o)
			if err := sp.Acknowledge(now, "m", []AckBatch{{First: o, Last: o, Types: []AckType{AckAccept}}}, false); err != nil {
				t.Fatal(err)
			}
			if err := checkInvariants(sp); err != nil {
				t.Fatalf("after accepting %d: %v", o, err)
			}
		}
	}
	for i, o := range delivered {
		if o != int64(i) {
			t.Fatalf("delivered %v, want 0 to 9 in order", delivered)
		}
	}
	if len(delivered) != 10 {
		t.Fatalf("delivered %v, want 0 to 9", delivered)
	}
}
