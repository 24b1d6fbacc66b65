package broker

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
)

// The steady-state benchmarks send one pre-encoded request frame over and
// over on a loopback connection to a real server and read each response
// into one buffer, so the client side allocates nothing and the process's
// allocation count is the broker's (its background loops add a little).
// They report allocations per record:
//
//	go test -run XXX -bench 'Steady' -benchmem ./broker/

const steadyRecords = 100

// steadyServer starts a server with a one-partition topic and returns a
// connection to it and a batch of steadyRecords records of 100 bytes.
func steadyServer(b *testing.B) (net.Conn, []byte) {
	s := startTestServer(b)
	ctx := testContext(b, 30*time.Second)
	if _, err := kadm.NewClient(testClient(b, s)).CreateTopic(ctx, 1, 1, nil, "steady"); err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	recs := make([]log.Record, steadyRecords)
	for i := range recs {
		recs[i].Value = []byte(strings.Repeat("v", 100))
	}
	return c, log.EncodeBatch(recs, time.Now())
}

// runSteady sends frame b.N times and reports allocations per record.
func runSteady(b *testing.B, c net.Conn, req kmsg.Request, version int16) {
	body := frameOf(req, version)
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	buf := make([]byte, 1<<20)
	roundTrip := func() {
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			b.Fatal(err)
		}
		n := binary.BigEndian.Uint32(buf[:4])
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
	for range 200 {
		roundTrip()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*steadyRecords), "allocs/record")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*steadyRecords), "B/record")
}

// BenchmarkSteadyProduce: acks=1 produce of one batch of 100 records.
func BenchmarkSteadyProduce(b *testing.B) {
	c, batch := steadyServer(b)
	runSteady(b, c, steadyProduce(batch), 9)
}

// steadyProduce is an acks=1 produce of batch to partition 0 of "steady".
func steadyProduce(batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "steady"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// BenchmarkSteadyFetch: a sessionless fetch of the same batch of 100
// records.
func BenchmarkSteadyFetch(b *testing.B) {
	c, batch := steadyServer(b)
	body := frameOf(steadyProduce(batch), 9)
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
		b.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
		b.Fatal(err)
	}

	req := sessionFetch(0, -1, "steady", [16]byte{}, 0)
	req.Topics[0].Partitions[0].PartitionMaxBytes = int32(len(batch))
	runSteady(b, c, req, 12)
}
