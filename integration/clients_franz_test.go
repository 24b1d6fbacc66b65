package integration

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClientMatrixFranz runs the client matrix with franz-go (kgo and kadm).
func TestClientMatrixFranz(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, &franzDriver{n: n})
}

type franzDriver struct{ n *node }

func (d *franzDriver) skip(string) string   { return "" }
func (d *franzDriver) setsTimestamps() bool { return true }

func (d *franzDriver) admin(t *testing.T) *kadm.Client { return d.n.Admin(t) }

func (d *franzDriver) createTopic(t *testing.T, topic string, partitions int32, configs map[string]string) {
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = strp(v)
	}
	createTopic(t, d.admin(t), topic, partitions, cfg)
}

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func (d *franzDriver) produce(t *testing.T, topic, codec string, recs []mRecord) {
	d.produceWith(t, topic, recs, kgo.ProducerBatchCompression(franzCodecs[codec]), kgo.DisableIdempotentWrite())
}

func (d *franzDriver) produceIdempotent(t *testing.T, topic string, recs []mRecord) {
	// Idempotence is kgo's default.
	d.produceWith(t, topic, recs, kgo.ProducerBatchCompression(kgo.NoCompression()))
}

func (d *franzDriver) produceWith(t *testing.T, topic string, recs []mRecord, opts ...kgo.Opt) {
	cl := d.n.Client(t, append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	defer cl.Close()
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &kgo.Record{Key: []byte(r.Key), Value: []byte(r.Value), Timestamp: time.UnixMilli(r.TimestampMs)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
		}
		krecs[i] = kr
	}
	if err := cl.ProduceSync(ctxT(t, opTimeout), krecs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func (d *franzDriver) consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord {
	cl := d.n.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	var out []mRecord
	next := map[int32]int64{}
	ctx := ctxT(t, matrixConsumeTimeout)
	for !reachedEnds(next, ends) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, positions %v, before timeout; ends %v", len(out), next, ends)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, fromKgo(r))
			next[r.Partition] = r.Offset + 1
		})
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	// Caught up: keep fetching through several empty long polls; any
	// record or error now is wrong.
	idle, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fs := cl.PollFetches(idle)
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("fetch %s/%d after catching up: %v", topic, p, err)
		}
	})
	if n := len(fs.Records()); n > 0 {
		t.Fatalf("%d records past the end offsets %v", n, ends)
	}
	return out
}

func (d *franzDriver) committed(t *testing.T, group, topic string) map[int32]int64 {
	return kadmCommitted(t, d.admin(t), group, topic)
}

type franzMember struct {
	cl *kgo.Client
	ownedPartitions
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (d *franzDriver) startMember(t *testing.T, group, topic string) matrixMember {
	m := &franzMember{done: make(chan struct{})}
	// Not n.Client: that client would close when t, the step, ends.
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.n.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			m.owned = append(m.owned, a[topic]...)
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.drop(r[topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { m.drop(l[topic]) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			m.cl.PollFetches(ctx)
		}
	}()
	return m
}

func (m *franzMember) drop(parts []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owned = slices.DeleteFunc(m.owned, func(p int32) bool { return slices.Contains(parts, p) })
}

func (m *franzMember) close() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

func (d *franzDriver) describeGroup(t *testing.T, group string) mGroup {
	gs, err := d.admin(t).DescribeGroups(ctxT(t, opTimeout), group)
	if err != nil {
		t.Fatalf("describe group: %v", err)
	}
	g := gs[group]
	if g.Err != nil {
		t.Fatalf("describe group %s: %v", group, g.Err)
	}
	return mGroup{State: g.State, Members: len(g.Members)}
}

func (d *franzDriver) listGroups(t *testing.T) []string {
	gs, err := d.admin(t).ListGroups(ctxT(t, opTimeout))
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	return gs.Groups()
}

func (d *franzDriver) offsetsForTime(t *testing.T, topic string, _ int32, ms int64) map[int32]int64 {
	ls, err := d.admin(t).ListOffsetsAfterMilli(ctxT(t, opTimeout), ms, topic)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int32]int64{}
	ls.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("list offsets %d: %v", o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

func (d *franzDriver) describeTopicConfig(t *testing.T, topic, key string) string {
	rcs, err := d.admin(t).DescribeTopicConfigs(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue()
		}
	}
	t.Fatalf("%s not described", key)
	return ""
}

func (d *franzDriver) deleteRecords(t *testing.T, topic string, partition int32, before int64) {
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: topic, Partition: partition, At: before})
	rs, err := d.admin(t).DeleteRecords(ctxT(t, opTimeout), o)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if err := rs.Error(); err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

func (d *franzDriver) deleteTopic(t *testing.T, topic string) {
	rs, err := d.admin(t).DeleteTopics(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	if err := rs.Error(); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
}
