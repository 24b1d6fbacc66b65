package share

// Dead-letter writing for share groups (KIP-1191): records a share group
// gives up on (rejected, or past share.delivery.count.limit) are written as
// dead letters (dlqtopic.go says where and what) through the leader-append path when this node leads the target partition
// and as an acks=all Produce to its leader otherwise. Not a Kafka API.
// Called with no share partition lock held: it reads the log, appends and
// waits for the ISR.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// deadLetter copies archived records to the group's dead-letter topic, if
// it has one that may be written (deadLetterTopic).
func (m *Manager) deadLetter(sp *Part, archived []queue.ArchivedRange) {
	if len(archived) == 0 {
		return
	}
	sp.mu.Lock()
	dlq, copyRecord := sp.dlqTopic, sp.dlqCopy
	sp.mu.Unlock()
	if dlq == "" {
		return
	}
	m.d.Metrics.DeadLettered(sp.topic, archivedCount(archived))
	ctx, cancel := context.WithTimeout(m.d.Ctx, dlqWriteTimeout)
	t, err := m.deadLetterTopic(ctx, sp.key.Group, dlq)
	cancel()
	if err != nil {
		m.d.Log.Warn("dead letters dropped", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "err", err)
		return
	}
	var out []log.Record
	for _, a := range archived {
		for off := a.First; off <= a.Last; {
			res, err := sp.p.Read(off, 1<<20, a.Last+1, true)
			if err != nil || len(res.Data) == 0 {
				break
			}
			next := off
			for b := res.Data; len(b) > 0; {
				h, recs, err := log.DecodeRecords(b)
				if err != nil {
					break
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
	if len(out) == 0 {
		return
	}
	part := sp.key.Partition % int32(len(t.Partitions))
	if err := m.appendDeadLetters(dlq, part, log.EncodeBatch(out, m.d.Now())); err != nil {
		m.d.Log.Error("writing dead-letter records", "topic", dlq, "partition", part, "records", len(out), "err", err)
	}
}

// dlqWriteTimeout bounds how long writing dead-letter records may take,
// moves of the partition's leadership included.
const dlqWriteTimeout = 10 * time.Second

// appendDeadLetters writes a batch to a partition of a dead-letter topic
// with acks=all: appended here when this node leads the partition, else
// produced to its leader; retried while the leadership moves.
func (m *Manager) appendDeadLetters(dlq string, part int32, batch []byte) error {
	ctx, cancel := context.WithTimeout(m.d.Ctx, dlqWriteTimeout)
	defer cancel()
	for {
		err := m.appendDeadLettersOnce(ctx, dlq, part, batch)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *Manager) appendDeadLettersOnce(ctx context.Context, dlq string, part int32, batch []byte) error {
	t := m.d.Image().Topics[dlq]
	if t == nil || int(part) >= len(t.Partitions) {
		return kerr.UnknownTopicOrPartition
	}
	leader := t.Partitions[part].Leader
	switch {
	case leader < 0:
		return kerr.LeaderNotAvailable
	case leader != m.nodeID:
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = int32(dlqWriteTimeout / time.Millisecond)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = dlq, t.ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = part, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := m.d.Peers.Request(ctx, leader, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return kerr.UnknownServerError
		}
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	p, ps, kerrv := m.d.Replicas.LeaderPartition(t, part)
	if kerrv != nil {
		return kerrv
	}
	_, err := m.d.Replicas.AppendCommitted(ctx, p, ps, batch, m.d.Now())
	return err
}

func archivedCount(as []queue.ArchivedRange) int {
	n := 0
	for _, a := range as {
		n += int(a.Last - a.First + 1)
	}
	return n
}
