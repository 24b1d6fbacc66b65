package integration

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestClientMatrixLibrdkafkaClassic runs the client matrix with librdkafka
// (through confluent-kafka-go) and classic consumer groups.
func TestClientMatrixLibrdkafkaClassic(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &librdkafkaDriver{n: n, protocol: "classic"})
}

// TestClientMatrixLibrdkafkaConsumer runs the client matrix with librdkafka
// and KIP-848 consumer groups (group.protocol=consumer).
func TestClientMatrixLibrdkafkaConsumer(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &librdkafkaDriver{n: n, protocol: "consumer"})
}

type librdkafkaDriver struct {
	n *node
	// protocol is the consumers' group.protocol.
	protocol string
}

func (d *librdkafkaDriver) skip(string) string   { return "" }
func (d *librdkafkaDriver) setsTimestamps() bool { return true }

func (d *librdkafkaDriver) admin(t *testing.T) *kafka.AdminClient {
	t.Helper()
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": d.n.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// consumerConfig is the configuration of every consumer the driver makes.
func (d *librdkafkaDriver) consumerConfig(group string) *kafka.ConfigMap {
	cfg := kafka.ConfigMap{
		"bootstrap.servers":  d.n.Addr(),
		"group.id":           group,
		"group.protocol":     d.protocol,
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
		"fetch.wait.max.ms":  200,
	}
	if d.protocol == "classic" {
		// The consumer protocol takes its timeouts from the broker
		// and refuses these.
		cfg["session.timeout.ms"] = 6000
		cfg["heartbeat.interval.ms"] = 300
	}
	return &cfg
}

func (d *librdkafkaDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	rs, err := d.admin(t).CreateTopics(ctxT(t, opTimeout), []kafka.TopicSpecification{{
		Topic: topic, NumPartitions: int(partitions), ReplicationFactor: 1, Config: configs,
	}})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("create topic %s: %v", r.Topic, r.Error)
		}
	}
}

func (d *librdkafkaDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	d.produceWith(t, topic, recs, kafka.ConfigMap{"compression.type": codec, "enable.idempotence": false})
}

func (d *librdkafkaDriver) produceIdempotent(t *testing.T, topic string, recs []mRecord) {
	d.produceWith(t, topic, recs, kafka.ConfigMap{"compression.type": "none", "enable.idempotence": true})
}

func (d *librdkafkaDriver) produceWith(t *testing.T, topic string, recs []mRecord, extra kafka.ConfigMap) {
	cfg := kafka.ConfigMap{"bootstrap.servers": d.n.Addr(), "linger.ms": 5}
	for k, v := range extra {
		cfg[k] = v
	}
	p, err := kafka.NewProducer(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	delivered := make(chan kafka.Event, len(recs))
	for _, r := range recs {
		m := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(r.Key),
			Value:          []byte(r.Value),
			Timestamp:      time.UnixMilli(r.TimestampMs),
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
		}
		if err := p.Produce(m, delivered); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	deadline := time.After(opTimeout)
	for range recs {
		select {
		case ev := <-delivered:
			if m, ok := ev.(*kafka.Message); !ok || m.TopicPartition.Error != nil {
				t.Fatalf("delivery report: %v", ev)
			}
		case <-deadline:
			t.Fatalf("delivery reports not in after %v", opTimeout)
		}
	}
}

func (d *librdkafkaDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	cfg := d.consumerConfig(group)
	cfg.SetKey("enable.partition.eof", true)
	c, err := kafka.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	var out []mRecord
	// atEnd holds the partitions whose end-of-partition event came at the
	// end offset: librdkafka fetched there and found nothing more.
	atEnd := map[int32]bool{}
	var clientErrs []string
	// commit commits the offsets of the messages Poll returned so far
	// (librdkafka stores them as it hands them out).
	commit := func() {
		var kerr kafka.Error
		if _, err := c.Commit(); err != nil && !(errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset) {
			t.Fatalf("commit: %v", err)
		}
	}
	deadline := time.Now().Add(matrixConsumeTimeout)
	for len(atEnd) < len(ends) {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records, end of partition reached on %v of %v, before timeout; client errors: %v",
				len(out), atEnd, ends, clientErrs)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			out = append(out, fromLibrdkafka(ev))
			if len(out)%matrixCommitEvery == 0 {
				commit()
			}
		case kafka.PartitionEOF:
			if int64(ev.Offset) >= ends[ev.Partition] {
				commit()
				atEnd[ev.Partition] = true
			}
		case kafka.Error:
			clientErrs = append(clientErrs, ev.Error())
		}
	}
	closed = true
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if len(clientErrs) > 0 {
		t.Errorf("client errors while consuming: %v", clientErrs)
	}
	return out
}

func fromLibrdkafka(m *kafka.Message) mRecord {
	return newMRecord(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Key, m.Value, m.Timestamp,
		m.Headers, func(h kafka.Header) (string, []byte) { return h.Key, h.Value })
}

