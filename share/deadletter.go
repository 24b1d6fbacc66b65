package share

// Dead-letter writing for share groups (KIP-1191 style): records a share
// group gives up on (rejected, or past share.delivery.count.limit) are copied
// with __dlq.errors.* headers to the group's errors.deadletterqueue.topic.name,
// through the leader-append path when this node leads the target partition
// and as an acks=all Produce to its leader otherwise. Not a Kafka API.
// Called with no share partition lock held: it reads the log, appends and
// waits for the ISR.

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
)

// Dead-letter record headers (KIP-1191 style): where the record came from
// and why it was given up on.
const (
	dlqHeaderTopic     = "__dlq.errors.topic"
	dlqHeaderPartition = "__dlq.errors.partition"
	dlqHeaderOffset    = "__dlq.errors.offset"
	dlqHeaderGroup     = "__dlq.errors.group.id"
	dlqHeaderCount     = "__dlq.errors.delivery.count"
	dlqHeaderReason    = "__dlq.errors.reason"
)

// deadLetter copies archived records to the group's dead-letter topic, if
// it has one that is allowed: named with errors.deadletterqueue.topic.name.prefix
// and configured with errors.deadletterqueue.group.enable=true.
func (m *Manager) deadLetter(sp *Part, archived []queue.ArchivedRange) {
	if len(archived) == 0 {
		return
	}
	sp.mu.Lock()
	dlq := sp.dlqTopic
	sp.mu.Unlock()
	if dlq == "" {
		return
	}
	m.d.Metrics.DeadLettered(sp.topic, archivedCount(archived))
	prefix, _ := m.d.Config.Value("errors.deadletterqueue.topic.name.prefix")
	img := m.d.Image()
	t := img.Topics[dlq]
	if t == nil || len(dlq) < len(prefix) || dlq[:len(prefix)] != prefix ||
		m.d.Config.EffectiveTopicConfig(t.Configs).String("errors.deadletterqueue.group.enable") != "true" {
		m.d.Log.Warn("dead-letter topic unusable: it must exist, start with errors.deadletterqueue.topic.name.prefix and set errors.deadletterqueue.group.enable=true",
			"group", sp.key.Group, "topic", dlq, "prefix", prefix)
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
					hdrs := append([]log.RecordHeader(nil), r.Headers...)
					hdrs = append(hdrs,
						log.RecordHeader{Key: dlqHeaderTopic, Value: []byte(sp.topic)},
						log.RecordHeader{Key: dlqHeaderPartition, Value: []byte(strconv.Itoa(int(sp.key.Partition)))},
						log.RecordHeader{Key: dlqHeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
						log.RecordHeader{Key: dlqHeaderGroup, Value: []byte(sp.key.Group)},
						log.RecordHeader{Key: dlqHeaderCount, Value: []byte(strconv.Itoa(int(a.DeliveryCount)))},
						log.RecordHeader{Key: dlqHeaderReason, Value: []byte(a.Reason)},
					)
					out = append(out, log.Record{Key: r.Key, Value: r.Value, Headers: hdrs})
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
