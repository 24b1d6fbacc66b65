package coordinator

import (
	"container/heap"
	"time"
)

// Member timers of a consumer group, ordered by when they fire.
//
// The runtime asks for the group's next deadline after every request, so
// scanning every member there made each heartbeat O(members). Instead a
// member's timer is pushed onto a min-heap whenever a request may have
// moved it, and entries that no longer match their member's timer (a newer
// heartbeat pushed a later one, or the member left) are dropped when they
// reach the top. Each heartbeat then costs O(log n). Stale entries below
// the top are bounded by rebuilding the heap from the members once it
// holds more than consumerTimersSlack entries per member.

const consumerTimersSlack = 4

// consumerTimer is a member's timer as it was when pushed.
type consumerTimer struct {
	at     time.Time
	member string
}

type consumerTimers []consumerTimer

func (h consumerTimers) Len() int           { return len(h) }
func (h consumerTimers) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h consumerTimers) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *consumerTimers) Push(x any)        { *h = append(*h, x.(consumerTimer)) }
func (h *consumerTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// nextTimer is when Tick must next look at m: its session deadline, or its
// rebalance deadline if it is revoking and that comes first.
func (m *consumerMember) nextTimer() time.Time {
	d := m.sessionDeadline
	if m.state == consumerUnrevoked && !m.rebalanceDeadline.IsZero() && m.rebalanceDeadline.Before(d) {
		d = m.rebalanceDeadline
	}
	return d
}

// armTimer records m's current timer. Call it after anything that may have
// moved m's session or rebalance deadline or its state.
func (g *ConsumerGroup) armTimer(m *consumerMember) {
	heap.Push(&g.timers, consumerTimer{at: m.nextTimer(), member: m.id})
	if len(g.timers) > consumerTimersSlack*len(g.members)+64 {
		g.timers = g.timers[:0]
		for _, m := range g.members {
			g.timers = append(g.timers, consumerTimer{at: m.nextTimer(), member: m.id})
		}
		heap.Init(&g.timers)
	}
}

// NextDeadline is when Tick next has work to do; zero when there is none.
func (g *ConsumerGroup) NextDeadline() time.Time {
	for len(g.timers) > 0 {
		top := g.timers[0]
		if m, ok := g.members[top.member]; ok && m.nextTimer().Equal(top.at) {
			return top.at
		}
		heap.Pop(&g.timers)
	}
	return time.Time{}
}
