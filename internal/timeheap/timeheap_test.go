package timeheap

import (
	"testing"
	"time"
)

func TestPopsInTimeOrder(t *testing.T) {
	base := time.Unix(1000, 0)
	var h Heap[string]
	for _, s := range []int{5, 1, 4, 2, 3} {
		h.Push(base.Add(time.Duration(s)*time.Second), string(rune('a'+s)))
	}
	if top := h.Top(); !top.At.Equal(base.Add(time.Second)) || top.Value != "b" {
		t.Fatalf("top = %v, want b at +1s", top)
	}
	var got string
	for h.Len() > 0 {
		got += h.Pop().Value
	}
	if got != "bcdef" {
		t.Fatalf("popped %q, want bcdef", got)
	}
}

func TestRebuildReplacesEntries(t *testing.T) {
	base := time.Unix(1000, 0)
	var h Heap[int]
	for i := range 10 {
		h.Push(base.Add(time.Duration(i)*time.Second), i)
	}
	h.Rebuild(func(add func(time.Time, int)) {
		add(base.Add(3*time.Second), 30)
		add(base.Add(time.Second), 10)
		add(base.Add(2*time.Second), 20)
	})
	var got []int
	for h.Len() > 0 {
		got = append(got, h.Pop().Value)
	}
	if len(got) != 3 || got[0] != 10 || got[1] != 20 || got[2] != 30 {
		t.Fatalf("after Rebuild popped %v, want [10 20 30]", got)
	}
}
