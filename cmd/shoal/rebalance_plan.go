package main

import (
	"cmp"
	"fmt"
	"slices"
)

// The plan of shoal cluster rebalance: even out the replicas per broker and
// the preferred leaders per broker while moving as little data as possible.
//
// It starts from where the replicas are and only moves the ones that must
// move (topic reassign --generate plans with it too, over the brokers the
// operator names): a replica on a broker that is not a placement target, a
// replica that shares a rack with too many of its partition's others, and
// then, one at a time, a replica from the most loaded broker to the least
// loaded one until they differ by at most one.

// rebalanceBroker is a broker the rebalance may place replicas on.
type rebalanceBroker struct {
	ID int32
	// Rack is the broker's broker.rack, "" when it has none.
	Rack string
}

// placement is the state of one planning run: the target brokers, their
// racks and how many replicas each holds in the assignment being built.
type placement struct {
	ids    []int32 // ascending
	rackOf map[int32]string
	// racks is the number of distinct racks; rack-aware only when every
	// broker has a rack (as Kafka's assignment is).
	racks     int
	rackAware bool
	load      map[int32]int
}

func newPlacement(brokers []rebalanceBroker) (*placement, error) {
	pl := &placement{rackOf: map[int32]string{}, load: map[int32]int{}, rackAware: true}
	rackSeen := map[string]bool{}
	for _, b := range brokers {
		if _, dup := pl.rackOf[b.ID]; dup {
			continue
		}
		pl.ids = append(pl.ids, b.ID)
		pl.rackOf[b.ID] = b.Rack
		pl.load[b.ID] = 0
		if b.Rack == "" {
			pl.rackAware = false
		}
		rackSeen[b.Rack] = true
	}
	if len(pl.ids) == 0 {
		return nil, fmt.Errorf("no brokers to place replicas on")
	}
	slices.Sort(pl.ids)
	pl.racks = len(rackSeen)
	return pl, nil
}

// rackLimit is how many replicas of a partition of replication factor rf
// one rack may hold: one where there are at least rf racks, otherwise the
// fewest that still fits them all.
func (pl *placement) rackLimit(rf int) int {
	return (rf + pl.racks - 1) / pl.racks
}

// fits reports whether replicas[i] may be replaced by broker b: b is a
// target, holds no other replica of the partition and, rack-aware, its
// rack stays within the limit.
func (pl *placement) fits(replicas []int32, i int, b int32) bool {
	rack, ok := pl.rackOf[b]
	if !ok {
		return false
	}
	sameRack := 0
	for j, r := range replicas {
		if j == i {
			continue
		}
		if r == b {
			return false
		}
		if r2, ok := pl.rackOf[r]; ok && r2 == rack {
			sameRack++
		}
	}
	return !pl.rackAware || sameRack < pl.rackLimit(len(replicas))
}

// byLoad is the target brokers, least loaded first (ties by id).
func (pl *placement) byLoad() []int32 {
	ids := slices.Clone(pl.ids)
	slices.SortStableFunc(ids, func(a, b int32) int { return cmp.Compare(pl.load[a], pl.load[b]) })
	return ids
}

// move replaces replicas[i] by b.
func (pl *placement) move(replicas []int32, i int, b int32) {
	if _, ok := pl.load[replicas[i]]; ok {
		pl.load[replicas[i]]--
	}
	pl.load[b]++
	replicas[i] = b
}

// placeAway moves replicas[i] to the least loaded broker it fits on.
func (pl *placement) placeAway(p planPartitions, i int) error {
	for _, b := range pl.byLoad() {
		if pl.fits(p.Replicas, i, b) {
			pl.move(p.Replicas, i, b)
			return nil
		}
	}
	return fmt.Errorf("no broker can take the replica on broker %d of partition %s-%d (replicas %v)", p.Replicas[i], p.Topic, p.Partition, p.Replicas)
}

// overfullRackReplica returns the index of a replica whose rack holds more
// of the partition's replicas than the limit (the one on the most loaded
// broker, a follower before the leader), or -1.
func (pl *placement) overfullRackReplica(replicas []int32) int {
	if !pl.rackAware {
		return -1
	}
	perRack := map[string]int{}
	for _, r := range replicas {
		if rack, ok := pl.rackOf[r]; ok {
			perRack[rack]++
		}
	}
	limit := pl.rackLimit(len(replicas))
	pick := -1
	for i := len(replicas) - 1; i >= 0; i-- {
		rack, ok := pl.rackOf[replicas[i]]
		if ok && perRack[rack] > limit && (pick < 0 || pl.load[replicas[i]] > pl.load[replicas[pick]]) {
			pick = i
		}
	}
	return pick
}

