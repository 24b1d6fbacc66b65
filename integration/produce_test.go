package integration

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// codecHook records the compression codecs of produced and fetched batches.
type codecHook struct {
	mu       sync.Mutex
	produced map[uint8]int
	fetched  map[uint8]int
}

func newCodecHook() *codecHook {
	return &codecHook{produced: map[uint8]int{}, fetched: map[uint8]int{}}
}

func (h *codecHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.mu.Lock()
	h.produced[m.CompressionType]++
	h.mu.Unlock()
}

func (h *codecHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.mu.Lock()
	h.fetched[m.CompressionType]++
	h.mu.Unlock()
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, nodeOpts{}, 3)

	codecs := []struct {
		name  string
		id    uint8
		codec kgo.CompressionCodec
	}{
		{"none", 0, kgo.NoCompression()},
		{"gzip", 1, kgo.GzipCompression()},
		{"snappy", 2, kgo.SnappyCompression()},
		{"lz4", 3, kgo.Lz4Compression()},
		{"zstd", 4, kgo.ZstdCompression()},
	}
	const perPartition = 60
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)

	type sent struct {
		key, value []byte
		headers    []kgo.RecordHeader
		ts         time.Time
		offset     int64
	}
	want := map[int32][]*sent{}
	hook := newCodecHook()

	for ci, c := range codecs {
		cl := n.Client(t,
			kgo.ProducerBatchCompression(c.codec),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.WithHooks(hook),
		)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for p := int32(0); p < 3; p++ {
			for i := 0; i < perPartition; i++ {
				s := &sent{
					key: []byte(fmt.Sprintf("%s-p%d-k%03d", c.name, p, i)),
					// Repetitive text so every codec actually shrinks the batch.
					value: []byte(strings.Repeat(fmt.Sprintf("value %s %d %d; ", c.name, p, i), 8+i%5)),
					headers: []kgo.RecordHeader{
						{Key: "codec", Value: []byte(c.name)},
						{Key: "index", Value: []byte(fmt.Sprint(i))},
						{Key: "empty", Value: []byte{}},
					},
					ts: base.Add(time.Duration(ci*1000000+int(p)*10000+i*7) * time.Millisecond),
				}
				switch i {
				case 0: // null key and value (a tombstone)
					s.key, s.value = nil, nil
				case 1: // empty, not null
					s.key, s.value = []byte{}, []byte{}
				}
				want[p] = append(want[p], s)
				r := &kgo.Record{
					Topic:     topic,
					Partition: p,
					Key:       s.key,
					Value:     s.value,
					Headers:   s.headers,
					Timestamp: s.ts,
				}
				wg.Add(1)
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					defer wg.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					s.offset = r.Offset
				})
			}
		}
		if err := cl.Flush(ctxT(t, opTimeout)); err != nil {
			t.Fatalf("%s: flush: %v", c.name, err)
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%s: %d produce errors, first: %v", c.name, len(errs), errs[0])
		}
	}

	// Every offset the producer was told must be the next one in its
	// partition, in produce order.
	for p, ss := range want {
		for i, s := range ss {
			if s.offset != int64(i) {
				t.Fatalf("partition %d: record %d acknowledged at offset %d, want %d", p, i, s.offset, i)
			}
		}
	}

	consumer := n.Client(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(hook),
	)
	total := 3 * perPartition * len(codecs)
	recs := consumeN(t, consumer, total, opTimeout)

	got := map[int32][]*kgo.Record{}
	for _, r := range recs {
		got[r.Partition] = append(got[r.Partition], r)
	}
	for p := int32(0); p < 3; p++ {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: consumed %d records, want %d", p, len(got[p]), len(want[p]))
		}
		for i, r := range got[p] {
			w := want[p][i]
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d (offsets must be contiguous from 0)", p, i, r.Offset)
			}
			if (r.Key == nil) != (w.key == nil) || (r.Value == nil) != (w.value == nil) {
				t.Fatalf("partition %d offset %d: null key/value %v/%v, want %v/%v", p, r.Offset, r.Key == nil, r.Value == nil, w.key == nil, w.value == nil)
			}
			if !bytes.Equal(r.Key, w.key) {
				t.Fatalf("partition %d offset %d: key %q, want %q", p, r.Offset, r.Key, w.key)
			}
			if !bytes.Equal(r.Value, w.value) {
				t.Fatalf("partition %d offset %d: value %q, want %q", p, r.Offset, r.Value, w.value)
			}
			if !r.Timestamp.Equal(w.ts) {
				t.Fatalf("partition %d offset %d: timestamp %v, want %v", p, r.Offset, r.Timestamp, w.ts)
			}
			if r.Attrs.TimestampType() != 0 {
				t.Fatalf("partition %d offset %d: timestamp type %d, want 0 (CreateTime)", p, r.Offset, r.Attrs.TimestampType())
			}
			if len(r.Headers) != len(w.headers) {
				t.Fatalf("partition %d offset %d: %d headers, want %d", p, r.Offset, len(r.Headers), len(w.headers))
			}
			for j, h := range r.Headers {
				if h.Key != w.headers[j].Key || !bytes.Equal(h.Value, w.headers[j].Value) {
					t.Fatalf("partition %d offset %d: header %d is %q=%q, want %q=%q",
						p, r.Offset, j, h.Key, h.Value, w.headers[j].Key, w.headers[j].Value)
				}
			}
		}
	}

	// The broker keeps batches as the producer compressed them
	// (compression.type=producer), so every codec comes back on fetch.
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, c := range codecs {
		if hook.produced[c.id] == 0 {
			t.Errorf("no batch was produced with %s (produced codecs: %v)", c.name, hook.produced)
		}
		if hook.fetched[c.id] == 0 {
			t.Errorf("no batch compressed with %s was fetched (fetched codecs: %v)", c.name, hook.fetched)
		}
	}
}

