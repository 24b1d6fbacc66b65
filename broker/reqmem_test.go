package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testwait"
)

// metadataBomb is a Metadata v4 body claiming count topics in n bytes.
func metadataBomb(n int, count int32) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, uint32(count))
	return b
}

// A request whose array counts could make decoding allocate far more than
// socket.request.max.bytes is refused before kmsg sees it; a normal one is
// charged a bounded multiple of its size.
func TestDecodeChargeBoundsArrayBombs(t *testing.T) {
	const maxBytes = 100 << 20
	bomb := metadataBomb(32<<20, 32<<20-4)
	if _, err := decodeCharge(3, 4, bomb, maxBytes); !errors.Is(err, errMalformed) {
		t.Fatalf("32 MiB Metadata array bomb: %v, want errMalformed", err)
	}
	topic := "t"
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	req.SetVersion(12)
	body := req.AppendTo(nil)
	charge, err := decodeCharge(3, 12, body, maxBytes)
	if err != nil || charge <= 0 || charge > int64(len(body))*expansionOf(3) {
		t.Fatalf("small Metadata: charge %d, err %v", charge, err)
	}
}

func produceBody(version int16, partitions int, records []byte) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "topic"
	rt.TopicID = [16]byte{1}
	for p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req.AppendTo(nil)
}

// A Produce request is walked: real element counts are charged for what
// they are, and a count its bytes cannot hold is refused.
func TestProduceChargeWalksCounts(t *testing.T) {
	for _, v := range []int16{3, 8, 9, 12, 13} {
		records := make([]byte, 1<<20)
		body := produceBody(v, 2, records)
		charge, err := decodeCharge(0, v, body, 1<<20)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		want := produceTopicSize + 2*producePartitionSize
		if v < 13 {
			want += int64(len("topic"))
		}
		if charge != want {
			t.Errorf("v%d: charge %d, want %d", v, charge, want)
		}
		var req kmsg.ProduceRequest
		req.SetVersion(v)
		if err := req.ReadFrom(body); err != nil || len(req.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: the walked body does not decode: %v", v, err)
		}
		// Claim a million partitions in the same bytes.
		bomb := produceBody(v, 0, nil)
		at := len(bomb) - 2 // partition count, then the topic's tags (flexible) or end
		if v >= 9 {
			bomb = append(bomb[:at], binary.AppendUvarint(nil, 1<<20)...)
		} else {
			bomb = binary.BigEndian.AppendUint32(bomb[:len(bomb)-4], 1<<20)
		}
		bomb = append(bomb, make([]byte, 1<<16)...)
		if _, err := decodeCharge(0, v, bomb, 1<<20); !errors.Is(err, errMalformed) {
			t.Errorf("v%d: a million-partition bomb: %v, want errMalformed", v, err)
		}
	}
}

// A large request waits while others hold queued.max.request.bytes and
// proceeds when they release it; small ones never wait.
func TestRequestMemoryWaits(t *testing.T) {
	p := newRequestMemory(1<<20, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}))
	ctx := context.Background()
	var first, small, waiter, huge reservation
	if err := p.acquire(ctx, &first, 900<<10); err != nil {
		t.Fatal(err)
	}
	if err := p.acquire(ctx, &small, smallRequest); err != nil { // small: never waits
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.acquire(cctx, &waiter, 512<<10); !errors.Is(err, context.Canceled) {
		t.Fatalf("a large request that must wait, with a cancelled context: %v", err)
	}
	if waiter != (reservation{}) {
		t.Fatalf("a failed acquire left %+v reserved", waiter)
	}
	got := make(chan error, 1)
	go func() { got <- p.acquire(ctx, &waiter, 512<<10) }()
	p.release(&first)
	if err := testwait.Recv(t, "the waiting request to be woken by the release", got); err != nil {
		t.Fatal(err)
	}
	// Larger than the whole budget: admitted once no other large request
	// holds memory.
	p.release(&waiter)
	if err := p.acquire(ctx, &huge, 4<<20); err != nil {
		t.Fatal(err)
	}
	p.release(&huge)
	p.release(&small)
	if p.used != 0 || p.large != 0 {
		t.Fatalf("after every release: used %d, large %d", p.used, p.large)
	}
}

// A request charged in two steps (its frame, then its decode) whose total
// exceeds the budget is admitted when it is the only large holder: it must
// not wait for memory it holds itself. And two small steps that add up to a
// large reservation release exactly what they took.
func TestRequestMemoryStepsOfOneRequest(t *testing.T) {
	p := newRequestMemory(1<<20, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}))
	ctx := testContext(t, 10*time.Second)
	var r reservation
	if err := p.acquire(ctx, &r, 900<<10); err != nil {
		t.Fatal(err)
	}
	if err := p.acquire(ctx, &r, 512<<10); err != nil {
		t.Fatalf("the second step of one request waited for its own memory: %v", err)
	}
	p.release(&r)
	if err := p.acquire(ctx, &r, smallRequest); err != nil {
		t.Fatal(err)
	}
	if err := p.acquire(ctx, &r, smallRequest); err != nil {
		t.Fatal(err)
	}
	p.release(&r)
	if p.used != 0 || p.large != 0 {
		t.Fatalf("after releasing: used %d, large %d", p.used, p.large)
	}
}
