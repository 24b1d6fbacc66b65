package broker

// TxnOffsetCommit (key 28), v0-v5 on every listener.
//
// Commits offsets inside a transaction on the group's coordinator: they stay
// pending until the transaction's marker reaches the group's
// __consumer_offsets partition (coordinator.Shard.TxnOffsetCommit). The group
// metadata of v3+ (generation, member id, instance id: KIP-447) is checked.
// Before the commit, the transaction coordinator is asked about the group's
// __consumer_offsets partition (KIP-890), as Kafka 3.6+ does for every
// version: v0-v4 (transactions version 1, whose clients add it with
// AddOffsetsToTxn) verify that it is in the ongoing transaction, so a commit
// outside a transaction, or after its end, cannot leave pending offsets that
// no marker will ever decide (TRANSACTION_ABORTABLE, INVALID_TXN_STATE
// before v4); v5+ (version 2) add it, in
// place of the client's AddOffsetsToTxn. A producer fenced on that
// partition (a marker of a newer epoch is there) answers
// INVALID_PRODUCER_EPOCH.

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
	if offsets != nil && len(offsets.Partitions) > 0 {
		tp := coordinator.TxnPartition{Topic: offsets.Name, Partition: coordinator.GroupPartition(req.Group, int32(len(offsets.Partitions)))}
		v2 := req.Version >= 5
		if code := s.addToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []coordinator.TxnPartition{tp}, !v2, v2)[tp]; code != 0 {
			return txnOffsetCommitError(req, txnOffsetVerifyError(code, req.Version)), nil
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

// txnOffsetVerifyError is what a TxnOffsetCommit of version v answers when
// its coordinator refused the offsets partition: Kafka's leaders turn
// PRODUCER_FENCED into the INVALID_PRODUCER_EPOCH producers expect, and
// TRANSACTION_ABORTABLE into INVALID_TXN_STATE below v4 (older clients do
// not know it), and its group coordinator turns errors older clients would
// not retry into COORDINATOR_NOT_AVAILABLE, which they do.
func txnOffsetVerifyError(code, v int16) *kerr.Error {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch
	case kerr.TransactionAbortable.Code:
		if v < 4 {
			return kerr.InvalidTxnState
		}
	case kerr.NotEnoughReplicas.Code, kerr.UnknownTopicOrPartition.Code, kerr.RequestTimedOut.Code:
		return kerr.CoordinatorNotAvailable
	}
	return kerr.TypedErrorForCode(code)
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
