package main

import (
	"maps"
	"slices"
	"testing"
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
	th := planThrottles(current, plan)
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
