package broker

// OffsetForLeaderEpoch (key 23), v2-v4 on every listener.
//
// The end offset of a leader epoch on the partition's leader (KIP-101/279,
// replica.Manager.EndOffsetForEpoch), used by clients after a leader change
// to detect log truncation; the current leader epoch is checked (KIP-320).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

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
			p, ps, kerrv := s.replicas.LeaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
			} else {
				op.LeaderEpoch, op.EndOffset = s.replicas.EndOffsetForEpoch(p, ps, rp.LeaderEpoch)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
