package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// groupNodeSettings are broker settings that keep group tests fast: no
// initial rebalance delay, short session timeouts allowed, a small offsets
// topic.
var groupNodeSettings = []string{
	"group.initial.rebalance.delay.ms=0",
	"group.min.session.timeout.ms=1000",
	"group.consumer.session.timeout.ms=4000",
	"group.consumer.heartbeat.interval.ms=400",
	"offsets.topic.num.partitions=5",
	"offsets.topic.replication.factor=1",
}

// ---------------------------------------------------------------------------
// Ownership ledger
// ---------------------------------------------------------------------------

// ownEvent is one change of a member's partitions as its client reported it
// through the OnPartitions callbacks (or as the test decided it, for "gone").
type ownEvent struct {
	seq    int
	at     time.Time
	member string
	kind   string // assigned, revoked, lost, gone
	parts  []int32
}

func (e ownEvent) String() string {
	return fmt.Sprintf("#%d %s %s %s %v", e.seq, e.at.Format("15:04:05.000"), e.member, e.kind, e.parts)
}

type partOffset struct {
	partition int32
	offset    int64
}

// ownLedger records, for the members of one group consuming one topic,
// which partitions each member held over time and every record each member
// consumed. Events are totally ordered by seq, taken under one lock, so
// "assigned to B before A's revoke returned" is decided without comparing
// clocks.
//
// An assigned event is recorded when OnPartitionsAssigned starts (before the
// member can fetch), a revoked event when OnPartitionsRevoked has committed
// and is about to return (after which the member never returns records of
// those partitions). Both choices make an overlap more likely to be seen,
// never less.
type ownLedger struct {
	topic string

	mu       sync.Mutex
	seq      int
	events   []ownEvent
	owned    map[string]map[int32]bool
	gone     map[string]bool
	overlaps []string
	consumed map[partOffset]string // first value seen at each offset
	mismatch []string
	count    map[string]int             // records consumed per member
	first    map[string]map[int32]int64 // member -> partition -> first offset consumed
	notes    []string
}

// newOwnLedger returns an empty ledger of topic that logs its report when
// the test fails (and, with GROUPTEST_REPORT=1, when it passes: every
// member's partition changes).
func newOwnLedger(t *testing.T, topic string) *ownLedger {
	l := &ownLedger{
		topic:    topic,
		owned:    map[string]map[int32]bool{},
		gone:     map[string]bool{},
		consumed: map[partOffset]string{},
		count:    map[string]int{},
		first:    map[string]map[int32]int64{},
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("GROUPTEST_REPORT") != "" {
			l.report(t)
		}
	})
	return l
}

// event records kind for member; for assigned it first checks that no other
// live member holds any of parts.
func (l *ownLedger) event(member, kind string, parts []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone[member] {
		return
	}
	parts = slices.Clone(parts)
	slices.Sort(parts)
	l.seq++
	e := ownEvent{seq: l.seq, at: time.Now(), member: member, kind: kind, parts: parts}
	l.events = append(l.events, e)
	own := l.owned[member]
	if own == nil {
		own = map[int32]bool{}
		l.owned[member] = own
	}
	switch kind {
	case "assigned":
		for _, p := range parts {
			for other, theirs := range l.owned {
				if other != member && theirs[p] {
					l.overlaps = append(l.overlaps, fmt.Sprintf("partition %d assigned to %s (event #%d) while %s still held it", p, member, e.seq, other))
				}
			}
			own[p] = true
		}
	case "revoked", "lost":
		for _, p := range parts {
			delete(own, p)
		}
	case "gone":
		clear(own)
		l.gone[member] = true
	}
}

// mark returns the sequence number of the newest event.
func (l *ownLedger) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// eventsSince returns member's events after seq (all members when member is
// empty).
func (l *ownLedger) eventsSince(seq int, member string) []ownEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ownEvent
	for _, e := range l.events {
		if e.seq > seq && (member == "" || e.member == member) {
			out = append(out, e)
		}
	}
	return out
}

