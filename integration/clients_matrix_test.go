package integration

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The client matrix runs one scenario, described once in this file, against
// every stock client shoal promises to serve. Each client has a driver in its
// own file (clients_<name>_test.go) that performs a step with that client's
// own API; the scenario checks the outcome against the broker through kadm,
// so a driver cannot pass by agreeing with itself. A step a client cannot do
// is still listed, as a skipped subtest whose name carries the reason.

// matrixCodecs are the compression codecs every producer step uses, by the
// name Kafka's compression.type gives them.
var matrixCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// matrixRecordsPerCodec is how many records each produce step writes.
const matrixRecordsPerCodec = 1000

// matrixPartitions is the partition count of the scenario's topics.
const matrixPartitions = 3

// matrixCommitEvery is how many records a consumer that commits by hand
// processes between commits (it commits at the end of the log too).
const matrixCommitEvery = 250

// matrixConsumeTimeout bounds a consume step: a few seconds unloaded, with
// room for a loaded 2-core CI machine running the race detector.
const matrixConsumeTimeout = time.Minute

// matrixRetentionMs is set on the scenario topic at creation so describe
// configs has a non-default value to find.
const matrixRetentionMs = "86400000"

// The scenario's steps, in order. Drivers name the ones they skip by these.
const (
	stepCreateTopic    = "create topic"
	stepProduce        = "produce" // one subtest per codec
	stepConsumeGroup   = "consume in a group to the end and commit"
	stepCommitted      = "fetch committed offsets"
	stepRebalance      = "rebalance: three join, one leaves"
	stepDescribeGroup  = "describe group"
	stepListGroups     = "list groups"
	stepOffsetsForTime = "list offsets by timestamp"
	stepIdempotent     = "idempotent producer"
	stepDescribeConfig = "describe configs"
	stepDeleteRecords  = "delete records"
	stepDeleteTopic    = "delete topic"
)

// mRecord is a record as a client produced or consumed it.
type mRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   []mHeader
	// TimestampMs is the record's timestamp in Unix milliseconds.
	TimestampMs int64
}

type mHeader struct{ Key, Value string }

func (r mRecord) String() string {
	return fmt.Sprintf("%d@%d key=%q value=%q headers=%v ts=%d", r.Partition, r.Offset, r.Key, r.Value, r.Headers, r.TimestampMs)
}

// mGroup is a group as a client describes it.
type mGroup struct {
	State   string
	Members int
}

// matrixDriver performs the scenario's steps with one client. Every method
// fails t itself (t.Fatal) on a client error; results are checked by the
// scenario.
type matrixDriver interface {
	// skip says why the client cannot do step ("" when it can). A step
	// with subtests is asked for by its own name ("produce/zstd") and by
	// the step's ("produce").
	skip(step string) string
	// setsTimestamps reports whether the producer can give each record
	// its own timestamp.
	setsTimestamps() bool

	createTopic(t *testing.T, topic string, partitions int32, configs map[string]string)
	// produce writes recs (keyed; the client's partitioner picks the
	// partition) compressed with codec, and returns once all are
	// acknowledged.
	produce(t *testing.T, topic, codec string, recs []mRecord)
	// produceIdempotent is produce with the idempotent producer enabled
	// and no compression.
	produceIdempotent(t *testing.T, topic string, recs []mRecord)
	// consumeGroup joins group alone, consumes topic from the beginning
	// committing what it consumed, keeps fetching once it has reached the
	// end of every partition (ends, the end offsets) and stops cleanly
	// there, leaving the group. It returns the records in consumption
	// order.
	consumeGroup(t *testing.T, group, topic string, ends map[int32]int64) []mRecord
	committed(t *testing.T, group, topic string) map[int32]int64
	// startMember starts a member of group subscribed to topic that keeps
	// consuming until closed. The scenario closes it; the member must
	// outlive t, the step that started it.
	startMember(t *testing.T, group, topic string) matrixMember
	describeGroup(t *testing.T, group string) mGroup
	listGroups(t *testing.T) []string
	offsetsForTime(t *testing.T, topic string, partitions int32, ms int64) map[int32]int64
	describeTopicConfig(t *testing.T, topic, key string) string
	deleteRecords(t *testing.T, topic string, partition int32, before int64)
	deleteTopic(t *testing.T, topic string)
}

