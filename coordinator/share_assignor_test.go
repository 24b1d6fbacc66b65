package coordinator

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

func shareTopicID(i int) [16]byte {
	var id [16]byte
	id[0] = byte(i + 1)
	id[1] = 't'
	return id
}

// shareAssignCase is a random assignor input: topics with partition counts
// (some subscribed topics may be missing) and members with subscriptions.
func shareAssignCase(rng *rand.Rand, homogeneous bool) ([]sgAssignMember, map[[16]byte]int32) {
	nt := 1 + rng.Intn(5)
	parts := make(map[[16]byte]int32)
	var all [][16]byte
	for i := 0; i < nt; i++ {
		all = append(all, shareTopicID(i))
		if rng.Intn(8) != 0 {
			parts[shareTopicID(i)] = int32(rng.Intn(10))
		}
	}
	pick := func() [][16]byte {
		var out [][16]byte
		for _, t := range all {
			if rng.Intn(2) == 0 {
				out = append(out, t)
			}
		}
		if len(out) == 0 {
			out = append(out, all[rng.Intn(len(all))])
		}
		return out
	}
	nm := 1 + rng.Intn(20)
	shared := pick()
	members := make([]sgAssignMember, nm)
	for i := range members {
		members[i].id = fmt.Sprintf("m%02d", rng.Intn(100)*100+i)
		if homogeneous {
			members[i].topics = shared
		} else {
			members[i].topics = pick()
		}
	}
	return members, parts
}

func shareCounts(a sgAssignment) int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// shareCheckAssignment checks the simple assignor's invariants on one result.
func shareCheckAssignment(t *testing.T, members []sgAssignMember, parts map[[16]byte]int32, res map[string]sgAssignment) {
	t.Helper()
	subscribers := make(map[[16]byte][]string)
	subsOf := make(map[string]map[[16]byte]bool)
	for _, m := range members {
		subsOf[m.id] = make(map[[16]byte]bool)
		for _, tid := range m.topics {
			if parts[tid] > 0 && !subsOf[m.id][tid] {
				subsOf[m.id][tid] = true
				subscribers[tid] = append(subscribers[tid], m.id)
			}
		}
	}
	if len(res) != len(members) {
		t.Fatalf("%d results for %d members", len(res), len(members))
	}
	holders := make(map[sgTP]int)
	for _, m := range members {
		a, ok := res[m.id]
		if !ok {
			t.Fatalf("member %s has no entry", m.id)
		}
		for tid, ps := range a {
			if !subsOf[m.id][tid] {
				t.Fatalf("member %s got unsubscribed topic %x", m.id, tid)
			}
			for i, p := range ps {
				if p < 0 || p >= parts[tid] || (i > 0 && ps[i-1] >= p) {
					t.Fatalf("member %s: bad partition list %v for %x", m.id, ps, tid)
				}
				holders[sgTP{tid, p}]++
			}
		}
		if len(subsOf[m.id]) > 0 && shareCounts(a) == 0 {
			t.Fatalf("member %s subscribes to topics with partitions but got nothing", m.id)
		}
	}
	for tid, subs := range subscribers {
		for p := int32(0); p < parts[tid]; p++ {
			if holders[sgTP{tid, p}] == 0 {
				t.Fatalf("partition %x/%d has no member (subscribers %v)", tid, p, subs)
			}
		}
	}

	// Members with the same subscription whose topics nobody else takes
	// form a homogeneous set: counts within one, and either every partition
	// has exactly one member or every member exactly one partition with
	// sharers within one.
	bySet := make(map[string][]string)
	for _, m := range members {
		var ts []string
		for tid := range subsOf[m.id] {
			ts = append(ts, fmt.Sprintf("%x", tid))
		}
		sort.Strings(ts)
		key := fmt.Sprint(ts)
		if len(ts) > 0 {
			bySet[key] = append(bySet[key], m.id)
		}
	}
	for _, ids := range bySet {
		topics := subsOf[ids[0]]
		closed := true
		P := 0
		for tid := range topics {
			closed = closed && len(subscribers[tid]) == len(ids)
			P += int(parts[tid])
		}
		if !closed {
			continue
		}
		lo, hi := int(^uint(0)>>1), 0
		for _, id := range ids {
			c := shareCounts(res[id])
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			t.Fatalf("homogeneous set %v: counts from %d to %d", ids, lo, hi)
		}
		M := len(ids)
		sharersLo, sharersHi := int(^uint(0)>>1), 0
		for tid := range topics {
			for p := int32(0); p < parts[tid]; p++ {
				n := holders[sgTP{tid, p}]
				sharersLo, sharersHi = min(sharersLo, n), max(sharersHi, n)
			}
		}
		if M <= P && (sharersLo != 1 || sharersHi != 1) {
			t.Fatalf("homogeneous set %v over %d partitions: %d to %d members per partition", ids, P, sharersLo, sharersHi)
		}
		if M > P && (lo != 1 || hi != 1 || sharersHi-sharersLo > 1) {
			t.Fatalf("homogeneous set %v over %d partitions: counts %d-%d, sharers %d-%d", ids, P, lo, hi, sharersLo, sharersHi)
		}
	}
}

func TestShareAssignorProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 3000; iter++ {
		members, parts := shareAssignCase(rng, iter%2 == 0)
		res := sgSimpleAssign(members, parts)
		shareCheckAssignment(t, members, parts, res)

		// Deterministic: the input order does not matter.
		shuffled := append([]sgAssignMember(nil), members...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := sgSimpleAssign(shuffled, parts); !reflect.DeepEqual(again, res) {
			t.Fatalf("iteration %d: result depends on member order", iter)
		}

		// Sticky: fed its own result back, the assignor changes nothing.
		for i := range members {
			members[i].current = res[members[i].id]
		}
		if again := sgSimpleAssign(members, parts); !reflect.DeepEqual(again, res) {
			t.Fatalf("iteration %d: not a fixed point of itself", iter)
		}

		// A membership change from a settled state: the result still holds
		// the invariants, and with a homogeneous subscription and
		// partitions to spare, a joining member moves only what it takes.
		if len(members) > 0 {
			var next []sgAssignMember
			if rng.Intn(2) == 0 {
				next = append(next, members[1:]...)
			} else {
				next = append(append(next, members...), sgAssignMember{id: "zz-new", topics: members[0].topics})
			}
			res2 := sgSimpleAssign(next, parts)
			shareCheckAssignment(t, next, parts, res2)
			if iter%2 == 0 && len(next) > len(members) {
				P := 0
				seen := map[[16]byte]bool{}
				for _, tid := range members[0].topics {
					if !seen[tid] {
						seen[tid] = true
						P += int(parts[tid])
					}
				}
				if len(next) <= P {
					moved := 0
					for _, m := range members {
						old, now := res[m.id], res2[m.id]
						for tid, ps := range old {
							keep := map[int32]bool{}
							for _, p := range now[tid] {
								keep[p] = true
							}
							for _, p := range ps {
								if !keep[p] {
									moved++
								}
							}
						}
					}
					if moved != shareCounts(res2["zz-new"]) {
						t.Fatalf("iteration %d: %d partitions moved for a new member taking %d", iter, moved, shareCounts(res2["zz-new"]))
					}
				}
			}
		}
	}
}

func TestShareAssignorExamples(t *testing.T) {
	a, b := shareTopicID(0), shareTopicID(1)
	ms := func(n int, topics ...[16]byte) []sgAssignMember {
		var out []sgAssignMember
		for i := 0; i < n; i++ {
			out = append(out, sgAssignMember{id: fmt.Sprintf("m%d", i), topics: topics})
		}
		return out
	}
	// 8 members, 2 partitions: 4 members on each partition.
	res := sgSimpleAssign(ms(8, a), map[[16]byte]int32{a: 2})
	per := map[int32]int{}
	for _, x := range res {
		if shareCounts(x) != 1 {
			t.Fatalf("8 on 2: %v", res)
		}
		per[x[a][0]]++
	}
	if per[0] != 4 || per[1] != 4 {
		t.Fatalf("8 on 2: %v", per)
	}
	// 2 members, a=3 b=3 (homogeneous): 3 each, across both topics.
	res = sgSimpleAssign(ms(2, a, b), map[[16]byte]int32{a: 3, b: 3})
	if shareCounts(res["m0"]) != 3 || shareCounts(res["m1"]) != 3 {
		t.Fatalf("2 on 6: %v", res)
	}
	// No topics: everyone gets an empty entry.
	res = sgSimpleAssign(ms(2, a), map[[16]byte]int32{})
	if len(res) != 2 || shareCounts(res["m0"]) != 0 {
		t.Fatalf("no topics: %v", res)
	}
}