func (l *ownLedger) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes = append(l.notes, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// ownedBy returns member's current partitions, sorted.
func (l *ownLedger) ownedBy(member string) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int32
	for p := range l.owned[member] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// consumedRecords records what member polled.
func (l *ownLedger) consumedRecords(member string, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if r.Topic != l.topic {
			l.mismatch = append(l.mismatch, fmt.Sprintf("%s got a record of topic %q", member, r.Topic))
			continue
		}
		k := partOffset{r.Partition, r.Offset}
		if v, ok := l.consumed[k]; ok && v != string(r.Value) {
			l.mismatch = append(l.mismatch, fmt.Sprintf("%d/%d read as %q and as %q", r.Partition, r.Offset, v, r.Value))
		} else if !ok {
			l.consumed[k] = string(r.Value)
		}
		l.count[member]++
		f := l.first[member]
		if f == nil {
			f = map[int32]int64{}
			l.first[member] = f
		}
		if _, ok := f[r.Partition]; !ok {
			f[r.Partition] = r.Offset
		}
	}
}

func (l *ownLedger) consumedBy(member string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[member]
}

// firstOffset is the first offset of partition member consumed.
func (l *ownLedger) firstOffset(member string, partition int32) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.first[member][partition]
	return o, ok
}

// balanced reports whether the live members hold every one of nparts
// partitions exactly once and each holds nparts/len(live) rounded down or
// up.
func (l *ownLedger) balanced(nparts int, live ...string) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	holders := map[int32][]string{}
	lo, hi := nparts/len(live), (nparts+len(live)-1)/len(live)
	var b strings.Builder
	ok := true
	for _, m := range live {
		n := len(l.owned[m])
		fmt.Fprintf(&b, "%s=%v ", m, sortedKeys(l.owned[m]))
		if n < lo || n > hi {
			ok = false
		}
		for p := range l.owned[m] {
			holders[p] = append(holders[p], m)
		}
	}
	for p := int32(0); p < int32(nparts); p++ {
		if len(holders[p]) != 1 {
			ok = false
		}
	}
	return ok, b.String()
}

// report logs everything the ledger knows; used when a test fails.
func (l *ownLedger) report(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		fmt.Fprintln(&b, "  ", e)
	}
	for _, n := range l.notes {
		fmt.Fprintln(&b, "   note:", n)
	}
	t.Logf("ownership events of %s:\n%s", l.topic, b.String())
}

// check fails t for overlapping ownership and value mismatches.
func (l *ownLedger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.overlaps {
		t.Errorf("two owners: %s", o)
	}
	for _, m := range l.mismatch {
		t.Errorf("consumed data: %s", m)
	}
}

func sortedKeys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------------
// Group members
// ---------------------------------------------------------------------------

// cutDialer dials normally until cut, then closes every connection it made
// and refuses new ones: to the broker the client looks like a process that
// died without a word.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut {
		return nil, errors.New("connections cut by the test")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		c.Close()
		return nil, errors.New("connections cut by the test")
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *cutDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// member is one consumer in a group: a kgo client and a goroutine polling it
// and recording what it gets in the ledger.
type member struct {
	name   string
	cl     *kgo.Client
	l      *ownLedger
	dialer *cutDialer
	logs   *syncbuf.Buffer

	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
}

