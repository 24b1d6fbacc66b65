package broker

// The share-state RPCs (KIP-932), served only on the inter-broker listener
// (see api_versions.go): InitializeShareGroupState (key 83) v0,
// ReadShareGroupState (key 84) v0, WriteShareGroupState (key 85) v0-v1,
// DeleteShareGroupState (key 86) v0, ReadShareGroupStateSummary (key 87) v0-v1.
//
// A share-partition leader on another node sends them to the share
// coordinator, the leader of the __share_group_state partition the key
// hashes to; its state store is coordruntime.ShareCoordinator.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

// handleReadShareGroupState serves the leader of each share partition
// named: its leader epoch is claimed (ShareCoordinator.ReadAsLeader).
func (s *Server) handleReadShareGroupState(ctx context.Context, _ *reqCtx, req *kmsg.ReadShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewReadShareGroupStateResponseTopic()
		ot.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewReadShareGroupStateResponseTopicPartition()
			op.Partition = rp.Partition
			op.StartOffset = -1
			st, ok, err := s.coord.ShareState.ReadAsLeader(ctx, coordinator.ShareKey{Group: req.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}, rp.LeaderEpoch)
			switch {
			case err != nil:
				op.ErrorCode = errorCode(err)
			case ok:
				op.StateEpoch, op.StartOffset = st.StateEpoch, st.StartOffset
				coordinator.SetDeadLetterProducer(&op.UnknownTags, st.Producer)
				for _, b := range st.Batches {
					sb := kmsg.NewReadShareGroupStateResponseTopicPartitionStateBatch()
					sb.FirstOffset, sb.LastOffset, sb.DeliveryState, sb.DeliveryCount = b.First, b.Last, int8(b.State), b.DeliveryCount
					op.StateBatches = append(op.StateBatches, sb)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleReadShareGroupStateSummary(_ context.Context, _ *reqCtx, req *kmsg.ReadShareGroupStateSummaryRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateSummaryResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewReadShareGroupStateSummaryResponseTopic()
		ot.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewReadShareGroupStateSummaryResponseTopicPartition()
			op.Partition = rp.Partition
			op.StartOffset, op.LeaderEpoch = -1, -1
			sum, ok, kerrv := s.coord.ShareState.Summary(coordinator.ShareKey{Group: req.GroupID, TopicID: rt.TopicID, Partition: rp.Partition})
			switch {
			case kerrv != nil:
				op.ErrorCode = kerrv.Code
			case ok:
				op.StateEpoch, op.StartOffset, op.LeaderEpoch = sum.StateEpoch, sum.StartOffset, sum.LeaderEpoch
				op.DeliveryCompleteCount = sum.DeliveryComplete
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleWriteShareGroupState(ctx context.Context, _ *reqCtx, req *kmsg.WriteShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
	type pending struct {
		op   *kmsg.WriteShareGroupStateResponseTopicPartition
		done <-chan error
	}
	var waits []pending
	for _, rt := range req.Topics {
		ot := kmsg.NewWriteShareGroupStateResponseTopic()
		ot.TopicID = rt.TopicID
		ot.Partitions = make([]kmsg.WriteShareGroupStateResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, ot)
	}
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			op := &resp.Topics[i].Partitions[j]
			*op = kmsg.NewWriteShareGroupStateResponseTopicPartition()
			op.Partition = rp.Partition
			key := coordinator.ShareKey{Group: req.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}
			st := coordinator.ShareState{LeaderEpoch: rp.LeaderEpoch}
			st.StartOffset, st.StateEpoch = rp.StartOffset, rp.StateEpoch
			st.Producer = coordinator.DeadLetterProducerOf(&rp.UnknownTags)
			if st.StartOffset < 0 {
				// -1 keeps the stored start offset.
				if cur, ok, _ := s.coord.ShareState.Read(key); ok {
					st.StartOffset = cur.StartOffset
				}
			}
			for _, b := range rp.StateBatches {
				st.Batches = append(st.Batches, stateBatchOf(b.FirstOffset, b.LastOffset, b.DeliveryState, b.DeliveryCount))
			}
			waits = append(waits, pending{op, s.coord.ShareState.Enqueue(key, &st)})
		}
	}
	for _, w := range waits {
		select {
		case err := <-w.done:
			w.op.ErrorCode = errorCode(err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return resp, nil
}

func (s *Server) handleInitializeShareGroupState(ctx context.Context, _ *reqCtx, req *kmsg.InitializeShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitializeShareGroupStateResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewInitializeShareGroupStateResponseTopic()
		ot.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewInitializeShareGroupStateResponseTopicPartition()
			op.Partition = rp.Partition
			key := coordinator.ShareKey{Group: req.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}
			op.ErrorCode = errorCode(s.coord.ShareState.Initialize(ctx, key, rp.StateEpoch, rp.StartOffset))
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleDeleteShareGroupState(ctx context.Context, _ *reqCtx, req *kmsg.DeleteShareGroupStateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupStateResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteShareGroupStateResponseTopic()
		ot.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteShareGroupStateResponseTopicPartition()
			op.Partition = rp.Partition
			op.ErrorCode = errorCode(s.coord.ShareState.Delete(ctx, coordinator.ShareKey{Group: req.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}))
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
