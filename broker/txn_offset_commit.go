package broker

// TxnOffsetCommit (key 28), v0-v5 on every listener.
//
// Commits offsets inside a transaction on the group's coordinator: they stay
// pending until the transaction's marker reaches the group's
// __consumer_offsets partition (coordinator.Shard.TxnOffsetCommit). The group
// metadata of v3+ (generation, member id, instance id: KIP-447) is checked.
// v5+ (transactions version 2) adds the group's offsets partition to the
// transaction on its coordinator, in place of the client's AddOffsetsToTxn.
// A producer fenced on that partition (a marker of a newer epoch is there)
// answers INVALID_PRODUCER_EPOCH. Deviation: Kafka 3.6+ also verifies with
// the transaction coordinator that the offsets partition was added to the
// transaction (KIP-890); shoal relies on the client's AddOffsetsToTxn.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

func (s *Server) handleTxnOffsetCommit(_ context.Context, _ *reqCtx, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	var resp *kmsg.TxnOffsetCommitResponse
	offsets := s.meta.Image().Topics[coordruntime.OffsetsTopic]
	if req.Version >= 5 && offsets != nil && len(offsets.Partitions) > 0 {
		// Transactions version 2: the client sends no AddOffsetsToTxn;
		// the group's offsets partition is added here.
		tp := coordinator.TxnPartition{Topic: offsets.Name, Partition: coordinator.GroupPartition(req.Group, int32(len(offsets.Partitions)))}
		if code := s.addToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []coordinator.TxnPartition{tp}, false, true)[tp]; code != 0 {
			return txnOffsetCommitError(req, kerr.TypedErrorForCode(code)), nil
		}
	}
	kerrv := s.coord.Groups.Do(req.Group, func(sh *coordinator.Shard) {
		// Checked under the shard's lock: a marker that fences the
		// producer is appended before the shard applies it, so a commit
		// either sees the fence or is discarded by the marker.
		if fenced := s.txnOffsetsFenced(offsets, req.Group, req.ProducerID, req.ProducerEpoch); fenced != nil {
			resp = txnOffsetCommitError(req, fenced)
			return
		}
		resp = sh.TxnOffsetCommit(s.now(), req)
	})
	if kerrv != nil {
		resp = txnOffsetCommitError(req, kerrv)
	}
	return resp, nil
}

// txnOffsetCommitError answers every partition of req with one error.
func txnOffsetCommitError(req *kmsg.TxnOffsetCommitRequest, kerrv *kerr.Error) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition, op.ErrorCode = rp.Partition, kerrv.Code
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
