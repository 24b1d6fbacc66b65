package coordinator

import (
	"container/heap"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The KIP-848 rebalance benchmark.
//
// A group of M members subscribed to 10 topics of 2M partitions in all (two
// partitions a member, so both a join and a leave move partitions) is driven
// through a Shard the way the broker's runtime drives it: every heartbeat is
// ConsumerHeartbeat, then Drain (the records the runtime appends), then
// NextDeadline (the runtime's timer loop re-arms after every request), and
// Tick when a deadline has passed. The clients are in-process simulations of
// the Java consumer's heartbeat loop on a simulated clock: a heartbeat every
// group.consumer.heartbeat.interval.ms (5 s, Kafka's default), spread evenly
// over the interval, and one sent at once after reconciling a new
// assignment (revoking, or acknowledging an epoch), carrying the owned
// partitions.
//
// A rebalance has converged when every member has been answered stable at
// the group's new assignment epoch. Two figures per rebalance: the simulated
// time until then (heartbeat rounds times the interval: what a user waits,
// set by the protocol and the interval, not by the coordinator) and the
// compute time, the wall time spent inside the Shard for every heartbeat of
// the rebalance (what the coordinator adds, and what must stay well under a
// second at 10,000 members).

const benchTopics = 10

// benchGroup is a converged group of members and its simulated clients.
type benchGroup struct {
	shard   *Shard
	g       *ConsumerGroup
	topics  *fakeTopics
	names   []string
	clients map[string]*benchClient
	queue   benchQueue
	now     time.Time
	rng     *rand.Rand
	seq     int
	records []Record // what the last heartbeat wrote
}

// benchClient is one simulated consumer: what it owns and when it next
// heartbeats.
type benchClient struct {
	id    string
	epoch int32
	owned []kmsg.ConsumerGroupHeartbeatRequestTopic // nil: unchanged since the last heartbeat
	next  time.Time
	index int // in the heap
}

type benchQueue []*benchClient

func (q benchQueue) Len() int           { return len(q) }
func (q benchQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q benchQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *benchQueue) Push(x any) { c := x.(*benchClient); c.index = len(*q); *q = append(*q, c) }
func (q *benchQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	c.index = -1
	return c
}

// newBenchGroup builds a converged group of members directly (joining
// 10,000 members one by one would spend the benchmark's time on setup), with
// every member stable at the assignment epoch and owning its target.
func newBenchGroup(members int) *benchGroup {
	bg := &benchGroup{
		shard:   NewShard(DefaultConfig()),
		topics:  newFakeTopics(),
		clients: map[string]*benchClient{},
		now:     time.Unix(1_700_000_000, 0),
		rng:     rand.New(rand.NewSource(1)),
	}
	parts := 2 * members / benchTopics
	for i := range benchTopics {
		name := fmt.Sprintf("topic-%d", i)
		bg.topics.set(name, int32(parts))
		bg.names = append(bg.names, name)
	}
	bg.g = NewConsumerGroup("bench", bg.shard.cfg.Consumer)
	bg.shard.groups["bench"] = &group{consumer: bg.g}
	uniform := "uniform"
	for range members {
		id := bg.newID()
		bg.g.members[id] = &consumerMember{
			id: id, state: consumerStable, names: bg.names, assignor: &uniform,
			rebalanceTimeout: 300_000, sessionDeadline: bg.now.Add(bg.g.cfg.SessionTimeout),
		}
	}
	bg.g.consumerBump()
	bg.g.consumerUpdateMetaHash(bg.topics)
	bg.g.consumerComputeTarget(bg.topics)
	interval := bg.g.cfg.HeartbeatInterval
	for id, m := range bg.g.members {
		m.epoch = bg.g.assignmentEpoch
		bg.g.consumerSetHoldings(m, bg.g.target[id], nil)
		bg.g.armTimer(m)
		c := &benchClient{id: id, epoch: m.epoch, next: bg.now.Add(time.Duration(bg.rng.Int63n(int64(interval))))}
		bg.clients[id] = c
		heap.Push(&bg.queue, c)
	}
	bg.shard.Drain()
	return bg
}

func (bg *benchGroup) newID() string {
	bg.seq++
	return fmt.Sprintf("member-%06d", bg.seq)
}

// benchOwned is the wire form of an assignment, as the client reports it.
func benchOwned(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, t := range a.Topics {
		out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t.TopicID, Partitions: slices.Clone(t.Partitions)})
	}
	return out
}

