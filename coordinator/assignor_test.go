package coordinator

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

func assignTestTopic(i int) [16]byte {
	var id [16]byte
	id[0] = 'T'
	id[1] = byte(i)
	return id
}

// assignRandomSpec builds a random spec. homogeneous makes every member
// subscribe to every topic.
func assignRandomSpec(r *rand.Rand, homogeneous bool) AssignmentSpec {
	spec := AssignmentSpec{Topics: map[[16]byte]int32{}}
	nt := 1 + r.Intn(5)
	var all [][16]byte
	for i := 0; i < nt; i++ {
		t := assignTestTopic(i)
		spec.Topics[t] = int32(r.Intn(13))
		all = append(all, t)
	}
	nm := 1 + r.Intn(8)
	for i := 0; i < nm; i++ {
		m := AssignMember{ID: fmt.Sprintf("m%02d", r.Intn(100))}
		if r.Intn(3) == 0 {
			m.InstanceID = fmt.Sprintf("i%02d", r.Intn(100))
		}
		for _, t := range all {
			if homogeneous || r.Intn(2) == 0 {
				m.Topics = append(m.Topics, t)
			}
		}
		spec.Members = append(spec.Members, m)
	}
	// Deduplicate member ids (a spec never repeats one).
	seen := map[string]bool{}
	var members []AssignMember
	for _, m := range spec.Members {
		if !seen[m.ID] {
			seen[m.ID] = true
			members = append(members, m)
		}
	}
	spec.Members = members
	return spec
}

// assignCheckValid checks the properties every assignor must have.
func assignCheckValid(t *testing.T, spec AssignmentSpec, out map[string]map[[16]byte][]int32) {
	t.Helper()
	subscribed := map[string]map[[16]byte]bool{}
	subscribers := map[[16]byte]int{}
	for _, m := range spec.Members {
		if _, ok := out[m.ID]; !ok {
			t.Fatalf("member %s missing from the result", m.ID)
		}
		subscribed[m.ID] = map[[16]byte]bool{}
		for _, tp := range m.Topics {
			subscribed[m.ID][tp] = true
			subscribers[tp]++
		}
	}
	owner := map[consumerTP]string{}
	for id, a := range out {
		if _, ok := subscribed[id]; !ok {
			t.Fatalf("result names unknown member %s", id)
		}
		for tp, ps := range a {
			if !subscribed[id][tp] {
				t.Fatalf("member %s got topic %x it does not subscribe to", id, tp)
			}
			if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i] < ps[j] }) {
				t.Fatalf("partitions not sorted: %v", ps)
			}
			for _, p := range ps {
				if p < 0 || p >= spec.Topics[tp] {
					t.Fatalf("partition %d out of range for %x", p, tp)
				}
				k := consumerTP{tp, p}
				if prev, ok := owner[k]; ok {
					t.Fatalf("partition %x/%d given to %s and %s", tp, p, prev, id)
				}
				owner[k] = id
			}
		}
	}
	for tp, n := range spec.Topics {
		if subscribers[tp] == 0 {
			continue
		}
		for p := int32(0); p < n; p++ {
			if _, ok := owner[consumerTP{tp, p}]; !ok {
				t.Fatalf("partition %x/%d unassigned", tp, p)
			}
		}
	}
}

// assignCheckBalanced checks per-topic balance: the subscribers of a topic
// hold counts that differ by at most one.
func assignCheckBalanced(t *testing.T, spec AssignmentSpec, out map[string]map[[16]byte][]int32) {
	t.Helper()
	for tp := range spec.Topics {
		lo, hi, n := 1<<30, -1, 0
		for _, m := range spec.Members {
			for _, st := range m.Topics {
				if st != tp {
					continue
				}
				c := len(out[m.ID][tp])
				lo, hi = min(lo, c), max(hi, c)
				n++
			}
		}
		if n > 0 && hi-lo > 1 {
			t.Fatalf("topic %x unbalanced: min %d max %d\n%v", tp, lo, hi, out)
		}
	}
}

func assignWithCurrent(spec AssignmentSpec, cur map[string]map[[16]byte][]int32) AssignmentSpec {
	out := AssignmentSpec{Topics: spec.Topics}
	for _, m := range spec.Members {
		m.Current = cur[m.ID]
		out.Members = append(out.Members, m)
	}
	return out
}