// unsupportedSteps, embedded in a driver, stands in for the steps its skip
// names, which the scenario never calls.
type unsupportedSteps struct{}

func notSupported(t *testing.T) {
	t.Helper()
	t.Fatal("the client cannot do this step; its skip must name it")
}

func (unsupportedSteps) createTopic(t *testing.T, _ string, _ int32, _ map[string]string) {
	notSupported(t)
}
func (unsupportedSteps) produceIdempotent(t *testing.T, _ string, _ []mRecord) { notSupported(t) }
func (unsupportedSteps) committed(t *testing.T, _, _ string) map[int32]int64 {
	notSupported(t)
	return nil
}
func (unsupportedSteps) describeGroup(t *testing.T, _ string) mGroup {
	notSupported(t)
	return mGroup{}
}
func (unsupportedSteps) listGroups(t *testing.T) []string { notSupported(t); return nil }
func (unsupportedSteps) describeTopicConfig(t *testing.T, _, _ string) string {
	notSupported(t)
	return ""
}
func (unsupportedSteps) deleteRecords(t *testing.T, _ string, _ int32, _ int64) { notSupported(t) }
func (unsupportedSteps) deleteTopic(t *testing.T, _ string)                     { notSupported(t) }

// matrixMember is one running group member.
type matrixMember interface {
	// assigned is the member's current assignment of the topic as the
	// client itself reports it.
	assigned() []int32
	// close leaves the group and releases the client; later calls do
	// nothing.
	close()
}

// ownedPartitions is a matrix member's assignment as its client reports
// it. mu also guards the member's other bookkeeping.
type ownedPartitions struct {
	mu    sync.Mutex
	owned []int32
}

func (o *ownedPartitions) assigned() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(slices.Values(o.owned))
}

// reachedEnds reports whether a consumer whose next offset per partition
// is next has read up to ends on every partition (what consumeGroup waits
// for).
func reachedEnds(next, ends map[int32]int64) bool {
	for p, e := range ends {
		if next[p] < e {
			return false
		}
	}
	return true
}

// matrixOpts configure the node the matrix runs against: group timing short
// enough that joins and rebalances take a fraction of a second.
var matrixOpts = nodeOpts{set: []string{
	"group.initial.rebalance.delay.ms=0",
	"group.min.session.timeout.ms=1000",
	"group.consumer.heartbeat.interval.ms=500",
	"group.consumer.session.timeout.ms=6000",
}}

