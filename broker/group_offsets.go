package broker

// The group offset APIs, on every listener: OffsetCommit (key 8)
// v2-v10, OffsetFetch (key 9) v1-v10, OffsetDelete (key 47) v0.
//
// Committed offsets live on the group's coordinator shard, written to
// __consumer_offsets through the leader-append path and materialized in pebble
// (coordruntime.Groups). OffsetFetch v8+ batches groups; v10 names
// topics by id. A shard that is not (yet) this node's answers NOT_COORDINATOR
// or COORDINATOR_LOAD_IN_PROGRESS on every partition. RequireStable (v7+)
// answers UNSTABLE_OFFSET_COMMIT for an offset a transaction has pending.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

func (s *Server) handleOffsetCommit(_ context.Context, _ *reqCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	var resp *kmsg.OffsetCommitResponse
	topics := coordruntime.ImageTopics(s.meta.Image())
	if kerrv := s.coord.Groups.Do(req.Group, func(sh *coordinator.Shard) { resp = sh.OffsetCommit(s.now(), req, topics) }); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			ot := kmsg.NewOffsetCommitResponseTopic()
			ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				op := kmsg.NewOffsetCommitResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
	}
	return resp, nil
}

func (s *Server) handleOffsetFetch(_ context.Context, _ *reqCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	img := s.meta.Image()
	groups := req.Groups
	if req.Version < 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		if req.Topics != nil {
			g.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		groups = []kmsg.OffsetFetchRequestGroup{g}
	}
	for _, rg := range groups {
		og := kmsg.NewOffsetFetchResponseGroup()
		og.Group = rg.Group
		var fetch []coordinator.FetchTopic
		if rg.Topics != nil {
			fetch = make([]coordinator.FetchTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				name := t.Topic
				if req.Version >= 10 {
					if tt := img.TopicByID(t.TopicID); tt != nil {
						name = tt.Name
					}
				}
				fetch = append(fetch, coordinator.FetchTopic{Topic: name, Partitions: t.Partitions})
			}
		}
		memberID, epoch := "", int32(-1)
		if rg.MemberID != nil {
			memberID, epoch = *rg.MemberID, rg.MemberEpoch
		}
		var topics []kmsg.OffsetFetchResponseGroupTopic
		var ferr error
		kerrv := s.coord.Groups.Do(rg.Group, func(sh *coordinator.Shard) {
			topics, ferr = sh.OffsetFetch(rg.Group, memberID, epoch, fetch)
			if req.RequireStable {
				markUnstable(sh, rg.Group, topics)
			}
		})
		switch {
		case kerrv != nil:
			og.ErrorCode = kerrv.Code
		case ferr != nil:
			og.ErrorCode = errorCode(ferr)
		default:
			if req.Version >= 10 {
				for i := range topics {
					topics[i].TopicID = img.TopicID(topics[i].Topic)
				}
			}
			og.Topics = topics
		}
		resp.Groups = append(resp.Groups, og)
	}
	if req.Version < 8 {
		g := resp.Groups[0]
		resp.Groups = nil
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
				})
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return resp, nil
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT for the partitions whose
// offset a transaction has pending (OffsetFetch with RequireStable, KIP-447):
// the consumer retries until the transaction ends, so it never starts from
// an offset its predecessor's commit is about to move.
func markUnstable(sh *coordinator.Shard, group string, topics []kmsg.OffsetFetchResponseGroupTopic) {
	for i := range topics {
		for j := range topics[i].Partitions {
			p := &topics[i].Partitions[j]
			if sh.PendingTxnOffset(group, topics[i].Topic, p.Partition) {
				p.ErrorCode = kerr.UnstableOffsetCommit.Code
				p.Offset = -1
			}
		}
	}
}

func (s *Server) handleOffsetDelete(_ context.Context, _ *reqCtx, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	topics := coordruntime.ImageTopics(s.meta.Image())
	return s.onGroupShard(req.Group, req, func(sh *coordinator.Shard) kmsg.Response { return sh.OffsetDelete(req, topics) })
}
