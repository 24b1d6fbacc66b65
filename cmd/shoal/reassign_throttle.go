package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
)

// Replication throttles of a reassignment, set and cleared as Kafka's
// kafka-reassign-partitions.sh does: --execute --throttle sets the
// brokers' leader/follower.replication.throttled.rate and the moving
// topics' leader/follower.replication.throttled.replicas; --verify clears
// them once every partition of the plan has moved.

// Kafka's names of the throttle configs.
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

// reassignThrottles is what a throttled plan sets.
type reassignThrottles struct {
	// leader and follower are each moving topic's throttled replicas: the
	// current replicas send (leader), the added replicas fetch (follower).
	leader, follower map[string]string
	// brokers are every broker a moving partition is on, now or after.
	brokers []int32
}

// partitionMove is where a moving partition's replicas go from and to.
type partitionMove struct {
	topicPartition
	from, to []int32
}

// planMoves is every move the throttles must cover, as Kafka's tool works
// them out: each reassignment in progress (busy), from its replicas
// without those being added to its replicas without those being removed;
// then each partition of plan whose replicas change, from where it is now
// (current; for one in progress, where that reassignment started) to the
// plan's replicas. Moves come in topic and partition order.
func planMoves(current []planPartitions, busy map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition, plan reassignPlan) []partitionMove {
	moves := map[topicPartition]partitionMove{}
	for tp, r := range busy {
		moves[tp] = partitionMove{tp, withoutIDs(r.Replicas, r.AddingReplicas), withoutIDs(r.Replicas, r.RemovingReplicas)}
	}
	now := map[topicPartition][]int32{}
	for _, p := range current {
		now[topicPartition{p.Topic, p.Partition}] = p.Replicas
	}
	for _, p := range plan.Partitions {
		tp := topicPartition{p.Topic, p.Partition}
		m, ok := moves[tp]
		if !ok {
			m = partitionMove{tp, now[tp], nil}
		}
		m.to = p.Replicas
		if slices.Equal(m.from, m.to) {
			delete(moves, tp)
			continue
		}
		moves[tp] = m
	}
	out := slices.Collect(maps.Values(moves))
	sortByTopicPartition(out, func(m partitionMove) (string, int32) { return m.topic, m.partition })
	return out
}

// withoutIDs is ids without those in drop.
func withoutIDs(ids, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(ids), func(id int32) bool { return slices.Contains(drop, id) })
}

// planThrottles works out the throttles of moves as Kafka does: every
// replica a partition moves from may lead it and is leader-throttled;
// every replica it moves to and was not on is follower-throttled; every
// broker either side is rate-limited.
func planThrottles(moves []partitionMove) reassignThrottles {
	leader, follower := map[string][][2]int32{}, map[string][][2]int32{}
	var brokers []int32
	for _, m := range moves {
		for _, b := range m.from {
			leader[m.topic] = append(leader[m.topic], [2]int32{m.partition, b})
		}
		for _, b := range m.to {
			if !slices.Contains(m.from, b) {
				follower[m.topic] = append(follower[m.topic], [2]int32{m.partition, b})
			}
		}
		brokers = append(brokers, m.from...)
		brokers = append(brokers, m.to...)
	}
	slices.Sort(brokers)
	th := reassignThrottles{leader: map[string]string{}, follower: map[string]string{}, brokers: slices.Compact(brokers)}
	for t, pairs := range leader {
		th.leader[t] = config.ThrottledReplicas(pairs)
	}
	for t, pairs := range follower {
		th.follower[t] = config.ThrottledReplicas(pairs)
	}
	return th
}

// topics lists the moving topics in name order.
func (th reassignThrottles) topics() []string {
	var ts []string
	for t := range th.leader {
		ts = append(ts, t)
	}
	for t := range th.follower {
		if _, ok := th.leader[t]; !ok {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// setThrottles sets a throttle of rate bytes/s for the moving partitions
// of plan, before they start moving, and for the reassignments already in
// progress (busy), whose throttled replicas stay listed beside the plan's
// and whose brokers take the new rate.
func setThrottles(ctx context.Context, adm *kadm.Client, plan reassignPlan, busy map[topicPartition]kmsg.ListPartitionReassignmentsResponseTopicPartition, rate int64) (reassignThrottles, error) {
	var topics []string
	for _, p := range plan.Partitions {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	current, err := currentAssignment(ctx, adm, topics...)
	if err != nil {
		return reassignThrottles{}, err
	}
	th := planThrottles(planMoves(current, busy, plan))
	for _, t := range th.topics() {
		var alters []kadm.AlterConfig
		for _, kv := range [][2]string{{leaderThrottledReplicas, th.leader[t]}, {followerThrottledReplicas, th.follower[t]}} {
			op := kadm.SetConfig
			if kv[1] == "" {
				op = kadm.DeleteConfig
			}
			alters = append(alters, kadm.AlterConfig{Op: op, Name: kv[0], Value: &kv[1]})
		}
		resps, err := adm.AlterTopicConfigs(ctx, alters, t)
		if err := alterConfigsFailure(resps, err, fmt.Sprintf("set the replication throttle of topic %q", t), failure("topic %q does not exist", t)); err != nil {
			return th, err
		}
	}
	if len(th.brokers) == 0 {
		return th, nil
	}
	v := strconv.FormatInt(rate, 10)
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: leaderThrottledRate, Value: &v},
		{Op: kadm.SetConfig, Name: followerThrottledRate, Value: &v},
	}, th.brokers...)
	return th, alterConfigsFailure(resps, err, "set the replication throttle rate", nil)
}

// clearThrottles removes the throttle rates from every broker of the
// cluster and the throttled replicas from topics, as Kafka's --verify does
// once a plan is complete. It returns the brokers cleared.
func clearThrottles(ctx context.Context, adm *kadm.Client, topics []string) ([]int32, error) {
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return nil, failure("list brokers: %s", describeErr(err))
	}
	brokers := bs.NodeIDs()
	slices.Sort(brokers)
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: leaderThrottledRate},
		{Op: kadm.DeleteConfig, Name: followerThrottledRate},
	}, brokers...)
	if err := alterConfigsFailure(resps, err, "clear the replication throttle rate", nil); err != nil {
		return brokers, err
	}
	for _, t := range topics {
		resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.DeleteConfig, Name: leaderThrottledReplicas},
			{Op: kadm.DeleteConfig, Name: followerThrottledReplicas},
		}, t)
		if err := alterConfigsFailure(resps, err, fmt.Sprintf("clear the replication throttle of topic %q", t), nil); err != nil {
			return brokers, err
		}
	}
	return brokers, nil
}
