package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func noRacks(ids ...int32) []rebalanceBroker {
	var out []rebalanceBroker
	for _, id := range ids {
		out = append(out, rebalanceBroker{ID: id})
	}
	return out
}

// movedReplicas counts replicas that land on a broker their partition did
// not use before: the data a plan copies.
func movedReplicas(before, after []planPartitions) int {
	n := 0
	for i := range before {
		for _, r := range after[i].Replicas {
			if !slices.Contains(before[i].Replicas, r) {
				n++
			}
		}
	}
	return n
}

// spread is the difference between the highest and lowest count over
// brokers (a broker with none counts as zero).
func spread(brokers []rebalanceBroker, count func(brokerLoad) int, loads map[int32]brokerLoad) int {
	lo, hi := -1, 0
	for _, b := range brokers {
		n := count(loads[b.ID])
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - lo
}

// A rebalance evens replicas per broker to within one with the fewest
// moves the counts require, respects racks, spreads preferred leaders, and
// proposes nothing for a balanced cluster.
func TestRebalancePlan(t *testing.T) {
	racks := []rebalanceBroker{{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}}
	for _, c := range []struct {
		name    string
		brokers []rebalanceBroker
		parts   []planPartitions
		// moves is how many replicas must change broker; plan, when set,
		// is the exact plan.
		moves int
		plan  string
		// racksPin: the rack rule keeps replica counts apart.
		racksPin bool
	}{
		{name: "already balanced: empty plan", brokers: noRacks(1, 2, 3),
			parts: partitionsOf("t", []int32{1, 2}, []int32{2, 3}, []int32{3, 1}), moves: 0, plan: ""},
		{name: "rf1 crowded on one broker", brokers: noRacks(1, 2),
			parts: partitionsOf("t", []int32{1}, []int32{1}, []int32{1}, []int32{1}), moves: 2, plan: "t-0:[2] t-1:[2]"},
		{name: "new empty broker receives replicas", brokers: noRacks(1, 2, 3),
			parts: partitionsOf("t", []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1}), moves: 4},
		{name: "two new brokers", brokers: noRacks(1, 2, 3, 4, 5),
			parts: partitionsOf("t", []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2}, []int32{1, 2, 3}, []int32{2, 3, 1}), moves: 6},
		{name: "leaders only reordered", brokers: noRacks(1, 2),
			parts: partitionsOf("t", []int32{1, 2}, []int32{1, 2}, []int32{1, 2}, []int32{1, 2}), moves: 0, plan: "t-0:[2 1] t-1:[2 1]"},
		{name: "replica on a broker that is not a target", brokers: noRacks(1, 2, 3),
			parts: partitionsOf("t", []int32{1, 9}, []int32{2, 3}, []int32{3, 1}), moves: 1, plan: "t-0:[1 2]"},
		{name: "two replicas in one rack are split", brokers: racks,
			parts: partitionsOf("t", []int32{1, 2}, []int32{3, 4}, []int32{1, 3}, []int32{2, 4}), moves: 2},
		{name: "rack-aware onto an empty rack", brokers: append(slices.Clone(racks), rebalanceBroker{5, "c"}, rebalanceBroker{6, "c"}),
			parts: partitionsOf("t", []int32{1, 3}, []int32{2, 4}, []int32{3, 1}, []int32{4, 2}, []int32{1, 4}, []int32{3, 2}), moves: 4},
		{name: "rf3 over two racks holds at most two per rack", brokers: racks,
			parts: partitionsOf("t", []int32{1, 2, 3}, []int32{3, 4, 1}, []int32{2, 1, 4}, []int32{4, 3, 2}), moves: 0},
		{name: "a rack of one broker holds a replica of every partition", brokers: []rebalanceBroker{{1, "a"}, {2, "b"}, {3, "a"}},
			parts: partitionsOf("t", []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1}), moves: 2, racksPin: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan, err := rebalancePlan(c.brokers, c.parts)
			if err != nil {
				t.Fatal(err)
			}
			if c.plan != "" || c.moves == 0 && len(plan.Partitions) == 0 {
				if got := planString(plan); got != c.plan {
					t.Fatalf("plan %q, want %q", got, c.plan)
				}
			}
			after := applyPlan(c.parts, plan)
			if got := movedReplicas(c.parts, after); got != c.moves {
				t.Errorf("%d replicas moved, want %d: %s", got, c.moves, planString(plan))
			}
			loads := loadsOf(after)
			if d := spread(c.brokers, func(l brokerLoad) int { return l.Replicas }, loads); d > 1 && !c.racksPin {
				t.Errorf("replica counts differ by %d: %v (%s)", d, loads, planString(plan))
			}
			if d := spread(c.brokers, func(l brokerLoad) int { return l.Leaders }, loads); d > 1 {
				t.Errorf("leader counts differ by %d: %v (%s)", d, loads, planString(plan))
			}
			rackOf := map[int32]string{}
			rackSet := map[string]bool{}
			for _, b := range c.brokers {
				rackOf[b.ID] = b.Rack
				rackSet[b.Rack] = true
			}
			for _, p := range after {
				perRack := map[string]int{}
				for i, r := range p.Replicas {
					if slices.Contains(p.Replicas[:i], r) {
						t.Errorf("%s-%d: broker %d twice in %v", p.Topic, p.Partition, r, p.Replicas)
					}
					if _, ok := rackOf[r]; !ok {
						t.Errorf("%s-%d: broker %d is not a target", p.Topic, p.Partition, r)
					}
					perRack[rackOf[r]]++
				}
				limit := (len(p.Replicas) + len(rackSet) - 1) / len(rackSet)
				for rack, n := range perRack {
					if rack != "" && n > limit {
						t.Errorf("%s-%d: %d replicas in rack %s: %v", p.Topic, p.Partition, n, rack, p.Replicas)
					}
				}
			}
			// Planning again from the result proposes nothing.
			if again, err := rebalancePlan(c.brokers, after); err != nil || len(again.Partitions) > 0 {
				t.Errorf("rebalancing the result: %s %v", planString(again), err)
			}
		})
	}
}

