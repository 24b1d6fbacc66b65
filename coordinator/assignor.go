package coordinator

import (
	"bytes"
	"sort"
)

// AssignmentSpec is the input of a server-side assignor: the group's members
// and the partition count of every topic any member subscribes to.
type AssignmentSpec struct {
	Members []AssignMember
	Topics  map[[16]byte]int32 // subscribed topic id -> partition count
}

// AssignMember is one member as an assignor sees it.
type AssignMember struct {
	ID         string
	InstanceID string
	Rack       string
	Topics     [][16]byte           // subscribed topic ids
	Current    map[[16]byte][]int32 // the member's current target, for stickiness
}

// Assignor computes a target assignment. Implementations are pure and
// deterministic: the same spec always yields the same result.
type Assignor interface {
	Name() string
	// Assign returns, for every member of the spec, the partitions it should
	// own (possibly an empty map). Every partition of every subscribed topic
	// that has at least one subscriber is given to exactly one subscriber.
	Assign(spec AssignmentSpec) map[string]map[[16]byte][]int32
}

// UniformAssignor balances each topic's partitions over the members
// subscribed to it (counts differ by at most one per topic), hands the
// "extra" partitions of uneven topics to the least loaded members so totals
// stay even, and keeps every partition with its current owner whenever the
// balance allows. Works for homogeneous and heterogeneous subscriptions.
func UniformAssignor() Assignor { return assignUniform{} }

// RangeAssignor gives every subscriber of a topic one contiguous range of its
// partitions, in member order: static members first (by instance id), then
// dynamic members (by member id). The first P%N members get one extra
// partition. Topics with the same partition count and the same subscribers
// are therefore co-partitioned. The result depends only on membership and
// partition counts, so it is stable (sticky) for as long as those are.
func RangeAssignor() Assignor { return assignRange{} }

// assignByName returns the built-in assignor with the given name.
func assignByName(name string) Assignor {
	switch name {
	case "uniform":
		return UniformAssignor()
	case "range":
		return RangeAssignor()
	}
	return nil
}

// assignPrep is the common preprocessing of a spec: members in a stable
// order, the subscribed topics in a stable order and, per topic, the indices
// (into members) of its subscribers in member order.
type assignPrep struct {
	members []AssignMember
	topics  [][16]byte
	subs    map[[16]byte][]int
}

func assignPrepare(spec AssignmentSpec, less func(a, b *AssignMember) bool) assignPrep {
	p := assignPrep{subs: make(map[[16]byte][]int)}
	seen := make(map[string]bool, len(spec.Members))
	for _, m := range spec.Members {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		p.members = append(p.members, m)
	}
	sort.SliceStable(p.members, func(i, j int) bool { return less(&p.members[i], &p.members[j]) })
	for i := range p.members {
		dup := make(map[[16]byte]bool, len(p.members[i].Topics))
		for _, t := range p.members[i].Topics {
			if dup[t] {
				continue
			}
			dup[t] = true
			if n, ok := spec.Topics[t]; !ok || n <= 0 {
				continue
			}
			p.subs[t] = append(p.subs[t], i)
		}
	}
	for t := range p.subs {
		p.topics = append(p.topics, t)
	}
	sort.Slice(p.topics, func(i, j int) bool { return bytes.Compare(p.topics[i][:], p.topics[j][:]) < 0 })
	return p
}

func assignResult(members []AssignMember) map[string]map[[16]byte][]int32 {
	out := make(map[string]map[[16]byte][]int32, len(members))
	for _, m := range members {
		out[m.ID] = make(map[[16]byte][]int32)
	}
	return out
}

func assignByID(a, b *AssignMember) bool { return a.ID < b.ID }

// ---- uniform ----

type assignUniform struct{}

func (assignUniform) Name() string { return "uniform" }

