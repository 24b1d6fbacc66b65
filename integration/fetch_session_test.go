package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Followers fetch from their leaders within incremental fetch sessions
// (KIP-227): every node that leads partitions keeps one session per
// follower node, and records produced afterwards, to a few partitions
// while the others stay idle, still reach every replica byte for byte.
func TestClusterFollowersFetchWithSessions(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	adm := kadm.NewClient(c.Client(t))
	const partitions = 12
	c.createReplicated(adm, topic, partitions, 3, nil)

	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(p int32, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	for p := range int32(partitions) {
		produce(p, "first")
	}
	waitFor(t, 30*time.Second, "a fetch session per follower on every leader", func() (bool, string) {
		total := 0.0
		var each []float64
		for _, n := range c.nodes {
			v := metricValue(t, n, "shoal_fetch_sessions")
			each = append(each, v)
			total += v
		}
		// Each node leads some of the partitions and is followed by the
		// two others.
		return total >= 6 && each[0] >= 2 && each[1] >= 2 && each[2] >= 2, fmt.Sprint(each)
	})
	for i := range 20 {
		produce(int32(i%3), fmt.Sprint("busy-", i))
	}
	for p := range int32(3) {
		waitIdenticalLogs(t, topic, p, c.nodes...)
	}
	for _, n := range c.nodes {
		if v := metricValue(t, n, "shoal_fetch_session_evictions_total"); v != 0 {
			t.Errorf("node %d evicted %v fetch sessions", n.id(), v)
		}
	}
}

// Consumers of many partitions, few of them busy, get every record in
// order per partition: franz-go within a fetch session (one is kept for
// it), librdkafka (2.11) with full fetches: it sends session epoch -1, so
// none is kept for it.
func TestFetchSessionClientsConsumeChangingPartitions(t *testing.T) {
	n := startNode(t, nodeOpts{})
	const partitions = 40
	produce := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(produce)
	rounds := func(t *testing.T, topic string, got func(want map[int32]string)) {
		for round := range 8 {
			want := map[int32]string{}
			for i := range 3 {
				p := int32((round*7 + i*13) % partitions)
				want[p] = fmt.Sprintf("%s-%d-%d", topic, round, i)
				if err := produce.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Partition: p, Value: []byte(want[p])}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			got(want)
		}
	}

	t.Run("franz-go", func(t *testing.T) {
		topic := topicName(t, "")
		if _, err := adm.CreateTopic(ctxT(t, opTimeout), partitions, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		offsets := map[int32]kgo.Offset{}
		for p := range int32(partitions) {
			offsets[p] = kgo.NewOffset().AtStart()
		}
		cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(200*time.Millisecond))
		rounds(t, topic, func(want map[int32]string) {
			ctx := ctxT(t, opTimeout)
			for len(want) > 0 && ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					if want[r.Partition] != string(r.Value) {
						t.Fatalf("partition %d: got %q, want %q", r.Partition, r.Value, want[r.Partition])
					}
					delete(want, r.Partition)
				})
			}
			if len(want) > 0 {
				t.Fatalf("not consumed: %v", want)
			}
		})
		if v := metricValue(t, n, "shoal_fetch_sessions"); v != 1 {
			t.Fatalf("fetch sessions while franz-go consumes: %v, want 1", v)
		}
		cl.Close()
	})

	t.Run("librdkafka", func(t *testing.T) {
		topic := topicName(t, "")
		if _, err := adm.CreateTopic(ctxT(t, opTimeout), partitions, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		before := metricValue(t, n, "shoal_fetch_sessions")
		c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": n.Addr(), "group.id": topic, "fetch.wait.max.ms": 200})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var assign []kafka.TopicPartition
		for p := range int32(partitions) {
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
		}
		if err := c.Assign(assign); err != nil {
			t.Fatal(err)
		}
		rounds(t, topic, func(want map[int32]string) {
			deadline := time.Now().Add(opTimeout)
			for len(want) > 0 && time.Now().Before(deadline) {
				switch ev := c.Poll(100).(type) {
				case *kafka.Message:
					if want[ev.TopicPartition.Partition] != string(ev.Value) {
						t.Fatalf("partition %d: got %q, want %q", ev.TopicPartition.Partition, ev.Value, want[ev.TopicPartition.Partition])
					}
					delete(want, ev.TopicPartition.Partition)
				case kafka.Error:
					t.Fatalf("librdkafka: %v", ev)
				}
			}
			if len(want) > 0 {
				t.Fatalf("not consumed: %v", want)
			}
		})
		// Not a check of the broker: a later librdkafka may start using
		// sessions, which the broker serves as it serves franz-go.
		t.Logf("fetch sessions before and after the librdkafka consumer: %v, %v", before, metricValue(t, n, "shoal_fetch_sessions"))
	})
}
