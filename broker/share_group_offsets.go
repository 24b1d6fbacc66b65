package broker

// The share group offset admin APIs (KIP-932), on every listener when
// share groups are enabled: DescribeShareGroupOffsets (key 90) v0-v1,
// AlterShareGroupOffsets (key 91) v0, DeleteShareGroupOffsets (key 92) v0.
//
// The offsets (share-partition start offsets) live with the share
// coordinators of several nodes; these handlers ask each with the share-state
// RPCs (share_group_state.go). DeleteShareGroupOffsets is also sent between
// nodes to drop a leader's in-memory share partitions.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/share"
)

// shareGroupInfo asks the group's coordinator whether it is a share group
// and whether it has members.
func (s *Server) shareGroupInfo(group string) (exists, empty, other bool, kerrv *kerr.Error) {
	kerrv = s.coord.Groups.Do(group, func(sh *coordinator.Shard) { exists, empty, other = sh.ShareGroupInfo(group) })
	return
}

// shareKeyIn is group's share-state key for partition part of the named
// topic, with the topic's metadata; ok is false when the image has no such
// partition, which the share offset APIs answer with
// UNKNOWN_TOPIC_OR_PARTITION.
func shareKeyIn(img *raftmeta.Image, group, topic string, part int32) (key coordinator.ShareKey, t *raftmeta.Topic, ok bool) {
	t = img.Topics[topic]
	if !t.HasPartition(part) {
		return coordinator.ShareKey{}, t, false
	}
	return share.KeyOf(group, t, part), t, true
}

// handleDescribeShareGroupOffsets reports the start offsets of a share
// group's partitions. Their state lives with the share coordinators of
// several nodes: each is asked with ReadShareGroupStateSummary. When the
// request names no topics, the group's partitions are those any share
// coordinator has state for, found by asking about every partition of every
// topic (see share.CandidateKeys); a share coordinator that cannot answer then
// fails the group with its retriable error, as the answer would be partial.
// As in Kafka, the group itself is not looked up: an id that names no share
// group (none at all, or a group of another type) is answered without an
// error, with no partitions or, for those named, no start offsets.
func (s *Server) handleDescribeShareGroupOffsets(ctx context.Context, _ *reqCtx, req *kmsg.DescribeShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	img := s.meta.Image()
	for _, rg := range req.Groups {
		og := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		og.GroupID = rg.GroupID
		exists, _, _, kerrv := s.shareGroupInfo(rg.GroupID)
		if kerrv != nil {
			og.ErrorCode = kerrv.Code
			resp.Groups = append(resp.Groups, og)
			continue
		}
		type want struct {
			topic string
			parts []int32
		}
		var (
			wants []want
			sums  map[coordinator.ShareKey]share.Summary
		)
		switch {
		case rg.Topics == nil && !exists:
			// Kafka lists the partitions of a group's share metadata, which
			// only a share group has.
		case rg.Topics == nil:
			sums = s.shares.States().Summaries(ctx, rg.GroupID, share.CandidateKeys(img, rg.GroupID))
			byTopic := map[string][]int32{}
			for k, sum := range sums {
				if sum.Err != nil {
					kerrv = sum.Err
					break
				}
				if !sum.Found {
					continue
				}
				if t := img.TopicByID(k.TopicID); t != nil {
					byTopic[t.Name] = append(byTopic[t.Name], k.Partition)
				}
			}
			if kerrv != nil {
				og.ErrorCode = kerrv.Code
				resp.Groups = append(resp.Groups, og)
				continue
			}
			for name, ps := range byTopic {
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				wants = append(wants, want{name, ps})
			}
			sort.Slice(wants, func(i, j int) bool { return wants[i].topic < wants[j].topic })
		default:
			var keys []coordinator.ShareKey
			for _, rt := range rg.Topics {
				wants = append(wants, want{rt.Topic, rt.Partitions})
				for _, part := range rt.Partitions {
					if key, _, ok := shareKeyIn(img, rg.GroupID, rt.Topic, part); ok {
						keys = append(keys, key)
					}
				}
			}
			sums = s.shares.States().Summaries(ctx, rg.GroupID, keys)
		}
		for _, w := range wants {
			ot := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			ot.Topic, ot.TopicID = w.topic, img.TopicID(w.topic)
			for _, part := range w.parts {
				op := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				op.Partition = part
				op.StartOffset, op.LeaderEpoch, op.Lag = -1, -1, -1
				key, t, ok := shareKeyIn(img, rg.GroupID, w.topic, part)
				if !ok {
					op.ErrorCode = kerr.UnknownTopicOrPartition.Code
					ot.Partitions = append(ot.Partitions, op)
					continue
				}
				sum := sums[key]
				switch {
				case sum.Err != nil:
					op.ErrorCode = sum.Err.Code
				case sum.Found:
					start, complete := sum.StartOffset, int64(sum.Complete)
					if ls, lc, ok := s.shares.Progress(key); ok {
						start, complete = ls, lc
					}
					op.StartOffset = start
					op.LeaderEpoch = t.Partitions[part].LeaderEpoch
					if hw := s.highWatermark(ctx, t.Name, part, t.Partitions[part].Leader); hw >= 0 && start >= 0 && complete >= 0 {
						op.Lag = max(hw-start-complete, 0)
					}
				}
				ot.Partitions = append(ot.Partitions, op)
			}
			og.Topics = append(og.Topics, ot)
		}
		resp.Groups = append(resp.Groups, og)
	}
	return resp, nil
}