// startMember starts a group member consuming l.topic in group. opts come
// after the defaults (balancer, timeouts, commit interval).
func startMember(t *testing.T, n *node, l *ownLedger, name, group string, opts ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, l: l, dialer: &cutDialer{}, logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	all := []kgo.Opt{
		kgo.SeedBrokers(n.Addr()),
		kgo.ClientID(name),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.Dialer(m.dialer.dial),
		kgo.WithLogger(kgo.BasicLogger(m.logs, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(l.topic),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(4 * time.Second),
		kgo.HeartbeatInterval(400 * time.Millisecond),
		kgo.RebalanceTimeout(15 * time.Second),
		kgo.AutoCommitInterval(300 * time.Millisecond),
		kgo.AutoCommitCallback(func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				l.note("%s: autocommit: %v", name, err)
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						l.note("%s: autocommit %s/%d: error %d", name, rt.Topic, rp.Partition, rp.ErrorCode)
					}
				}
			}
		}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			l.event(name, "assigned", a[l.topic])
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
			// What OnPartitionsRevoked does by default with
			// autocommit: commit what was consumed before giving the
			// partitions up.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				l.note("%s: commit on revoke: %v", name, err)
			}
			l.event(name, "revoked", r[l.topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			l.event(name, "lost", lost[l.topic])
		}),
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.poll(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log of %s:\n%s", name, m.logs.String())
		}
		m.close()
	})
	return m
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollRecords(ctx, 1000)
		// Whatever a poll returned counts as processed (autocommit will
		// commit it), so it is recorded even when the poll was cut short.
		m.l.consumedRecords(m.name, fs.Records())
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			m.l.note("%s: fetch %s/%d: %v", m.name, topic, p, err)
		})
		if ctx.Err() != nil || m.cl.Context().Err() != nil {
			return
		}
	}
}

// stopPolling stops the poll loop and waits for it.
func (m *member) stopPolling() {
	m.cancel()
	<-m.done
}

// leave stops polling, commits what was consumed and closes the client,
// which leaves the group (unless it is a static member).
func (m *member) leave(t *testing.T) {
	t.Helper()
	m.stopPolling()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		m.l.note("%s: final commit: %v", m.name, err)
	}
	m.close()
	m.l.event(m.name, "gone", nil)
}

// kill stops polling and cuts the member's connections without leaving the
// group or committing; from then on the member is out of the ledger. The
// client is closed in the background (its leave cannot reach the broker).
func (m *member) kill() {
	m.stopPolling()
	m.dialer.cutAll()
	m.l.event(m.name, "gone", nil)
	m.closeOnce.Do(func() { go m.cl.Close() })
}

// close closes the client (once); a killed member's client is already
// closing in the background and is not waited for.
func (m *member) close() {
	m.closeOnce.Do(func() {
		m.cancel()
		m.cl.Close()
	})
}

// ---------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------

// keyedProducer writes records with keys "k-<i>" and values "v-<i>" and
// remembers where each acknowledged one landed.
type keyedProducer struct {
	cl    *kgo.Client
	topic string
	// spread, when > 0, sends record i to partition i % spread instead of
	// hashing its key.
	spread int32

	mu     sync.Mutex
	next   int
	acked  map[partOffset]string
	failed []string

	stop chan struct{}
	done chan struct{}
}

// newSpreadGroupTopic creates a fresh topic of parts partitions holding
// records keyed records spread evenly over them, and returns with it the
// group to consume it, the producer (for more records and the final check)
// and an empty ledger of what the group's members own.
func newSpreadGroupTopic(t *testing.T, n *node, parts int32, records int) (adm *kadm.Client, topic, group string, p *keyedProducer, l *ownLedger) {
	adm = n.Admin(t)
	topic = topicName(t, "")
	createTopic(t, adm, topic, parts, nil)
	p = newKeyedProducer(t, n, topic, parts)
	p.fill(t, records)
	return adm, topic, topic + "-group", p, newOwnLedger(t, topic)
}

func newKeyedProducer(t *testing.T, n *node, topic string, spread int32) *keyedProducer {
	opts := []kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond)}
	if spread > 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return &keyedProducer{
		cl:     n.Client(t, opts...),
		topic:  topic,
		spread: spread,
		acked:  map[partOffset]string{},
	}
}

func (p *keyedProducer) record() *kgo.Record {
	p.mu.Lock()
	i := p.next
	p.next++
	p.mu.Unlock()
	r := &kgo.Record{Topic: p.topic, Key: []byte("k-" + strconv.Itoa(i)), Value: []byte("v-" + strconv.Itoa(i))}
	if p.spread > 0 {
		r.Partition = int32(i) % p.spread
	}
	return r
}

func (p *keyedProducer) done1(r *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed = append(p.failed, fmt.Sprintf("%s: %v", r.Value, err))
		return
	}
	p.acked[partOffset{r.Partition, r.Offset}] = string(r.Value)
}

