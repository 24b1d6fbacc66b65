package share

// Dead-letter writing for share groups (KIP-1191): records a share group
// gives up on (rejected, or past share.delivery.count.limit) are written as
// dead letters to the group's errors.deadletterqueue.topic.name
// (dlqtopic.go says which topics may be used and what a dead letter holds).
// Not a Kafka API.
//
// The dead letter is part of the record's durable state, so it is written
// exactly once across crashes and failovers:
//
//  1. The acknowledgement (or lock expiry) makes the record DeadLettering
//     in the share partition's state and persists that like any ack; the
//     ack is answered then, without waiting for the dead-letter topic.
//  2. One writer goroutine per share partition (writeDeadLetters) picks the
//     next write (queue.NextDeadLetters: its records and the sequence of
//     the first, with the producer id the share partition owns) and
//     persists that intent before sending anything.
//  3. It sends the write as an idempotent batch, acks=all, to the leader
//     of the dead-letter partition, retrying until it lands.
//  4. It reports the write done: the records become Archived, the sequence
//     moves past them, and that state is persisted.
//
// A crash before 1 is durable loses the rejection (the record is delivered
// again). A crash between 2 and 4 leaves the intent in the persisted state:
// the next leader of the share partition sends the same records with the
// same producer id, epoch and sequence, and the dead-letter partition's
// leader answers the resend as a duplicate if the first attempt landed
// (its producer state is rebuilt from its log on every replica, so this
// holds across its failovers too). Only one write is in flight per share
// partition, so a resend always matches the producer's last batch.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/crashpoint"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
)

// Dead-letter record headers. The first six are Kafka's (KIP-1191);
// DLQHeaderGroupID and DLQHeaderReason are the names shoal wrote before it
// followed Kafka 4.4, still written so existing readers keep working.
const (
	DLQHeaderTopic     = "__dlq.errors.topic"
	DLQHeaderPartition = "__dlq.errors.partition"
	DLQHeaderOffset    = "__dlq.errors.offset"
	DLQHeaderGroup     = "__dlq.errors.group"
	DLQHeaderCount     = "__dlq.errors.delivery.count"
	DLQHeaderMessage   = "__dlq.errors.message"
	DLQHeaderGroupID   = "__dlq.errors.group.id"
	DLQHeaderReason    = "__dlq.errors.reason"
)

// Crash points of the dead-letter steps (see package crashpoint), in order.
const (
	CrashRejectBeforeState = "share.reject.before-state" // rejected in memory, not yet persisted
	CrashDLQBeforeIntent   = "share.dlq.before-intent"   // rejection durable, write not yet assigned
	CrashDLQAfterIntent    = "share.dlq.after-intent"    // write's intent durable, not yet sent
	CrashDLQAfterWrite     = "share.dlq.after-write"     // dead letters written, not yet archived
)

// maxDeadLetterRecords bounds the records of one dead-letter write. A write
// is fixed when it is assigned, before its size is known, so it is kept
// small enough that typical records fit in one batch under
// message.max.bytes.
const maxDeadLetterRecords = 32

// dlqAttemptTimeout bounds one attempt to write dead letters; attempts are
// repeated, with dlqBackoff between them, until one succeeds.
const dlqAttemptTimeout = 10 * time.Second

// dlqBackoff is the wait between attempts: doubling from its first value up
// to its last.
var dlqBackoff = [2]time.Duration{100 * time.Millisecond, 2 * time.Second}

// startDeadLettersLocked starts sp's dead-letter writer if records wait for
// their dead letter and none runs. sp.mu held.
func (m *Manager) startDeadLettersLocked(sp *Part) {
	if sp.dlqWriting || sp.gone || sp.q.Counts().DeadLettering == 0 {
		return
	}
	sp.dlqWriting = true
	go m.writeDeadLetters(sp)
}

