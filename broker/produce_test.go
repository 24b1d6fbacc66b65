package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testwait"
	"github.com/shoalmq/shoal/log"
)

// TestProduceRetryAnswersOriginal: a retried idempotent batch is answered
// with no error and the base offset and timestamp the original got, on
// every Produce version, as Kafka answers it.
func TestProduceRetryAnswersOriginal(t *testing.T) {
	s := startTestServer(t)
	cl := testClient(t, s)
	ctx := testContext(t, 30*time.Second)
	appendTime := "LogAppendTime"
	createTopic(t, ctx, kadm.NewClient(cl), 1, "idem", map[string]*string{"message.timestamp.type": &appendTime})
	c := dialRaw(t, s.Addrs()[0])
	initResp := c.roundTrip(kmsg.NewPtrInitProducerIDRequest(), 4).(*kmsg.InitProducerIDResponse)
	if initResp.ErrorCode != 0 {
		t.Fatalf("%+v", initResp)
	}
	produce := func(version int16, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "idem", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch}}}}
		return c.roundTrip(req, version).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	batch := func(seq int32) []byte {
		return log.EncodeProducerBatch([]log.Record{{Value: []byte("a")}, {Value: []byte("b")}}, time.UnixMilli(1000), initResp.ProducerID, 0, seq)
	}
	// The first batch is retried until the new partition has its leader.
	testwait.For(t, "first batch stored", func() bool { return produce(9, batch(0)).ErrorCode == 0 })
	orig := produce(9, batch(2))
	if orig.ErrorCode != 0 || orig.BaseOffset != 2 || orig.LogAppendTime <= 1000 {
		t.Fatalf("original: %+v", orig)
	}
	for _, v := range []int16{3, 7, 9, 11} {
		got := produce(v, batch(2))
		if got.ErrorCode != 0 || got.BaseOffset != orig.BaseOffset || got.LogAppendTime != orig.LogAppendTime {
			t.Errorf("v%d retry: %+v, want base offset %d at %d", v, got, orig.BaseOffset, orig.LogAppendTime)
		}
	}
}

// TestProducerIDExpirationSetting: producer.id.expiration.ms and its check
// interval are the broker's settings: a producer idle for longer is
// forgotten by the partition it wrote to, as DescribeProducers shows.
func TestProducerIDExpirationSetting(t *testing.T) {
	s := startTestServer(t, "producer.id.expiration.ms=2000", "producer.id.expiration.check.interval.ms=50")
	cl := testClient(t, s)
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, 1, "expiring", nil)
	c := dialRaw(t, s.Addrs()[0])
	initResp := c.roundTrip(kmsg.NewPtrInitProducerIDRequest(), 4).(*kmsg.InitProducerIDResponse)
	if initResp.ErrorCode != 0 {
		t.Fatalf("%+v", initResp)
	}
	batch := log.EncodeProducerBatch([]log.Record{{Value: []byte("a")}}, time.Now(), initResp.ProducerID, 0, 0)
	testwait.For(t, "batch stored", func() bool {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "expiring", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch}}}}
		return c.roundTrip(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode == 0
	})
	producers := func() int {
		t.Helper()
		described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"expiring": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(described.SortedProducers())
	}
	if n := producers(); n != 1 {
		t.Fatalf("%d producers described after the write, want 1", n)
	}
	testwait.For(t, "the idle producer forgotten", func() bool { return producers() == 0 })
}
