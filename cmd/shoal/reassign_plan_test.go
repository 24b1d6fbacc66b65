package main

import (
	"fmt"
	"strings"
	"testing"
)

func partitionsOf(topic string, assign ...[]int32) []planPartitions {
	var out []planPartitions
	for i, r := range assign {
		out = append(out, planPartitions{Topic: topic, Partition: int32(i), Replicas: r})
	}
	return out
}

func planString(p reassignPlan) string {
	var parts []string
	for _, pp := range p.Partitions {
		parts = append(parts, fmt.Sprintf("%s-%d:%v", pp.Topic, pp.Partition, pp.Replicas))
	}
	return strings.Join(parts, " ")
}

// The balanced plan of a topic crowded on broker 1 spreads replicas and
// leaders evenly over the given brokers, keeps replicas that fit in place,
// and keeps each partition's replication factor.
func TestBalancedPlan(t *testing.T) {
	for _, c := range []struct {
		name    string
		parts   []planPartitions
		brokers []int32
		want    string
	}{
		{"rf1 all on one broker", partitionsOf("t", []int32{1}, []int32{1}, []int32{1}, []int32{1}), []int32{1, 2},
			"t-0:[1] t-1:[1] t-2:[2] t-3:[2]"},
		{"rf2 onto new brokers", partitionsOf("t", []int32{1, 2}, []int32{1, 2}, []int32{2, 1}), []int32{3, 4, 5},
			"t-0:[4 3] t-1:[5 4] t-2:[3 5]"},
		{"already balanced stays", partitionsOf("t", []int32{1, 2}, []int32{2, 3}, []int32{3, 1}), []int32{1, 2, 3},
			"t-0:[1 2] t-1:[2 3] t-2:[3 1]"},
		{"leaders spread", partitionsOf("t", []int32{1, 2}, []int32{1, 2}, []int32{1, 2}, []int32{1, 2}), []int32{1, 2},
			"t-0:[1 2] t-1:[1 2] t-2:[2 1] t-3:[2 1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := balancedPlan(c.parts, c.brokers)
			if err != nil {
				t.Fatal(err)
			}
			if got := planString(p); got != c.want {
				t.Fatalf("plan %s, want %s", got, c.want)
			}
		})
	}
	if _, err := balancedPlan(partitionsOf("t", []int32{1, 2, 3}), []int32{1, 2}); err == nil {
		t.Fatal("RF 3 over 2 brokers planned")
	}
}

// Removing a broker replaces each of its replicas in place by the least
// loaded broker the partition does not use yet.
func TestRemovalPlan(t *testing.T) {
	parts := partitionsOf("t", []int32{1, 2}, []int32{2, 3}, []int32{3, 2}, []int32{2})
	p, err := removalPlan(parts, []int32{1, 2, 3, 4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := planString(p), "t-0:[1 4] t-1:[1 3] t-2:[3 4] t-3:[1]"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
	if _, err := removalPlan(partitionsOf("t", []int32{1, 2}), []int32{1, 2}, 2); err == nil {
		t.Fatal("RF 2 over 1 remaining broker planned")
	}
}

func TestParsePlan(t *testing.T) {
	good := `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","/data/b"]}]}`
	p, err := parsePlan([]byte(good))
	if err != nil || planString(p) != "t-0:[2 3]" {
		t.Fatalf("%s: %v %v", good, planString(p), err)
	}
	if got := planDirMoves(p.Partitions); len(got) != 1 || got[0] != (dirMove{broker: 3, dir: "/data/b", topic: "t", partition: 0}) {
		t.Fatalf("moves of %s: %+v", good, got)
	}
	for _, bad := range []string{
		`{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`,
		`{"version":1,"partitions":[]}`,
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}`,
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}`,
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}`,
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["data"]}]}`,
		`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["/data"]}]}`,
		`{"version":1,"partitions":[{"topic":"","partition":0,"replicas":[1]}]}`,
		`not json`,
	} {
		if _, err := parsePlan([]byte(bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}