// writeDeadLetters writes sp's dead letters, one write at a time, until none
// waits, sp is dropped, or the node stops.
func (m *Manager) writeDeadLetters(sp *Part) {
	ctx := m.d.Ctx
	wait := dlqBackoff[0]
	retry := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, dlqBackoff[1])
		return true
	}
	// unpersisted is set while the write in progress may not be durable:
	// it is persisted (again) before it is sent.
	unpersisted := false
	for {
		sp.mu.Lock()
		if sp.gone || ctx.Err() != nil || sp.q.Counts().DeadLettering == 0 {
			sp.dlqWriting = false
			sp.mu.Unlock()
			return
		}
		needID := sp.q.DeadLetterProducer().ID < 0
		sp.mu.Unlock()
		if needID {
			id, err := m.d.NextProducerID(ctx)
			if err != nil {
				m.d.Log.Warn("allocating the dead-letter producer id", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "err", err)
				if !retry() {
					m.stopDeadLetters(sp)
					return
				}
				continue
			}
			sp.mu.Lock()
			if sp.q.DeadLetterProducer().ID < 0 {
				sp.q.SetDeadLetterProducer(id, 0)
				unpersisted = true
			}
			sp.mu.Unlock()
		}

		crashpoint.Hit(CrashDLQBeforeIntent)
		sp.mu.Lock()
		w, assigned, ok := sp.q.NextDeadLetters(maxDeadLetterRecords)
		dlq := sp.dlqTopic
		unpersisted = unpersisted || assigned
		var done <-chan error
		if ok && unpersisted {
			done = m.applyLocked(sp, false)
			if done == nil {
				done = m.persistLocked(sp, sp.q.Persisted())
			}
		}
		sp.mu.Unlock()
		if !ok {
			continue
		}
		if done != nil {
			if err := <-done; err != nil {
				m.d.Log.Warn("persisting a dead-letter write before sending it", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "err", err)
				if !retry() {
					m.stopDeadLetters(sp)
					return
				}
				continue
			}
			unpersisted = false
		}
		crashpoint.Hit(CrashDLQAfterIntent)

		n, err := m.sendDeadLetters(ctx, sp, dlq, w)
		switch {
		case err == nil:
			crashpoint.Hit(CrashDLQAfterWrite)
			m.d.Metrics.DeadLettered(sp.topic, n)
			m.finishDeadLetters(sp, w, n)
			wait = dlqBackoff[0]
		case errors.Is(err, errStopped):
			m.stopDeadLetters(sp)
			return
		case producerRefused(err):
			// The dead-letter partition does not take this producer's
			// sequence (its producer state was lost or the write was
			// changed under it). Resend the write under a new producer
			// id: a duplicate is possible only if the first attempt
			// landed, which this answer says it did not.
			m.d.Log.Error("dead-letter producer refused; continuing with a new producer id", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "dlq", dlq, "err", err)
			sp.mu.Lock()
			sp.q.SetDeadLetterProducer(-1, 0)
			sp.mu.Unlock()
		default:
			// The topic cannot take these records (gone, misconfigured,
			// records too large): they are archived without a dead letter.
			m.d.Log.Error("records archived without their dead letter", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "dlq", dlq, "records", w.Len(), "err", err)
			m.finishDeadLetters(sp, w, 0)
		}
	}
}

