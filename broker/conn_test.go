package broker

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

// oneRecordBatch encodes a v2 record batch holding one record.
func oneRecordBatch(value string) []byte {
	return log.EncodeBatch([]log.Record{{Value: []byte(value)}}, time.Now())
}

func writeRequest(t *testing.T, c net.Conn, corr int32, req kmsg.Request, version int16) {
	t.Helper()
	frame := frameOf(req, version)
	binary.BigEndian.PutUint32(frame[4:], uint32(corr))
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(frame)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
}

func readCorrelation(t *testing.T, c net.Conn) (int32, []byte) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:]
}

// A long-polling fetch must not hold up the requests behind it on the same
// connection (they are handled concurrently), yet responses come back in
// request order: here the produce queued behind the fetch is what wakes it.
func TestConnectionHandlesConcurrentlyAnswersInOrder(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 20*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, "ordered", nil)
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = 10_000
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "ordered", Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
	writeRequest(t, c, 1, fetch, 11)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.TimeoutMillis = 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "ordered", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneRecordBatch("wake")}}}}
	start := time.Now()
	writeRequest(t, c, 2, produce, 9)

	corr, body := readCorrelation(t, c)
	if corr != 1 {
		t.Fatalf("first response has correlation id %d, want the fetch's (1)", corr)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("fetch answered after %v: the produce behind it was not handled while it waited", waited)
	}
	fr := kmsg.NewPtrFetchResponse()
	fr.SetVersion(11)
	if err := fr.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch partition: error %d, HW %d, %d record bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if corr, _ := readCorrelation(t, c); corr != 2 {
		t.Fatalf("second response has correlation id %d, want the produce's (2)", corr)
	}
}
