package integration

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestClientMatrixSarama runs the client matrix with IBM/sarama.
func TestClientMatrixSarama(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &saramaDriver{n: n})
}

type saramaDriver struct{ n *node }

func (d *saramaDriver) skip(string) string   { return "" }
func (d *saramaDriver) setsTimestamps() bool { return true }

// config is the base configuration of every sarama client the driver makes:
// Kafka 4.0 request versions, short group timings, errors returned.
func (d *saramaDriver) config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func (d *saramaDriver) admin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin([]string{d.n.Addr()}, d.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func (d *saramaDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = strp(v)
	}
	err := d.admin(t).CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries,
	}, false)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func (d *saramaDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	cfg := d.config()
	cfg.Producer.Compression = saramaCodecs[codec]
	d.produceWith(t, cfg, topic, recs)
}

func (d *saramaDriver) produceIdempotent(t *testing.T, topic string, recs []mRecord) {
	cfg := d.config()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	d.produceWith(t, cfg, topic, recs)
}

func (d *saramaDriver) produceWith(t *testing.T, cfg *sarama.Config, topic string, recs []mRecord) {
	p, err := sarama.NewSyncProducer([]string{d.n.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.StringEncoder(r.Key),
			Value:     sarama.StringEncoder(r.Value),
			Timestamp: time.UnixMilli(r.TimestampMs),
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)})
		}
		msgs[i] = m
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// saramaConsumer is the consumer-group handler of consumeGroup: it records
// every message, commits after each drained batch, and reports when every
// partition has reached its end offset.
type saramaConsumer struct {
	ends map[int32]int64

	mu       sync.Mutex
	out      []mRecord
	next     map[int32]int64
	caughtUp chan struct{}
	once     sync.Once
}

func (h *saramaConsumer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaConsumer) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaConsumer) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.out = append(h.out, fromSarama(m))
			h.next[m.Partition] = m.Offset + 1
			done := reachedEnds(h.next, h.ends)
			h.mu.Unlock()
			s.MarkMessage(m, "")
			if len(claim.Messages()) == 0 {
				s.Commit()
			}
			if done {
				h.once.Do(func() { close(h.caughtUp) })
			}
		}
	}
}

func fromSarama(m *sarama.ConsumerMessage) mRecord {
	return newMRecord(m.Partition, m.Offset, m.Key, m.Value, m.Timestamp,
		m.Headers, func(h *sarama.RecordHeader) (string, []byte) { return string(h.Key), h.Value })
}

func (d *saramaDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	cfg := d.config()
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	g, err := sarama.NewConsumerGroup([]string{d.n.Addr()}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &saramaConsumer{ends: ends, next: map[int32]int64{}, caughtUp: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		var err error
		for ctx.Err() == nil && err == nil {
			err = g.Consume(ctx, []string{topic}, h)
		}
		consumed <- err
	}()
	var clientErrs []error
	deadline := time.After(matrixConsumeTimeout)
	// Caught up, keep the session fetching for a second more: any error
	// the client reports then is an answer to a fetch at the end.
	var idle <-chan time.Time
	caughtUp := h.caughtUp
wait:
	for {
		select {
		case err := <-g.Errors():
			clientErrs = append(clientErrs, err)
		case <-caughtUp:
			caughtUp = nil
			idle = time.After(time.Second)
		case <-idle:
			break wait
		case <-deadline:
			h.mu.Lock()
			t.Errorf("consumed %d records, positions %v, before timeout; ends %v", len(h.out), h.next, ends)
			h.mu.Unlock()
			break wait
		}
	}
	cancel()
	if err := <-consumed; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("consume: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if len(clientErrs) > 0 {
		t.Errorf("client errors while consuming: %v", clientErrs)
	}
	if t.Failed() {
		t.FailNow()
	}
	return h.out
}

func (d *saramaDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	resp, err := d.admin(t).ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatalf("list consumer group offsets: %v", err)
	}
	out := map[int32]int64{}
	for p, b := range resp.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			t.Fatalf("committed offset of %d: %v", p, b.Err)
		}
		out[p] = b.Offset
	}
	return out
}

// saramaMember is a consumer-group handler that tracks the session's claims.
type saramaMember struct {
	topic  string
	g      sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	ownedPartitions
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.owned = slices.Clone(s.Claims()[m.topic])
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.owned = nil
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case _, ok := <-claim.Messages():
			if !ok {
				return nil
			}
		}
	}
}

func (d *saramaDriver) startMember(t *testing.T, group, topic string) matrixMember {
	g, err := sarama.NewConsumerGroup([]string{d.n.Addr()}, group, d.config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{topic: topic, g: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
				// A rejoin error: try again after a pause rather
				// than spinning.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	go func() {
		for range g.Errors() {
		}
	}()
	return m
}

func (m *saramaMember) close() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.g.Close()
	})
}

func (d *saramaDriver) describeGroup(t *testing.T, group string) mGroup {
	gs, err := d.admin(t).DescribeConsumerGroups([]string{group})
	if err != nil {
		t.Fatalf("describe consumer groups: %v", err)
	}
	if len(gs) != 1 {
		t.Fatalf("described %d groups, want 1", len(gs))
	}
	if gs[0].Err != sarama.ErrNoError {
		t.Fatalf("describe group %s: %v", group, gs[0].Err)
	}
	return mGroup{State: gs[0].State, Members: len(gs[0].Members)}
}

func (d *saramaDriver) listGroups(t *testing.T) []string {
	gs, err := d.admin(t).ListConsumerGroups()
	if err != nil {
		t.Fatalf("list consumer groups: %v", err)
	}
	var out []string
	for g := range gs {
		out = append(out, g)
	}
	return out
}

func (d *saramaDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	cl, err := sarama.NewClient([]string{d.n.Addr()}, d.config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32]int64{}
	for p := range partitions {
		o, err := cl.GetOffset(topic, p, ms)
		if err != nil {
			t.Fatalf("offset of partition %d at %d: %v", p, ms, err)
		}
		out[p] = o
	}
	return out
}

func (d *saramaDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	entries, err := d.admin(t).DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	for _, e := range entries {
		if e.Name == key {
			return e.Value
		}
	}
	t.Fatalf("%s not described", key)
	return ""
}

func (d *saramaDriver) deleteRecords(t *testing.T, topic string, partition int32, before int64) {
	if err := d.admin(t).DeleteRecords(topic, map[int32]int64{partition: before}); err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

func (d *saramaDriver) deleteTopic(t *testing.T, topic string) {
	if err := d.admin(t).DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
}
