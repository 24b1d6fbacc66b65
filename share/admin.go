package share

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// The share group admin operations (AlterShareGroupOffsets,
// DeleteShareGroupOffsets, DeleteGroups) change persisted state on the share
// coordinators of the keys (see Stores), and the in-memory share partition
// is held by the leader of the log partition, another node again: around an
// admin change of the persisted state, that leader must forget it so that
// its next fetch loads the new state (Forget).

// KeyOf is the share key of a group's topic partition.
func KeyOf(group string, t *raftmeta.Topic, partition int32) coordinator.ShareKey {
	return coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}
}

// CandidateKeys are the keys a group may have state for when no topics are
// named (DescribeShareGroupOffsets for all topics, DeleteGroups): every
// partition of every topic but the internal ones. Share coordinators keep
// no index by group across nodes, and the group's coordinator does not
// remember which partitions the group initialized (an empty group has no
// subscriptions left), so the cluster-wide answer is to ask the share
// coordinators about every partition: one ReadShareGroupStateSummary per
// node, each a lookup per key.
func CandidateKeys(img *raftmeta.Image, group string) []coordinator.ShareKey {
	var keys []coordinator.ShareKey
	for name, t := range img.Topics {
		if raftmeta.IsInternalTopic(name) {
			continue
		}
		for p := range t.Partitions {
			keys = append(keys, KeyOf(group, t, int32(p)))
		}
	}
	return keys
}

// ResetStates initializes the state of keys afresh at the given start
// offsets (AlterShareGroupOffsets of an empty group): no record states, the
// next state epoch. The partitions' leaders forget their in-memory share
// partitions before and after, so that no fetch keeps the old state. It
// returns each key's error.
func (m *Manager) ResetStates(ctx context.Context, group string, starts map[coordinator.ShareKey]int64) map[coordinator.ShareKey]*kerr.Error {
	keys := slices.Collect(maps.Keys(starts))
	errs := map[coordinator.ShareKey]*kerr.Error{}
	states := map[coordinator.ShareKey]coordinator.ShareState{}
	var altered []coordinator.ShareKey
	for k, sum := range m.stores.Summaries(ctx, group, keys) {
		if sum.Err != nil {
			errs[k] = sum.Err
			continue
		}
		var st coordinator.ShareState
		st.StartOffset, st.StateEpoch = starts[k], sum.StateEpoch+1
		states[k] = st
		altered = append(altered, k)
	}
	if len(altered) == 0 {
		return errs
	}
	m.Forget(ctx, group, altered)
	for k, e := range m.stores.Initialize(ctx, group, states) {
		errs[k] = e
	}
	for k, e := range m.Forget(ctx, group, altered) {
		if errs[k] == nil {
			errs[k] = e
		}
	}
	return errs
}

// DeleteStates deletes whatever state group has among keys, on every share
// coordinator, and makes the partitions' leaders forget it. It returns the
// keys that failed, with their errors.
func (m *Manager) DeleteStates(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	errs := map[coordinator.ShareKey]*kerr.Error{}
	var found []coordinator.ShareKey
	for k, sum := range m.stores.Summaries(ctx, group, keys) {
		switch {
		case sum.Err != nil:
			errs[k] = sum.Err
		case sum.Found:
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return errs
	}
	m.Forget(ctx, group, found)
	for k, e := range m.stores.Delete(ctx, group, found) {
		if e != nil {
			errs[k] = e
		}
	}
	for k, e := range m.Forget(ctx, group, found) {
		if e != nil && errs[k] == nil {
			errs[k] = e
		}
	}
	return errs
}

// Forget makes the leaders of keys' log partitions forget their in-memory
// share partitions, so that the next fetch loads the persisted state again.
// The group's coordinator calls this around an admin change of the
// persisted state (while the group has no members). A remote leader is told
// with a DeleteShareGroupOffsets naming the topics, which a node serves for
// another node (inter-broker client id) by forgetting the group's share
// partitions of those topics (ForgetTopics). It returns the keys whose
// leader could not be told.
func (m *Manager) Forget(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	img := m.d.Image()
	nodes := map[int32][]coordinator.ShareKey{}
	for _, k := range keys {
		t := img.TopicByID(k.TopicID)
		if !t.HasPartition(k.Partition) {
			m.Drop(k)
			continue
		}
		leader := t.Partitions[k.Partition].Leader
		switch {
		case leader == m.nodeID:
			m.Drop(k)
		case leader >= 0:
			nodes[leader] = append(nodes[leader], k)
		}
	}
	return eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = group
		names := map[string]bool{}
		for _, k := range keys {
			if t := img.TopicByID(k.TopicID); t != nil && !names[t.Name] {
				names[t.Name] = true
				rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
				rt.Topic = t.Name
				req.Topics = append(req.Topics, rt)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, remoteTimeout)
		defer cancel()
		r, err := m.d.Peers.Request(rctx, id, req)
		if err == nil && kerrOf(r.(*kmsg.DeleteShareGroupOffsetsResponse).ErrorCode) == nil {
			return nil
		}
		m.d.Log.Warn("telling a partition leader to reload share state", "node", id, "group", group, "err", err)
		out := make(map[coordinator.ShareKey]*kerr.Error, len(keys))
		for _, k := range keys {
			out[k] = kerr.CoordinatorNotAvailable
		}
		return out
	})
}

// ForgetTopics forgets this node's in-memory share partitions of group on
// the named topics (every partition; the ones it does not lead are not
// loaded).
func (m *Manager) ForgetTopics(group string, topics []string) {
	img := m.d.Image()
	for _, name := range topics {
		t := img.Topics[name]
		if t == nil {
			continue
		}
		for p := range t.Partitions {
			m.Drop(KeyOf(group, t, int32(p)))
		}
	}
}