// rebalancePlan plans moving replicas of parts (the current assignment)
// so that every broker of brokers holds the same number of replicas within
// one, no partition has two replicas on one broker or, when every broker
// has a rack, more replicas in one rack than the racks force, and
// preferred leaders (each partition's first replica) are spread as evenly
// as the replicas allow. Replicas on brokers outside brokers are moved
// onto them. It moves as few replicas as it can: only ones that break a
// rule, then one replica at a time from a most loaded to a least loaded
// broker; a moved replica keeps its position in the list. The plan lists
// only partitions whose replica list changes (in members or order), in
// the order of parts; it is empty when the cluster is balanced. It is
// deterministic.
func rebalancePlan(brokers []rebalanceBroker, parts []planPartitions) (reassignPlan, error) {
	pl, err := newPlacement(brokers)
	if err != nil {
		return reassignPlan{}, err
	}
	next := make([]planPartitions, len(parts))
	for i, p := range parts {
		if len(p.Replicas) > len(pl.ids) {
			return reassignPlan{}, fmt.Errorf("partition %s-%d has %d replicas but only %d brokers can hold them", p.Topic, p.Partition, len(p.Replicas), len(pl.ids))
		}
		next[i] = planPartitions{Topic: p.Topic, Partition: p.Partition, Replicas: slices.Clone(p.Replicas)}
		for _, r := range p.Replicas {
			if _, ok := pl.load[r]; ok {
				pl.load[r]++
			}
		}
	}
	// Replicas that break a rule move first, to wherever is emptiest.
	for _, p := range next {
		for i, r := range p.Replicas {
			if _, ok := pl.rackOf[r]; !ok {
				if err := pl.placeAway(p, i); err != nil {
					return reassignPlan{}, err
				}
			}
		}
		for i := pl.overfullRackReplica(p.Replicas); i >= 0; i = pl.overfullRackReplica(p.Replicas) {
			if err := pl.placeAway(p, i); err != nil {
				return reassignPlan{}, err
			}
		}
	}
	// Then one replica at a time from a most loaded broker to a least
	// loaded one two or more below it. Each move lowers the sum of the
	// squared loads, so this ends.
	for pl.balanceStep(next) {
	}
	spreadLeaders(next)

	plan := reassignPlan{Version: 1, Partitions: []planPartitions{}}
	for i, p := range next {
		if !slices.Equal(p.Replicas, parts[i].Replicas) {
			plan.Partitions = append(plan.Partitions, p)
		}
	}
	return plan, nil
}

// balanceStep moves one replica from a most loaded broker to a less
// loaded one holding at least two fewer, a follower rather than a leader
// where it can; it reports whether it moved one.
func (pl *placement) balanceStep(parts []planPartitions) bool {
	asc := pl.byLoad()
	for s := len(asc) - 1; s >= 0; s-- {
		src := asc[s]
		for _, dst := range asc {
			if pl.load[src]-pl.load[dst] < 2 {
				break
			}
			for _, followersOnly := range []bool{true, false} {
				for _, p := range parts {
					i := slices.Index(p.Replicas, src)
					if i < 0 || followersOnly && i == 0 || !pl.fits(p.Replicas, i, dst) {
						continue
					}
					pl.move(p.Replicas, i, dst)
					return true
				}
			}
		}
	}
	return false
}

// spreadLeaders reorders replica lists so that preferred leaders spread
// over the brokers. Handing a lead from broker a to b means putting b
// first in a partition a leads and b holds; a chain of such hand-overs
// (a to b in one partition, b to c in another) moves one lead from a to c
// while b's count stays. While some broker leads at least two more
// partitions than another that a chain reaches, the shortest such chain
// is applied. Each chain lowers the sum of the squared leader counts, so
// this ends. It only reorders replicas; where the replicas themselves pin
// leadership (a broker holding only RF=1 partitions) the counts stay
// uneven.
func spreadLeaders(parts []planPartitions) {
	leads := map[int32]int{}
	var brokers []int32
	for _, p := range parts {
		for i, r := range p.Replicas {
			if i == 0 {
				leads[r]++
			}
			if !slices.Contains(brokers, r) {
				brokers = append(brokers, r)
			}
		}
	}
	slices.Sort(brokers)
	for {
		slices.SortStableFunc(brokers, func(a, b int32) int { return cmp.Compare(leads[b], leads[a]) })
		led := map[int32][]int{} // broker -> indexes of the partitions it leads
		for pi, p := range parts {
			if len(p.Replicas) > 0 {
				led[p.Replicas[0]] = append(led[p.Replicas[0]], pi)
			}
		}
		applied := false
		for _, src := range brokers {
			if leadChain(parts, led, leads, src) {
				applied = true
				break
			}
		}
		if !applied {
			return
		}
	}
}

// leadChain finds, breadth first, the shortest chain of lead hand-overs
// from src to a broker leading at least two fewer partitions, applies it
// and reports whether there was one; led indexes parts by leader as they
// were before. A partition is only ever reached
// from its one leader, and every broker is visited once, so the chain
// uses each partition at most once.
func leadChain(parts []planPartitions, led map[int32][]int, leads map[int32]int, src int32) bool {
	type step struct{ part, idx int } // replica idx of parts[part] took the lead
	via := map[int32]step{}
	queue := []int32{src}
	visited := map[int32]bool{src: true}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if leads[a] <= leads[src]-2 {
			for b := a; b != src; {
				s := via[b]
				r := parts[s.part].Replicas
				prev := r[0]
				r[0], r[s.idx] = r[s.idx], r[0]
				b = prev
			}
			leads[src]--
			leads[a]++
			return true
		}
		for _, pi := range led[a] {
			p := parts[pi]
			for i := 1; i < len(p.Replicas); i++ {
				if b := p.Replicas[i]; !visited[b] {
					visited[b] = true
					via[b] = step{pi, i}
					queue = append(queue, b)
				}
			}
		}
	}
	return false
}

// brokerLoad is one broker's replica and preferred-leader counts.
type brokerLoad struct {
	Replicas int `json:"replicas"`
	Leaders  int `json:"leaders"`
}

// loadsOf counts the replicas and preferred leaders of parts per broker.
func loadsOf(parts []planPartitions) map[int32]brokerLoad {
	out := map[int32]brokerLoad{}
	for _, p := range parts {
		for i, r := range p.Replicas {
			l := out[r]
			l.Replicas++
			if i == 0 {
				l.Leaders++
			}
			out[r] = l
		}
	}
	return out
}
