package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupResourceType is the IncrementalAlterConfigs resource type of groups
// (KIP-848 / KIP-932 group configs).
const groupResourceType = kmsg.ConfigResourceType(32)

// startShareNode starts a node with a short share heartbeat interval, so new
// members get their assignment quickly, plus extra broker settings.
func startShareNode(t *testing.T, extra ...string) *node {
	t.Helper()
	set := append([]string{
		"group.share.heartbeat.interval.ms=500",
		"group.share.session.timeout.ms=10000",
		// Tests hold locks for seconds, not Kafka's 15 s minimum.
		"group.share.min.record.lock.duration.ms=1000",
	}, extra...)
	return startNode(t, nodeOpts{set: set})
}

// startShareTopic is how most single-node share tests begin: a share node
// with a fresh topic of partitions partitions, the group to consume it
// (with groupConfigs, "name=value", set if any are given) and a client for
// admin requests.
func startShareTopic(t *testing.T, partitions int32, groupConfigs ...string) (n *node, topic, group string, admin *kgo.Client) {
	t.Helper()
	n = startShareNode(t)
	topic = topicName(t, "")
	group = topic + "-g"
	admin = n.Client(t)
	createTopic(t, kadmOf(admin), topic, partitions, nil)
	if len(groupConfigs) > 0 {
		setGroupConfigs(t, admin, group, groupConfigs...)
	}
	return n, topic, group, admin
}

// setUpDeadLettering creates on n a one-partition topic, its dead-letter
// topic dlq.<topic> (errors.deadletterqueue.group.enable=true) and the
// share group that consumes it, set to start at the earliest offset and to
// dead-letter to dlq, plus groupConfigs ("name=value").
func setUpDeadLettering(t *testing.T, n *node, groupConfigs ...string) (topic, dlq, group string, admin *kgo.Client) {
	t.Helper()
	topic = topicName(t, "")
	dlq = "dlq." + topic
	group = topic + "-g"
	admin = n.Client(t)
	createTopic(t, kadmOf(admin), topic, 1, nil)
	createTopic(t, kadmOf(admin), dlq, 1, map[string]*string{"errors.deadletterqueue.group.enable": strp("true")})
	setGroupConfigs(t, admin, group, append([]string{"share.auto.offset.reset=earliest", "errors.deadletterqueue.topic.name=" + dlq}, groupConfigs...)...)
	return topic, dlq, group, admin
}

// setGroupConfigs sets group configs ("name=value") with
// IncrementalAlterConfigs on resource type GROUP and fails on any error.
func setGroupConfigs(t *testing.T, cl *kgo.Client, group string, kv ...string) {
	t.Helper()
	if err := trySetGroupConfigs(ctxT(t, opTimeout), cl, group, kv...); err != nil {
		t.Fatalf("set group configs %v on %s: %v", kv, group, err)
	}
}

func trySetGroupConfigs(ctx context.Context, cl *kgo.Client, group string, kv ...string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = groupResourceType
	res.ResourceName = group
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("bad setting %q", s)
		}
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = k
		c.Op = kmsg.IncrementalAlterConfigOpSet
		c.Value = kmsg.StringPtr(v)
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Resources) != 1 {
		return fmt.Errorf("%d resources in the response, want 1", len(resp.Resources))
	}
	r := resp.Resources[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return fmt.Errorf("%v (%s)", err, strOr(r.ErrorMessage))
	}
	return nil
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// shareStartOffsets returns the share-partition start offsets of group on
// topic, from DescribeShareGroupOffsets (all partitions of the topic).
func shareStartOffsets(ctx context.Context, cl *kgo.Client, group, topic string, partitions int32) (map[int32]int64, error) {
	rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rt.Partitions = append(rt.Partitions, p)
	}
	all, err := describeShareStartOffsets(ctx, cl, group, []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{rt})
	if err != nil {
		return nil, err
	}
	if all[topic] == nil {
		return map[int32]int64{}, nil
	}
	return all[topic], nil
}

// describeShareStartOffsets asks DescribeShareGroupOffsets for group's
// start offsets on topics (null: all of the group's topics) and returns
// them by topic and partition; a group or partition error fails it.
func describeShareStartOffsets(ctx context.Context, cl *kgo.Client, group string, topics []kmsg.DescribeShareGroupOffsetsRequestGroupTopic) (map[string]map[int32]int64, error) {
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	g.GroupID = group
	g.Topics = topics
	req.Groups = append(req.Groups, g)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for _, rg := range resp.Groups {
		if rg.GroupID != group {
			continue
		}
		if err := kerr.ErrorForCode(rg.ErrorCode); err != nil {
			return nil, fmt.Errorf("group %s: %v (%s)", group, err, strOr(rg.ErrorMessage))
		}
		for _, tt := range rg.Topics {
			for _, p := range tt.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("%s/%d: %v (%s)", tt.Topic, p.Partition, err, strOr(p.ErrorMessage))
				}
				if out[tt.Topic] == nil {
					out[tt.Topic] = map[int32]int64{}
				}
				out[tt.Topic][p.Partition] = p.StartOffset
			}
		}
	}
	return out, nil
}

