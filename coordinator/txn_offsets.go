package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447).
//
// A producer commits its consumed offsets inside its transaction: they stay
// pending, invisible to OffsetFetch, until the transaction coordinator's
// marker reaches this shard's __consumer_offsets partition. A commit marker
// turns them into committed offsets, an abort discards them
// (CompleteTxnOffsets).
//
// Pending offsets are records of their own key (keyTxnOffset: group, topic,
// partition and producer id), so a new coordinator replays them like any
// other state; the marker's outcome is then written as ordinary offset
// records plus tombstones of the pending ones. Kafka instead writes the
// pending commits as transactional batches and reads the outcome from the
// marker on replay; keeping every outcome an ordinary record lets the
// materialized store stay a plain key/value copy of the log. The marker is
// appended to the log before the shard completes the transaction, and the
// transaction coordinator resends it until the partition leader answers, so
// a crash in between only repeats a completion, which is idempotent.
//
// Zombie fencing: the caller checks the producer's epoch against the
// partition's producer state, which every marker updates, before calling
// TxnOffsetCommit (see the broker's handler), so a fenced producer cannot
// leave pending offsets behind its fence.

// keyTxnOffset is shoal's key version for a pending transactional offset,
// far from Kafka's versions like the group keys.
const keyTxnOffset int16 = 0x5306

// txnOffsetKey encodes the key of a pending offset: the group key, then
// topic (length first), partition and producer id.
func txnOffsetKey(group, topic string, partition int32, producerID int64) []byte {
	b := groupKey(keyTxnOffset, group)
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return binary.BigEndian.AppendUint64(b, uint64(producerID))
}

func decodeTxnOffsetKey(b []byte) (group, topic string, partition int32, producerID int64, err error) {
	bad := fmt.Errorf("%w: transactional offset key", errBadRecord)
	if len(b) < 4 {
		return "", "", 0, 0, bad
	}
	gl := int(binary.BigEndian.Uint16(b[2:]))
	rest := b[4:]
	if len(rest) < gl+2 {
		return "", "", 0, 0, bad
	}
	group, rest = string(rest[:gl]), rest[gl:]
	tl := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != tl+12 {
		return "", "", 0, 0, bad
	}
	topic = string(rest[:tl])
	partition = int32(binary.BigEndian.Uint32(rest[tl:]))
	producerID = int64(binary.BigEndian.Uint64(rest[tl+4:]))
	return group, topic, partition, producerID, nil
}

// pendingOffsets are one producer's uncommitted offsets, by group.
type pendingOffsets map[string]map[topicPartition]OffsetValue

// replayTxnOffset applies a pending-offset record.
func (s *Shard) replayTxnOffset(r Record) error {
	group, topic, partition, pid, err := decodeTxnOffsetKey(r.Key)
	if err != nil {
		return err
	}
	tp := topicPartition{topic, partition}
	if r.Value == nil {
		s.dropPending(pid, group, tp)
		return nil
	}
	v, err := decodeOffsetValue(r.Value)
	if err != nil {
		return err
	}
	s.setPending(pid, group, tp, v)
	return nil
}

func (s *Shard) setPending(pid int64, group string, tp topicPartition, v OffsetValue) {
	if s.pending == nil {
		s.pending = map[int64]pendingOffsets{}
	}
	po := s.pending[pid]
	if po == nil {
		po = pendingOffsets{}
		s.pending[pid] = po
	}
	m := po[group]
	if m == nil {
		m = map[topicPartition]OffsetValue{}
		po[group] = m
	}
	m[tp] = v
}

func (s *Shard) dropPending(pid int64, group string, tp topicPartition) {
	po := s.pending[pid]
	if po == nil {
		return
	}
	if m := po[group]; m != nil {
		delete(m, tp)
		if len(m) == 0 {
			delete(po, group)
		}
	}
	if len(po) == 0 {
		delete(s.pending, pid)
	}
}

// TxnOffsetCommit stores the offsets of a producer's transaction as pending.
// The group metadata (generation, member id, instance id: KIP-447) is
// checked as OffsetCommit checks it, except that a stale consumer-group
// member epoch answers ILLEGAL_GENERATION, as Kafka answers transactional
// commits. A request without group metadata (generation -1, no member: a
// client before KIP-447) is not checked.
func (s *Shard) TxnOffsetCommit(now time.Time, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	groupErr := s.validateTxnOffsetCommit(now, req)
	for _, rt := range req.Topics {
		ot := kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case groupErr != nil:
				op.ErrorCode = kerrCode(groupErr)
			case s.metadataTooLarge(rp.Metadata):
				op.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				v := committedValue(now, rp.Offset, rp.LeaderEpoch, rp.Metadata)
				tp := topicPartition{rt.Topic, rp.Partition}
				s.setPending(req.ProducerID, req.Group, tp, v)
				s.out = append(s.out, Record{Key: txnOffsetKey(req.Group, rt.Topic, rp.Partition, req.ProducerID), Value: v.encode()})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

func (s *Shard) validateTxnOffsetCommit(now time.Time, req *kmsg.TxnOffsetCommitRequest) error {
	if req.Group == "" {
		return kerr.InvalidGroupID
	}
	g := s.groups[req.Group]
	unchecked := req.Generation < 0 && req.MemberID == "" && classicInstance(req.InstanceID) == ""
	switch {
	case g == nil:
		return s.commitWithoutGroup(req.Group, req.Generation, false)
	case g.classic != nil:
		return g.classic.ValidateOffsetCommit(now, req.Generation, req.MemberID, req.InstanceID, true)
	case g.consumer != nil:
		if unchecked {
			return nil
		}
		if err := g.consumer.ValidateOffsetCommit(req.MemberID, req.Generation); errors.Is(err, kerr.StaleMemberEpoch) {
			return kerr.IllegalGeneration
		} else if err != nil {
			return err
		}
	default:
		return kerr.GroupIDNotFound // share groups keep no committed offsets
	}
	return nil
}

// CompleteTxnOffsets applies the marker of producerID's transaction: with
// commit its pending offsets become the groups' committed offsets, otherwise
// they are discarded. Either way the pending records are deleted. A marker
// for a producer without pending offsets changes nothing.
func (s *Shard) CompleteTxnOffsets(producerID int64, commit bool) {
	po := s.pending[producerID]
	for _, group := range sortedKeys(po) {
		tps := make([]topicPartition, 0, len(po[group]))
		for tp := range po[group] {
			tps = append(tps, tp)
		}
		sort.Slice(tps, func(i, j int) bool {
			if tps[i].topic != tps[j].topic {
				return tps[i].topic < tps[j].topic
			}
			return tps[i].partition < tps[j].partition
		})
		for _, tp := range tps {
			if commit {
				v := po[group][tp]
				s.setOffset(group, tp, v)
				s.out = append(s.out, Record{Key: offsetKey(group, tp.topic, tp.partition), Value: v.encode()})
			}
			s.out = append(s.out, Record{Key: txnOffsetKey(group, tp.topic, tp.partition, producerID)})
		}
	}
	delete(s.pending, producerID)
}

// PendingTxnOffset reports whether a transaction has an offset of the group
// for the partition pending: OffsetFetch with RequireStable answers
// UNSTABLE_OFFSET_COMMIT for it (KIP-447), so a consumer taking over the
// partition does not start from an offset about to change.
func (s *Shard) PendingTxnOffset(group, topic string, partition int32) bool {
	tp := topicPartition{topic, partition}
	for _, po := range s.pending {
		if _, ok := po[group][tp]; ok {
			return true
		}
	}
	return false
}