// producerRefused reports an error that refuses the producer's id, epoch
// or sequence, from the dead-letter partition's leader here (log) or on
// another node (kerr).
func producerRefused(err error) bool {
	for _, e := range []error{kerr.OutOfOrderSequenceNumber, kerr.InvalidProducerEpoch, kerr.UnknownProducerID,
		kerr.ProducerFenced, log.ErrOutOfOrderSequence, log.ErrInvalidProducerEpoch, log.ErrUnknownProducerID} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errStopped ends a dead-letter write because its share partition was
// dropped or the node stops; the next leader resends it.
var errStopped = errors.New("share partition no longer served here")

// stopDeadLetters marks sp's writer as gone.
func (m *Manager) stopDeadLetters(sp *Part) {
	sp.mu.Lock()
	sp.dlqWriting = false
	sp.mu.Unlock()
}

// finishDeadLetters reports a write done (written records, 0 if given up)
// and persists the archived records without waiting: a crash before that
// is durable resends the write, which the dead-letter partition answers as
// a duplicate.
func (m *Manager) finishDeadLetters(sp *Part, w queue.DeadLetterWrite, written int) {
	sp.mu.Lock()
	sp.q.DeadLettersWritten(w, int64(written))
	m.applyLocked(sp, false)
	sp.mu.Unlock()
}

// sendDeadLetters writes w's records to the group's dead-letter topic,
// retrying retriable errors until it lands, and returns the number of
// records written. It fails with errStopped when sp is dropped or the node
// stops, and with the cause when the topic is unusable or refuses the batch
// for good.
func (m *Manager) sendDeadLetters(ctx context.Context, sp *Part, dlq string, w queue.DeadLetterWrite) (int, error) {
	wait := dlqBackoff[0]
	for {
		n, err := m.sendDeadLettersOnce(ctx, sp, dlq, w)
		if err == nil {
			return n, nil
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable || errors.Is(err, errUnusableDLQ) || producerRefused(err) {
			return 0, err
		}
		m.d.Log.Warn("writing dead letters; retrying", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "dlq", dlq, "err", err)
		select {
		case <-ctx.Done():
			return 0, errStopped
		case <-time.After(wait):
		}
		wait = min(2*wait, dlqBackoff[1])
		sp.mu.Lock()
		gone := sp.gone
		sp.mu.Unlock()
		if gone {
			return 0, errStopped
		}
	}
}

// sendDeadLettersOnce makes one attempt: check the topic, read the records
// from the log, and append them as one idempotent batch to the dead-letter
// partition sp's partition maps to. It returns the records in the batch.
func (m *Manager) sendDeadLettersOnce(ctx context.Context, sp *Part, dlq string, w queue.DeadLetterWrite) (int, error) {
	actx, cancel := context.WithTimeout(ctx, dlqAttemptTimeout)
	defer cancel()
	t, err := m.deadLetterTopic(actx, sp.key.Group, dlq)
	if err != nil {
		return 0, err
	}
	if len(t.Partitions) == 0 {
		return 0, kerr.LeaderNotAvailable
	}
	recs, err := m.deadLetterRecords(sp, w)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, nil // every record is gone from the log: nothing to copy
	}
	batch := log.EncodeProducerBatch(recs, m.d.Now(), w.Producer.ID, w.Producer.Epoch, w.Producer.Sequence)
	part := sp.key.Partition % int32(len(t.Partitions))
	leader := t.Partitions[part].Leader
	switch {
	case leader < 0:
		return 0, kerr.LeaderNotAvailable
	case leader != m.nodeID:
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = int32(dlqAttemptTimeout / time.Millisecond)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = dlq, t.ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = part, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := m.d.Peers.Request(actx, leader, req)
		if err != nil {
			return 0, err
		}
		resp := r.(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, kerr.UnknownServerError
		}
		return len(recs), kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	p, ps, kerrv := m.d.Replicas.LeaderPartition(t, part)
	if kerrv != nil {
		return 0, kerrv
	}
	_, err = m.d.Replicas.AppendCommitted(actx, p, ps, batch, m.d.Now())
	return len(recs), err
}

// deadLetterRecords reads w's records from sp's log and returns their dead
// letters (deadLetterRecord). Records no longer in the log (retention) are
// left out.
func (m *Manager) deadLetterRecords(sp *Part, w queue.DeadLetterWrite) ([]log.Record, error) {
	sp.mu.Lock()
	copyRecord := sp.dlqCopy
	sp.mu.Unlock()
	var out []log.Record
	for _, a := range w.Records {
		for off := a.First; off <= a.Last; {
			res, err := sp.p.Read(off, 1<<20, a.Last+1, true)
			if errors.Is(err, log.ErrOffsetOutOfRange) {
				break
			}
			if err != nil {
				return nil, err
			}
			if len(res.Data) == 0 {
				break
			}
			next := off
			for b := res.Data; len(b) > 0; {
				h, recs, err := log.DecodeRecords(b)
				if err != nil {
					return nil, err
				}
				for _, r := range recs {
					if r.Offset < a.First || r.Offset > a.Last {
						continue
					}
					out = append(out, deadLetterRecord(sp, r, a.DeliveryCount, a.Reason, copyRecord))
				}
				next = h.LastOffset() + 1
				b = b[h.Size():]
			}
			if next <= off {
				break
			}
			off = next
		}
	}
	return out, nil
}
