package share

// Where a share group's dead letters go and what they hold (KIP-1191 as
// Kafka 4.4 ships it): the group's errors.deadletterqueue.topic.name, which
// must start with the broker's errors.deadletterqueue.topic.name.prefix,
// must not be internal (__*), and must either exist with the topic config
// errors.deadletterqueue.group.enable=true or be created on first use when
// errors.deadletterqueue.auto.create.topics.enable is on. A dead letter
// carries __dlq.errors.* headers naming its source and cause, and the
// record's key, value and headers only when the group sets
// errors.deadletterqueue.copy.record.enable.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// TopicCreator creates a topic through the controller and returns once this
// node's metadata image holds it (an existing topic is no error).
type TopicCreator interface {
	CreateTopic(ctx context.Context, req raftmeta.CreateTopicRequest) error
}

// errUnusableDLQ wraps every reason a group's dead-letter topic cannot be
// written.
var errUnusableDLQ = errors.New("dead-letter topic unusable")

// deadLetterTopic returns the dead-letter topic dlq of group, creating it
// when it is missing and the broker allows it, or an error (errUnusableDLQ)
// saying why it may not be written.
func (m *Manager) deadLetterTopic(ctx context.Context, group, dlq string) (*raftmeta.Topic, error) {
	prefix, _ := m.d.Config.Value("errors.deadletterqueue.topic.name.prefix")
	switch {
	case dlq == "":
		return nil, fmt.Errorf("%w: share group %s names none", errUnusableDLQ, group)
	case strings.HasPrefix(dlq, "__"):
		return nil, fmt.Errorf("%w: %s is an internal topic name", errUnusableDLQ, dlq)
	case !strings.HasPrefix(dlq, prefix):
		return nil, fmt.Errorf("%w: %s does not start with errors.deadletterqueue.topic.name.prefix %q", errUnusableDLQ, dlq, prefix)
	}
	if t := m.d.Image().Topics[dlq]; t != nil {
		if m.d.Config.EffectiveTopicConfig(t.Configs).String("errors.deadletterqueue.group.enable") != "true" {
			return nil, fmt.Errorf("%w: %s does not set errors.deadletterqueue.group.enable=true", errUnusableDLQ, dlq)
		}
		return t, nil
	}
	if auto, _ := m.d.Config.Value("errors.deadletterqueue.auto.create.topics.enable"); auto != "true" || m.d.Topics == nil {
		return nil, fmt.Errorf("%w: %s does not exist and errors.deadletterqueue.auto.create.topics.enable is off", errUnusableDLQ, dlq)
	}
	enable, createTime := "true", "CreateTime"
	err := m.d.Topics.CreateTopic(ctx, raftmeta.CreateTopicRequest{
		Name: dlq, NumPartitions: -1, ReplicationFactor: -1,
		// Dead letters carry the time they were written; a broker-wide
		// LogAppendTime must not replace it.
		Configs: map[string]*string{"errors.deadletterqueue.group.enable": &enable, "message.timestamp.type": &createTime},
	})
	if err != nil {
		return nil, fmt.Errorf("creating dead-letter topic %s: %w", dlq, err)
	}
	if t := m.d.Image().Topics[dlq]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: %s was created but is not in the metadata yet", errUnusableDLQ, dlq)
}

// deadLetterRecord is the dead letter of record r of sp's partition, given
// up on after count deliveries for reason (a queue.Reason*): the
// __dlq.errors.* headers, and r's key, value and headers when copyRecord.
func deadLetterRecord(sp *Part, r log.Record, count int16, reason string, copyRecord bool) log.Record {
	message := "record rejected by a consumer"
	if reason == queue.ReasonDeliveryLimit {
		message = "record reached the share group's delivery count limit"
	}
	var out log.Record
	if copyRecord {
		out = log.Record{Key: r.Key, Value: r.Value, Headers: append([]log.RecordHeader(nil), r.Headers...)}
	}
	group := []byte(sp.key.Group)
	out.Headers = append(out.Headers,
		log.RecordHeader{Key: DLQHeaderTopic, Value: []byte(sp.topic)},
		log.RecordHeader{Key: DLQHeaderPartition, Value: []byte(strconv.Itoa(int(sp.key.Partition)))},
		log.RecordHeader{Key: DLQHeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		log.RecordHeader{Key: DLQHeaderGroup, Value: group},
		log.RecordHeader{Key: DLQHeaderCount, Value: []byte(strconv.Itoa(int(count)))},
		log.RecordHeader{Key: DLQHeaderMessage, Value: []byte(message)},
		log.RecordHeader{Key: DLQHeaderGroupID, Value: group},
		log.RecordHeader{Key: DLQHeaderReason, Value: []byte(reason)},
	)
	return out
}