// heartbeat sends req as the runtime would handle it and returns the
// response and the wall time spent in the Shard. The records it produced
// are kept in bg.records until the next heartbeat.
func (bg *benchGroup) heartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, time.Duration) {
	start := time.Now()
	resp := bg.shard.ConsumerHeartbeat(bg.now, "bench", "/127.0.0.1", req, bg.topics)
	bg.records = bg.shard.Drain()
	if d := bg.shard.NextDeadline(); !d.IsZero() && !d.After(bg.now) {
		bg.shard.Tick(bg.now, bg.topics)
		bg.records = append(bg.records, bg.shard.Drain()...)
	}
	return resp, time.Since(start)
}

// step runs the next client heartbeat on the clock and reports whether the
// client is now stable at epoch.
func (bg *benchGroup) step(b testing.TB, epoch int32) (stable bool, spent time.Duration) {
	c := heap.Pop(&bg.queue).(*benchClient)
	bg.now = c.next
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group = "bench"
	req.MemberID = c.id
	req.MemberEpoch = c.epoch
	req.RebalanceTimeoutMillis = -1
	req.Topics = c.owned
	resp, spent := bg.heartbeat(req)
	if resp.ErrorCode != 0 {
		b.Fatalf("heartbeat of %s: error %d", c.id, resp.ErrorCode)
	}
	c.owned = nil
	c.next = bg.now.Add(time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond)
	if resp.Assignment != nil || resp.MemberEpoch != c.epoch {
		// Reconcile (revoke or take partitions) and acknowledge at once.
		if resp.Assignment != nil {
			c.owned = benchOwned(resp.Assignment)
		}
		c.epoch = resp.MemberEpoch
		c.next = bg.now
	}
	heap.Push(&bg.queue, c)
	m := bg.g.members[c.id]
	return resp.MemberEpoch == epoch && m.state == consumerStable && c.owned == nil, spent
}

// converge runs heartbeats until every member is stable at the group's
// assignment epoch, starting the clock at start, and returns the simulated
// time, the compute time and the number of heartbeats.
func (bg *benchGroup) converge(b testing.TB, start time.Time, spent time.Duration) (sim, compute time.Duration, beats int) {
	epoch := bg.g.assignmentEpoch
	done := map[string]bool{}
	compute = spent
	for len(done) < len(bg.g.members) {
		c := bg.queue[0]
		stable, d := bg.step(b, epoch)
		compute += d
		beats++
		if stable {
			done[c.id] = true
		} else {
			delete(done, c.id)
		}
		if bg.g.assignmentEpoch != epoch {
			b.Fatalf("assignment epoch moved from %d to %d during the rebalance", epoch, bg.g.assignmentEpoch)
		}
	}
	return bg.now.Sub(start), compute, beats
}

// join adds one member, as a Java client's first heartbeat does, and
// converges.
func (bg *benchGroup) join(b testing.TB) (sim, compute time.Duration, beats int) {
	start := bg.now
	spent := bg.startJoin(b)
	sim, compute, beats = bg.converge(b, start, spent)
	return sim, compute, beats + 1
}

// startJoin sends a new member's first heartbeat and returns the time
// spent in the Shard.
func (bg *benchGroup) startJoin(b testing.TB) time.Duration {
	id := bg.newID()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group = "bench"
	req.MemberID = id
	req.MemberEpoch = 0
	req.RebalanceTimeoutMillis = 300_000
	req.SubscribedTopicNames = bg.names
	uniform := "uniform"
	req.ServerAssignor = &uniform
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp, spent := bg.heartbeat(req)
	if resp.ErrorCode != 0 {
		b.Fatalf("join: error %d", resp.ErrorCode)
	}
	c := &benchClient{id: id, epoch: resp.MemberEpoch, next: bg.now.Add(time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond)}
	if resp.Assignment != nil && len(resp.Assignment.Topics) > 0 {
		c.owned, c.next = benchOwned(resp.Assignment), bg.now
	}
	bg.clients[id] = c
	heap.Push(&bg.queue, c)
	return spent
}

// leave removes the member that heartbeats next, as a closing Java client
// does (member epoch -1), and converges.
func (bg *benchGroup) leave(b testing.TB) (sim, compute time.Duration, beats int) {
	c := heap.Pop(&bg.queue).(*benchClient)
	delete(bg.clients, c.id)
	bg.now = c.next
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group = "bench"
	req.MemberID = c.id
	req.MemberEpoch = consumerLeaveEpoch
	req.RebalanceTimeoutMillis = -1
	start := bg.now
	resp, spent := bg.heartbeat(req)
	if resp.ErrorCode != 0 {
		b.Fatalf("leave: error %d", resp.ErrorCode)
	}
	sim, compute, beats = bg.converge(b, start, spent)
	return sim, compute, beats + 1
}