func TestRebalancePlanErrors(t *testing.T) {
	if _, err := rebalancePlan(noRacks(1, 2), partitionsOf("t", []int32{1, 2, 3})); err == nil || !strings.Contains(err.Error(), "only 2 brokers") {
		t.Errorf("RF 3 over 2 brokers: %v", err)
	}
	if _, err := rebalancePlan(nil, partitionsOf("t", []int32{1})); err == nil {
		t.Error("no brokers planned")
	}
}

// The printed plan shows each broker's counts before and after and each
// changed partition's current and proposed replicas.
func TestPrintRebalancePlan(t *testing.T) {
	parts := partitionsOf("t", []int32{1, 2}, []int32{2, 1}, []int32{1, 2})
	brokers := []rebalanceBroker{{1, "a"}, {2, "b"}, {3, "c"}}
	plan, err := rebalancePlan(brokers, parts)
	if err != nil {
		t.Fatal(err)
	}
	rack := func(s string) *string { return &s }
	res := rebalanceSummary(brokers, map[int32]*string{1: rack("a"), 2: rack("b"), 3: rack("c")}, parts, plan)
	if res.Moves != 2 || len(res.Current.Partitions) != len(res.Proposed.Partitions) {
		t.Fatalf("summary %+v", res)
	}
	var b strings.Builder
	if err := printRebalancePlan(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !hasRow(out, "3", "c", "0 -> 2", "0 -> 1") || !hasRow(out, "TOPIC", "PARTITION", "CURRENT", "PROPOSED") {
		t.Errorf("printed:\n%s", out)
	}
	for i, p := range res.Proposed.Partitions {
		if !hasRow(out, "t", fmt.Sprint(p.Partition), fmt.Sprint(res.Current.Partitions[i].Replicas), fmt.Sprint(p.Replicas)) {
			t.Errorf("no row for %s-%d:\n%s", p.Topic, p.Partition, out)
		}
	}
}
