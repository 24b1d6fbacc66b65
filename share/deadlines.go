package share

import (
	"sync"
	"time"

	"github.com/shoalmq/shoal/internal/timeheap"
)

// deadlines is the node's one timer structure for share partitions: a heap
// of (deadline, partition) on the injected clock, served by one goroutine.
// A partition has at most one current deadline, the earliest time its state
// machine has work (queue.Ready.Deadline). Entries are invalidated lazily:
// a partition's current deadline is in due, and a popped entry that no
// longer matches it is skipped.
//
// The clock is now, not the wall clock: the loop compares deadlines with
// now() and sleeps for the difference, so a test that moves its clock and
// schedules (or kicks) sees the partitions it made due fire.
type deadlines struct {
	now  func() time.Time
	fire func(*Part)

	mu   sync.Mutex // a leaf: taken under Part.mu by schedule
	h    timeheap.Heap[*Part]
	due  map[*Part]time.Time
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// newDeadlines starts the loop that calls fire for each partition whose
// deadline passes on the clock now.
func newDeadlines(now func() time.Time, fire func(*Part)) *deadlines {
	d := newDeadlineHeap(now, fire)
	go d.loop()
	return d
}

// newDeadlineHeap is the heap without its goroutine (tests drive popDue).
func newDeadlineHeap(now func() time.Time, fire func(*Part)) *deadlines {
	return &deadlines{now: now, fire: fire, due: map[*Part]time.Time{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// schedule sets sp's next deadline; the zero time cancels it.
func (d *deadlines) schedule(sp *Part, at time.Time) {
	d.mu.Lock()
	if at.IsZero() {
		delete(d.due, sp)
	} else if cur, ok := d.due[sp]; !ok || !cur.Equal(at) {
		d.due[sp] = at
		d.h.Push(at, sp)
	}
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// popDue removes the partitions whose current deadline is at or before now,
// appending them to fire, and returns the next deadline still pending
// (zero: none).
func (d *deadlines) popDue(now time.Time, fire []*Part) ([]*Part, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.h.Len() > 0 && !d.h.Top().At.After(now) {
		e := d.h.Pop()
		if cur, ok := d.due[e.Value]; ok && cur.Equal(e.At) {
			delete(d.due, e.Value)
			fire = append(fire, e.Value)
		}
	}
	if d.h.Len() == 0 {
		return fire, time.Time{}
	}
	return fire, d.h.Top().At
}

func (d *deadlines) loop() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var fire []*Part
	for {
		now := d.now()
		var next time.Time
		fire, next = d.popDue(now, fire[:0])
		for _, sp := range fire {
			d.fire(sp)
		}
		if len(fire) > 0 {
			clear(fire) // drop references to partitions that may be gone
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		timer.Reset(wait)
		select {
		case <-d.stop:
			return
		case <-d.kick:
		case <-timer.C:
		}
	}
}

func (d *deadlines) close() {
	close(d.stop)
	<-d.done
}