// runMatrix runs the scenario with d against n. name prefixes topic and group
// names.
func runMatrix(t *testing.T, n *node, d matrixDriver) {
	outer := t
	adm := n.Admin(t)
	topic := topicName(t, "")
	group := topic + "-g"
	var produced []mRecord

	// step runs one step as a subtest, or lists it as skipped with the
	// driver's reason. It reports whether the step ran and passed.
	step := func(name string, f func(t *testing.T)) bool {
		why := d.skip(name)
		if why == "" {
			why = d.skip(strings.SplitN(name, "/", 2)[0])
		}
		if why != "" {
			t.Run(name+" skipped: "+why, func(t *testing.T) { t.Skip(why) })
			return false
		}
		return t.Run(name, f)
	}

	if !step(stepCreateTopic, func(t *testing.T) {
		d.createTopic(t, topic, matrixPartitions, map[string]string{"retention.ms": matrixRetentionMs})
		waitTopic(t, adm, topic, matrixPartitions)
	}) {
		// The remaining steps need the topic: create it with kadm.
		createTopic(t, adm, topic, matrixPartitions, map[string]*string{"retention.ms": strp(matrixRetentionMs)})
	}

	// Timestamps an hour back, one millisecond apart, so that every record
	// has its own and list-offsets-by-time has an exact answer.
	baseTs := time.Now().Add(-time.Hour).UnixMilli()
	for ci, codec := range matrixCodecs {
		recs := matrixBatch(codec, baseTs+int64(ci*matrixRecordsPerCodec))
		step(stepProduce+"/"+codec, func(t *testing.T) {
			d.produce(t, topic, codec, recs)
			// What the broker stored, read back with kgo: every record
			// once, intact, compressed with codec.
			got := readAllKgo(t, n, topic)
			checkStored(t, got, recs, codec, d.setsTimestamps())
		})
		produced = append(produced, recs...)
	}
	// The records as stored, with partitions, offsets and timestamps: the
	// truth later steps compare with.
	stored := readAllKgo(t, n, topic)
	ends := endOffsets(t, adm, topic)

	step(stepConsumeGroup, func(t *testing.T) {
		if len(stored) == 0 {
			t.Fatal("nothing was produced")
		}
		got := d.consumeGroup(t, group, topic, ends)
		checkConsumed(t, got, stored)
		// What the client committed, read with kadm.
		checkCommitted(t, kadmCommitted(t, adm, group, topic), ends)
	})
	step(stepCommitted, func(t *testing.T) {
		checkCommitted(t, d.committed(t, group, topic), ends)
	})

	// Rebalance in a second group; its last two members stay up for the
	// describe and list steps.
	rgroup := topic + "-rebalance"
	var live []matrixMember
	step(stepRebalance, func(t *testing.T) {
		members := make([]matrixMember, 3)
		for i := range members {
			members[i] = d.startMember(t, rgroup, topic)
			outer.Cleanup(members[i].close)
		}
		waitBalanced(t, "three members", members)
		members[2].close()
		live = members[:2]
		waitBalanced(t, "two members after one left", live)
	})
	step(stepDescribeGroup, func(t *testing.T) {
		if live == nil {
			t.Fatal("no members to describe: the rebalance step failed")
		}
		// Members see their new assignment before the group has heard
		// them confirm it: a KIP-848 group is Reconciling until then, so
		// the describe waits for Stable.
		want := len(live)
		waitFor(t, 20*time.Second, fmt.Sprintf("group %s Stable with %d members", rgroup, want), func() (bool, string) {
			g := d.describeGroup(t, rgroup)
			return g.Members == want && g.State == "Stable", fmt.Sprintf("described %+v", g)
		})
		// The consuming group is empty now, all its members gone.
		if g := d.describeGroup(t, group); g.Members != 0 {
			t.Errorf("group %s described with %d members after its consumer left", group, g.Members)
		}
	})
	step(stepListGroups, func(t *testing.T) {
		groups := d.listGroups(t)
		for _, want := range []string{group, rgroup} {
			if !slices.Contains(groups, want) {
				t.Errorf("listed groups %v, want %s among them", groups, want)
			}
		}
	})
	for _, m := range live {
		m.close()
	}

	step(stepOffsetsForTime, func(t *testing.T) {
		if len(stored) == 0 {
			t.Fatal("nothing was produced")
		}
		ts, want := offsetsForTimeTruth(stored)
		got := d.offsetsForTime(t, topic, matrixPartitions, ts)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("offsets for timestamp %d: %v, want %v", ts, got, want)
		}
	})

	step(stepIdempotent, func(t *testing.T) {
		itopic := topic + "-idem"
		createTopic(t, adm, itopic, matrixPartitions, nil)
		recs := matrixBatch("none", baseTs)
		d.produceIdempotent(t, itopic, recs)
		got := readAllKgo(t, n, itopic)
		checkStored(t, got, recs, "none", d.setsTimestamps())
		for _, r := range got {
			if r.ProducerID < 0 {
				t.Fatalf("record %d@%d carries no producer id: not written by an idempotent producer", r.Partition, r.Offset)
			}
		}
	})

	step(stepDescribeConfig, func(t *testing.T) {
		if got := d.describeTopicConfig(t, topic, "retention.ms"); got != matrixRetentionMs {
			t.Errorf("retention.ms described as %q, want %s", got, matrixRetentionMs)
		}
	})

	step(stepDeleteRecords, func(t *testing.T) {
		before := ends[0] / 2
		d.deleteRecords(t, topic, 0, before)
		starts, err := adm.ListStartOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := starts.Lookup(topic, 0); o.Offset != before {
			t.Errorf("start offset of partition 0 is %d after deleting records before %d", o.Offset, before)
		}
	})

	step(stepDeleteTopic, func(t *testing.T) {
		d.deleteTopic(t, topic)
		waitFor(t, opTimeout, "the topic to be gone", func() (bool, string) {
			ts, err := adm.ListTopics(ctxT(t, opTimeout))
			if err != nil {
				return false, err.Error()
			}
			return !ts.Has(topic), "still listed"
		})
	})
}

