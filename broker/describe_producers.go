package broker

// DescribeProducers (key 61), v0 on every listener.
//
// The producers a partition's replica tracks: id, epoch, last sequence and
// timestamp, the coordinator epoch of their last marker and the first offset
// of their open transaction (-1: none), as kafka-transactions.sh
// describe-producers and its --abort of a hanging transaction read them.
// As in Kafka any replica answers from its own log (a follower's state is
// rebuilt from the batches it copies), so --broker-id can ask a follower;
// a node without a replica is NOT_LEADER_OR_FOLLOWER.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeProducers(_ context.Context, _ *reqCtx, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	img := s.meta.Image()
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewDescribeProducersResponseTopic()
		ot.Topic = rt.Topic
		for _, part := range rt.Partitions {
			op := kmsg.NewDescribeProducersResponseTopicPartition()
			op.Partition = part
			p := s.replicas.Replica(rt.Topic, part)
			var kerrv *kerr.Error
			if p == nil || t == nil || p.TopicID() != t.ID || !t.HasPartition(part) {
				// The leader's log is created on demand.
				p, _, kerrv = s.replicas.LeaderPartition(t, part)
			}
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			for _, info := range p.Producers() {
				op.ActiveProducers = append(op.ActiveProducers, kmsg.DescribeProducersResponseTopicPartitionActiveProducer{
					ProducerID: info.ProducerID, ProducerEpoch: int32(info.Epoch), LastSequence: info.LastSequence,
					LastTimestamp: info.LastTimestamp, CoordinatorEpoch: info.CoordinatorEpoch, CurrentTxnStartOffset: info.TxnFirstOffset,
				})
			}
			sortBy(op.ActiveProducers, func(a kmsg.DescribeProducersResponseTopicPartitionActiveProducer) int64 { return a.ProducerID })
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