// highWatermark is a partition's high watermark for share lag (KIP-1226):
// this node's when it holds a replica, else the leader's, asked with
// ListOffsets (latest, read_uncommitted) as Kafka's group coordinator asks
// it; -1 when neither can tell (the lag is then reported unknown).
func (s *Server) highWatermark(ctx context.Context, topic string, part, leader int32) int64 {
	if p := s.logs.Partition(topic, part); p != nil {
		return p.HighWatermark()
	}
	if leader < 0 || leader == s.cfg.NodeID {
		return -1
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = part, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.SetVersion(s.peerVersion(req.Key()))
	r, err := s.peers.Peers(cluster.LaneShare).Request(ctx, leader, req)
	if err != nil {
		return -1
	}
	resp := r.(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		return -1
	}
	return resp.Topics[0].Partitions[0].Offset
}

// offsetsChangeRefusal is the error of a request changing group's share
// offsets, which needs a share group without members, with Kafka's
// message; kerrv is the error of finding the group out, other that it is
// of another type. A zero code lets the change go on.
func offsetsChangeRefusal(group string, kerrv *kerr.Error, exists, other, empty bool) (int16, *string) {
	var msg string
	switch {
	case kerrv != nil:
		msg = kerrv.Description
	case other:
		kerrv, msg = kerr.GroupIDNotFound, "Group "+group+" is not a share group."
	case !exists:
		kerrv, msg = kerr.GroupIDNotFound, "Group "+group+" not found."
	case !empty:
		kerrv, msg = kerr.NonEmptyGroup, kerr.NonEmptyGroup.Description
	default:
		return 0, nil
	}
	return kerrv.Code, &msg
}

// handleAlterShareGroupOffsets sets the start offsets of an empty share
// group's partitions, creating the group if it does not exist: each state is initialized afresh (no record states,
// the next state epoch) on its share coordinator, and the partitions'
// leaders forget their in-memory share partitions so that the next fetch
// starts from the new offset.
func (s *Server) handleAlterShareGroupOffsets(ctx context.Context, _ *reqCtx, req *kmsg.AlterShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	// The group may not exist yet, nor __share_group_state: positioning a
	// share group before its first worker starts creates both, as in
	// Kafka.
	if err := s.coord.ShareState.EnsureTopic(ctx); err != nil {
		s.log.Warn("creating "+coordruntime.ShareStateTopic, "err", err)
	}
	var empty, other bool
	kerrv := s.coord.Groups.Do(req.GroupID, func(sh *coordinator.Shard) { empty, other = sh.EnsureShareGroup(req.GroupID) })
	if resp.ErrorCode, resp.ErrorMessage = offsetsChangeRefusal(req.GroupID, kerrv, !other, other, empty); resp.ErrorCode != 0 {
		return resp, nil
	}
	img := s.meta.Image()
	starts := map[coordinator.ShareKey]int64{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if key, _, ok := shareKeyIn(img, req.GroupID, rt.Topic, rp.Partition); ok {
				starts[key] = rp.StartOffset
			}
		}
	}
	errs := s.shares.ResetStates(ctx, req.GroupID, starts)
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, img.TopicID(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			if key, _, ok := shareKeyIn(img, req.GroupID, rt.Topic, rp.Partition); !ok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if e := errs[key]; e != nil {
				op.ErrorCode = e.Code
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// handleDeleteShareGroupOffsets deletes the state of an empty share group
// on the named topics, on every share coordinator holding some.
//
// Between nodes it has a second use: sent by another node (inter-broker
// client id), it only makes this node, as leader of the topics'
// partitions, forget the group's in-memory share partitions of those
// topics after that node changed their persisted state (share.Manager.Forget).
func (s *Server) handleDeleteShareGroupOffsets(ctx context.Context, rc *reqCtx, req *kmsg.DeleteShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	if isInterBroker(rc) {
		names := make([]string, 0, len(req.Topics))
		for _, rt := range req.Topics {
			names = append(names, rt.Topic)
		}
		s.shares.ForgetTopics(req.GroupID, names)
		return resp, nil
	}
	exists, empty, other, kerrv := s.shareGroupInfo(req.GroupID)
	if resp.ErrorCode, resp.ErrorMessage = offsetsChangeRefusal(req.GroupID, kerrv, exists, other, empty); resp.ErrorCode != 0 {
		return resp, nil
	}
	img := s.meta.Image()
	var keys []coordinator.ShareKey
	for _, rt := range req.Topics {
		if t := img.Topics[rt.Topic]; t != nil {
			for p := range t.Partitions {
				keys = append(keys, share.KeyOf(req.GroupID, t, int32(p)))
			}
		}
	}
	errs := s.shares.DeleteStates(ctx, req.GroupID, keys)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t := img.Topics[rt.Topic]
		if t == nil {
			ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.TopicID = t.ID
		for p := range t.Partitions {
			if e := errs[share.KeyOf(req.GroupID, t, int32(p))]; e != nil {
				ot.ErrorCode = e.Code
				break
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// deleteShareState removes every share partition state of a deleted group,
// on every share coordinator.
func (s *Server) deleteShareState(ctx context.Context, group string) {
	var failed int
	var last *kerr.Error
	for _, e := range s.shares.DeleteStates(ctx, group, share.CandidateKeys(s.meta.Image(), group)) {
		if e != nil {
			failed, last = failed+1, e
		}
	}
	if failed > 0 {
		s.log.Warn("deleting share state", "group", group, "partitions_failed", failed, "err", last)
	}
}

func stateBatchOf(first, last int64, state int8, count int16) queue.StateBatch {
	return queue.StateBatch{First: first, Last: last, State: queue.State(state), DeliveryCount: count}
}