// matrixBatch is the records one produce step writes: keys and values name
// codec and index, two headers, timestamps from baseTs one millisecond apart.
func matrixBatch(codec string, baseTs int64) []mRecord {
	recs := make([]mRecord, matrixRecordsPerCodec)
	for i := range recs {
		recs[i] = mRecord{
			Partition:   -1,
			Key:         fmt.Sprintf("%s-key-%04d", codec, i),
			Value:       fmt.Sprintf("%s-value-%04d", codec, i),
			Headers:     []mHeader{{"codec", codec}, {"origin", "matrix"}},
			TimestampMs: baseTs + int64(i),
		}
	}
	return recs
}

// waitTopic waits until metadata lists topic with its partitions, each with a
// leader.
func waitTopic(t *testing.T, adm *kadm.Client, topic string, partitions int) {
	t.Helper()
	waitFor(t, opTimeout, "topic "+topic+" in metadata", func() (bool, string) {
		td, err := adm.ListTopics(ctxT(t, opTimeout), topic)
		if err != nil {
			return false, err.Error()
		}
		d, ok := td[topic]
		if !ok || d.Err != nil {
			return false, fmt.Sprintf("not listed (%v)", d.Err)
		}
		if len(d.Partitions) != partitions {
			return false, fmt.Sprintf("%d partitions", len(d.Partitions))
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 {
				return false, fmt.Sprintf("partition %d has no leader", p.Partition)
			}
		}
		return true, ""
	})
}

