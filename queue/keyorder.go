package queue

// Key-ordered delivery (share.delivery.ordering=key): within a partition a
// record is acquirable only when no earlier record with the same key is
// ACQUIRED or AVAILABLE, so each key has at most one record in flight and
// its records are delivered in offset order across releases, lock expiries
// and archiving at the delivery limit. Null keys are unordered.
//
// The state machine learns keys from the spans Acquire is given and keeps
// them only for records that are in flight and not terminal: a record's key
// is forgotten when it is acknowledged or archived, so memory is bounded by
// the in-flight window (MaxInFlight). Keys are not persisted: after Restore
// every restored record's key is unknown until the runtime reads it again.
//
// Invariants (key mode):
//   - slots hold exactly the non-terminal in-flight records at or below
//     known whose key is not null; byKey[k] lists those of key k in
//     ascending offset order, and its head is the only one that may be
//     ACQUIRED or acquired, and the only one whose slot is not blocked.
//   - known is the highest offset through which every non-terminal
//     in-flight record's key is known; records past known are never
//     acquired and no new record is brought in while known < SPEO, so a key
//     is never learned out of offset order.

import (
	"math"
	"slices"
	"time"
)

// Ordering is share.delivery.ordering.
type Ordering int8

const (
	// OrderNone delivers records in any order to any member (Kafka's
	// behaviour).
	OrderNone Ordering = iota
	// OrderKey keeps at most one record per key in flight.
	OrderKey
)

// KeyHash identifies a record key; NullKey is a null key. The runtime hashes
// keys (two keys with one hash are merely ordered together).
type KeyHash uint64

// NullKey is the KeyHash of a record with a null key.
const NullKey KeyHash = 0

// keyOrder is the per-key state of a SharePartition in key mode.
type keyOrder struct {
	known int64
	// slots[o-base] is what is known of record o's key; records below
	// base, or past the last slot, have none registered. The slots span
	// the in-flight window at most: forget drops the leading empty ones.
	//
	// Why a slice and not a map of offsets: ready is asked of every
	// held-back record of the window on each acquisition pass, and with
	// a thousand keys in flight the map lookups were most of a pass.
	base  int64
	slots []keySlot
	byKey map[KeyHash][]int64
	// changes counts the changes of slots and byKey, for the memo of
	// nextFetchByKey.
	changes uint64
}

// keySlot is a registered record's key and whether an earlier record of the
// same key holds it back (it is not the head of its key's list).
type keySlot struct {
	h       KeyHash // NullKey: none registered
	blocked bool
}

func (k *keyOrder) reset(known int64) {
	k.changes++
	k.known = known
	clear(k.slots)
	k.base, k.slots = known+1, k.slots[:0]
	clear(k.byKey)
}

// slot returns record o's slot, or nil when none is registered.
func (k *keyOrder) slot(o int64) *keySlot {
	if i := o - k.base; i >= 0 && i < int64(len(k.slots)) && k.slots[i].h != NullKey {
		return &k.slots[i]
	}
	return nil
}

// keyOf returns the key hash of offset o of span s (NullKey past its keys).
func keyOf(s *Span, o int64) KeyHash {
	if i := o - s.First; i >= 0 && i < int64(len(s.Keys)) {
		return s.Keys[i]
	}
	return NullKey
}

// register records that the non-terminal in-flight record o has key h.
// Callers register in ascending offset order, past every record registered
// before (learnKeys only moves known forward); an offset at or below the
// last slot is ignored, as registering it twice would hold its key back
// behind itself.
func (k *keyOrder) register(o int64, h KeyHash) {
	if h == NullKey || len(k.slots) > 0 && o < k.base+int64(len(k.slots)) {
		return
	}
	k.changes++
	if k.byKey == nil {
		k.byKey = map[KeyHash][]int64{}
	}
	if len(k.slots) == 0 {
		k.base = o
	}
	for k.base+int64(len(k.slots)) <= o {
		k.slots = append(k.slots, keySlot{})
	}
	q := k.byKey[h]
	k.slots[o-k.base] = keySlot{h: h, blocked: len(q) > 0}
	k.byKey[h] = append(q, o)
}

// forget drops the keys of records [a, z], which became terminal; the next
// record of a key whose head is dropped is no longer held back.
func (k *keyOrder) forget(a, z int64) {
	if len(k.slots) == 0 {
		return
	}
	k.changes++
	for o := max(a, k.base); o <= min(z, k.base+int64(len(k.slots))-1); o++ {
		s := &k.slots[o-k.base]
		h := s.h
		if h == NullKey {
			continue
		}
		*s = keySlot{}
		q := k.byKey[h]
		switch {
		case len(q) == 1:
			delete(k.byKey, h)
		case q[0] == o: // the usual case: the head was acknowledged
			k.byKey[h] = q[1:]
			k.slots[q[1]-k.base].blocked = false
		default:
			if i := slices.Index(q, o); i > 0 {
				k.byKey[h] = append(q[:i], q[i+1:]...)
			}
		}
	}
	n := 0
	for n < len(k.slots) && k.slots[n].h == NullKey {
		n++
	}
	k.base += int64(n)
	k.slots = k.slots[n:]
}

// ready reports whether record o may be acquired as far as its key goes.
func (k *keyOrder) ready(o int64) bool {
	if o > k.known {
		return false
	}
	s := k.slot(o)
	return s == nil || !s.blocked
}