// BenchmarkConsumerGroupRebalance measures one member joining and one
// leaving a converged group: simulated time to converge (sim-ms), compute
// time in the coordinator (compute-ms) and heartbeats handled.
func BenchmarkConsumerGroupRebalance(b *testing.B) {
	for _, members := range []int{1000, 10000} {
		for _, kind := range []string{"join", "leave"} {
			b.Run(fmt.Sprintf("members=%d/%s", members, kind), func(b *testing.B) {
				bg := newBenchGroup(members)
				var sim, compute time.Duration
				var beats int
				b.ResetTimer()
				for range b.N {
					var s, c time.Duration
					var n int
					if kind == "join" {
						s, c, n = bg.join(b)
					} else {
						s, c, n = bg.leave(b)
					}
					sim, compute, beats = sim+s, compute+c, beats+n
					// Keep the group size steady: undo the change,
					// off the clock.
					b.StopTimer()
					if kind == "join" {
						bg.leave(b)
					} else {
						bg.join(b)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(sim.Milliseconds())/float64(b.N), "sim-ms/op")
				b.ReportMetric(float64(compute.Microseconds())/1000/float64(b.N), "compute-ms/op")
				b.ReportMetric(float64(beats)/float64(b.N), "heartbeats/op")
				b.ReportMetric(float64(compute.Nanoseconds())/float64(beats), "ns/heartbeat")
			})
		}
	}
}

// BenchmarkConsumerGroupSteadyHeartbeat measures a keepalive heartbeat of a
// converged group, as the runtime handles it, per heartbeat.
func BenchmarkConsumerGroupSteadyHeartbeat(b *testing.B) {
	for _, members := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			bg := newBenchGroup(members)
			epoch := bg.g.assignmentEpoch
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if stable, _ := bg.step(b, epoch); !stable {
					b.Fatal("a keepalive in a converged group did not stay stable")
				}
			}
		})
	}
}

// TestConsumerRebalanceWritesPerMember: once a join has set the new target
// assignment, each heartbeat of the rebalance writes the heartbeating
// member's record and nothing whose size grows with the group, so a
// rebalance of n members costs O(n) bytes and time, not O(n^2).
func TestConsumerRebalanceWritesPerMember(t *testing.T) {
	bg := newBenchGroup(200)
	bg.startJoin(t)
	epoch := bg.g.assignmentEpoch
	wrote := 0
	for range 400 {
		c := bg.queue[0]
		bg.step(t, epoch)
		own := string(memberKey("bench", c.id))
		for _, r := range bg.records {
			if string(r.Key) != own {
				t.Fatalf("heartbeat of %s wrote record %q (%d bytes), not only its own", c.id, r.Key, len(r.Value))
			}
			wrote++
		}
	}
	if wrote == 0 {
		t.Fatal("no member record written during the rebalance")
	}
}

// TestConsumerNextDeadlineTracksMembers checks the timer heap against a scan
// of every member through joins, revocations and leaves: NextDeadline is
// the earliest session deadline, or rebalance deadline of a revoking
// member.
func TestConsumerNextDeadlineTracksMembers(t *testing.T) {
	bg := newBenchGroup(100)
	scan := func() time.Time {
		var next time.Time
		for _, m := range bg.g.members {
			if d := m.nextTimer(); next.IsZero() || d.Before(next) {
				next = d
			}
		}
		return next
	}
	check := func(what string) {
		t.Helper()
		if got, want := bg.g.NextDeadline(), scan(); !got.Equal(want) {
			t.Fatalf("%s: NextDeadline %v, members say %v", what, got, want)
		}
	}
	check("fixture")
	for round := range 3 {
		bg.startJoin(t)
		check("join")
		for range 150 {
			bg.step(t, bg.g.assignmentEpoch)
			check(fmt.Sprintf("round %d", round))
		}
		bg.leave(t)
		check("leave")
	}
	// A member that stops heartbeating is expired at its deadline.
	for bg.g.NextDeadline().After(bg.now) {
		bg.now = bg.g.NextDeadline()
	}
	before := len(bg.g.members)
	bg.shard.Tick(bg.now, bg.topics)
	if len(bg.g.members) != before-1 {
		t.Fatalf("%d members after the first deadline, want %d", len(bg.g.members), before-1)
	}
	check("expiry")
}
