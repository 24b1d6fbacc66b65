package broker

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testwait"
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

// longPoll is a sessionless fetch of partition 0 of topic from offset 0
// that waits up to maxWait ms for a byte.
func longPoll(topic string, maxWait int32) *kmsg.FetchRequest {
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = maxWait
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
	return fetch
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

	writeRequest(t, c, 1, longPoll("ordered", 10_000), 11)

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

// Responses the reader writes itself (nothing before them left to write)
// and responses queued behind a long poll for the writer go out in request
// order, whichever way each takes.
func TestConnectionAnswersInOrderEitherWay(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 20*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, "either-way", nil)
	// The long poll below must find its partition, not be answered at once
	// with an error while the partition's files are still being made.
	testwait.For(t, "the partition's log", func() bool {
		offs, err := adm.ListEndOffsets(ctx, "either-way")
		return err == nil && offs.Error() == nil
	})
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))

	expect := func(want ...int32) {
		t.Helper()
		for _, w := range want {
			if corr, _ := readCorrelation(t, c); corr != w {
				t.Fatalf("response with correlation id %d, want %d", corr, w)
			}
		}
	}
	apiVersions := apiVersionsFrom("shoal-test", "1.0")
	// Alone on the connection: answered by the reader.
	writeRequest(t, c, 1, apiVersions, 3)
	expect(1)

	// A long poll with no data, then requests that are ready at once:
	// they wait for the poll's answer.
	start := time.Now()
	writeRequest(t, c, 2, longPoll("either-way", 300), 11)
	for corr := int32(3); corr <= 5; corr++ {
		writeRequest(t, c, corr, apiVersions, 3)
	}
	expect(2)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("the long poll was answered after %v, before its 300 ms wait", waited)
	}
	expect(3, 4, 5)

	// Requests written together (the reader finds the next one already
	// buffered), then one alone again once the writer has caught up.
	for corr := int32(6); corr <= 9; corr++ {
		writeRequest(t, c, corr, apiVersions, 3)
	}
	expect(6, 7, 8, 9)
	writeRequest(t, c, 10, apiVersions, 3)
	expect(10)
}

// BenchmarkSmallRequestRoundTrip: one small request at a time (ApiVersions)
// on a loopback connection to a real server, against the same round trip
// through a bare TCP echo in the same run, the floor any broker pays:
//
//	go test -run XXX -bench SmallRequestRoundTrip ./broker/
func BenchmarkSmallRequestRoundTrip(b *testing.B) {
	body := frameOf(apiVersionsFrom("shoal-test", "1.0"), 3)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	run := func(b *testing.B, c net.Conn) {
		buf := make([]byte, 64<<10)
		for b.Loop() {
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:4]); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:binary.BigEndian.Uint32(buf[:4])]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("tcp-echo", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		reply := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		reply = append(reply, body...)
		go func() {
			sc, err := ln.Accept()
			if err != nil {
				return
			}
			defer sc.Close()
			in := make([]byte, len(frame))
			for {
				if _, err := io.ReadFull(sc, in); err != nil {
					return
				}
				if _, err := sc.Write(reply); err != nil {
					return
				}
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c)
	})
	b.Run("api-versions", func(b *testing.B) {
		s := startTestServer(b)
		c, err := net.Dial("tcp", s.Addrs()[0])
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c)
	})
}
