package broker

// DeleteRecords (key 21), v0-v2 on every listener.
//
// Moves a partition's log start offset forward on its leader. Internal topics
// refuse it with INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

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
			p, _, kerrv := s.replicas.LeaderPartition(t, rp.Partition)
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
