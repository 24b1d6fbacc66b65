package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Special ListOffsets timestamps.
const (
	latestTimestamp        = -1
	earliestTimestamp      = -2
	maxTimestamp           = -3
	earliestLocalTimestamp = -4
	latestTieredTimestamp  = -5
)

func (s *Server) handleListOffsets(_ context.Context, _ *reqCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	img := s.meta.Image()
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset = -1, -1
			p, ps, kerrv := s.leaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			op.LeaderEpoch = ps.LeaderEpoch
			hw := p.HighWatermark()
			switch rp.Timestamp {
			case latestTimestamp:
				op.Offset = hw
			case earliestTimestamp, earliestLocalTimestamp:
				op.Offset = p.LogStartOffset()
			case latestTieredTimestamp:
				// No tiered storage: nothing is uploaded.
			case maxTimestamp:
				if off, ts := p.MaxTimestamp(); off >= 0 && off < hw {
					op.Offset, op.Timestamp = off, ts
				}
			default:
				off, ts, found, err := p.OffsetForTimestamp(rp.Timestamp)
				switch {
				case err != nil:
					op.ErrorCode = errorCode(err)
				case found && off < hw:
					op.Offset, op.Timestamp = off, ts
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleDeleteRecords(_ context.Context, _ *reqCtx, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	img := s.meta.Image()
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition = rp.Partition
			op.LowWatermark = -1
			p, _, kerrv := s.leaderPartition(t, rp.Partition)
			switch {
			case raftmeta.IsInternalTopic(rt.Topic):
				// As Kafka's ReplicaManager: the coordinators' state is
				// not the client's to truncate.
				op.ErrorCode = kerr.InvalidTopicException.Code
			case kerrv != nil:
				op.ErrorCode = kerrv.Code
			default:
				if lso, err := p.DeleteRecordsBefore(rp.Offset); err != nil {
					op.ErrorCode = errorCode(err)
				} else {
					op.LowWatermark = lso
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleOffsetForLeaderEpoch(_ context.Context, _ *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	img := s.meta.Image()
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p, _, kerrv := s.leaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
			} else {
				op.LeaderEpoch, op.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