// learnKeys registers the keys of the non-terminal in-flight records of s
// that are not known yet, provided s continues from known (past terminal
// records); otherwise an earlier unknown key could be overtaken.
func (sp *SharePartition) learnKeys(s *Span) {
	ko := &sp.keys
	if ko.known >= sp.end || s.Last <= ko.known {
		return
	}
	from := ko.known + 1
	if s.First > from {
		blocked := false
		sp.eachIn(from, s.First-1, func(e *entry) bool {
			blocked = !e.state.settled()
			return !blocked
		})
		if blocked {
			return
		}
	}
	upto := min(s.Last, sp.end)
	sp.eachIn(max(from, s.First), upto, func(e *entry) bool {
		if !e.state.settled() {
			for o := max(e.first, s.First, from); o <= min(e.last, upto); o++ {
				ko.register(o, keyOf(s, o))
			}
		}
		return true
	})
	ko.known = upto
}

// ReadLimit is the last offset an Acquire can use from a read starting at
// from (NextFetchOffset's answer): the runtime need not read the log past
// it. Without key ordering, or while keys are still to be learnt, there is
// no limit (math.MaxInt64: read as far as the byte budget goes).
//
// Ordering by key, the acquirable records are one per key, scattered among
// records their keys hold back, and a read of the whole window would fetch
// mostly records no one may have. So when from is an in-flight record the
// limit is the last acquirable one, and when from is past SPEO it is the
// last new record the window admits. Acquire brings new records in only
// from a read past SPEO, so after a read bounded below SPEO the runtime
// asks again (NextFetchOffset is then past SPEO when the window has room).
func (sp *SharePartition) ReadLimit(now time.Time, from int64) int64 {
	if sp.cfg.Ordering != OrderKey || sp.keys.known < sp.end {
		return math.MaxInt64
	}
	if from > sp.end {
		return sp.end + max(sp.windowRoom(), 0)
	}
	return max(sp.lastReady(now.UnixNano()), from)
}

// lastReady is the last in-flight record that is acquirable now, keys
// allowing, or -1. It walks the window down from SPEO: O(in-flight).
func (sp *SharePartition) lastReady(t int64) int64 {
	found := int64(-1)
	sp.entries.DescendLessOrEqual(&entry{first: sp.end}, func(e *entry) bool {
		if !e.acquirable(t) {
			return true
		}
		for o := e.last; o >= e.first; o-- {
			if sp.keys.ready(o) {
				found = o
				return false
			}
		}
		return true
	})
	return found
}

// readyRuns calls f for each maximal run of records in [a, z] that may be
// acquired: all of it unless ordering by key. Ordering by key, the runs
// hold at most *keyed records with a key (counted down as runs are
// formed; null keys are not counted).
func (sp *SharePartition) readyRuns(a, z int64, keyed *int64, f func(a, z int64) bool) {
	if sp.cfg.Ordering != OrderKey {
		f(a, z)
		return
	}
	take := func(o int64) bool {
		if !sp.keys.ready(o) {
			return false
		}
		if sp.keys.slot(o) == nil {
			return true
		}
		if *keyed <= 0 {
			return false
		}
		*keyed--
		return true
	}
	for o := a; o <= z; {
		if !take(o) {
			o++
			continue
		}
		end := o
		for end < z && take(end+1) {
			end++
		}
		if !f(o, end) {
			return
		}
		o = end + 1
	}
}

// readyMemo is the last answer of firstReadyInFlight and what it depends
// on: it stands while no entry and no key changed, up to the end of the
// earliest release backoff it walked past.
//
// Why: every change of a key-ordered share partition wakes all the fetches
// parked on it, and ordering by key most of them find nothing to take. The
// walk that finds so, over every held-back record of the window, was most of
// the work of those passes: with 1,000 keys and 16 workers, three woken
// passes found nothing for each that acquired a record. The first woken
// pass walks; the others, seeing no change since, do not.
type readyMemo struct {
	valid               bool
	changes, keyChanges uint64
	known               int64
	until               int64 // Unix nanoseconds; the answer holds before it
	found               int64
}

// firstReadyInFlight is the first in-flight record acquirable at t, keys
// allowing, or -1 (key mode).
func (sp *SharePartition) firstReadyInFlight(t int64) int64 {
	m := &sp.memo
	if m.valid && m.changes == sp.changes && m.keyChanges == sp.keys.changes && m.known == sp.keys.known && t < m.until {
		return m.found
	}
	found, until := int64(-1), int64(math.MaxInt64)
	sp.entries.Ascend(func(e *entry) bool {
		if e.first > sp.keys.known {
			return false
		}
		if e.acquirable(t) {
			found = sp.firstReady(e)
		} else if e.state == Available {
			until = min(until, e.deadline) // acquirable once its backoff ends
		}
		return found < 0
	})
	*m = readyMemo{valid: true, changes: sp.changes, keyChanges: sp.keys.changes, known: sp.keys.known, until: until, found: found}
	return found
}

// firstReady is the first acquirable record of the acquirable entry e in key
// mode, or -1.
func (sp *SharePartition) firstReady(e *entry) int64 {
	for o := e.first; o <= e.last && o <= sp.keys.known; o++ {
		if sp.keys.ready(o) {
			return o
		}
	}
	return -1
}
