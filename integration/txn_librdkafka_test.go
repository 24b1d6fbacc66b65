package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
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
	in, out := topicName(t, "in"), topicName(t, "out")
	adm := n.Admin(t)
	createTopic(t, adm, in, 1, nil)
	createTopic(t, adm, out, 1, nil)
	if err := n.Client(t).ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: in, Value: []byte("i0")}, &kgo.Record{Topic: in, Value: []byte("i1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	group := topicName(t, "g")
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": n.Addr(), "group.id": group, "auto.offset.reset": "earliest",
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

	producer, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": n.Addr(), "transactional.id": out + "-tx"})
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
