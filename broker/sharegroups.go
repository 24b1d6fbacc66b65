package broker

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/queue"
)

func (s *Server) handleShareGroupHeartbeat(ctx context.Context, rc *reqCtx, req *kmsg.ShareGroupHeartbeatRequest) (kmsg.Response, error) {
	var resp *kmsg.ShareGroupHeartbeatResponse
	if err := s.shareState.ensureTopic(ctx); err != nil {
		s.log.Warn("creating "+shareStateTopic, "err", err)
	}
	img := s.meta.Image()
	topics := imageTopics{img}
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(req.GroupID))
	host := rc.conn.remoteHost()
	if kerrv := s.onShard(req.GroupID, func(sh *coordinator.Shard) {
		resp = sh.ShareHeartbeat(s.now(), rc.header.clientID, host, req, topics, func(g *coordinator.ShareGroup) {
			g.SetOverrides(gc.Millis("share.session.timeout.ms"), gc.Millis("share.heartbeat.interval.ms"))
		})
	}); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleShareGroupDescribe(_ context.Context, _ *reqCtx, req *kmsg.ShareGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	topics := imageTopics{s.meta.Image()}
	for _, id := range req.GroupIDs {
		var d kmsg.ShareGroupDescribeResponseGroup
		if kerrv := s.onShard(id, func(sh *coordinator.Shard) { d = sh.ShareDescribe(id, topics, req.IncludeAuthorizedOperations) }); kerrv != nil {
			d = kmsg.NewShareGroupDescribeResponseGroup()
			d.GroupID, d.ErrorCode = id, kerrv.Code
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}

// shareGroupInfo asks the group's coordinator whether it is a share group
// and whether it has members.
func (s *Server) shareGroupInfo(group string) (exists, empty, other bool, kerrv *kerr.Error) {
	kerrv = s.onShard(group, func(sh *coordinator.Shard) { exists, empty, other = sh.ShareGroupInfo(group) })
	return
}

// liveStartOffset is a share partition's start offset and in-flight counts:
// from memory when this node serves it, else from the persisted state.
func (s *Server) liveStartOffset(key coordinator.ShareKey, st coordinator.ShareState) (int64, queue.Counts) {
	if sp := s.shares.loaded(key); sp != nil {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return sp.sp.StartOffset(), sp.sp.Counts()
	}
	var c queue.Counts
	for _, b := range st.Batches {
		n := b.Last - b.First + 1
		switch b.State {
		case queue.Acknowledged:
			c.Acknowledged += n
		case queue.Archived:
			c.Archived += n
		default:
			c.Available += n
		}
	}
	return st.StartOffset, c
}

func (s *Server) handleDescribeShareGroupOffsets(_ context.Context, _ *reqCtx, req *kmsg.DescribeShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	img := s.meta.Image()
	for _, rg := range req.Groups {
		og := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		og.GroupID = rg.GroupID
		exists, _, _, kerrv := s.shareGroupInfo(rg.GroupID)
		if kerrv != nil || !exists {
			if kerrv == nil {
				kerrv = kerr.GroupIDNotFound
			}
			og.ErrorCode = kerrv.Code
			resp.Groups = append(resp.Groups, og)
			continue
		}
		states := s.shareState.statesOf(rg.GroupID)
		type want struct {
			topic string
			parts []int32
		}
		var wants []want
		if rg.Topics == nil {
			byTopic := map[string][]int32{}
			for k := range states {
				if t := topicByID(img, k.TopicID); t != nil {
					byTopic[t.Name] = append(byTopic[t.Name], k.Partition)
				}
			}
			for name, ps := range byTopic {
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				wants = append(wants, want{name, ps})
			}
			sort.Slice(wants, func(i, j int) bool { return wants[i].topic < wants[j].topic })
		} else {
			for _, t := range rg.Topics {
				wants = append(wants, want{t.Topic, t.Partitions})
			}
		}
		for _, w := range wants {
			ot := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			ot.Topic = w.topic
			t := img.Topics[w.topic]
			if t != nil {
				ot.TopicID = t.ID
			}
			for _, part := range w.parts {
				op := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				op.Partition = part
				op.StartOffset, op.LeaderEpoch, op.Lag = -1, -1, -1
				if t == nil || int(part) >= len(t.Partitions) {
					op.ErrorCode = kerr.UnknownTopicOrPartition.Code
					ot.Partitions = append(ot.Partitions, op)
					continue
				}
				key := shareKeyOf(rg.GroupID, t, part)
				if st, ok := states[key]; ok {
					start, counts := s.liveStartOffset(key, st)
					op.StartOffset = start
					op.LeaderEpoch = t.Partitions[part].LeaderEpoch
					if p := s.logs.Partition(t.Name, part); p != nil && start >= 0 {
						op.Lag = max(p.HighWatermark()-start-counts.Acknowledged-counts.Archived, 0)
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

func (s *Server) handleAlterShareGroupOffsets(ctx context.Context, _ *reqCtx, req *kmsg.AlterShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	_, empty, other, kerrv := s.shareGroupInfo(req.GroupID)
	switch {
	case kerrv != nil:
		resp.ErrorCode = kerrv.Code
		return resp, nil
	case other:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	case !empty:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp, nil
	}
	img := s.meta.Image()
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t := img.Topics[rt.Topic]
		if t != nil {
			ot.TopicID = t.ID
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			if t == nil || int(rp.Partition) >= len(t.Partitions) {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			key := shareKeyOf(req.GroupID, t, rp.Partition)
			cur, _, _ := s.shareState.read(key)
			st := coordinator.ShareState{LeaderEpoch: t.Partitions[rp.Partition].LeaderEpoch}
			st.StartOffset, st.StateEpoch = rp.StartOffset, cur.StateEpoch+1
			s.shares.drop(key)
			op.ErrorCode = errorCode(s.shareState.write(ctx, key, &st))
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleDeleteShareGroupOffsets(ctx context.Context, _ *reqCtx, req *kmsg.DeleteShareGroupOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	exists, empty, _, kerrv := s.shareGroupInfo(req.GroupID)
	switch {
	case kerrv != nil:
		resp.ErrorCode = kerrv.Code
		return resp, nil
	case !exists:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	case !empty:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp, nil
	}
	img := s.meta.Image()
	states := s.shareState.statesOf(req.GroupID)
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
		for key := range states {
			if key.TopicID != t.ID {
				continue
			}
			s.shares.drop(key)
			if err := s.shareState.write(ctx, key, nil); err != nil {
				ot.ErrorCode = errorCode(err)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// deleteShareState removes every share partition state of a deleted group.
func (s *Server) deleteShareState(ctx context.Context, group string) {
	for key := range s.shareState.statesOf(group) {
		s.shares.drop(key)
		if err := s.shareState.write(ctx, key, nil); err != nil {
			s.log.Warn("deleting share state", "group", group, "err", err)
		}
	}
}

func stateBatchOf(first, last int64, state int8, count int16) queue.StateBatch {
	return queue.StateBatch{First: first, Last: last, State: queue.State(state), DeliveryCount: count}
}
