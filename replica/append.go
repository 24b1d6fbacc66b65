package replica

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// The leader-append path. Every write to a partition this node leads goes
// through it: a client's produce, a coordinator's record on its internal
// topic, a transaction marker, and a share group's dead letters, so all of them are committed and
// made durable by the same rules. It runs in two halves:
//
// AppendAsLeader, in the caller's order (a connection's appends must reach
// the log in the order they were sent, or an idempotent producer's
// pipelined batches would look out of sequence):
//  0. checkAppend, against the newest metadata: a write is refused with
//     NOT_LEADER_OR_FOLLOWER unless this node still leads the partition at
//     the leader epoch the caller saw (its records would otherwise carry
//     an epoch that is not the leader's, and be truncated away by the real
//     leader's followers); an acks=all write (every write the broker
//     encodes itself is one) is refused with NOT_ENOUGH_REPLICAS while the
//     ISR is smaller than the topic's min.insync.replicas, so nothing is
//     appended that could be acknowledged with fewer copies than the topic
//     asks;
//  1. log.Partition.Append assigns offsets under the leader epoch of the
//     metadata the caller checked this node's leadership in;
//  2. notifyAppend wakes followers long-polling for new data (not for a
//     deduplicated retry, which appended nothing);
//  3. advanceHighWatermark moves the HW to the ISR's smallest log end
//     offset (at once to the LEO while the ISR is this node alone);
//  4. Partition.NeedsFlush is read: flush.messages decides whether this
//     batch must be fsynced before it is acknowledged.
//
// AwaitAppend, which may run concurrently with later appends:
//  5. with acks=all and the HW not yet past the batch, wait until it is
//     (a retried duplicate waits too: its first attempt may not be
//     committed yet), failing when this node stops leading or ctx ends;
//     an ISR that shrank below min.insync.replicas meanwhile answers
//     NOT_ENOUGH_REPLICAS_AFTER_APPEND;
//  6. fsync the batch when step 4 asked for it.
//
// Invariant: a write is acknowledged only after AwaitAppend returned nil,
// so an acknowledged write is on every ISR member (acks=all) and on disk
// wherever flush.messages asks.

// Append is a batch appended on a partition this node leads, with
// what its acknowledgement still waits for.
type Append struct {
	Partition *log.Partition
	Result    log.AppendResult
	// replicate: acks=all and the HW had not passed the batch.
	replicate bool
	// minISR is the ISR size an acks=all write needs once replicated; 0
	// skips the check (so does 1: the ISR always holds its leader). It is
	// checked even when the HW had already passed the batch at append: an
	// ISR shrink between the append and that look moves the HW too, and
	// the write is then committed by fewer replicas than asked for, as
	// Kafka's check at completion answers.
	minISR int
	// flush: flush.messages asks for an fsync before the acknowledgement.
	flush bool
}

// Pending reports whether the acknowledgement must wait (AwaitAppend has
// work to do).
func (la Append) Pending() bool { return la.replicate || la.minISR > 0 || la.flush }

// AppendAsLeader runs the in-order half of the leader-append path: append
// batch (whose header is h) to p, which this node leads as ps says, wake
// followers and advance the HW. acks is the producer's (0, 1 or -1): acks=0
// is never fsynced for, only acks=-1 waits for the ISR and is held to
// min.insync.replicas.
func (m *Manager) AppendAsLeader(p *log.Partition, ps raftmeta.PartitionState, batch []byte, h log.BatchHeader, now time.Time, acks int16) (Append, error) {
	minISR, err := m.checkAppend(p, ps, acks)
	if err != nil {
		return Append{}, err
	}
	res, err := p.Append(batch, h, ps.LeaderEpoch, now)
	if err != nil {
		return Append{}, err
	}
	return m.appended(p, ps, res, acks, minISR), nil
}

