package log

import "sync"

// Waiter is the wake-up of one parked reader (a long-polling fetch over
// any number of partitions): one channel, registered on the WaitSet of
// every partition the reader waits on. An event on any of them puts a
// token in the channel; events on partitions it does not wait on never
// reach it.
//
// It replaces selecting over one broadcast channel per partition: that
// cost a select over every partition of the fetch per wait (reflect.Select,
// allocating per call) and a new channel per event on every partition
// whether or not anyone waited on it.
//
// No lost wake-ups: a reader registers (WaitSet.Add) before it reads the
// state it waits to change, and a writer calls WakeAll after publishing
// that state, so a change between the reader's check and its park leaves
// a token in C.
//
// A Waiter is used by one goroutine at a time; Release must be called
// when the reader stops waiting, or the sets it joined keep it.
type Waiter struct {
	c chan struct{} // capacity 1: wake-ups coalesce
	// on are the sets the waiter joined (owner goroutine only).
	on []*WaitSet
}

// NewWaiter returns a waiter that has joined no set.
func NewWaiter() *Waiter { return &Waiter{c: make(chan struct{}, 1)} }

// C receives a token after an event on any set the waiter joined since
// it was last received.
func (w *Waiter) C() <-chan struct{} { return w.c }

// wake leaves a token unless one is already waiting.
func (w *Waiter) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Release leaves every set the waiter joined and drops a pending token,
// so the waiter can be reused.
func (w *Waiter) Release() {
	for _, s := range w.on {
		s.remove(w)
	}
	clear(w.on)
	w.on = w.on[:0]
	select {
	case <-w.c:
	default:
	}
}

// WaitSet is the waiters parked on one source of events (a partition's
// high watermark, a leader's appends). The zero value is ready to use.
type WaitSet struct {
	mu      sync.Mutex
	waiters map[*Waiter]struct{} // mu
}

// Add registers w; registering twice is a no-op. Call it before reading
// the state whose change should wake w.
func (s *WaitSet) Add(w *Waiter) {
	s.mu.Lock()
	if _, ok := s.waiters[w]; ok {
		s.mu.Unlock()
		return
	}
	if s.waiters == nil {
		s.waiters = make(map[*Waiter]struct{})
	}
	s.waiters[w] = struct{}{}
	s.mu.Unlock()
	w.on = append(w.on, s)
}

func (s *WaitSet) remove(w *Waiter) {
	s.mu.Lock()
	delete(s.waiters, w)
	s.mu.Unlock()
}

// WakeAll wakes every registered waiter. Call it after publishing the
// change. It never blocks on a waiter, so it may be called with the
// publisher's own locks held (s.mu is a leaf lock).
func (s *WaitSet) WakeAll() {
	s.mu.Lock()
	for w := range s.waiters {
		w.wake()
	}
	s.mu.Unlock()
}

// waiterPool recycles waiters: a long poll parks once per fetch, and a
// consumer with nothing to read parks on every fetch.
var waiterPool = sync.Pool{New: func() any { return NewWaiter() }}

// GetWaiter returns a waiter from the pool; PutWaiter releases it and
// returns it.
func GetWaiter() *Waiter { return waiterPool.Get().(*Waiter) }

// PutWaiter releases w (see Release) and returns it to the pool.
func PutWaiter(w *Waiter) {
	w.Release()
	waiterPool.Put(w)
}
