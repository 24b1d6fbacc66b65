package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// librdkafka's transactional producer (confluent-kafka-go) commits and
// aborts, with the consumed offsets sent to the transaction from a consumer
// group member (KIP-447 group metadata): only the committed output is read
// by read_committed consumers, and only the committed transaction's offset
// becomes the group's.
func TestTxnLibrdkafka(t *testing.T) {
	t.Parallel()
	n := startNode(t, txnOpts)
	adm := n.Admin(t)
	librdkafkaTxn(t, n, n.Addr(), func(topic string) { createTopic(t, adm, topic, 1, nil) })
}

// The same on three nodes, the topics and the transaction state replicated
// three times, librdkafka bootstrapping from all of them: the transaction
// coordinator, the partition leaders and the group coordinator are found
// and used wherever they are.
func TestTxnLibrdkafkaCluster(t *testing.T) {
	c := startCluster(t, 3, "transaction.state.log.num.partitions=3", "transaction.state.log.min.isr=2",
		"offsets.topic.num.partitions=3")
	var seeds []string
	for _, nd := range c.nodes {
		seeds = append(seeds, nd.Addr())
	}
	adm := kadm.NewClient(c.Client(t))
	librdkafkaTxn(t, c.nodes[0], strings.Join(seeds, ","), func(topic string) { c.createReplicated(adm, topic, 1, 3, nil) })
}

// librdkafkaTxn runs the pipeline step of TestTxnLibrdkafka against the
// brokers at bootstrap; n is one of them, create makes a one-partition
// topic.
func librdkafkaTxn(t *testing.T, n *node, bootstrap string, create func(topic string)) {
	in, out := topicName(t, "in"), topicName(t, "out")
	adm := n.Admin(t)
	create(in)
	create(out)
	if err := n.Client(t).ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: in, Value: []byte("i0")}, &kgo.Record{Topic: in, Value: []byte("i1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	group := topicName(t, "g")
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
		"enable.auto.commit": false, "isolation.level": "read_committed", "fetch.wait.max.ms": 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	if err := consumer.Subscribe(in, nil); err != nil {
		t.Fatal(err)
	}
	var consumed []*kafka.Message
	for deadline := time.Now().Add(opTimeout); len(consumed) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of 2 input records", len(consumed))
		}
		if m, err := consumer.ReadMessage(200 * time.Millisecond); err == nil {
			consumed = append(consumed, m)
		}
	}

	producer, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": out + "-tx"})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := producer.InitTransactions(ctx); err != nil {
		t.Fatalf("InitTransactions: %v", err)
	}
	meta, err := consumer.GetConsumerGroupMetadata()
	if err != nil {
		t.Fatal(err)
	}
	// One transaction per input: the first commits, the second aborts.
	for i, m := range consumed {
		if err := producer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		value := fmt.Sprintf("out-%s", m.Value)
		if err := producer.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &out, Partition: 0}, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
		next := m.TopicPartition
		next.Offset++
		if err := producer.SendOffsetsToTransaction(ctx, []kafka.TopicPartition{next}, meta); err != nil {
			t.Fatalf("SendOffsetsToTransaction: %v", err)
		}
		if i == 0 {
			err = producer.CommitTransaction(ctx)
		} else {
			err = producer.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatalf("ending transaction %d: %v", i, err)
		}
	}

	if got, want := fmt.Sprint(readIsolated(t, n, out, true)), "[out-i0]"; got != want {
		t.Errorf("read_committed read %s, want %s", got, want)
	}
	waitFor(t, opTimeout, "the committed transaction's offset", func() (bool, string) {
		offs, err := adm.FetchOffsets(ctxT(t, opTimeout), group)
		if err != nil {
			return false, err.Error()
		}
		o, _ := offs.Lookup(in, 0)
		return o.At == int64(consumed[0].TopicPartition.Offset)+1, fmt.Sprintf("group offset %d", o.At)
	})
}
