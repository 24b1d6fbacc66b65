package coordinator

import (
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// __transaction_state records use Kafka's TransactionLog layouts: key
// TransactionLogKey version 0 (the transactional id) and value
// TransactionLogValue version 1 (flexible, with the producer id rotation and
// client transaction version as tagged fields), so Kafka's tools decode them.
// A nil value is the tombstone of an expired id.
const (
	txnKeyVersion   int16 = 0
	txnValueVersion int16 = 1
)

// TxnStatePartition is the __transaction_state partition that coordinates a
// transactional id (FindCoordinator with key type 1): Kafka hashes
// transactional ids exactly as group ids, so an id lands on the partition
// number it would on Kafka.
func TxnStatePartition(transactionalID string, partitions int32) int32 {
	return GroupPartition(transactionalID, partitions)
}

func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: txnKeyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

func encodeTxnValue(m *txnMeta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = txnValueVersion
	v.ProducerID = m.producerID
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = int32(m.timeout.Milliseconds())
	v.State = kmsg.TransactionState(m.state)
	v.LastUpdateTimestamp = m.lastUpdateMs
	v.StartTimestamp = m.startMs
	v.PreviousProducerID = m.prevProducer
	v.NextProducerID = m.nextProducer
	v.ClientTransactionVersion = m.clientVersion
	// The partitions a Prepare record lists are those still waiting for
	// a marker; an Ongoing record lists the transaction's partitions.
	set := m.partitions
	if m.state == TxnPrepareCommit || m.state == TxnPrepareAbort {
		set = m.pending
	}
	var last *kmsg.TxnMetadataValueTopic
	for _, tp := range m.sortedPartitions(set) {
		if last == nil || last.Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			last = &v.Topics[len(v.Topics)-1]
		}
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	return v.AppendTo(nil)
}

// decodeTxnRecord decodes a __transaction_state record; meta is nil for a
// tombstone.
func decodeTxnRecord(r Record) (string, *txnMeta, error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(r.Key); err != nil || k.Version != txnKeyVersion {
		return "", nil, fmt.Errorf("%w: transaction key (version %d): %v", errBadRecord, k.Version, err)
	}
	if r.Value == nil {
		return k.TransactionalID, nil, nil
	}
	v := kmsg.NewTxnMetadataValue()
	if err := v.ReadFrom(r.Value); err != nil {
		return "", nil, fmt.Errorf("%w: transaction %q value: %v", errBadRecord, k.TransactionalID, err)
	}
	st := TxnState(v.State)
	if st < TxnEmpty || st > TxnPrepareEpochFence {
		return "", nil, fmt.Errorf("%w: transaction %q in unknown state %d", errBadRecord, k.TransactionalID, v.State)
	}
	if st == TxnPrepareEpochFence {
		st = TxnPrepareAbort
	}
	m := &txnMeta{
		id: k.TransactionalID, producerID: v.ProducerID, prevProducer: v.PreviousProducerID, nextProducer: v.NextProducerID,
		epoch: v.ProducerEpoch, lastEpoch: -1, timeout: time.Duration(v.TimeoutMillis) * time.Millisecond,
		state: st, startMs: v.StartTimestamp, lastUpdateMs: v.LastUpdateTimestamp, clientVersion: v.ClientTransactionVersion,
	}
	set := map[TxnPartition]bool{}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			set[TxnPartition{Topic: t.Topic, Partition: p}] = true
		}
	}
	switch st {
	case TxnOngoing:
		m.partitions = set
	case TxnPrepareCommit, TxnPrepareAbort:
		m.partitions, m.pending = set, maps.Clone(set)
	}
	return k.TransactionalID, m, nil
}

// Replay applies one record read back from the shard's __transaction_state
// partition (or its materialized copy), in log order. The last record of an
// id is its state, so replay keeps the newest; a new coordinator then
// resends the markers of Prepare* transactions (PendingMarkers).
func (s *TxnShard) Replay(r Record) error {
	id, m, err := decodeTxnRecord(r)
	if err != nil {
		return err
	}
	if m == nil {
		delete(s.txns, id)
		return nil
	}
	s.txns[id] = m
	return nil
}