func (d *librdkafkaDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	res, err := d.admin(t).ListConsumerGroupOffsets(ctxT(t, opTimeout),
		[]kafka.ConsumerGroupTopicPartitions{{Group: group}})
	if err != nil {
		t.Fatalf("list consumer group offsets: %v", err)
	}
	out := map[int32]int64{}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, p := range g.Partitions {
			if p.Error != nil {
				t.Fatalf("committed offset of %v: %v", p, p.Error)
			}
			if *p.Topic == topic {
				out[p.Partition] = int64(p.Offset)
			}
		}
	}
	return out
}

type librdkafkaMember struct {
	c    *kafka.Consumer
	stop chan struct{}
	done chan struct{}
	once sync.Once

	ownedPartitions
	errs []string // guarded by mu
}

func (d *librdkafkaDriver) startMember(t *testing.T, group, topic string) matrixMember {
	c, err := kafka.NewConsumer(d.consumerConfig(group))
	if err != nil {
		t.Fatal(err)
	}
	m := &librdkafkaMember{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	// The rebalance callback runs inside Poll: it applies the assignment
	// change (eager for classic, incremental for the consumer protocol)
	// and records what the member owns.
	rebalance := func(c *kafka.Consumer, ev kafka.Event) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		incremental := c.GetRebalanceProtocol() == "COOPERATIVE"
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			for _, p := range e.Partitions {
				m.owned = append(m.owned, p.Partition)
			}
			if incremental {
				return c.IncrementalAssign(e.Partitions)
			}
			return c.Assign(e.Partitions)
		case kafka.RevokedPartitions:
			m.owned = slices.DeleteFunc(m.owned, func(p int32) bool {
				return slices.ContainsFunc(e.Partitions, func(tp kafka.TopicPartition) bool { return tp.Partition == p })
			})
			if incremental {
				return c.IncrementalUnassign(e.Partitions)
			}
			return c.Unassign()
		}
		return nil
	}
	if err := c.Subscribe(topic, rebalance); err != nil {
		c.Close()
		t.Fatal(err)
	}
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			if e, ok := c.Poll(100).(kafka.Error); ok {
				m.mu.Lock()
				m.errs = append(m.errs, e.Error())
				m.mu.Unlock()
			}
		}
	}()
	return m
}

func (m *librdkafkaMember) close() {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
		m.c.Close()
	})
}

func (d *librdkafkaDriver) describeGroup(t *testing.T, group string) mGroup {
	res, err := d.admin(t).DescribeConsumerGroups(ctxT(t, opTimeout), []string{group})
	if err != nil {
		t.Fatalf("describe consumer groups: %v", err)
	}
	if len(res.ConsumerGroupDescriptions) != 1 {
		t.Fatalf("described %d groups, want 1", len(res.ConsumerGroupDescriptions))
	}
	g := res.ConsumerGroupDescriptions[0]
	if g.Error.Code() != kafka.ErrNoError {
		t.Fatalf("describe group %s: %v", group, g.Error)
	}
	return mGroup{State: g.State.String(), Members: len(g.Members)}
}

func (d *librdkafkaDriver) listGroups(t *testing.T) []string {
	res, err := d.admin(t).ListConsumerGroups(ctxT(t, opTimeout))
	if err != nil {
		t.Fatalf("list consumer groups: %v", err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("list consumer groups: %v", res.Errors)
	}
	var out []string
	for _, g := range res.Valid {
		out = append(out, g.GroupID)
	}
	return out
}

func (d *librdkafkaDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	req := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for p := range partitions {
		req[kafka.TopicPartition{Topic: &topic, Partition: p}] = kafka.NewOffsetSpecForTimestamp(ms)
	}
	res, err := d.admin(t).ListOffsets(ctxT(t, opTimeout), req)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int32]int64{}
	for tp, info := range res.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			t.Fatalf("list offsets %d: %v", tp.Partition, info.Error)
		}
		out[tp.Partition] = int64(info.Offset)
	}
	return out
}

func (d *librdkafkaDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	res, err := d.admin(t).DescribeConfigs(ctxT(t, opTimeout),
		[]kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("describe configs of %s: %v", r.Name, r.Error)
		}
		if e, ok := r.Config[key]; ok {
			return e.Value
		}
	}
	t.Fatalf("%s not described", key)
	return ""
}

func (d *librdkafkaDriver) deleteRecords(t *testing.T, topic string, partition int32, before int64) {
	res, err := d.admin(t).DeleteRecords(ctxT(t, opTimeout),
		[]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.Offset(before)}})
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	for _, r := range res.DeleteRecordsResults {
		if r.TopicPartition.Error != nil {
			t.Fatalf("delete records: %v", r.TopicPartition.Error)
		}
		if got := int64(r.DeletedRecords.LowWatermark); got != before {
			t.Errorf("delete records answered low watermark %d, want %d", got, before)
		}
	}
}

func (d *librdkafkaDriver) deleteTopic(t *testing.T, topic string) {
	rs, err := d.admin(t).DeleteTopics(ctxT(t, opTimeout), []string{topic})
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	for _, r := range rs {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("delete topic %s: %v", r.Topic, r.Error)
		}
	}
}
