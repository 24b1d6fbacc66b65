package integration

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ackLog collects the records a producer was told are written.
type ackLog struct {
	mu     sync.Mutex
	acked  map[string]ackedRecord // by value
	failed map[string]error
	count  atomic.Int64
}

type ackedRecord struct {
	partition int32
	offset    int64
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]ackedRecord{}, failed: map[string]error{}}
}

func (a *ackLog) done(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed[string(r.Value)] = err
		return
	}
	a.acked[string(r.Value)] = ackedRecord{r.Partition, r.Offset}
	a.count.Add(1)
}

// producerLoop produces "g<id>-<seq>" records round-robin over partitions
// until stop is closed, with at most window records unacknowledged.
func producerLoop(cl *kgo.Client, topic string, id, partitions, window int, acks *ackLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	sem := make(chan struct{}, window)
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case sem <- struct{}{}:
		}
		r := &kgo.Record{
			Topic:     topic,
			Partition: int32(seq % partitions),
			Value:     []byte(fmt.Sprintf("g%d-%08d", id, seq)),
		}
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			acks.done(r, err)
			<-sem
		})
	}
}

func parseValue(t *testing.T, v []byte) (gen, seq int) {
	t.Helper()
	g, s, ok := strings.Cut(string(v), "-")
	if !ok || len(g) < 2 || g[0] != 'g' {
		t.Fatalf("unexpected record value %q", v)
	}
	gen, err1 := strconv.Atoi(g[1:])
	seq, err2 := strconv.Atoi(s)
	if err1 != nil || err2 != nil {
		t.Fatalf("unexpected record value %q", v)
	}
	return gen, seq
}

// readAll consumes every partition of topic from its start up to the end
// offsets listed now.
func readAll(t *testing.T, n *node, adm *kadm.Client, topic string) map[int32][]*kgo.Record {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	starts, err := adm.ListStartOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	want := 0
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		s, _ := starts.Lookup(topic, o.Partition)
		want += int(o.Offset - s.Offset)
		assign[o.Partition] = kgo.NewOffset().AtStart()
	})
	out := map[int32][]*kgo.Record{}
	if want == 0 {
		return out
	}
	cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	defer cl.Close()
	for _, r := range consumeN(t, cl, want, opTimeout) {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func TestKill9KeepsAcknowledgedRecords(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	topic := topicName(t, "")
	const partitions = 3
	createTopic(t, adm, topic, partitions, nil)

	// The producer outlives the crash: records in flight when the broker
	// dies are retried against the restarted broker, which must not write
	// them twice (idempotence across restart).
	producer := n.Client(t,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(45*time.Second),
		kgo.ProducerLinger(time.Millisecond),
	)
	acks := newAckLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go producerLoop(producer, topic, 0, partitions, 200, acks, stop, &wg)
	go producerLoop(producer, topic, 1, partitions, 200, acks, stop, &wg)
	stopped := false
	stopProducers := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopProducers()

	// Three crashes, each while both producers have records in flight.
	for round := 1; round <= 3; round++ {
		target := acks.count.Load() + 2000
		waitFor(t, opTimeout, fmt.Sprintf("%d acknowledged records", target), func() (bool, string) {
			c := acks.count.Load()
			return c >= target, fmt.Sprintf("%d acknowledged", c)
		})
		n.Kill9()
		t.Logf("crash %d after %d acknowledged records", round, acks.count.Load())
		n.Restart()
	}
	ackedAtKill := acks.count.Load()
	waitFor(t, opTimeout, "producing to resume after the last restart", func() (bool, string) {
		c := acks.count.Load()
		return c >= ackedAtKill+1000, fmt.Sprintf("%d acknowledged, %d at the last crash", c, ackedAtKill)
	})
	stopProducers()
	if err := producer.Flush(ctxT(t, time.Minute)); err != nil {
		t.Fatalf("flush: %v", err)
	}

	acks.mu.Lock()
	defer acks.mu.Unlock()
	t.Logf("%d records acknowledged, %d failed", len(acks.acked), len(acks.failed))
	for v, err := range acks.failed {
		t.Logf("first failed record: %s: %v", v, err)
		break
	}

	got := readAll(t, n, adm, topic)
	seen := map[string]ackedRecord{}
	for p := int32(0); p < partitions; p++ {
		last := map[int]int{0: -1, 1: -1}
		var prev int64 = -1
		for _, r := range got[p] {
			if r.Offset != prev+1 {
				t.Fatalf("partition %d: offset %d follows %d", p, r.Offset, prev)
			}
			prev = r.Offset
			v := string(r.Value)
			if at, dup := seen[v]; dup {
				t.Fatalf("record %s stored twice: partition %d offsets %d and %d", v, p, at.offset, r.Offset)
			}
			seen[v] = ackedRecord{p, r.Offset}
			gen, seq := parseValue(t, r.Value)
			if seq%partitions != int(p) {
				t.Fatalf("record %s in partition %d", v, p)
			}
			if seq <= last[gen] {
				t.Fatalf("partition %d: producer %d's record %d stored after its record %d", p, gen, seq, last[gen])
			}
			last[gen] = seq
		}
	}
	var missing []string
	for v, a := range acks.acked {
		s, ok := seen[v]
		switch {
		case !ok:
			missing = append(missing, v)
		case s != a:
			t.Errorf("record %s acknowledged at %d/%d, found at %d/%d", v, a.partition, a.offset, s.partition, s.offset)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d acknowledged records lost, e.g. %v", len(missing), missing[:min(len(missing), 10)])
	}
	if t.Failed() {
		return
	}

	// A fresh idempotent producer continues after the old end.
	ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	fresh := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < 5; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("fresh-%d-%d", p, i))})
		}
	}
	res := fresh.ProduceSync(ctxT(t, opTimeout), rs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("fresh producer after restart: %v", err)
	}
	next := map[int32]int64{}
	for _, r := range res {
		end, _ := ends.Lookup(topic, r.Record.Partition)
		if _, ok := next[r.Record.Partition]; !ok {
			next[r.Record.Partition] = end.Offset
		}
		if r.Record.Offset != next[r.Record.Partition] {
			t.Fatalf("fresh record %s at offset %d, want %d (old end %d)", r.Record.Value, r.Record.Offset, next[r.Record.Partition], end.Offset)
		}
		next[r.Record.Partition]++
	}
}