// waitStartOffsets waits until every partition's share-partition start
// offset equals want (typically the high watermarks: everything consumed).
func waitStartOffsets(t *testing.T, cl *kgo.Client, group, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "share start offsets "+fmtInt64s(want), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := shareStartOffsets(ctx, cl, group, topic, int32(len(want)))
		if err != nil {
			return false, err.Error()
		}
		for p, w := range want {
			if got[p] != w {
				return false, "start offsets " + fmtInt64s(got)
			}
		}
		return true, ""
	})
}

// fmtInt64s renders a value per partition as "p:v" pairs in partition
// order.
func fmtInt64s(m map[int32]int64) string {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%d:%d ", p, m[p])
	}
	return strings.TrimSpace(b.String())
}

// highWatermarks lists the end offsets of topic through a plain client.
func highWatermarks(t *testing.T, n *node, topic string) map[int32]int64 {
	t.Helper()
	return endOffsets(t, n.Admin(t), topic)
}

// produceSpread produces count records to topic round-robin over partitions
// (record i goes to partition i % partitions, value "i"), failing on any
// produce error.
func produceSpread(t *testing.T, n *node, topic string, partitions int32, count int) {
	t.Helper()
	produceChunked(t, n, topic, partitions, count, 0)
}

// produceChunked is produceSpread in synchronous rounds of chunk records
// (0: all at once), which caps the size of the stored batches.
func produceChunked(t *testing.T, n *node, topic string, partitions int32, count, chunk int) {
	t.Helper()
	if chunk <= 0 {
		chunk = count
	}
	cl := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(20000))
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	ctx := ctxT(t, 2*time.Minute)
	for i := 0; i < count; i++ {
		if i > 0 && i%chunk == 0 {
			wg.Wait()
		}
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(strconv.Itoa(i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatalf("producing %d records to %s: %v", count, topic, first)
	}
}

// pollShareRecords polls the share consumer cl on a goroutine of its own
// until ctx ends, handing every delivered record to each (which
// acknowledges it, where the test wants that); the returned channel closes
// once polling has stopped.
func pollShareRecords(ctx context.Context, cl *kgo.Client, each func(*kgo.Record)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, r := range cl.PollFetches(ctx).Records() {
				each(r)
			}
		}
	}()
	return done
}

// acceptValues runs a share consumer of topic in group that accepts every
// record it gets and sends its value to seen (room for size values) until
// stop is called, at the latest when the test ends; stop returns once
// polling has stopped.
func acceptValues(t *testing.T, n *node, group, topic string, size int) (seen <-chan string, stop func()) {
	t.Helper()
	values := make(chan string, size)
	cl := shareClient(t, n, group, topic)
	ctx, cancel := context.WithCancel(context.Background())
	done := pollShareRecords(ctx, cl, func(r *kgo.Record) {
		values <- string(r.Value)
		cl.MarkAcks(kgo.AckAccept, r)
	})
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return values, stop
}

// shareClient returns a share-group consumer of topic, closed when the test
// ends.
func shareClient(t *testing.T, n *node, group, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.ShareGroup(group),
		kgo.ConsumeTopics(topic),
	}, opts...)
	return n.Client(t, all...)
}

// ackResults counts what ShareAckCallback reports.
type ackResults struct {
	mu     sync.Mutex
	ok     int
	failed []string
}

func (a *ackResults) callback(_ *kgo.Client, rs kgo.ShareAckResults) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		if r.Err != nil {
			a.failed = append(a.failed, fmt.Sprintf("%s/%d: %v", r.Topic, r.Partition, r.Err))
		} else {
			a.ok++
		}
	}
}

func (a *ackResults) snapshot() (int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok, append([]string(nil), a.failed...)
}

// flushAcksAndClose sends the acknowledgements the share consumers cls
// still hold, waits until every partition's share-partition start offset
// reaches hwm (every record acknowledged), and closes them.
func flushAcksAndClose(t *testing.T, cls []*kgo.Client, admin *kgo.Client, group, topic string, hwm map[int32]int64) {
	t.Helper()
	for _, cl := range cls {
		if err := cl.FlushAcks(ctxT(t, opTimeout)); err != nil {
			t.Errorf("flush acks: %v", err)
		}
	}
	waitStartOffsets(t, admin, group, topic, hwm, 30*time.Second)
	closeAll(cls...)
}

