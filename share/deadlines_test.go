package share

import (
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testclock"
)

// The heap gives back exactly the partitions whose current deadline has
// passed on the clock, in any order, once each; rescheduling replaces a
// partition's deadline and the zero time cancels it.
func TestDeadlineHeapPopsWhatIsDue(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	d := newDeadlineHeap(clock.Now, nil)
	a, b, c := &Part{}, &Part{}, &Part{}
	t0 := clock.Now()
	d.schedule(a, t0.Add(10*time.Second))
	d.schedule(b, t0.Add(20*time.Second))
	d.schedule(c, t0.Add(30*time.Second))
	d.schedule(b, t0.Add(5*time.Second)) // moved earlier
	d.schedule(c, time.Time{})           // cancelled

	if due, next := d.popDue(clock.Now(), nil); len(due) != 0 || !next.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("at start: due %v next %v, want none and +5s", due, next.Sub(t0))
	}
	clock.Advance(5 * time.Second)
	if due, next := d.popDue(clock.Now(), nil); len(due) != 1 || due[0] != b || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("at +5s: due %v next %v, want b and +10s", due, next.Sub(t0))
	}
	clock.Advance(time.Hour)
	due, next := d.popDue(clock.Now(), nil)
	if len(due) != 1 || due[0] != a {
		t.Fatalf("at +1h5s: due %v, want a only (b fired, b's old entry and c are stale)", due)
	}
	if !next.IsZero() {
		t.Fatalf("nothing left, but next is %v", next.Sub(t0))
	}
	if due, _ := d.popDue(clock.Now(), nil); len(due) != 0 {
		t.Fatalf("fired twice: %v", due)
	}
}

// The loop runs on the injected clock: a deadline an hour away fires as
// soon as the clock is moved past it, not an hour later on the wall clock.
func TestDeadlineLoopFollowsInjectedClock(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	fired := make(chan *Part, 4)
	d := newDeadlines(clock.Now, func(sp *Part) { fired <- sp })
	defer d.close()
	sp := &Part{}
	d.schedule(sp, clock.Now().Add(time.Hour))
	select {
	case <-fired:
		t.Fatal("fired before the clock reached the deadline")
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(time.Hour)
	d.schedule(&Part{}, clock.Now().Add(time.Hour)) // any schedule wakes the loop
	select {
	case got := <-fired:
		if got != sp {
			t.Fatalf("fired %p, want %p", got, sp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deadline passed on the injected clock did not fire")
	}
}