// TestIdempotentProducerStateSurvivesCrash replays an idempotent batch by
// hand after kill -9: the broker must recognise it as a duplicate (answering
// with its original offset, writing nothing) and keep checking sequences.
func TestIdempotentProducerStateSurvivesCrash(t *testing.T) {
	t.Parallel()
	n, adm, topic, id := startNodeWithTopic(t, nodeOpts{}, 1)

	rc := dialRaw(t, n.Addr())
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = -1
	initResp := rc.request(init, -1).(*kmsg.InitProducerIDResponse)
	if initResp.ErrorCode != 0 || initResp.ProducerID < 0 {
		t.Fatalf("InitProducerID: error %d, producer id %d", initResp.ErrorCode, initResp.ProducerID)
	}
	pid, epoch := initResp.ProducerID, initResp.ProducerEpoch
	ts := time.Now().UnixMilli()
	vals := func(prefix string, k int) [][]byte {
		var out [][]byte
		for i := 0; i < k; i++ {
			out = append(out, []byte(fmt.Sprintf("%s-%d", prefix, i)))
		}
		return out
	}
	first := producerBatch(pid, epoch, 0, ts, vals("first", 3)...)
	second := producerBatch(pid, epoch, 3, ts, vals("second", 2)...)
	if code, off := rc.produceRaw(topic, id, 0, first); code != 0 || off != 0 {
		t.Fatalf("first batch: error %d offset %d, want 0 0", code, off)
	}
	if code, off := rc.produceRaw(topic, id, 0, second); code != 0 || off != 3 {
		t.Fatalf("second batch: error %d offset %d, want 0 3", code, off)
	}
	// Before any crash, a retry of the last batch is a duplicate.
	if code, off := rc.produceRaw(topic, id, 0, second); code != 0 || off != 3 {
		t.Fatalf("retried second batch: error %d offset %d, want 0 3 (duplicate)", code, off)
	}

	n.Kill9()
	n.Restart()
	rc = dialRaw(t, n.Addr())

	if code, off := rc.produceRaw(topic, id, 0, second); code != 0 || off != 3 {
		t.Errorf("second batch retried after kill -9: error %d offset %d, want 0 3 (a duplicate of the stored batch)", code, off)
	}
	if code, off := rc.produceRaw(topic, id, 0, producerBatch(pid, epoch, 5, ts, vals("third", 1)...)); code != 0 || off != 5 {
		t.Errorf("next batch after kill -9: error %d offset %d, want 0 5", code, off)
	}
	if code, _ := rc.produceRaw(topic, id, 0, producerBatch(pid, epoch, 9, ts, vals("gap", 1)...)); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("batch with a sequence gap after kill -9: error %d, want %d (OUT_OF_ORDER_SEQUENCE_NUMBER)", code, kerr.OutOfOrderSequenceNumber.Code)
	}

	got := readAll(t, n, adm, topic)[0]
	var values []string
	for _, r := range got {
		values = append(values, string(r.Value))
	}
	want := "first-0 first-1 first-2 second-0 second-1 third-0"
	if strings.Join(values, " ") != want {
		t.Fatalf("partition holds %q, want %q", strings.Join(values, " "), want)
	}
}

