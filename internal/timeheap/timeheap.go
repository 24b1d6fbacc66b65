// Package timeheap is a min-heap of values by time, for timers kept with
// lazy invalidation: an owner pushes a value whenever its deadline moves and
// skips, as they reach the top, the entries that no longer match it, instead
// of finding and fixing the old entry on every move.
package timeheap

import (
	"container/heap"
	"time"
)

// Entry is a value and the time it was pushed with.
type Entry[T any] struct {
	At    time.Time
	Value T
}

// Heap holds entries with the earliest on top. The zero value is empty.
type Heap[T any] struct {
	es entries[T]
}

// Len is the number of entries, stale ones included.
func (h *Heap[T]) Len() int { return len(h.es) }

// Push adds v at time at.
func (h *Heap[T]) Push(at time.Time, v T) { heap.Push(&h.es, Entry[T]{at, v}) }

// Top is the earliest entry; the heap must not be empty.
func (h *Heap[T]) Top() Entry[T] { return h.es[0] }

// Pop removes and returns the earliest entry; the heap must not be empty.
func (h *Heap[T]) Pop() Entry[T] { return heap.Pop(&h.es).(Entry[T]) }

// Rebuild replaces every entry with those fill adds, in linear time: the
// way to drop stale entries once they pile up.
func (h *Heap[T]) Rebuild(fill func(add func(at time.Time, v T))) {
	h.es = h.es[:0]
	fill(func(at time.Time, v T) { h.es = append(h.es, Entry[T]{at, v}) })
	heap.Init(&h.es)
}

// entries is the heap.Interface behind Heap.
type entries[T any] []Entry[T]

func (es entries[T]) Len() int           { return len(es) }
func (es entries[T]) Less(i, j int) bool { return es[i].At.Before(es[j].At) }
func (es entries[T]) Swap(i, j int)      { es[i], es[j] = es[j], es[i] }
func (es *entries[T]) Push(x any)        { *es = append(*es, x.(Entry[T])) }
func (es *entries[T]) Pop() any {
	old := *es
	e := old[len(old)-1]
	*es = old[:len(old)-1]
	return e
}