// fetchWrites counts Fetch requests written by a client.
type fetchWrites struct{ n atomic.Int64 }

func (f *fetchWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		f.n.Add(1)
	}
}

func TestFetchLongPollReturnsWhenDataArrives(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, nodeOpts{}, 1)

	lp := startLongPoll(t, n, topic)
	producer := n.Client(t)
	lp.expectWokenBy(producer, &kgo.Record{Topic: topic, Value: []byte("wake up")})
}

// A fetch parked on some partitions of a topic is answered when a record
// arrives on one of them, and not when one arrives on a partition it does
// not read: the broker wakes exactly the fetches parked on the partition
// appended to.
//
// The fetch is sent as one raw request, so that what is parked is known to
// cover both partitions: a consumer makes each partition fetchable as its
// start offset loads and may send its first fetch, parked for MaxWait,
// before the second partition is ready.
func TestFetchLongPollWakesOnlyForItsPartitions(t *testing.T) {
	t.Parallel()
	n, _, topic, id := startNodeWithTopic(t, nodeOpts{}, 3)

	rc := dialRaw(t, n.Addr())
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(longPollWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	for _, p := range []int32{0, 1} {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	corr := rc.send(req, -1)
	type answer struct {
		body []byte
		err  error
		at   time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		body, err := rc.readFrame(2 * longPollWait)
		answered <- answer{body, err, time.Now()}
	}()

	producer := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(partition int32, value string) time.Time {
		t.Helper()
		if err := producer.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", partition, err)
		}
		return time.Now()
	}
	produce(2, "elsewhere")
	select {
	case a := <-answered:
		t.Fatalf("fetch of partitions 0 and 1 answered (error %v) after a produce to partition 2", a.err)
	case <-time.After(time.Second):
	}

	producedAt := produce(1, "wake up")
	var a answer
	select {
	case a = <-answered:
	case <-time.After(2 * longPollWait):
		t.Fatalf("fetch not answered within %v of producing", 2*longPollWait)
	}
	if a.err != nil {
		t.Fatalf("reading the fetch response: %v", a.err)
	}
	if d := a.at.Sub(producedAt); d > 3*time.Second {
		t.Fatalf("fetch answered %v after the produce; a parked fetch must wake on new data, not wait out MaxWait %v", d, longPollWait)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.GetVersion())
	rest, err := skipResponseHeader(a.body, corr, resp)
	if err == nil {
		err = resp.ReadFrom(rest)
	}
	if err != nil {
		t.Fatalf("decoding the fetch response: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("fetch response has %d topics, want 1 with partitions 0 and 1", len(resp.Topics))
	}
	for _, p := range resp.Topics[0].Partitions {
		hasRecords := len(p.RecordBatches) > 0
		if p.ErrorCode != 0 || hasRecords != (p.Partition == 1) {
			t.Errorf("partition %d: error %d, %d record bytes; want records on partition 1 only", p.Partition, p.ErrorCode, len(p.RecordBatches))
		}
	}
}

// longPollWait is the FetchMaxWait of the long-poll tests: far longer than
// any of their checks, so that an answer within it comes from new data.
const longPollWait = 20 * time.Second

// longPoll is a consumer polling an empty topic on a goroutine, whose
// fetches the broker should park.
type longPoll struct {
	t       *testing.T
	fw      *fetchWrites
	results <-chan polled
}

// startLongPoll starts a consumer of topic's partition 0, from the start,
// with FetchMaxWait longPollWait, and checks that its fetch is parked
// before anything is produced.
func startLongPoll(t *testing.T, n *node, topic string) *longPoll {
	t.Helper()
	lp := &longPoll{t: t, fw: &fetchWrites{}}
	consumer := n.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(longPollWait),
		kgo.WithHooks(lp.fw),
	)
	lp.results = pollUntilRecords(t, consumer, 2*longPollWait)
	lp.expectParked()
	return lp
}

// polled is what one PollFetches returned, and when.
type polled struct {
	recs []*kgo.Record
	errs []error
	at   time.Time
}

// pollUntilRecords polls consumer until a poll returns records or errors
// (or limit passes) and sends that poll.
func pollUntilRecords(t *testing.T, consumer *kgo.Client, limit time.Duration) <-chan polled {
	results := make(chan polled, 1)
	pollCtx := ctxT(t, limit)
	go func() {
		for {
			fs := consumer.PollFetches(pollCtx)
			var p polled
			fs.EachError(func(_ string, _ int32, err error) { p.errs = append(p.errs, err) })
			p.recs = fs.Records()
			p.at = time.Now()
			if len(p.recs) > 0 || len(p.errs) > 0 || pollCtx.Err() != nil {
				results <- p
				return
			}
		}
	}()
	return results
}

// expectParked checks that the consumer's fetch is parked on the broker:
// its first fetch is on the wire, no poll returns within a second, and the
// broker answered at most a couple of fetches meanwhile (a broker that
// ignored MaxWait would answer empty fetches over and over).
func (lp *longPoll) expectParked() {
	t, fw := lp.t, lp.fw
	t.Helper()
	waitFor(t, opTimeout, "the consumer's first fetch", func() (bool, string) {
		return fw.n.Load() > 0, "no Fetch written yet"
	})
	idleStart := fw.n.Load()
	select {
	case p := <-lp.results:
		t.Fatalf("poll returned before anything was produced: %d records, errors %v", len(p.recs), p.errs)
	case <-time.After(time.Second):
	}
	if extra := fw.n.Load() - idleStart; extra > 2 {
		t.Fatalf("%d fetches were answered within 1s with MaxWait %v: the broker is not long-polling", extra, longPollWait)
	}
}

// expectWokenBy produces r and checks that the parked poll returns it, and
// soon: a parked fetch must wake on new data, not wait out MaxWait.
func (lp *longPoll) expectWokenBy(producer *kgo.Client, r *kgo.Record) {
	t := lp.t
	t.Helper()
	want := string(r.Value)
	producedAt := time.Now()
	if err := producer.ProduceSync(ctxT(t, opTimeout), r).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	select {
	case p := <-lp.results:
		if len(p.errs) > 0 {
			t.Fatalf("fetch errors: %v", p.errs)
		}
		if len(p.recs) != 1 || string(p.recs[0].Value) != want {
			t.Fatalf("got %d records, want the one produced", len(p.recs))
		}
		if d := p.at.Sub(producedAt); d > 3*time.Second {
			t.Fatalf("record arrived %v after produce; a parked fetch must wake on new data, not wait out MaxWait %v", d, longPollWait)
		} else {
			t.Logf("record arrived %v after produce", d)
		}
	case <-time.After(longPollWait):
		t.Fatalf("record not received within %v of producing", longPollWait)
	}
}

// TestProduceAcks covers acks=1 and acks=0: both store the records, and an
// acks=0 request gets no response at all (the next response on the
// connection belongs to the next request).
func TestProduceAcks(t *testing.T) {
	t.Parallel()
	n, adm, topic, id := startNodeWithTopic(t, nodeOpts{}, 1)

	produce := func(cl *kgo.Client, prefix string, count int) {
		t.Helper()
		for i := 0; i < count; i++ {
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}, nil)
		}
		if err := cl.Flush(ctxT(t, opTimeout)); err != nil {
			t.Fatalf("%s: flush: %v", prefix, err)
		}
	}
	leader := n.Client(t, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	res := leader.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Value: []byte("acks1-first")})
	if err := res.FirstErr(); err != nil || res[0].Record.Offset != 0 {
		t.Fatalf("acks=1: offset %d, err %v", res[0].Record.Offset, err)
	}
	produce(leader, "acks1", 49)
	none := n.Client(t, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	produce(none, "acks0", 50)

	var want []string
	want = append(want, "acks1-first")
	for i := 0; i < 49; i++ {
		want = append(want, fmt.Sprintf("acks1-%d", i))
	}
	for i := 0; i < 50; i++ {
		want = append(want, fmt.Sprintf("acks0-%d", i))
	}
	// acks=0 has no acknowledgement to wait for: wait for the records.
	waitFor(t, opTimeout, "all acks=0 records to be stored", func() (bool, string) {
		ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			return false, err.Error()
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset == int64(len(want)), fmt.Sprintf("end offset %d", o.Offset)
	})
	consumer := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	for i, r := range consumeN(t, consumer, len(want), opTimeout) {
		if r.Offset != int64(i) || string(r.Value) != want[i] {
			t.Fatalf("offset %d: %q, want %q at offset %d", r.Offset, r.Value, want[i], i)
		}
	}

	rc := dialRaw(t, n.Addr())
	rc.send(produceRequest(0, topic, id, 0, recordBatch(time.Now().UnixMilli(), []byte("raw acks=0"))), -1)
	// request checks the correlation id of the next frame.
	if r := rc.request(kmsg.NewPtrApiVersionsRequest(), 0).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("ApiVersions after an acks=0 produce: error %d", r.ErrorCode)
	}
}

// TestProduceAcksZeroFailureClosesConnection sends an acks=0 produce that
// fails (a partition the topic does not have): Kafka answers nothing and
// closes the connection so the producer refreshes its metadata. The broker
// must only drop that connection: other clients keep being served.
func TestProduceAcksZeroFailureClosesConnection(t *testing.T) {
	t.Parallel()
	n, _, topic, id := startNodeWithTopic(t, nodeOpts{}, 1)

	rc := dialRaw(t, n.Addr())
	rc.send(produceRequest(0, topic, id, 7, recordBatch(time.Now().UnixMilli(), []byte("to nowhere"))), -1)
	rc.expectClosed("a failed acks=0 produce", opTimeout)

	if !n.Alive() {
		t.Fatalf("broker exited after a failed acks=0 produce:\n%s", n.Output())
	}
	cl := n.Client(t, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctxT(t, opTimeout), kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("produce after a failed acks=0 produce: %v\n%s", err, n.Output())
	}
}