// checkAppend is step 0 of the leader-append path, the one place every
// write on a led partition is checked before it reaches the log, against
// the newest metadata: this node must lead p at ps.LeaderEpoch, the epoch
// the caller decided to write under, and an acks=all write needs an ISR of
// at least min.insync.replicas (Kafka's Partition.appendRecordsToLeader
// holds produce and its coordinators' writes to the same rules). It returns
// the min.insync.replicas the write must still meet once replicated (0:
// not checked).
func (m *Manager) checkAppend(p *log.Partition, ps raftmeta.PartitionState, acks int16) (minISR int, err error) {
	t := m.meta.Image().Topics[p.Topic()]
	if !t.HasPartition(p.Index()) || t.ID != p.TopicID() {
		return 0, kerr.NotLeaderForPartition
	}
	cur := t.Partitions[p.Index()]
	if cur.Leader != m.node || cur.LeaderEpoch != ps.LeaderEpoch {
		return 0, kerr.NotLeaderForPartition
	}
	if acks != -1 {
		return 0, nil
	}
	minISR = m.minInsyncReplicas(t)
	if len(cur.ISR) < minISR {
		return 0, kerr.NotEnoughReplicas
	}
	return minISR, nil
}

// appended runs steps 2-4 of the in-order half for a batch p has taken.
func (m *Manager) appended(p *log.Partition, ps raftmeta.PartitionState, res log.AppendResult, acks int16, minISR int) Append {
	if !res.Duplicate {
		m.notifyAppend(p)
	}
	m.advanceHighWatermark(p, ps)
	la := Append{Partition: p, Result: res, flush: acks != 0 && p.NeedsFlush()}
	if acks == -1 {
		la.replicate = p.HighWatermark() <= res.LastOffset
		if minISR > 1 {
			la.minISR = minISR
		}
	}
	return la
}

// AppendMarker runs the in-order half of the leader-append path for a
// transaction marker of a producer (WriteTxnMarkers) on p, which this node
// leads as ps says. The caller must then AwaitAppend before reporting the
// marker written, since a marker lost in a leader change would leave the
// transaction open in the partition while its coordinator saw it done; a
// transaction's markers to several partitions are all appended before the
// first is awaited, so their replication overlaps.
func (m *Manager) AppendMarker(p *log.Partition, ps raftmeta.PartitionState, producerID int64, producerEpoch int16, marker log.EndTxnMarker, now time.Time) (Append, error) {
	minISR, err := m.checkAppend(p, ps, -1)
	if err != nil {
		return Append{}, err
	}
	res, err := p.AppendMarker(producerID, producerEpoch, marker, ps.LeaderEpoch, now)
	if err != nil {
		return Append{}, err
	}
	return m.appended(p, ps, res, -1, minISR), nil
}

// AwaitAppend runs the waiting half of the leader-append path: replication
// to the ISR, then the fsync flush.messages asked for. A failed fsync is
// KAFKA_STORAGE_ERROR with the cause as its message.
func (m *Manager) AwaitAppend(ctx context.Context, la Append) error {
	p, last := la.Partition, la.Result.LastOffset
	if la.replicate {
		if err := m.waitReplicated(ctx, p, last); err != nil {
			return err
		}
	}
	// Committed, but by fewer replicas than asked for.
	if t := m.meta.Image().Topics[p.Topic()]; la.minISR > 0 && t.HasPartition(p.Index()) &&
		len(t.Partitions[p.Index()].ISR) < la.minISR {
		return kerr.NotEnoughReplicasAfterAppend
	}
	if la.flush {
		if err := p.Sync(last); err != nil {
			return &raftmeta.Error{Code: kerr.KafkaStorageError, Message: err.Error()}
		}
	}
	return nil
}

// AppendCommitted writes a batch the broker encoded itself (a coordinator's
// records, dead letters) to p, which this node leads as ps says, and
// returns once it is committed by the ISR and fsynced where flush.messages
// asks: acks=all, min.insync.replicas included.
func (m *Manager) AppendCommitted(ctx context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) (log.AppendResult, error) {
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return log.AppendResult{}, err
	}
	la, err := m.AppendAsLeader(p, ps, batch, h, now, -1)
	if err != nil {
		return log.AppendResult{}, err
	}
	return la.Result, m.AwaitAppend(ctx, la)
}