// TestCrashRecoveryKeepsLookupsWorking crashes a broker holding a partition
// of many segments and checks that lookups by offset and by timestamp into
// old segments still answer correctly afterwards (indexes recovered or
// rebuilt).
func TestCrashRecoveryKeepsLookupsWorking(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 1, map[string]*string{"internal.segment.bytes": strp("16384")})

	const total = 400
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	producer := n.Client(t, kgo.ProducerBatchMaxBytes(2048), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var rs []*kgo.Record
	for i := 0; i < total; i++ {
		v := fmt.Sprintf("rec-%04d-", i)
		rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(v + strings.Repeat("z", 200-len(v))), Timestamp: t0.Add(time.Duration(i*10) * time.Millisecond)})
	}
	if err := producer.ProduceSync(ctxT(t, opTimeout), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	n.Kill9()
	n.Restart()

	// Everything acknowledged before the crash is visible again: the end
	// offset (high watermark), lookups by timestamp and fetches by offset
	// into old segments.
	ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != total {
		t.Errorf("end offset after kill -9 is %d, want %d", o.Offset, total)
	}
	fetchWorks := true
	for _, i := range []int{0, 1, 57, 123, 250, 399} {
		lo, err := adm.ListOffsetsAfterMilli(ctxT(t, opTimeout), t0.UnixMilli()+int64(i*10)-5, topic)
		if err != nil {
			t.Fatalf("list offsets by time: %v", err)
		}
		if o, _ := lo.Lookup(topic, 0); o.Err != nil || o.Offset != int64(i) || o.Timestamp != t0.UnixMilli()+int64(i*10) {
			t.Errorf("offset for the timestamp of record %d minus 5ms: %d at %d (%v), want %d at %d",
				i, o.Offset, o.Timestamp, o.Err, i, t0.UnixMilli()+int64(i*10))
		}
		if !fetchWorks {
			continue
		}
		cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(int64(i))}}))
		r := consumeFirst(t, cl, 5*time.Second)
		cl.Close()
		if r == nil {
			t.Errorf("fetch at offset %d: nothing within 5s (not trying further offsets)", i)
			fetchWorks = false
			continue
		}
		if r.Offset != int64(i) || !strings.HasPrefix(string(r.Value), fmt.Sprintf("rec-%04d-", i)) {
			t.Errorf("fetch at offset %d returned offset %d %.9q", i, r.Offset, r.Value)
		}
	}

	// Appends continue at the old end.
	res := producer.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Value: []byte("rec-0400-"), Timestamp: t0.Add(4000 * time.Millisecond)})
	if err := res.FirstErr(); err != nil || res[0].Record.Offset != total {
		t.Fatalf("produce after recovery: offset %d, err %v; want offset %d", res[0].Record.Offset, err, total)
	}
}