// closeAll closes clients concurrently (each Close leaves the share group
// and may take a round trip or two).
func closeAll(cls ...*kgo.Client) {
	var wg sync.WaitGroup
	for _, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.Close()
		}()
	}
	wg.Wait()
}

// ---------------------------------------------------------------------------
// A share worker in a child process
// ---------------------------------------------------------------------------

// The test binary, started with shareWorkerEnv set, runs the worker from init
// and exits before TestMain (so it does not rebuild shoal).
const (
	shareWorkerEnv      = "SHARETEST_WORKER"
	shareWorkerAddrEnv  = "SHARETEST_ADDR"
	shareWorkerTopicEnv = "SHARETEST_TOPIC"
	shareWorkerGroupEnv = "SHARETEST_GROUP"
)

func init() {
	if os.Getenv(shareWorkerEnv) == "" {
		return
	}
	os.Exit(runShareWorker())
}

// runShareWorker joins the share group, polls once until it gets records,
// prints "record partition offset deliverycount" for each, then "holding",
// and then holds them without acknowledging until it is killed.
func runShareWorker() int {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(os.Getenv(shareWorkerAddrEnv)),
		kgo.ClientID("share-worker"),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ShareGroup(os.Getenv(shareWorkerGroupEnv)),
		kgo.ConsumeTopics(os.Getenv(shareWorkerTopicEnv)),
	)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	for {
		fs := cl.PollFetches(context.Background())
		fs.EachError(func(t string, p int32, err error) { fmt.Printf("error %s/%d: %v\n", t, p, err) })
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		var b strings.Builder
		for _, r := range recs {
			fmt.Fprintf(&b, "record %d %d %d\n", r.Partition, r.Offset, r.DeliveryCount())
		}
		b.WriteString("holding\n")
		os.Stdout.WriteString(b.String())
		select {} // "processing" forever: never polls or acks again
	}
}

// shareWorkerProc is a running child share worker.
type shareWorkerProc struct {
	*childProc
	mu      sync.Mutex
	records map[[2]int64]int32 // (partition, offset) -> delivery count
	other   []string
	holding chan struct{}
}

func startShareWorker(t *testing.T, n *node, group, topic string) *shareWorkerProc {
	t.Helper()
	w := &shareWorkerProc{records: map[[2]int64]int32{}, holding: make(chan struct{})}
	w.childProc = startChild(t, "share worker", []string{
		shareWorkerEnv + "=1",
		shareWorkerAddrEnv + "=" + n.Addr(),
		shareWorkerTopicEnv + "=" + topic,
		shareWorkerGroupEnv + "=" + group,
	}, w.line, func(stderr string) {
		w.mu.Lock()
		t.Logf("share worker stdout (other lines): %q\nstderr:\n%s", w.other, stderr)
		w.mu.Unlock()
	})
	return w
}

func (w *shareWorkerProc) line(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s == "holding" {
		close(w.holding)
		return
	}
	var p, o, dc int64
	if _, err := fmt.Sscanf(s, "record %d %d %d", &p, &o, &dc); err != nil {
		w.other = append(w.other, s)
		return
	}
	w.records[[2]int64{p, o}] = int32(dc)
}

// waitHolding waits until the worker holds its records without
// acknowledging them; the test fails if it exits first or takes over 30s.
func (w *shareWorkerProc) waitHolding(t *testing.T) {
	t.Helper()
	select {
	case <-w.holding:
	case <-w.exited:
		t.Fatal("share worker exited before reporting records")
	case <-time.After(30 * time.Second):
		t.Fatal("share worker reported no records within 30s")
	}
}

func (w *shareWorkerProc) held() map[[2]int64]int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[[2]int64]int32, len(w.records))
	for k, v := range w.records {
		out[k] = v
	}
	return out
}

func kadmOf(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// describeShareGroup describes one share group with ShareGroupDescribe,
// failing on a request error (not on a group error, which is returned).
func describeShareGroup(t *testing.T, cl *kgo.Client, group string) kmsg.ShareGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrShareGroupDescribeRequest()
	req.GroupIDs = []string{group}
	resp, err := req.RequestWith(ctxT(t, opTimeout), cl)
	if err != nil {
		t.Fatalf("describe share group %s: %v", group, err)
	}
	if len(resp.Groups) != 1 || resp.Groups[0].GroupID != group {
		t.Fatalf("describe share group %s: %d groups in the response", group, len(resp.Groups))
	}
	return resp.Groups[0]
}

// assignedCount is how many members of a described group have partitions.
func assignedCount(g kmsg.ShareGroupDescribeResponseGroup) int {
	n := 0
	for _, m := range g.Members {
		for _, tp := range m.Assignment.TopicPartitions {
			if len(tp.Partitions) > 0 {
				n++
				break
			}
		}
	}
	return n
}