// fill produces count records and waits for all of them.
func (p *keyedProducer) fill(t *testing.T, count int) {
	t.Helper()
	ctx := ctxT(t, opTimeout)
	for count > 0 {
		b := min(count, 500)
		recs := make([]*kgo.Record, b)
		for i := range recs {
			recs[i] = p.record()
		}
		res := p.cl.ProduceSync(ctx, recs...)
		for _, r := range res {
			p.done1(r.Record, r.Err)
		}
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		count -= b
	}
}

// start produces perTick records every tick in the background until
// finish (or the end of the test).
func (p *keyedProducer) start(t *testing.T, perTick int, tick time.Duration) {
	t.Cleanup(p.halt)
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			for range perTick {
				p.cl.Produce(context.Background(), p.record(), p.done1)
			}
		}
	}()
}

// finish stops the background producer and waits for every record in
// flight.
func (p *keyedProducer) finish(t *testing.T) {
	t.Helper()
	p.halt()
	if err := p.cl.Flush(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("flush: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) > 0 {
		t.Fatalf("%d produces failed, first: %s", len(p.failed), p.failed[0])
	}
}

// halt stops the background producer, if running.
func (p *keyedProducer) halt() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	out, err := listEndOffsets(ctxT(t, opTimeout), adm, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	return out
}

// waitEndOffsets is endOffsets for a cluster, where a partition may be
// between leaders for a while: it asks again until every partition answers.
func waitEndOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	var out map[int32]int64
	waitFor(t, opTimeout, "end offsets of "+topic, func() (bool, string) {
		var err error
		out, err = listEndOffsets(ctxT(t, 5*time.Second), adm, topic)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return out
}

// listEndOffsets lists the end offset of every partition of topic, or the
// first error: the request's or a partition's.
func listEndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// missing returns, per partition, how many acknowledged records below ends
// nobody consumed, plus a sample; an empty map means none.
func missingRecords(p *keyedProducer, l *ownLedger, ends map[int32]int64) (map[int32]int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]int{}
	var sample string
	for part, end := range ends {
		for o := int64(0); o < end; o++ {
			if _, ok := l.consumed[partOffset{part, o}]; !ok {
				out[part]++
				if sample == "" {
					sample = fmt.Sprintf("%d/%d", part, o)
				}
			}
		}
	}
	return out, sample
}

// checkProducedConsumed checks that the log holds exactly the acknowledged
// records (no holes below the end offsets) and that every one was consumed
// with the value that was produced.
func checkProducedConsumed(t *testing.T, p *keyedProducer, l *ownLedger, ends map[int32]int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	perPart := map[int32]int64{}
	for k, v := range p.acked {
		perPart[k.partition]++
		if k.offset >= ends[k.partition] {
			t.Errorf("acknowledged %s at %d/%d, past the end offset %d", v, k.partition, k.offset, ends[k.partition])
			continue
		}
		got, ok := l.consumed[k]
		switch {
		case !ok:
			t.Errorf("record %s at %d/%d was never consumed", v, k.partition, k.offset)
		case got != v:
			t.Errorf("record at %d/%d consumed as %q, produced as %q", k.partition, k.offset, got, v)
		}
	}
	for part, end := range ends {
		if perPart[part] != end {
			t.Errorf("partition %d: end offset %d, but %d records were acknowledged there", part, end, perPart[part])
		}
	}
}

// ---------------------------------------------------------------------------
// A group member in a child process
// ---------------------------------------------------------------------------

// Environment of the helper consumer process. The test binary, started with
// groupHelperEnv set, runs the helper from init and exits before any test
// (or TestMain) runs.
const (
	groupHelperEnv = "GROUPTEST_HELPER_CONSUMER"
	helperAddrEnv  = "GROUPTEST_ADDR"
	helperTopicEnv = "GROUPTEST_TOPIC"
	helperGroupEnv = "GROUPTEST_GROUP"
	helperProtoEnv = "GROUPTEST_PROTOCOL" // classic or consumer
)

func init() {
	if os.Getenv(groupHelperEnv) == "" {
		return
	}
	os.Exit(runHelperConsumer(os.Stdout))
}

// runHelperConsumer joins the group and consumes until killed, printing
// "assigned p,p,...", "revoked ...", "lost ..." and, for every record it
// consumes, "record partition offset value".
func runHelperConsumer(out io.Writer) int {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	topic := os.Getenv(helperTopicEnv)
	parts := func(m map[string][]int32) string {
		ps := slices.Clone(m[topic])
		slices.Sort(ps)
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = strconv.Itoa(int(p))
		}
		return strings.Join(s, ",")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(os.Getenv(helperAddrEnv)),
		kgo.ClientID("helper"),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.ConsumerGroup(os.Getenv(helperGroupEnv)),
		kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			say("assigned %s", parts(m))
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			cl.CommitUncommittedOffsets(ctx)
			say("revoked %s", parts(m))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			say("lost %s", parts(m))
		}),
	}
	if os.Getenv(helperProtoEnv) == "consumer" {
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		say("error %v", err)
		return 1
	}
	for {
		fs := cl.PollRecords(context.Background(), 1000)
		fs.EachError(func(t string, p int32, err error) { say("error %s/%d: %v", t, p, err) })
		for _, r := range fs.Records() {
			say("record %d %d %s", r.Partition, r.Offset, r.Value)
		}
	}
}