func (assignUniform) Assign(spec AssignmentSpec) map[string]map[[16]byte][]int32 {
	p := assignPrepare(spec, assignByID)
	out := assignResult(p.members)
	loads := make([]int, len(p.members))

	// Most constrained topics first (fewest subscribers), then the larger
	// ones, so the choice of who takes an uneven topic's extra partitions can
	// even out the totals.
	topics := append([][16]byte(nil), p.topics...)
	sort.SliceStable(topics, func(i, j int) bool {
		a, b := topics[i], topics[j]
		if la, lb := len(p.subs[a]), len(p.subs[b]); la != lb {
			return la < lb
		}
		return spec.Topics[a] > spec.Topics[b]
	})

	for _, t := range topics {
		subs := p.subs[t]
		n := spec.Topics[t]
		floor := int(n) / len(subs)
		extra := int(n) % len(subs)

		// What each subscriber currently holds of this topic; a partition
		// claimed by two members stays with the first in member order.
		owner := make([]int, n)
		for i := range owner {
			owner[i] = -1
		}
		kept := make(map[int][]int32, len(subs))
		for _, mi := range subs {
			for _, part := range assignSortedCopy(p.members[mi].Current[t]) {
				if part < 0 || part >= n || owner[part] != -1 {
					continue
				}
				owner[part] = mi
				kept[mi] = append(kept[mi], part)
			}
		}

		// Who receives floor+1: first those that already hold more than
		// floor (so they keep them), then the least loaded members.
		order := append([]int(nil), subs...)
		sort.SliceStable(order, func(i, j int) bool {
			a, b := order[i], order[j]
			wa, wb := len(kept[a]) > floor, len(kept[b]) > floor
			if wa != wb {
				return wa
			}
			if loads[a] != loads[b] {
				return loads[a] < loads[b]
			}
			return p.members[a].ID < p.members[b].ID
		})
		quota := make(map[int]int, len(subs))
		for i, mi := range order {
			quota[mi] = floor
			if i < extra {
				quota[mi]++
			}
		}

		// Keep up to quota (lowest partition numbers), release the rest.
		got := make(map[int][]int32, len(subs))
		for _, mi := range subs {
			k := kept[mi]
			if len(k) > quota[mi] {
				for _, part := range k[quota[mi]:] {
					owner[part] = -1
				}
				k = k[:quota[mi]]
			}
			got[mi] = k
		}
		next := int32(0)
		for _, mi := range subs {
			for len(got[mi]) < quota[mi] {
				for owner[next] != -1 {
					next++
				}
				owner[next] = mi
				got[mi] = append(got[mi], next)
			}
		}
		for _, mi := range subs {
			if len(got[mi]) == 0 {
				continue
			}
			ps := assignSortedCopy(got[mi])
			out[p.members[mi].ID][t] = ps
			loads[mi] += len(ps)
		}
	}
	return out
}

// ---- range ----

type assignRange struct{}

func (assignRange) Name() string { return "range" }

// assignRangeOrder puts static members first, ordered by instance id, then
// dynamic members by member id.
func assignRangeOrder(a, b *AssignMember) bool {
	sa, sb := a.InstanceID != "", b.InstanceID != ""
	if sa != sb {
		return sa
	}
	if sa && a.InstanceID != b.InstanceID {
		return a.InstanceID < b.InstanceID
	}
	return a.ID < b.ID
}

func (assignRange) Assign(spec AssignmentSpec) map[string]map[[16]byte][]int32 {
	p := assignPrepare(spec, assignRangeOrder)
	out := assignResult(p.members)
	for _, t := range p.topics {
		subs := p.subs[t]
		n := int(spec.Topics[t])
		floor, extra := n/len(subs), n%len(subs)
		start := 0
		for i, mi := range subs {
			size := floor
			if i < extra {
				size++
			}
			if size == 0 {
				continue
			}
			ps := make([]int32, size)
			for j := range ps {
				ps[j] = int32(start + j)
			}
			start += size
			out[p.members[mi].ID][t] = ps
		}
	}
	return out
}

func assignSortedCopy(ps []int32) []int32 {
	out := append([]int32(nil), ps...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