func TestAssignorProperties(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, a := range []Assignor{UniformAssignor(), RangeAssignor()} {
		t.Run(a.Name(), func(t *testing.T) {
			for iter := 0; iter < 2000; iter++ {
				spec := assignRandomSpec(r, iter%2 == 0)
				// Random (possibly invalid, overlapping) current assignments.
				cur := map[string]map[[16]byte][]int32{}
				for _, m := range spec.Members {
					c := map[[16]byte][]int32{}
					for tp, n := range spec.Topics {
						for p := int32(0); p < n+2; p++ {
							if r.Intn(4) == 0 {
								c[tp] = append(c[tp], p)
							}
						}
					}
					cur[m.ID] = c
				}
				spec = assignWithCurrent(spec, cur)
				out := a.Assign(spec)
				assignCheckValid(t, spec, out)
				assignCheckBalanced(t, spec, out)

				// Determinism, whatever the member order.
				shuffled := AssignmentSpec{Topics: spec.Topics, Members: append([]AssignMember(nil), spec.Members...)}
				r.Shuffle(len(shuffled.Members), func(i, j int) {
					shuffled.Members[i], shuffled.Members[j] = shuffled.Members[j], shuffled.Members[i]
				})
				if again := a.Assign(shuffled); !reflect.DeepEqual(out, again) {
					t.Fatalf("not deterministic:\n%v\n%v", out, again)
				}

				// Feeding the result back changes nothing.
				if again := a.Assign(assignWithCurrent(spec, out)); !reflect.DeepEqual(out, again) {
					t.Fatalf("not stable on its own output:\n%v\n%v", out, again)
				}
			}
		})
	}
}

