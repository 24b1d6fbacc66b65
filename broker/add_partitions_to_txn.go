package broker

// AddPartitionsToTxn (key 24), v0-v5 on every listener.
//
// v0-v3 (clients): adds partitions to the producer's transaction on its
// transaction coordinator. v4+ (partition leaders, KIP-890): batches several
// transactional ids, and VerifyOnly checks that partitions are in the
// ongoing transaction without changing it. As in Kafka, a partition of an
// unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION and the other
// partitions of its transaction with OPERATION_NOT_ATTEMPTED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleAddPartitionsToTxn(_ context.Context, _ *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		t := kmsg.NewAddPartitionsToTxnRequestTransaction()
		t.TransactionalID, t.ProducerID, t.ProducerEpoch = req.TransactionalID, req.ProducerID, req.ProducerEpoch
		for _, rt := range req.Topics {
			t.Topics = append(t.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: rt.Topic, Partitions: rt.Partitions})
		}
		res := s.addPartitionsToTxn(t, false)
		for _, rt := range res.Topics {
			ot := kmsg.NewAddPartitionsToTxnResponseTopic()
			ot.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				ot.Partitions = append(ot.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: rp.Partition, ErrorCode: rp.ErrorCode})
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	}
	for _, t := range req.Transactions {
		// A leader's add (not a verification) at v5 is the implicit add
		// of a transactions-version-2 producer (txn_verify.go).
		resp.Transactions = append(resp.Transactions, s.addPartitionsToTxn(t, req.Version >= 5 && !t.VerifyOnly))
	}
	return resp, nil
}

// addPartitionsToTxn runs one transaction's AddPartitionsToTxn (or its
// verification) and answers per partition. v2 marks the implicit add of a
// transactions-version-2 producer's first write to a partition.
func (s *Server) addPartitionsToTxn(t kmsg.AddPartitionsToTxnRequestTransaction, v2 bool) kmsg.AddPartitionsToTxnResponseTransaction {
	img := s.meta.Image()
	var parts []coordinator.TxnPartition
	var unknown map[coordinator.TxnPartition]bool
	for _, rt := range t.Topics {
		tt := img.Topics[rt.Topic]
		for _, p := range rt.Partitions {
			tp := coordinator.TxnPartition{Topic: rt.Topic, Partition: p}
			if !tt.HasPartition(p) {
				if unknown == nil {
					unknown = map[coordinator.TxnPartition]bool{}
				}
				unknown[tp] = true
			}
			parts = append(parts, tp)
		}
	}
	var perPartition map[coordinator.TxnPartition]*kerr.Error
	var kerrv *kerr.Error
	if len(unknown) == 0 {
		areq := coordinator.AddPartitionsRequest{TransactionalID: t.TransactionalID, ProducerID: t.ProducerID,
			ProducerEpoch: t.ProducerEpoch, Partitions: parts, VerifyOnly: t.VerifyOnly, V2: v2}
		if err := s.coord.Txns.Do(t.TransactionalID, func(sh *coordinator.TxnShard) {
			perPartition, kerrv = sh.AddPartitions(s.now(), areq)
		}); err != nil {
			kerrv = err
		}
	}
	out := kmsg.NewAddPartitionsToTxnResponseTransaction()
	out.TransactionalID = t.TransactionalID
	for _, rt := range t.Topics {
		ot := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
		ot.Topic = rt.Topic
		for _, p := range rt.Partitions {
			tp := coordinator.TxnPartition{Topic: rt.Topic, Partition: p}
			op := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
			op.Partition = p
			switch {
			case unknown[tp]:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(unknown) > 0:
				op.ErrorCode = kerr.OperationNotAttempted.Code
			case kerrv != nil:
				op.ErrorCode = kerrv.Code
			case perPartition[tp] != nil:
				op.ErrorCode = perPartition[tp].Code
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		out.Topics = append(out.Topics, ot)
	}
	return out
}
