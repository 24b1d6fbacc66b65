package coordinator

import "time"

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
	g.timers.Push(m.nextTimer(), m.id)
	if g.timers.Len() > consumerTimersSlack*len(g.members)+64 {
		g.timers.Rebuild(func(add func(time.Time, string)) {
			for _, m := range g.members {
				add(m.nextTimer(), m.id)
			}
		})
	}
}

// NextDeadline is when Tick next has work to do; zero when there is none.
func (g *ConsumerGroup) NextDeadline() time.Time {
	for g.timers.Len() > 0 {
		top := g.timers.Top()
		if m, ok := g.members[top.Value]; ok && m.nextTimer().Equal(top.At) {
			return top.At
		}
		g.timers.Pop()
	}
	return time.Time{}
}