// consumeFirst returns the first record polled from cl, or nil if none
// arrives within timeout.
func consumeFirst(t *testing.T, cl *kgo.Client, timeout time.Duration) *kgo.Record {
	t.Helper()
	ctx := ctxT(t, timeout)
	for {
		fs := cl.PollRecords(ctx, 1)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

func TestGracefulRestart(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	topicA := topicName(t, "a")
	topicB := topicName(t, "b")
	createTopic(t, adm, topicA, 2, map[string]*string{
		"retention.ms":      strp("7200000"),
		"max.message.bytes": strp("500000"),
	})
	createTopic(t, adm, topicB, 1, map[string]*string{"cleanup.policy": strp("delete")})
	alter, err := adm.AlterTopicConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("2097152")},
	}, topicB)
	if err != nil || len(alter) != 1 || alter[0].Err != nil {
		t.Fatalf("alter configs: %v %v", err, alter)
	}

	producer := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i := 0; i < 300; i++ {
		rs = append(rs,
			&kgo.Record{Topic: topicA, Partition: int32(i % 2), Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("a-%d", i))},
			&kgo.Record{Topic: topicB, Partition: 0, Value: []byte(fmt.Sprintf("b-%d", i))},
		)
	}
	if err := producer.ProduceSync(ctxT(t, opTimeout), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	// A log start offset moved by DeleteRecords survives a clean restart.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topicB, Partition: 0, At: 100})
	if dr, err := adm.DeleteRecords(ctxT(t, opTimeout), offs); err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}

	before, err := adm.ListTopics(ctxT(t, opTimeout), topicA, topicB)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	cfgBefore := describeDynamic(t, adm, topicA, topicB)
	dataBefore := map[string]map[int32][]*kgo.Record{
		topicA: readAll(t, n, adm, topicA),
		topicB: readAll(t, n, adm, topicB),
	}

	n.Stop()
	if strings.Contains(n.Output(), "panic") {
		t.Fatalf("shutdown logged a panic")
	}
	n.Restart()

	after, err := adm.ListTopics(ctxT(t, opTimeout), topicA, topicB)
	if err != nil {
		t.Fatalf("list topics after restart: %v", err)
	}
	for _, name := range []string{topicA, topicB} {
		b, a := before[name], after[name]
		if a.Err != nil {
			t.Fatalf("topic %s after restart: %v", name, a.Err)
		}
		if a.ID != b.ID {
			t.Errorf("topic %s id changed across restart: %v -> %v", name, b.ID, a.ID)
		}
		if len(a.Partitions) != len(b.Partitions) {
			t.Errorf("topic %s: %d partitions after restart, %d before", name, len(a.Partitions), len(b.Partitions))
		}
	}
	starts, err := adm.ListStartOffsets(ctxT(t, opTimeout), topicB)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	if o, _ := starts.Lookup(topicB, 0); o.Offset != 100 {
		t.Errorf("log start offset of %s after restart: %d, want 100 (set by DeleteRecords)", topicB, o.Offset)
	}
	cfgAfter := describeDynamic(t, adm, topicA, topicB)
	for k, v := range cfgBefore {
		if cfgAfter[k] != v {
			t.Errorf("config %s: %q before restart, %q after", k, v, cfgAfter[k])
		}
	}
	for _, want := range []string{topicA + " retention.ms=7200000", topicA + " max.message.bytes=500000", topicB + " segment.bytes=2097152", topicB + " cleanup.policy=delete"} {
		k, v, _ := strings.Cut(want, "=")
		if cfgAfter[k] != v {
			t.Errorf("config %s = %q after restart, want %q", k, cfgAfter[k], v)
		}
	}
	for _, topic := range []string{topicA, topicB} {
		got := readAll(t, n, adm, topic)
		for p, recs := range dataBefore[topic] {
			if len(got[p]) != len(recs) {
				t.Fatalf("%s/%d: %d records after restart, %d before", topic, p, len(got[p]), len(recs))
			}
			for i, r := range recs {
				g := got[p][i]
				if g.Offset != r.Offset || string(g.Value) != string(r.Value) || string(g.Key) != string(r.Key) || !g.Timestamp.Equal(r.Timestamp) {
					t.Fatalf("%s/%d: record %d differs after restart: offset %d %q, was offset %d %q", topic, p, i, g.Offset, g.Value, r.Offset, r.Value)
				}
			}
		}
	}

	// Appends continue at the old end.
	res := producer.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topicB, Partition: 0, Value: []byte("after restart")})
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	if off := res[0].Record.Offset; off != 300 {
		t.Fatalf("first record after restart at offset %d, want 300", off)
	}
}

// describeDynamic returns "topic key" -> value for each topic's configs that
// were set on the topic (source DYNAMIC_TOPIC_CONFIG).
func describeDynamic(t *testing.T, adm *kadm.Client, topics ...string) map[string]string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t, opTimeout), topics...)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	out := map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe configs %s: %v", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG
				out[rc.Name+" "+c.Key] = c.MaybeValue()
			}
		}
	}
	return out
}
