package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
)

// Reassignment plans in the JSON format of Kafka's
// kafka-reassign-partitions.sh, so plans move between the two tools:
//
//	{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3]}]}
//
// log_dirs names, per replica, the log directory of the broker that the
// replica must end in (an absolute path), or "any": --execute sends
// AlterReplicaLogDirs for the named ones, as Kafka's tool does
// (reassign_dirs.go).

// reassignPlan is a plan file.
type reassignPlan struct {
	Version    int              `json:"version"`
	Partitions []planPartitions `json:"partitions"`
}

// planPartitions is one partition's target replicas.
type planPartitions struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// parsePlan reads and checks a plan: version 1, every partition named
// once, replica lists non-empty without repeats, log_dirs "any" or
// absolute paths, one per replica.
func parsePlan(b []byte) (reassignPlan, error) {
	var p reassignPlan
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("not a reassignment plan: %v", err)
	}
	if p.Version != 1 {
		return p, fmt.Errorf("plan version %d is not supported (only 1)", p.Version)
	}
	if len(p.Partitions) == 0 {
		return p, fmt.Errorf("the plan names no partitions")
	}
	seen := map[topicPartition]bool{}
	for _, pp := range p.Partitions {
		tp := topicPartition{pp.Topic, pp.Partition}
		if pp.Topic == "" || pp.Partition < 0 {
			return p, fmt.Errorf("invalid partition %q/%d in the plan", pp.Topic, pp.Partition)
		}
		if seen[tp] {
			return p, fmt.Errorf("partition %s-%d appears twice in the plan", pp.Topic, pp.Partition)
		}
		seen[tp] = true
		if len(pp.Replicas) == 0 {
			return p, fmt.Errorf("partition %s-%d has no replicas in the plan", pp.Topic, pp.Partition)
		}
		for i, r := range pp.Replicas {
			if slices.Contains(pp.Replicas[:i], r) {
				return p, fmt.Errorf("partition %s-%d lists broker %d twice", pp.Topic, pp.Partition, r)
			}
		}
		for _, d := range pp.LogDirs {
			if d != "any" && !filepath.IsAbs(d) {
				return p, fmt.Errorf("partition %s-%d: log_dirs entry %q is neither \"any\" nor an absolute path", pp.Topic, pp.Partition, d)
			}
		}
		if pp.LogDirs != nil && len(pp.LogDirs) != len(pp.Replicas) {
			return p, fmt.Errorf("partition %s-%d has %d log_dirs for %d replicas", pp.Topic, pp.Partition, len(pp.LogDirs), len(pp.Replicas))
		}
	}
	return p, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// generatePlan is --generate's proposal for parts (the current assignment
// of the topics) over brokers: the rebalance planner's (rebalance_plan.go),
// which moves as few replicas as it can while evening out replicas and
// preferred leaders and, when every broker has a rack, spreading each
// partition over the racks as Kafka's rack-aware assignment does. Unlike a
// rebalance's plan it lists every partition, changed or not, as Kafka's
// --generate does.
func generatePlan(brokers []rebalanceBroker, parts []planPartitions) (reassignPlan, error) {
	changed, err := rebalancePlan(brokers, parts)
	if err != nil {
		return reassignPlan{}, err
	}
	return reassignPlan{Version: 1, Partitions: applyPlan(parts, changed)}, nil
}

// applyPlan is parts with the plan's partitions replaced.
func applyPlan(parts []planPartitions, plan reassignPlan) []planPartitions {
	out := slices.Clone(parts)
	for _, pp := range plan.Partitions {
		for i := range out {
			if out[i].Topic == pp.Topic && out[i].Partition == pp.Partition {
				out[i] = pp
			}
		}
	}
	return out
}

// removalPlan moves every replica off broker gone: in each partition of
// parts that has one there, it is replaced, in place, by the broker among
// brokers (gone excluded) holding the fewest replicas that the partition
// does not already use. Partitions without a replica on gone are left out.
func removalPlan(parts []planPartitions, brokers []int32, gone int32) (reassignPlan, error) {
	var remaining []int32
	for _, b := range slices.Sorted(slices.Values(brokers)) {
		if b != gone {
			remaining = append(remaining, b)
		}
	}
	load := map[int32]int{}
	for _, p := range parts {
		for _, r := range p.Replicas {
			load[r]++
		}
	}
	plan := reassignPlan{Version: 1, Partitions: []planPartitions{}}
	for _, p := range parts {
		i := slices.Index(p.Replicas, gone)
		if i < 0 {
			continue
		}
		best := int32(-1)
		for _, b := range remaining {
			if !slices.Contains(p.Replicas, b) && (best < 0 || load[b] < load[best]) {
				best = b
			}
		}
		if best < 0 {
			return reassignPlan{}, fmt.Errorf("partition %s-%d has %d replicas; no other broker is left to take the one on broker %d", p.Topic, p.Partition, len(p.Replicas), gone)
		}
		load[best]++
		load[gone]--
		replicas := slices.Clone(p.Replicas)
		replicas[i] = best
		plan.Partitions = append(plan.Partitions, planPartitions{Topic: p.Topic, Partition: p.Partition, Replicas: replicas})
	}
	return plan, nil
}
