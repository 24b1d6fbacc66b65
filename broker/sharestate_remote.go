package broker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/raftmeta"
)

// Share state across the cluster, for the share group admin APIs.
//
// The state of a share partition (group, topic, partition) lives with the
// share coordinator leading the __share_group_state partition its key
// hashes to, which is often not the group's coordinator serving the admin
// APIs. These helpers group keys by the node coordinating their state and
// send each node one ShareGroupState request (ReadShareGroupStateSummary,
// InitializeShareGroupState, DeleteShareGroupState), handled in process
// when that node is this one. A key whose state partition has no leader,
// or whose node cannot be reached, gets COORDINATOR_NOT_AVAILABLE; a node
// that no longer leads (or still loads) the state partition answers
// NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS): all retriable.
//
// The in-memory share partition is held by the leader of the log partition,
// another node again: after an admin change of the persisted state, that
// leader must forget it so that its next fetch loads the new state
// (forgetShareParts).

// stateSummary is what a share coordinator reports of one key.
type stateSummary struct {
	found       bool
	startOffset int64
	stateEpoch  int32
	// complete is the number of records at or past the start offset whose
	// delivery is complete (acknowledged or archived); -1 if unknown.
	complete int32
	err      *kerr.Error
}

// kerrOf is the *kerr.Error of a response error code (nil for 0).
func kerrOf(code int16) *kerr.Error {
	if code == 0 {
		return nil
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}

// byStateNode groups keys by the node coordinating their state. Keys with
// no coordinator go to failed. Without a __share_group_state topic no key
// has state: every key goes to none.
func (s *Server) byStateNode(keys []coordinator.ShareKey) (nodes map[int32][]coordinator.ShareKey, failed map[coordinator.ShareKey]*kerr.Error, none bool) {
	if s.meta.Image().Topics[coordruntime.ShareStateTopic] == nil {
		return nil, nil, true
	}
	nodes = map[int32][]coordinator.ShareKey{}
	failed = map[coordinator.ShareKey]*kerr.Error{}
	for _, k := range keys {
		id, kerrv := s.shares.stateCoordinator(k)
		if kerrv != nil {
			failed[k] = kerrv
			continue
		}
		nodes[id] = append(nodes[id], k)
	}
	return nodes, failed, false
}

// stateRequest sends req to node id's share coordinator, in process when
// it is this node.
func (s *Server) stateRequest(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	if id == s.cfg.NodeID {
		switch r := req.(type) {
		case *kmsg.ReadShareGroupStateSummaryRequest:
			return s.handleReadShareGroupStateSummary(ctx, nil, r)
		case *kmsg.InitializeShareGroupStateRequest:
			return s.handleInitializeShareGroupState(ctx, nil, r)
		case *kmsg.DeleteShareGroupStateRequest:
			return s.handleDeleteShareGroupState(ctx, nil, r)
		}
	}
	req.SetVersion(s.peerVersion(req.Key()))
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return s.shares.peers.Request(ctx, id, req)
}

// eachNode runs fn for every node's keys concurrently and waits for all.
func eachNode[V any](nodes map[int32][]coordinator.ShareKey, fn func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]V) map[coordinator.ShareKey]V {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[coordinator.ShareKey]V{}
	)
	for id, keys := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := fn(id, keys)
			mu.Lock()
			for k, v := range r {
				out[k] = v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// topicPartKey identifies a partition in a ShareGroupState response.
type topicPartKey struct {
	id   [16]byte
	part int32
}

// byTopic lists keys' partitions per topic id, in first-seen order.
func byTopic(keys []coordinator.ShareKey, fn func(id [16]byte, parts []int32)) {
	var order [][16]byte
	parts := map[[16]byte][]int32{}
	for _, k := range keys {
		if _, ok := parts[k.TopicID]; !ok {
			order = append(order, k.TopicID)
		}
		parts[k.TopicID] = append(parts[k.TopicID], k.Partition)
	}
	for _, id := range order {
		fn(id, parts[id])
	}
}

// stateSummaries reads the state of keys (all of one group) from their
// share coordinators.
func (s *Server) stateSummaries(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]stateSummary {
	nodes, failed, none := s.byStateNode(keys)
	out := map[coordinator.ShareKey]stateSummary{}
	if none {
		for _, k := range keys {
			out[k] = stateSummary{startOffset: -1, complete: -1}
		}
		return out
	}
	for k, e := range failed {
		out[k] = stateSummary{startOffset: -1, complete: -1, err: e}
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]stateSummary {
		req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
		req.GroupID = group
		byTopic(keys, func(tid [16]byte, parts []int32) {
			rt := kmsg.NewReadShareGroupStateSummaryRequestTopic()
			rt.TopicID = tid
			for _, p := range parts {
				rp := kmsg.NewReadShareGroupStateSummaryRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		})
		answers := map[topicPartKey]stateSummary{}
		if r, err := s.stateRequest(ctx, id, req); err == nil {
			for _, rt := range r.(*kmsg.ReadShareGroupStateSummaryResponse).Topics {
				for _, rp := range rt.Partitions {
					// A state initialized without a start offset (-1)
					// still has a leader epoch of 0 or more.
					answers[topicPartKey{rt.TopicID, rp.Partition}] = stateSummary{
						found:       rp.ErrorCode == 0 && (rp.StartOffset >= 0 || rp.LeaderEpoch >= 0),
						startOffset: rp.StartOffset, stateEpoch: rp.StateEpoch,
						complete: rp.DeliveryCompleteCount, err: kerrOf(rp.ErrorCode),
					}
				}
			}
		} else if ctx.Err() == nil {
			s.log.Debug("reading share state summaries", "node", id, "group", group, "err", err)
		}
		res := make(map[coordinator.ShareKey]stateSummary, len(keys))
		for _, k := range keys {
			a, ok := answers[topicPartKey{k.TopicID, k.Partition}]
			if !ok {
				a = stateSummary{startOffset: -1, complete: -1, err: kerr.CoordinatorNotAvailable}
			}
			res[k] = a
		}
		return res
	})
	for k, v := range got {
		out[k] = v
	}
	return out
}

// initializeStates sets keys' start offsets with their share coordinators
// (InitializeShareGroupState: no record states, the given state epoch) and
// returns each key's error.
func (s *Server) initializeStates(ctx context.Context, group string, states map[coordinator.ShareKey]coordinator.ShareState) map[coordinator.ShareKey]*kerr.Error {
	keys := make([]coordinator.ShareKey, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	nodes, failed, none := s.byStateNode(keys)
	if none {
		failed = map[coordinator.ShareKey]*kerr.Error{}
		for _, k := range keys {
			failed[k] = kerr.CoordinatorNotAvailable
		}
		return failed
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		req := kmsg.NewPtrInitializeShareGroupStateRequest()
		req.GroupID = group
		byTopic(keys, func(tid [16]byte, parts []int32) {
			rt := kmsg.NewInitializeShareGroupStateRequestTopic()
			rt.TopicID = tid
			for _, p := range parts {
				st := states[coordinator.ShareKey{Group: group, TopicID: tid, Partition: p}]
				rp := kmsg.NewInitializeShareGroupStateRequestTopicPartition()
				rp.Partition, rp.StateEpoch, rp.StartOffset = p, st.StateEpoch, st.StartOffset
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		})
		answers := map[topicPartKey]*kerr.Error{}
		if r, err := s.stateRequest(ctx, id, req); err == nil {
			for _, rt := range r.(*kmsg.InitializeShareGroupStateResponse).Topics {
				for _, rp := range rt.Partitions {
					answers[topicPartKey{rt.TopicID, rp.Partition}] = kerrOf(rp.ErrorCode)
				}
			}
		}
		return collectErrs(keys, answers)
	})
	for k, v := range got {
		failed[k] = v
	}
	return failed
}

// deleteStates deletes keys' states with their share coordinators and
// returns each key's error.
func (s *Server) deleteStates(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	nodes, failed, none := s.byStateNode(keys)
	if none {
		return map[coordinator.ShareKey]*kerr.Error{}
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		req := kmsg.NewPtrDeleteShareGroupStateRequest()
		req.GroupID = group
		byTopic(keys, func(tid [16]byte, parts []int32) {
			rt := kmsg.NewDeleteShareGroupStateRequestTopic()
			rt.TopicID = tid
			for _, p := range parts {
				rp := kmsg.NewDeleteShareGroupStateRequestTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		})
		answers := map[topicPartKey]*kerr.Error{}
		if r, err := s.stateRequest(ctx, id, req); err == nil {
			for _, rt := range r.(*kmsg.DeleteShareGroupStateResponse).Topics {
				for _, rp := range rt.Partitions {
					answers[topicPartKey{rt.TopicID, rp.Partition}] = kerrOf(rp.ErrorCode)
				}
			}
		}
		return collectErrs(keys, answers)
	})
	for k, v := range got {
		failed[k] = v
	}
	return failed
}

// collectErrs maps keys to their answered errors; a key without an answer
// (the node could not be asked) gets COORDINATOR_NOT_AVAILABLE.
func collectErrs(keys []coordinator.ShareKey, answers map[topicPartKey]*kerr.Error) map[coordinator.ShareKey]*kerr.Error {
	out := make(map[coordinator.ShareKey]*kerr.Error, len(keys))
	for _, k := range keys {
		e, ok := answers[topicPartKey{k.TopicID, k.Partition}]
		if !ok {
			e = kerr.CoordinatorNotAvailable
		}
		out[k] = e
	}
	return out
}

// forgetShareParts makes the leaders of keys' log partitions forget their
// in-memory share partitions, so that the next fetch loads the persisted
// state again. The group's coordinator calls this around an admin change of
// the persisted state (while the group has no members). A remote leader is
// told with a DeleteShareGroupOffsets naming the topics, which a node
// serves for another node (inter-broker client id) by forgetting the
// group's share partitions of those topics (see
// handleDeleteShareGroupOffsets). It returns the keys whose leader could
// not be told.
func (s *Server) forgetShareParts(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	img := s.meta.Image()
	nodes := map[int32][]coordinator.ShareKey{}
	for _, k := range keys {
		t := topicByID(img, k.TopicID)
		if t == nil || int(k.Partition) >= len(t.Partitions) {
			s.shares.drop(k)
			continue
		}
		leader := t.Partitions[k.Partition].Leader
		switch {
		case leader == s.cfg.NodeID:
			s.shares.drop(k)
		case leader >= 0:
			nodes[leader] = append(nodes[leader], k)
		}
	}
	return eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = group
		names := map[string]bool{}
		for _, k := range keys {
			if t := topicByID(img, k.TopicID); t != nil && !names[t.Name] {
				names[t.Name] = true
				rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
				rt.Topic = t.Name
				req.Topics = append(req.Topics, rt)
			}
		}
		r, err := s.stateRequest(ctx, id, req)
		if err == nil && kerrOf(r.(*kmsg.DeleteShareGroupOffsetsResponse).ErrorCode) == nil {
			return nil
		}
		s.log.Warn("telling a partition leader to reload share state", "node", id, "group", group, "err", err)
		out := make(map[coordinator.ShareKey]*kerr.Error, len(keys))
		for _, k := range keys {
			out[k] = kerr.CoordinatorNotAvailable
		}
		return out
	})
}

// forgetLocal forgets this node's in-memory share partitions of group on
// the named topics (every partition; the ones it does not lead are not
// loaded).
func (s *Server) forgetLocal(img *raftmeta.Image, group string, topics []string) {
	for _, name := range topics {
		t := img.Topics[name]
		if t == nil {
			continue
		}
		for p := range t.Partitions {
			s.shares.drop(shareKeyOf(group, t, int32(p)))
		}
	}
}

// candidateKeys are the keys a group may have state for when no topics are
// named (DescribeShareGroupOffsets for all topics, DeleteGroups): every
// partition of every topic but the internal ones. Share coordinators keep
// no index by group across nodes, and the group's coordinator does not
// remember which partitions the group initialized (an empty group has no
// subscriptions left), so the cluster-wide answer is to ask the share
// coordinators about every partition: one ReadShareGroupStateSummary per
// node, each a lookup per key.
func candidateKeys(img *raftmeta.Image, group string) []coordinator.ShareKey {
	var keys []coordinator.ShareKey
	for name, t := range img.Topics {
		if raftmeta.IsInternalTopic(name) {
			continue
		}
		for p := range t.Partitions {
			keys = append(keys, shareKeyOf(group, t, int32(p)))
		}
	}
	return keys
}
