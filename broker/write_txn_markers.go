package broker

// WriteTxnMarkers (key 27), v0-v1 on the inter-broker listener only.
//
// A transaction coordinator asks the leader of each partition of a
// transaction to write its commit or abort marker. Each marker is appended
// on the leader-append path and answered once committed (acks=all), as
// Kafka does (every marker of the request is appended before the first is
// awaited); on __consumer_offsets it also decides the producer's pending
// transactional offsets. A marker of an older producer epoch than the
// partition has seen answers INVALID_PRODUCER_EPOCH, one from an older
// coordinator epoch TRANSACTION_COORDINATOR_FENCED.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

// markerAppendTimeout bounds the wait for a marker's replication.
const markerAppendTimeout = 10 * time.Second

func (s *Server) handleWriteTxnMarkers(ctx context.Context, _ *reqCtx, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, markerAppendTimeout)
	defer cancel()
	return writeTxnMarkersAnswer(req, func(topic string, partition int32, m kmsg.WriteTxnMarkersRequestMarker) func() int16 {
		marker := log.EndTxnMarker{Commit: m.Committed, CoordinatorEpoch: m.CoordinatorEpoch}
		finish := s.startTxnMarker(ctx, topic, partition, m.ProducerID, m.ProducerEpoch, marker)
		return func() int16 { return errorCode(finish()) }
	}), nil
}

// writeTxnMarkersAnswer answers every partition of every marker of req, in
// order: start is called for every partition first, then the functions it
// returned give each partition's code (a refusal: one code for all).
func writeTxnMarkersAnswer(req *kmsg.WriteTxnMarkersRequest, start func(topic string, partition int32, m kmsg.WriteTxnMarkersRequestMarker) func() int16) *kmsg.WriteTxnMarkersResponse {
	var finish []func() int16
	for _, m := range req.Markers {
		for _, rt := range m.Topics {
			for _, p := range rt.Partitions {
				finish = append(finish, start(rt.Topic, p, m))
			}
		}
	}
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, rt := range m.Topics {
			ot := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			ot.Topic = rt.Topic
			for _, p := range rt.Partitions {
				op := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				op.Partition, op.ErrorCode = p, finish[0]()
				finish = finish[1:]
				ot.Partitions = append(ot.Partitions, op)
			}
			rm.Topics = append(rm.Topics, ot)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp
}
