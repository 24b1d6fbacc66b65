package queue

import (
	"testing"
	"time"
)

// Unsettled lists who holds which records until when, and the records
// released back with their delivery counts; never the ones not yet
// delivered or already done.
func TestUnsettledListsHoldersDeadlinesAndCounts(t *testing.T) {
	now := time.Unix(1000, 0)
	sp := New(Config{LockDuration: 30 * time.Second, DeliveryLimit: 3, MaxInFlight: 100}, 0)
	sp.Acquire(now, "m1", []Span{{First: 0, Last: 9}}, 10, 10, false)
	// m1 accepts 0-2, releases 3-4, keeps 5-9.
	if err := sp.Acknowledge(now, "m1", []AckBatch{{First: 0, Last: 2, Types: []AckType{AckAccept}}, {First: 3, Last: 4, Types: []AckType{AckRelease}}}, false); err != nil {
		t.Fatal(err)
	}
	sp.Acquire(now, "m2", []Span{{First: 10, Last: 19}}, 2, 2, true) // 10-11 to m2; 12-19 never delivered
	got := sp.Unsettled(10)
	want := []Unsettled{
		{First: 3, Last: 4, State: Available, DeliveryCount: 1},
		{First: 5, Last: 9, State: Acquired, DeliveryCount: 1, Owner: "m1", Deadline: now.Add(30 * time.Second)},
		{First: 10, Last: 11, State: Acquired, DeliveryCount: 1, Owner: "m2", Deadline: now.Add(30 * time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("unsettled %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := sp.Unsettled(1); len(got) != 1 || got[0].First != 3 {
		t.Errorf("at most one run: %+v", got)
	}
}

// Records waiting for their dead letter are unsettled until it is written:
// an operator sees them as dead-lettering, not as gone.
func TestUnsettledListsRecordsWaitingForTheirDeadLetter(t *testing.T) {
	now := time.Unix(1000, 0)
	sp := New(Config{LockDuration: 30 * time.Second, DeliveryLimit: 3, MaxInFlight: 100, DeadLetter: true}, 0)
	sp.Acquire(now, "m1", []Span{{First: 0, Last: 4}}, 5, 5, false)
	if err := sp.Acknowledge(now, "m1", []AckBatch{{First: 0, Last: 1, Types: []AckType{AckAccept}}, {First: 2, Last: 3, Types: []AckType{AckReject}}}, false); err != nil {
		t.Fatal(err)
	}
	got := sp.Unsettled(10)
	want := []Unsettled{
		{First: 2, Last: 3, State: DeadLettering, DeliveryCount: 1},
		{First: 4, Last: 4, State: Acquired, DeliveryCount: 1, Owner: "m1", Deadline: now.Add(30 * time.Second)},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("unsettled %+v, want %+v", got, want)
	}
	sp.SetDeadLetterProducer(7, 0)
	w, _, ok := sp.NextDeadLetters(10)
	if !ok {
		t.Fatal("no dead-letter write")
	}
	sp.DeadLettersWritten(w, w.Len())
	if got := sp.Unsettled(10); len(got) != 1 || got[0].State != Acquired {
		t.Errorf("after the dead letters are written: %+v, want only the acquired record", got)
	}
}
