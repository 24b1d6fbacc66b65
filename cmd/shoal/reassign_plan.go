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

// balancedPlan spreads the replicas of parts (their current assignment, in
// the order given) evenly over brokers, keeping as many current replicas
// in place as balance allows so little data moves: no broker gets more
// than its share (total replicas over brokers, rounded up), and no broker
// leads more than its share of the partitions. Each partition keeps its
// replication factor. It is deterministic: the same input yields the same
// plan.
func balancedPlan(parts []planPartitions, brokers []int32) (reassignPlan, error) {
	if len(brokers) == 0 {
		return reassignPlan{}, fmt.Errorf("no brokers to place replicas on")
	}
	brokers = slices.Compact(slices.Sorted(slices.Values(brokers)))
	total := 0
	for _, p := range parts {
		if len(p.Replicas) > len(brokers) {
			return reassignPlan{}, fmt.Errorf("partition %s-%d has %d replicas but only %d brokers were given", p.Topic, p.Partition, len(p.Replicas), len(brokers))
		}
		total += len(p.Replicas)
	}
	n := len(brokers)
	replicaCap := (total + n - 1) / n
	leaderCap := (len(parts) + n - 1) / n
	load := map[int32]int{}
	leads := map[int32]int{}
	plan := reassignPlan{Version: 1, Partitions: []planPartitions{}}
	for _, p := range parts {
		rf := len(p.Replicas)
		var chosen []int32
		for _, r := range p.Replicas {
			if slices.Contains(brokers, r) && load[r] < replicaCap && len(chosen) < rf {
				chosen = append(chosen, r)
			}
		}
		for len(chosen) < rf {
			best := int32(-1)
			for _, b := range brokers {
				if slices.Contains(chosen, b) {
					continue
				}
				if best < 0 || load[b] < load[best] || load[b] == load[best] && leads[b] < leads[best] {
					best = b
				}
			}
			chosen = append(chosen, best)
		}
		// The first replica leads: keep it unless it already leads its
		// share, then hand the lead to the replica leading the fewest.
		if leads[chosen[0]] >= leaderCap {
			min := 0
			for i := range chosen {
				if leads[chosen[i]] < leads[chosen[min]] {
					min = i
				}
			}
			chosen[0], chosen[min] = chosen[min], chosen[0]
		}
		for _, r := range chosen {
			load[r]++
		}
		leads[chosen[0]]++
		plan.Partitions = append(plan.Partitions, planPartitions{Topic: p.Topic, Partition: p.Partition, Replicas: chosen})
	}
	// Partitions placed early could not know which brokers would end up
	// leading little: hand a lead to a replica that leads at least two
	// fewer partitions.
	for _, pp := range plan.Partitions {
		r := pp.Replicas
		min := 0
		for i := range r {
			if leads[r[i]] < leads[r[min]] {
				min = i
			}
		}
		if leads[r[0]]-leads[r[min]] >= 2 {
			leads[r[0]]--
			leads[r[min]]++
			r[0], r[min] = r[min], r[0]
		}
	}
	return plan, nil
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
