package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A throttled plan throttles, as Kafka's tool does, the current replicas
// of each moving partition as leaders and the added ones as followers,
// rate-limits every broker either side, and leaves unmoved partitions out.
func TestPlanThrottles(t *testing.T) {
	current := []planPartitions{
		{Topic: "a", Partition: 0, Replicas: []int32{1, 2}},
		{Topic: "a", Partition: 1, Replicas: []int32{2, 3}},
		{Topic: "b", Partition: 0, Replicas: []int32{1}},
		{Topic: "c", Partition: 0, Replicas: []int32{5}},
	}
	plan := reassignPlan{Version: 1, Partitions: []planPartitions{
		{Topic: "a", Partition: 0, Replicas: []int32{2, 4}},
		{Topic: "a", Partition: 1, Replicas: []int32{2, 3}}, // unchanged
		{Topic: "b", Partition: 0, Replicas: []int32{6}},
		{Topic: "c", Partition: 0, Replicas: []int32{5}}, // unchanged
	}}
	th := planThrottles(planMoves(current, nil, plan))
	if want := map[string]string{"a": "0:1,0:2", "b": "0:1"}; !maps.Equal(th.leader, want) {
		t.Errorf("leader throttled replicas %v, want %v", th.leader, want)
	}
	if want := map[string]string{"a": "0:4", "b": "0:6"}; !maps.Equal(th.follower, want) {
		t.Errorf("follower throttled replicas %v, want %v", th.follower, want)
	}
	if want := []int32{1, 2, 4, 6}; !slices.Equal(th.brokers, want) {
		t.Errorf("throttled brokers %v, want %v", th.brokers, want)
	}
	if want := []string{"a", "b"}; !slices.Equal(th.topics(), want) {
		t.Errorf("throttled topics %v, want %v", th.topics(), want)
	}
}

// With reassignments in progress (--execute --additional), a partition of
// the plan already moving is throttled from where its reassignment
// started, and the other reassignments in progress stay throttled.
func TestPlanThrottlesInProgress(t *testing.T) {
	current := []planPartitions{
		{Topic: "a", Partition: 0, Replicas: []int32{2, 4, 1}},
		{Topic: "b", Partition: 0, Replicas: []int32{1}},
	}
	busy := map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition{
		{"a", 0}: {Partition: 0, Replicas: []int32{2, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}},
		{"c", 0}: {Partition: 0, Replicas: []int32{7, 5}, AddingReplicas: []int32{7}, RemovingReplicas: []int32{5}},
	}
	plan := reassignPlan{Version: 1, Partitions: []planPartitions{
		{Topic: "a", Partition: 0, Replicas: []int32{2, 4}}, // the same target again
		{Topic: "b", Partition: 0, Replicas: []int32{6}},
	}}
	th := planThrottles(planMoves(current, busy, plan))
	if want := map[string]string{"a": "0:2,0:1", "b": "0:1", "c": "0:5"}; !maps.Equal(th.leader, want) {
		t.Errorf("leader throttled replicas %v, want %v", th.leader, want)
	}
	if want := map[string]string{"a": "0:4", "b": "0:6", "c": "0:7"}; !maps.Equal(th.follower, want) {
		t.Errorf("follower throttled replicas %v, want %v", th.follower, want)
	}
	if want := []int32{1, 2, 4, 5, 6, 7}; !slices.Equal(th.brokers, want) {
		t.Errorf("throttled brokers %v, want %v", th.brokers, want)
	}
}
