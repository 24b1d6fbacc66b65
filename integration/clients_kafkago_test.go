package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestClientMatrixKafkaGo runs the client matrix with segmentio/kafka-go.
func TestClientMatrixKafkaGo(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &kafkaGoDriver{n: n})
}

type kafkaGoDriver struct {
	unsupportedSteps
	n *node
}

func (d *kafkaGoDriver) skip(step string) string {
	switch step {
	case stepIdempotent:
		return "kafka-go has no idempotent producer"
	case stepDeleteRecords:
		return "kafka-go has no DeleteRecords API"
	}
	return ""
}

func (d *kafkaGoDriver) setsTimestamps() bool { return true }

func (d *kafkaGoDriver) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(d.n.Addr()), Timeout: opTimeout}
}

func (d *kafkaGoDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	tc := kafka.TopicConfig{Topic: topic, NumPartitions: int(partitions), ReplicationFactor: 1}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	resp, err := d.client().CreateTopics(ctxT(t, opTimeout), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

var kafkaGoCodecs = map[string]kafka.Compression{
	"gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

func (d *kafkaGoDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	w := &kafka.Writer{
		Addr:         kafka.TCP(d.n.Addr()),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		Compression:  kafkaGoCodecs[codec], // zero, "none", is no compression
		BatchSize:    len(recs),
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		m := kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value), Time: time.UnixMilli(r.TimestampMs)}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
		}
		msgs[i] = m
	}
	if err := w.WriteMessages(ctxT(t, opTimeout), msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// errorLog collects what a kafka-go client reports through its ErrorLogger.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, fmt.Sprintf(format, args...))
}

func (l *errorLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func (d *kafkaGoDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	errs := &errorLog{}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{d.n.Addr()},
		GroupID:     group,
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		// kafka-go asks the broker to wait MaxWait less a margin (a
		// quarter of MaxWait below one second, one second above) and
		// fails the read at MaxWait: at 200 ms the broker had 50 ms
		// past its wait to answer, too little on a loaded machine.
		MaxWait:           2 * time.Second,
		HeartbeatInterval: 300 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		ErrorLogger:       errs,
	})
	closed := false
	defer func() {
		if !closed {
			r.Close()
		}
	}()
	var out []mRecord
	next := map[int32]int64{}
	ctx := ctxT(t, matrixConsumeTimeout)
	var uncommitted []kafka.Message
	for !reachedEnds(next, ends) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consumed %d records, positions %v, ends %v: %v; client errors: %v", len(out), next, ends, err, errs.all())
		}
		out = append(out, fromKafkaGo(m))
		next[int32(m.Partition)] = m.Offset + 1
		uncommitted = append(uncommitted, m)
		if len(uncommitted) == matrixCommitEvery || reachedEnds(next, ends) {
			if err := r.CommitMessages(ctx, uncommitted...); err != nil {
				t.Fatalf("commit: %v", err)
			}
			uncommitted = uncommitted[:0]
		}
	}
	// Caught up: keep fetching for a second; nothing may arrive.
	idle, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if m, err := r.FetchMessage(idle); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after catching up: got %v, %v; want no record", fromKafkaGo(m), err)
	}
	closed = true
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if e := errs.all(); len(e) > 0 {
		t.Errorf("client errors while consuming: %v", e)
	}
	return out
}

func fromKafkaGo(m kafka.Message) mRecord {
	return newMRecord(int32(m.Partition), m.Offset, m.Key, m.Value, m.Time,
		m.Headers, func(h kafka.Header) (string, []byte) { return h.Key, h.Value })
}

func (d *kafkaGoDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	parts := make([]int, matrixPartitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := d.client().OffsetFetch(ctxT(t, opTimeout), &kafka.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{topic: parts},
	})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("offset fetch: %v", resp.Error)
	}
	out := map[int32]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("committed offset of %d: %v", p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[int32(p.Partition)] = p.CommittedOffset
		}
	}
	return out
}

// kafkaGoMember is a member through kafka-go's ConsumerGroup API, which hands
// out one generation (with its assignment) at a time.
type kafkaGoMember struct {
	g      *kafka.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	ownedPartitions
	generation int32 // guarded by mu
}

func (d *kafkaGoDriver) startMember(t *testing.T, group, topic string) matrixMember {
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           []string{d.n.Addr()},
		Topics:            []string{topic},
		HeartbeatInterval: 300 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &kafkaGoMember{g: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			gen, err := g.Next(ctx)
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			if err != nil {
				// A failed join or sync (a rebalance started
				// meanwhile): the group retries by itself.
				continue
			}
			var owned []int32
			for _, pa := range gen.Assignments[topic] {
				owned = append(owned, int32(pa.ID))
			}
			m.mu.Lock()
			m.owned, m.generation = owned, gen.ID
			m.mu.Unlock()
			// The generation ends at the next rebalance; its
			// assignment goes with it, unless a later generation
			// has already replaced it.
			gen.Start(func(ctx context.Context) {
				<-ctx.Done()
				m.mu.Lock()
				if m.generation == gen.ID {
					m.owned = nil
				}
				m.mu.Unlock()
			})
		}
	}()
	return m
}

func (m *kafkaGoMember) close() {
	m.once.Do(func() {
		m.g.Close()
		m.cancel()
		<-m.done
	})
}

func (d *kafkaGoDriver) describeGroup(t *testing.T, group string) mGroup {
	resp, err := d.client().DescribeGroups(ctxT(t, opTimeout), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatalf("describe groups: %v", err)
	}
	if len(resp.Groups) != 1 {
		t.Fatalf("described %d groups, want 1", len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		t.Fatalf("describe group %s: %v", group, g.Error)
	}
	return mGroup{State: g.GroupState, Members: len(g.Members)}
}

func (d *kafkaGoDriver) listGroups(t *testing.T) []string {
	resp, err := d.client().ListGroups(ctxT(t, opTimeout), &kafka.ListGroupsRequest{})
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("list groups: %v", resp.Error)
	}
	var out []string
	for _, g := range resp.Groups {
		out = append(out, g.GroupID)
	}
	return out
}

func (d *kafkaGoDriver) offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64 {
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.TimeOffsetOf(int(p), time.UnixMilli(ms)))
	}
	resp, err := d.client().ListOffsets(ctxT(t, opTimeout), &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: reqs},
	})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int32]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets %d: %v", po.Partition, po.Error)
		}
		if len(po.Offsets) != 1 {
			t.Fatalf("list offsets %d: answered %v, want one offset", po.Partition, po.Offsets)
		}
		for o := range po.Offsets {
			out[int32(po.Partition)] = o
		}
	}
	return out
}

func (d *kafkaGoDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	resp, err := d.client().DescribeConfigs(ctxT(t, opTimeout), &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic}},
	})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			t.Fatalf("describe configs of %s: %v", r.ResourceName, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == key {
				return e.ConfigValue
			}
		}
	}
	t.Fatalf("%s not described", key)
	return ""
}

func (d *kafkaGoDriver) deleteTopic(t *testing.T, topic string) {
	resp, err := d.client().DeleteTopics(ctxT(t, opTimeout), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("delete topic: %v", err)
	}
}