func TestAssignorUniformTotalsHomogeneous(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for iter := 0; iter < 2000; iter++ {
		spec := assignRandomSpec(r, true)
		out := UniformAssignor().Assign(spec)
		lo, hi := 1<<30, -1
		for _, m := range spec.Members {
			n := 0
			for _, ps := range out[m.ID] {
				n += len(ps)
			}
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > 1 {
			t.Fatalf("totals unbalanced %d..%d: %v", lo, hi, out)
		}
	}
}

func TestAssignorUniformSticky(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	u := UniformAssignor()
	for iter := 0; iter < 2000; iter++ {
		spec := assignRandomSpec(r, iter%2 == 0)
		before := u.Assign(spec)

		// A member joins (same subscription as a random existing one):
		// every existing member keeps at least floor of each topic it held.
		joiner := spec.Members[r.Intn(len(spec.Members))]
		joiner.ID = "zz-new"
		joiner.InstanceID = ""
		grown := assignWithCurrent(AssignmentSpec{Topics: spec.Topics, Members: append(append([]AssignMember(nil), spec.Members...), joiner)}, before)
		after := u.Assign(grown)
		assignCheckValid(t, grown, after)
		assignCheckBalanced(t, grown, after)
		for tp, n := range spec.Topics {
			subs := 0
			for _, m := range grown.Members {
				for _, st := range m.Topics {
					if st == tp {
						subs++
					}
				}
			}
			if subs == 0 {
				continue
			}
			floor := int(n) / subs
			for _, m := range spec.Members {
				kept := assignIntersect(before[m.ID][tp], after[m.ID][tp])
				if want := min(len(before[m.ID][tp]), floor); kept < want {
					t.Fatalf("member %s kept %d of topic %x, want >= %d\nbefore %v\nafter %v", m.ID, kept, tp, want, before, after)
				}
			}
		}

		// A member leaves: everyone else keeps everything they had.
		if len(spec.Members) < 2 {
			continue
		}
		gone := r.Intn(len(spec.Members))
		var rest []AssignMember
		for i, m := range spec.Members {
			if i != gone {
				rest = append(rest, m)
			}
		}
		shrunk := assignWithCurrent(AssignmentSpec{Topics: spec.Topics, Members: rest}, before)
		after = u.Assign(shrunk)
		assignCheckValid(t, shrunk, after)
		assignCheckBalanced(t, shrunk, after)
		for _, m := range rest {
			for tp, ps := range before[m.ID] {
				if assignIntersect(ps, after[m.ID][tp]) != len(ps) {
					t.Fatalf("member %s lost partitions of %x after another left\nbefore %v\nafter %v", m.ID, tp, before, after)
				}
			}
		}
	}
}

func assignIntersect(a, b []int32) int {
	set := map[int32]bool{}
	for _, p := range b {
		set[p] = true
	}
	n := 0
	for _, p := range a {
		if set[p] {
			n++
		}
	}
	return n
}

func TestAssignorRangeTable(t *testing.T) {
	a, b := assignTestTopic(1), assignTestTopic(2)
	type res = map[string]map[[16]byte][]int32
	cases := []struct {
		name string
		spec AssignmentSpec
		want res
	}{
		{
			name: "uneven: extra partitions to the first members",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 7}, Members: []AssignMember{
				{ID: "m3", Topics: [][16]byte{a}}, {ID: "m1", Topics: [][16]byte{a}}, {ID: "m2", Topics: [][16]byte{a}},
			}},
			want: res{"m1": {a: {0, 1, 2}}, "m2": {a: {3, 4}}, "m3": {a: {5, 6}}},
		},
		{
			name: "co-partitioned topics line up",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 5, b: 5}, Members: []AssignMember{
				{ID: "m1", Topics: [][16]byte{a, b}}, {ID: "m2", Topics: [][16]byte{b, a}},
			}},
			want: res{"m1": {a: {0, 1, 2}, b: {0, 1, 2}}, "m2": {a: {3, 4}, b: {3, 4}}},
		},
		{
			name: "more members than partitions",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 2}, Members: []AssignMember{
				{ID: "m1", Topics: [][16]byte{a}}, {ID: "m2", Topics: [][16]byte{a}}, {ID: "m3", Topics: [][16]byte{a}},
			}},
			want: res{"m1": {a: {0}}, "m2": {a: {1}}, "m3": {}},
		},
		{
			name: "heterogeneous subscriptions",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 4, b: 3}, Members: []AssignMember{
				{ID: "m1", Topics: [][16]byte{a}}, {ID: "m2", Topics: [][16]byte{a, b}}, {ID: "m3", Topics: [][16]byte{b}},
			}},
			want: res{"m1": {a: {0, 1}}, "m2": {a: {2, 3}, b: {0, 1}}, "m3": {b: {2}}},
		},
		{
			name: "static members first, by instance id",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 3}, Members: []AssignMember{
				{ID: "a-dyn", Topics: [][16]byte{a}}, {ID: "z", InstanceID: "i2", Topics: [][16]byte{a}}, {ID: "y", InstanceID: "i1", Topics: [][16]byte{a}},
			}},
			want: res{"y": {a: {0}}, "z": {a: {1}}, "a-dyn": {a: {2}}},
		},
		{
			name: "unknown topics and empty topics are skipped",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 0}, Members: []AssignMember{
				{ID: "m1", Topics: [][16]byte{a, b}},
			}},
			want: res{"m1": {}},
		},
		{
			name: "current assignment does not change the ranges",
			spec: AssignmentSpec{Topics: map[[16]byte]int32{a: 4}, Members: []AssignMember{
				{ID: "m1", Topics: [][16]byte{a}, Current: map[[16]byte][]int32{a: {2, 3}}},
				{ID: "m2", Topics: [][16]byte{a}, Current: map[[16]byte][]int32{a: {0, 1}}},
			}},
			want: res{"m1": {a: {0, 1}}, "m2": {a: {2, 3}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := RangeAssignor().Assign(c.spec)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestAssignorUniformExamples(t *testing.T) {
	a, b := assignTestTopic(1), assignTestTopic(2)
	// Two single-partition topics and two members: one each, not both to
	// the same member.
	out := UniformAssignor().Assign(AssignmentSpec{Topics: map[[16]byte]int32{a: 1, b: 1}, Members: []AssignMember{
		{ID: "m1", Topics: [][16]byte{a, b}}, {ID: "m2", Topics: [][16]byte{a, b}},
	}})
	if len(out["m1"])+len(out["m2"]) != 2 || len(out["m1"]) != 1 {
		t.Fatalf("want one topic each, got %v", out)
	}
	// Sticky: a balanced current assignment, even an unusual one, is kept.
	cur := AssignmentSpec{Topics: map[[16]byte]int32{a: 4}, Members: []AssignMember{
		{ID: "m1", Topics: [][16]byte{a}, Current: map[[16]byte][]int32{a: {1, 3}}},
		{ID: "m2", Topics: [][16]byte{a}, Current: map[[16]byte][]int32{a: {0, 2}}},
	}}
	out = UniformAssignor().Assign(cur)
	if !reflect.DeepEqual(out["m1"][a], []int32{1, 3}) || !reflect.DeepEqual(out["m2"][a], []int32{0, 2}) {
		t.Fatalf("not sticky: %v", out)
	}
}