// readAllKgo reads every record of topic with a kgo client that is not in a
// group, up to the end offsets at the time of the call.
func readAllKgo(t *testing.T, n *node, topic string) []*kgo.Record {
	t.Helper()
	adm := n.Admin(t)
	ends := endOffsets(t, adm, topic)
	want := 0
	for _, e := range ends {
		want += int(e)
	}
	if want == 0 {
		return nil
	}
	cl := n.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	// Not consumeN: that stops at once when t has already failed, and the
	// scenario goes on after a failed step.
	ctx := ctxT(t, opTimeout)
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s before timeout", len(out), want, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// checkStored compares what the broker holds (got, read by kgo) with what was
// produced: every record once, key, value, headers and timestamp intact, in
// batches compressed with codec (or, for a few, not compressed at all).
func checkStored(t *testing.T, got []*kgo.Record, want []mRecord, codec string, checkTs bool) {
	t.Helper()
	byKey := map[string]*kgo.Record{}
	for _, r := range got {
		if !strings.HasPrefix(string(r.Key), codec+"-") {
			continue
		}
		if prev, dup := byKey[string(r.Key)]; dup {
			t.Fatalf("key %s stored twice: at %d@%d and %d@%d", r.Key, prev.Partition, prev.Offset, r.Partition, r.Offset)
		}
		byKey[string(r.Key)] = r
	}
	if len(byKey) != len(want) {
		t.Fatalf("broker holds %d records of codec %s, want %d", len(byKey), codec, len(want))
	}
	wantCodec := map[string]byte{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
	compressed := 0
	for _, w := range want {
		r := byKey[w.Key]
		if r == nil {
			t.Fatalf("record %s missing", w.Key)
		}
		g := fromKgo(r)
		if g.Value != w.Value || fmt.Sprint(g.Headers) != fmt.Sprint(w.Headers) {
			t.Fatalf("stored %v, want %v", g, w)
		}
		if checkTs && g.TimestampMs != w.TimestampMs {
			t.Fatalf("stored %v with timestamp %d, want %d", g, g.TimestampMs, w.TimestampMs)
		}
		switch c := r.Attrs.CompressionType(); c {
		case wantCodec:
			compressed++
		case 0:
		default:
			t.Fatalf("record %v stored in a batch with compression %d, want %s (%d)", g, c, codec, wantCodec)
		}
	}
	// A client may send a batch uncompressed when compressing would not
	// shrink it (librdkafka does, for its first, small batches); most
	// records must still come compressed.
	if wantCodec != 0 && compressed < len(want)/2 {
		t.Fatalf("%d of %d records stored compressed with %s", compressed, len(want), codec)
	}
}

func fromKgo(r *kgo.Record) mRecord {
	return newMRecord(r.Partition, r.Offset, r.Key, r.Value, r.Timestamp,
		r.Headers, func(h kgo.RecordHeader) (string, []byte) { return h.Key, h.Value })
}

// newMRecord is how each client's driver turns a consumed record into the
// form the matrix compares; header gives the key and value of one of the
// client's headers.
func newMRecord[H any](partition int32, offset int64, key, value []byte, ts time.Time, headers []H, header func(H) (string, []byte)) mRecord {
	r := mRecord{
		Partition:   partition,
		Offset:      offset,
		Key:         string(key),
		Value:       string(value),
		TimestampMs: ts.UnixMilli(),
	}
	for _, h := range headers {
		k, v := header(h)
		r.Headers = append(r.Headers, mHeader{k, string(v)})
	}
	return r
}

// checkConsumed asserts got holds each stored record exactly once with
// everything intact.
func checkConsumed(t *testing.T, got []mRecord, stored []*kgo.Record) {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	seen := map[po]mRecord{}
	for _, r := range got {
		k := po{r.Partition, r.Offset}
		if prev, dup := seen[k]; dup {
			t.Fatalf("consumed %d@%d twice: %v and %v", r.Partition, r.Offset, prev, r)
		}
		seen[k] = r
	}
	for _, s := range stored {
		w := fromKgo(s)
		g, ok := seen[po{w.Partition, w.Offset}]
		if !ok {
			t.Fatalf("consumed %d records; never got %v", len(got), w)
		}
		if g.String() != w.String() {
			t.Fatalf("consumed %v, stored %v", g, w)
		}
	}
	if len(got) != len(stored) {
		t.Fatalf("consumed %d records, stored %d", len(got), len(stored))
	}
}

func kadmCommitted(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	os, err := adm.FetchOffsets(ctxT(t, opTimeout), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

func checkCommitted(t *testing.T, got, ends map[int32]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(ends) {
		t.Errorf("committed offsets %v, want the end offsets %v", got, ends)
	}
}

// waitBalanced waits until members together own every partition of the
// scenario topic, each partition exactly once and each member at least one.
func waitBalanced(t *testing.T, what string, members []matrixMember) {
	t.Helper()
	waitFor(t, 40*time.Second, "assignment balanced over "+what, func() (bool, string) {
		owners := map[int32]int{}
		var views []string
		for i, m := range members {
			a := m.assigned()
			views = append(views, fmt.Sprintf("member %d: %v", i, a))
			if len(a) == 0 {
				return false, strings.Join(views, "; ")
			}
			for _, p := range a {
				owners[p]++
			}
		}
		for p := int32(0); p < matrixPartitions; p++ {
			if owners[p] != 1 {
				return false, strings.Join(views, "; ")
			}
		}
		return len(owners) == matrixPartitions, strings.Join(views, "; ")
	})
}

// offsetsForTimeTruth picks a timestamp in the middle of the stored records
// that every partition has a record at or after, and returns it with, per
// partition, the first offset whose timestamp is at or after it: Kafka's
// answer to ListOffsets by timestamp.
func offsetsForTimeTruth(stored []*kgo.Record) (int64, map[int32]int64) {
	maxTs := map[int32]int64{}
	var all []int64
	for _, r := range stored {
		ts := r.Timestamp.UnixMilli()
		all = append(all, ts)
		if ts > maxTs[r.Partition] {
			maxTs[r.Partition] = ts
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	ts := all[len(all)/2]
	for _, m := range maxTs {
		ts = min(ts, m)
	}
	want := map[int32]int64{}
	for _, r := range stored {
		if r.Timestamp.UnixMilli() < ts {
			continue
		}
		if o, ok := want[r.Partition]; !ok || r.Offset < o {
			want[r.Partition] = r.Offset
		}
	}
	return ts, want
}
