package coordinator

import (
	"bytes"
	"slices"
	"sort"
)

// The share groups' "simple" assignor. Share-partitions are not exclusive, so
// unlike the consumer assignors it may hand one partition to several members.
//
// Members are grouped by what they can take: topics whose subscriber sets are
// identical form one class, and each class is assigned as a whole over the
// class's members. Within a class of M members and P partitions:
//
//   - M <= P: every partition goes to exactly one member, every member gets
//     P/M or P/M+1 partitions;
//   - M > P: every member gets exactly one partition, every partition gets
//     M/P or M/P+1 members.
//
// Either way every partition of the class has a member, every member has a
// partition, and counts differ by at most one. Stickiness comes second: a
// member keeps what it held in the previous target as long as the counts
// allow, and the "+1" slots go to those holding most already. With
// heterogeneous subscriptions, classes are assigned one after another
// (smallest subscriber set first) and the "+1" slots prefer members with the
// least load so far. The result depends only on the inputs.

// sgAssignment maps a topic id to a sorted, duplicate-free partition list.
// Topics with no partitions are absent.
type sgAssignment map[[16]byte][]int32

// sgAssignMember is one member as the assignor sees it.
type sgAssignMember struct {
	id      string
	topics  [][16]byte   // subscribed topics (others in the input are ignored)
	current sgAssignment // the previous target, for stickiness
}

type sgTP struct {
	topic [16]byte
	part  int32
}

// sgSimpleAssign computes the target assignment. parts holds the partition
// count of every topic that exists; subscriptions to topics missing from it
// or with no partitions are ignored. Every member gets an entry.
func sgSimpleAssign(members []sgAssignMember, parts map[[16]byte]int32) map[string]sgAssignment {
	ms := append([]sgAssignMember(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })

	// Subscribers of every topic, as indexes into ms (ascending).
	subs := make(map[[16]byte][]int)
	for i, m := range ms {
		seen := make(map[[16]byte]bool, len(m.topics))
		for _, t := range m.topics {
			if n, ok := parts[t]; !ok || n <= 0 || seen[t] {
				continue
			}
			seen[t] = true
			subs[t] = append(subs[t], i)
		}
	}

	// Topics grouped by identical subscriber sets.
	type class struct {
		members []int
		topics  [][16]byte
	}
	byKey := make(map[string]*class)
	for t, idx := range subs {
		key := sgIndexKey(idx)
		c := byKey[key]
		if c == nil {
			c = &class{members: idx}
			byKey[key] = c
		}
		c.topics = append(c.topics, t)
	}
	classes := make([]*class, 0, len(byKey))
	for _, c := range byKey {
		sort.Slice(c.topics, func(i, j int) bool { return bytes.Compare(c.topics[i][:], c.topics[j][:]) < 0 })
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		a, b := classes[i], classes[j]
		if len(a.members) != len(b.members) {
			return len(a.members) < len(b.members)
		}
		return bytes.Compare(a.topics[0][:], b.topics[0][:]) < 0
	})

	out := make([]map[[16]byte][]int32, len(ms))
	load := make([]int, len(ms))
	for _, c := range classes {
		var ps []sgTP
		for _, t := range c.topics {
			for p := int32(0); p < parts[t]; p++ {
				ps = append(ps, sgTP{t, p})
			}
		}
		sgAssignClass(ms, c.members, ps, load, out)
	}

	res := make(map[string]sgAssignment, len(ms))
	for i, m := range ms {
		a := make(sgAssignment, len(out[i]))
		for t, ps := range out[i] {
			a[t] = sortedUniquePartitions(ps)
		}
		res[m.id] = a
	}
	return res
}

// evenShares splits total among n takers (total >= n > 0) as evenly as it
// goes: each gets total/n, and the total%n left over go one each to the
// takers first in the order first ranks them (stably, by index); first
// may be nil where n divides total.
func evenShares(total, n int, first func(a, b int) bool) []int {
	shares := make([]int, n)
	order := make([]int, n)
	for k := range order {
		order[k] = k
		shares[k] = total / n
	}
	if extra := total % n; extra > 0 {
		sort.SliceStable(order, func(a, b int) bool { return first(order[a], order[b]) })
		for _, k := range order[:extra] {
			shares[k]++
		}
	}
	return shares
}

func sgIndexKey(idx []int) string {
	b := make([]byte, 0, 4*len(idx))
	for _, i := range idx {
		b = append(b, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
	}
	return string(b)
}

// sgAssignClass assigns the partitions ps (in a fixed order) over the class
// members mi (indexes into ms, ascending by id), adding to out and load.
func sgAssignClass(ms []sgAssignMember, mi []int, ps []sgTP, load []int, out []map[[16]byte][]int32) {
	M, P := len(mi), len(ps)
	if M == 0 || P == 0 {
		return
	}
	pos := make(map[sgTP]int, P)
	for j, tp := range ps {
		pos[tp] = j
	}
	// held[k]: partitions (positions, ascending) member mi[k] held before.
	held := make([][]int, M)
	holders := make([]int, P)
	for k, i := range mi {
		for t, parts := range ms[i].current {
			for _, p := range parts {
				if j, ok := pos[sgTP{t, p}]; ok {
					held[k] = append(held[k], j)
				}
			}
		}
		sort.Ints(held[k])
		held[k] = slices.Compact(held[k])
		for _, j := range held[k] {
			holders[j]++
		}
	}

	var quota, capacity []int
	if M <= P {
		capacity = evenShares(P, P, nil)
		quota = evenShares(P, M, func(ka, kb int) bool {
			if la, lb := load[mi[ka]], load[mi[kb]]; la != lb {
				return la < lb
			}
			return len(held[ka]) > len(held[kb])
		})
	} else {
		quota = evenShares(M, M, nil)
		capacity = evenShares(M, P, func(ja, jb int) bool { return holders[ja] > holders[jb] })
	}

	got := make([]map[int]bool, M)
	give := func(k, j int) {
		if got[k] == nil {
			got[k] = make(map[int]bool)
		}
		got[k][j] = true
		quota[k]--
		capacity[j]--
		i := mi[k]
		if out[i] == nil {
			out[i] = make(map[[16]byte][]int32)
		}
		out[i][ps[j].topic] = append(out[i][ps[j].topic], ps[j].part)
		load[i]++
	}

	// Keep what members held, within the counts.
	for k := range mi {
		for _, j := range held[k] {
			if quota[k] == 0 {
				break
			}
			if capacity[j] > 0 {
				give(k, j)
			}
		}
	}

	// Hand out the rest round robin: one partition per member per round,
	// each from the next position with room.
	next := 0
	for {
		progress := false
		for k := range mi {
			if quota[k] == 0 {
				continue
			}
			for n := 0; n < P; n++ {
				j := (next + n) % P
				if capacity[j] > 0 && !got[k][j] {
					give(k, j)
					next = (j + 1) % P
					progress = true
					break
				}
			}
		}
		if !progress {
			return
		}
	}
}
