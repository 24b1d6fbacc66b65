package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// The generated plan of a topic crowded on some brokers spreads replicas
// and leaders evenly over the given brokers, keeps replicas that fit in
// place, keeps each partition's replication factor, lists every
// partition, and, when every broker has a rack, spreads each partition
// over the racks.
func TestGeneratePlan(t *testing.T) {
	racks := []rebalanceBroker{{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}}
	for _, c := range []struct {
		name    string
		parts   []planPartitions
		brokers []rebalanceBroker
		want    string
	}{
		{"rf1 all on one broker", partitionsOf("t", []int32{1}, []int32{1}, []int32{1}, []int32{1}), noRacks(1, 2),
			"t-0:[2] t-1:[2] t-2:[1] t-3:[1]"},
		{"rf2 onto new brokers", partitionsOf("t", []int32{1, 2}, []int32{1, 2}, []int32{2, 1}), noRacks(3, 4, 5),
			"t-0:[3 4] t-1:[5 3] t-2:[4 5]"},
		{"already balanced stays", partitionsOf("t", []int32{1, 2}, []int32{2, 3}, []int32{3, 1}), noRacks(1, 2, 3),
			"t-0:[1 2] t-1:[2 3] t-2:[3 1]"},
		{"leaders spread", partitionsOf("t", []int32{1, 2}, []int32{1, 2}, []int32{1, 2}, []int32{1, 2}), noRacks(1, 2),
			"t-0:[2 1] t-1:[2 1] t-2:[1 2] t-3:[1 2]"},
		{"a joining broker takes a share", partitionsOf("t", []int32{1, 2}, []int32{2, 3}, []int32{3, 1}), noRacks(1, 2, 3, 4),
			"t-0:[1 2] t-1:[2 4] t-2:[3 1]"},
		{"racks: each partition on both", partitionsOf("t", []int32{1, 2}, []int32{2, 1}, []int32{3, 4}, []int32{4, 3}), racks,
			"t-0:[1 3] t-1:[2 4] t-2:[3 1] t-3:[4 2]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := generatePlan(c.brokers, c.parts)
			if err != nil {
				t.Fatal(err)
			}
			if got := planString(p); got != c.want {
				t.Fatalf("plan %s, want %s", got, c.want)
			}
		})
	}
	if _, err := generatePlan(noRacks(1, 2), partitionsOf("t", []int32{1, 2, 3})); err == nil {
		t.Fatal("RF 3 over 2 brokers planned")
	}
}

// --generate's brokers must exist; racks count only when every one has
// one, and --disable-rack-aware drops them.
func TestGenerateTargets(t *testing.T) {
	cluster := kmsg.NewPtrDescribeClusterResponse()
	for id, rack := range map[int32]*string{1: kmsg.StringPtr("a"), 2: kmsg.StringPtr("b"), 3: nil} {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Rack = id, rack
		cluster.Brokers = append(cluster.Brokers, b)
	}
	if got, err := generateTargets(cluster, []int32{2, 1}, false); err != nil || fmt.Sprint(got) != "[{2 b} {1 a}]" {
		t.Errorf("racked brokers: %v %v", got, err)
	}
	if _, err := generateTargets(cluster, []int32{1, 3}, false); err == nil || !strings.Contains(err.Error(), "--disable-rack-aware") {
		t.Errorf("a broker without a rack among racked ones: %v", err)
	}
	if got, err := generateTargets(cluster, []int32{1, 3}, true); err != nil || fmt.Sprint(got) != "[{1 } {3 }]" {
		t.Errorf("--disable-rack-aware: %v %v", got, err)
	}
	if _, err := generateTargets(cluster, []int32{1, 7}, false); err == nil || !strings.Contains(err.Error(), "broker 7 is not in the cluster") {
		t.Errorf("unknown broker: %v", err)
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