// helperProc is a running helper consumer.
type helperProc struct {
	*childProc
	l    *ownLedger
	name string
}

// startHelperConsumer starts the test binary as a group member in its own
// process; its partition changes go into l under name.
func startHelperConsumer(t *testing.T, n *node, l *ownLedger, name, group, protocol string) *helperProc {
	t.Helper()
	h := &helperProc{l: l, name: name}
	h.childProc = startChild(t, "helper consumer", []string{
		groupHelperEnv + "=1",
		helperAddrEnv + "=" + n.Addr(),
		helperTopicEnv + "=" + l.topic,
		helperGroupEnv + "=" + group,
		helperProtoEnv + "=" + protocol,
	}, h.line, func(stderr string) {
		t.Logf("helper %s stderr:\n%s", name, stderr)
	})
	return h
}

func (h *helperProc) line(s string) {
	kind, rest, _ := strings.Cut(s, " ")
	switch kind {
	case "assigned", "revoked", "lost":
		var ps []int32
		for _, f := range strings.Split(rest, ",") {
			if f == "" {
				continue
			}
			p, err := strconv.Atoi(f)
			if err != nil {
				h.l.note("%s: bad line %q", h.name, s)
				return
			}
			ps = append(ps, int32(p))
		}
		h.l.event(h.name, kind, ps)
	case "record":
		f := strings.SplitN(rest, " ", 3)
		if len(f) != 3 {
			h.l.note("%s: bad line %q", h.name, s)
			return
		}
		p, err1 := strconv.Atoi(f[0])
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			h.l.note("%s: bad line %q", h.name, s)
			return
		}
		h.l.consumedRecords(h.name, []*kgo.Record{{Topic: h.l.topic, Partition: int32(p), Offset: o, Value: []byte(f[2])}})
	default:
		h.l.note("%s: %s", h.name, s)
	}
}

// kill9 kills the helper process and waits for it; it leaves the ledger.
func (h *helperProc) kill9() {
	h.childProc.kill9()
	h.l.event(h.name, "gone", nil)
}

// ---------------------------------------------------------------------------
// Offsets
// ---------------------------------------------------------------------------

// committed returns the group's committed offsets for topic, failing on any
// error.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]kadm.Offset {
	t.Helper()
	resp, err := adm.FetchOffsets(ctxT(t, opTimeout), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]kadm.Offset{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("fetch offsets of %s: %s/%d: %v", group, o.Topic, o.Partition, o.Err)
		}
		if o.Topic == topic {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// fmtOffsets is fmtInt64s of the committed offsets in m.
func fmtOffsets(m map[int32]kadm.Offset) string {
	at := make(map[int32]int64, len(m))
	for p, o := range m {
		at[p] = o.At
	}
	return fmtInt64s(at)
}
