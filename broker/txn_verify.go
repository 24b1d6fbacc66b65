package broker

// A partition leader's questions to a transaction coordinator (KIP-890):
// before a producer's first transactional batch in a partition, or a
// transactional offset commit, the leader asks the producer's transaction
// coordinator, with AddPartitionsToTxn v4+, either to verify that the
// partition is in the ongoing transaction (transactions version 1: the
// client added it itself) or to add it (version 2: the client relies on the
// implicit add). A late batch of a transaction that has since ended is
// thereby refused instead of opening a transaction nobody will end.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/raftmeta"
)

// txnVerifyTimeout bounds a leader's wait for the transaction coordinator.
const txnVerifyTimeout = 5 * time.Second

// addToTxn asks the coordinator of transactionalID to add (verifyOnly:
// verify) partitions to the producer's transaction, and returns its answer's
// error code per partition. CONCURRENT_TRANSACTIONS, the previous
// transaction still writing its markers (a version-2 producer starts the
// next one at once), is retried here with
// add.partitions.to.txn.retry.backoff.ms, doubling, for up to
// add.partitions.to.txn.retry.backoff.max.ms, as Kafka's leaders do: the
// markers take moments, a client's own retry backoff far longer.
func (s *Server) addToTxn(transactionalID string, producerID int64, epoch int16, partitions []coordinator.TxnPartition, verifyOnly, v2 bool) map[coordinator.TxnPartition]int16 {
	t := kmsg.NewAddPartitionsToTxnRequestTransaction()
	t.TransactionalID, t.ProducerID, t.ProducerEpoch, t.VerifyOnly = transactionalID, producerID, epoch, verifyOnly
	for _, tp := range partitions {
		if n := len(t.Topics); n == 0 || t.Topics[n-1].Topic != tp.Topic {
			t.Topics = append(t.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: tp.Topic})
		}
		last := &t.Topics[len(t.Topics)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	start := s.now()
	var backoff time.Duration // read at the first retry: most adds need none
	for {
		// A local coordinator says when the transaction changed, which
		// is when a retry may succeed (nil, blocking forever: remote).
		changed := s.coord.Txns.Changed(t.TransactionalID)
		codes := s.addToTxnOnce(t, v2)
		retry := false
		for _, code := range codes {
			retry = retry || code == kerr.ConcurrentTransactions.Code
		}
		if !retry || !s.now().Before(start.Add(s.cfg.Millis("add.partitions.to.txn.retry.backoff.max.ms"))) {
			return codes
		}
		if backoff == 0 {
			backoff = s.cfg.Millis("add.partitions.to.txn.retry.backoff.ms")
		}
		select {
		case <-changed:
		case <-time.After(backoff):
			backoff *= 2
		case <-s.ctx.Done():
			return codes
		}
	}
}

// addToTxnOnce sends the request to the coordinator once: handled here when
// this node coordinates the id, else sent to the node that does.
func (s *Server) addToTxnOnce(t kmsg.AddPartitionsToTxnRequestTransaction, v2 bool) map[coordinator.TxnPartition]int16 {
	state := s.meta.Image().Topics[coordruntime.TxnStateTopic]
	if state == nil || len(state.Partitions) == 0 {
		// No transaction coordinator ever ran, so no transaction is
		// ongoing: the definite answer, not a retriable one.
		return allCodes(t, kerr.InvalidProducerIDMapping.Code)
	}
	leader := state.Partitions[coordinator.TxnStatePartition(t.TransactionalID, int32(len(state.Partitions)))].Leader
	switch {
	case leader == s.cfg.NodeID:
		return partitionCodes(s.addPartitionsToTxn(t, v2))
	case leader < 0:
		return allCodes(t, kerr.CoordinatorNotAvailable.Code)
	}
	return s.remoteAddToTxn(leader, t)
}

// remoteAddToTxn sends one transaction's AddPartitionsToTxn to the
// coordinator's node. The batched form (v4+) has no field for the implicit
// add of version 2; like Kafka, v5 without VerifyOnly from a broker is that
// add, so the coordinator's handler learns it from the version.
func (s *Server) remoteAddToTxn(leader int32, t kmsg.AddPartitionsToTxnRequestTransaction) map[coordinator.TxnPartition]int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.SetVersion(s.peerVersion(req.Key()))
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{t}
	ctx, cancel := context.WithTimeout(s.ctx, txnVerifyTimeout)
	defer cancel()
	kresp, err := s.peers.Peers(cluster.LaneTxn).Request(ctx, leader, req)
	if err != nil {
		return allCodes(t, kerr.CoordinatorNotAvailable.Code)
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		return allCodes(t, resp.ErrorCode)
	}
	for _, rt := range resp.Transactions {
		if rt.TransactionalID == t.TransactionalID {
			return partitionCodes(rt)
		}
	}
	return allCodes(t, kerr.UnknownServerError.Code)
}

// allCodes answers every partition of t with code.
func allCodes(t kmsg.AddPartitionsToTxnRequestTransaction, code int16) map[coordinator.TxnPartition]int16 {
	out := map[coordinator.TxnPartition]int16{}
	for _, rt := range t.Topics {
		for _, p := range rt.Partitions {
			out[coordinator.TxnPartition{Topic: rt.Topic, Partition: p}] = code
		}
	}
	return out
}

func partitionCodes(t kmsg.AddPartitionsToTxnResponseTransaction) map[coordinator.TxnPartition]int16 {
	out := map[coordinator.TxnPartition]int16{}
	for _, rt := range t.Topics {
		for _, rp := range rt.Partitions {
			out[coordinator.TxnPartition{Topic: rt.Topic, Partition: rp.Partition}] = rp.ErrorCode
		}
	}
	return out
}

// produceTxnError maps a coordinator's answer to what a Produce of version
// v answers, as Kafka's partition leaders do: coordinator trouble becomes
// the retriable NOT_ENOUGH_REPLICAS that every client retries, a fenced
// producer INVALID_PRODUCER_EPOCH, a partition not in the transaction
// TRANSACTION_ABORTABLE from v11 (the clients that know it abort) and
// INVALID_TXN_STATE before; any other error (an unknown transactional id's
// INVALID_PRODUCER_ID_MAPPING) is passed on.
func produceTxnError(code, v int16) error {
	switch code {
	case 0:
		return nil
	case kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.ConcurrentTransactions.Code, kerr.RequestTimedOut.Code:
		return &raftmeta.Error{Code: kerr.NotEnoughReplicas,
			Message: "Unable to verify the partition has been added to the transaction. Underlying error: " + kerr.TypedErrorForCode(code).Message}
	case kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code:
		return &raftmeta.Error{Code: kerr.InvalidProducerEpoch, Message: "the producer's epoch was fenced by its transaction coordinator"}
	case kerr.TransactionAbortable.Code:
		if v >= 11 {
			return kerr.TransactionAbortable
		}
		return errNotInTxn
	case kerr.InvalidTxnState.Code, kerr.ClusterAuthorizationFailed.Code:
		// Kafka hides a leader's own authorization failure from the
		// producer: the verification did not complete.
		return errNotInTxn
	}
	return kerr.ErrorForCode(code)
}

var errNotInTxn = &raftmeta.Error{Code: kerr.InvalidTxnState, Message: "Partition was not added to the transaction"}
