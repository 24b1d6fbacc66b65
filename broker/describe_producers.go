package broker

// DescribeProducers (key 61), v0 on every listener.
//
// The producers a partition's leader tracks: id, epoch, last sequence and
// timestamp, the coordinator epoch of their last marker and the first offset
// of their open transaction (-1: none), as kafka-transactions.sh
// describe-producers and its --abort of a hanging transaction read them.

import (
	"context"

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
			p, _, kerrv := s.replicas.LeaderPartition(t, part)
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
