// Package redrive inspects the dead letters of share groups and produces
// selected ones again, once: the operation queue users run after fixing the
// bug that poisoned records. It is a client of the cluster (a stock Kafka
// client, franz-go), shared by `shoal share dlq` and the web console, so
// that both redrive the same way and see each other's redrives.
//
// A dead letter is a record on a dead-letter topic carrying the
// __dlq.errors.* headers the broker adds (share.DLQHeader*): its source
// topic, partition and offset, the share group, the delivery count and the
// reason. It holds the record's key, value and headers only when its group
// sets errors.deadletterqueue.copy.record.enable (Kafka's default is off);
// a header-only dead letter is redriven from its source record, read again
// by topic, partition and offset, while retention still keeps it.
//
// Once, durably: every redriven dead letter gets a marker record, keyed by
// its dead-letter partition and offset, on the compacted topic
// MarkerTopic(dlq); the redriven records and their markers are produced in
// one Kafka transaction, with a transactional id per dead-letter topic. A
// redrive first fences any other redrive of the same topic (its
// transactional id), then reads the committed markers and skips what they
// name. So a rerun, a concurrent run, or a run after a crash of the
// redriving process never produces a dead letter twice for a read_committed
// consumer: a crash mid-transaction aborts both the records and their
// markers. Markers rather than a committed offset per partition, because a
// selection (an offset range, a header match) leaves holes that a later
// redrive may still want to fill.
package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The headers a dead letter carries about its origin (KIP-1191 style); the
// broker's share runtime writes them (share.DLQHeader*).
const (
	HeaderPrefix    = "__dlq.errors."
	headerTopic     = HeaderPrefix + "topic"
	headerPartition = HeaderPrefix + "partition"
	headerOffset    = HeaderPrefix + "offset"
	headerGroup     = HeaderPrefix + "group"
	headerGroupID   = HeaderPrefix + "group.id" // shoal's name before Kafka 4.4's
	headerCount     = HeaderPrefix + "delivery.count"
	headerMessage   = HeaderPrefix + "message"
	headerReason    = HeaderPrefix + "reason"
)

// MarkerTopic is the compacted topic holding the markers of dlq's redriven
// dead letters.
func MarkerTopic(dlq string) string { return dlq + ".redriven" }

// transactionalID is the transactional id of the redrives of dlq: one per
// dead-letter topic, so that two redrives of it fence each other.
func transactionalID(dlq string) string { return "shoal-redrive-" + dlq }

// Header is one record header, as text.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Letter is one dead letter.
type Letter struct {
	Partition       int32     `json:"partition"`
	Offset          int64     `json:"offset"`
	Timestamp       time.Time `json:"timestamp"`
	SourceTopic     string    `json:"source_topic"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	Group           string    `json:"group"`
	DeliveryCount   int       `json:"delivery_count"`
	Reason          string    `json:"reason"`
	Message         string    `json:"message,omitempty"`
	// Copied reports a dead letter that holds the record (key, value or
	// headers); one that does not is redriven from its source record.
	Copied bool   `json:"copied"`
	Key    []byte `json:"key"`
	Value  []byte `json:"value"`
	// Headers are the record's own headers, without the __dlq.errors.* ones.
	Headers []Header `json:"headers"`
	// Redriven names where the dead letter was redriven to
	// ("topic/partition"), empty if it was not (filled by List).
	Redriven string `json:"redriven,omitempty"`

	all []kgo.RecordHeader
}

// Parse reads a dead letter from a record of a dead-letter topic. A record
// without the source topic and partition headers is not a dead letter.
func Parse(r *kgo.Record) (Letter, error) {
	l := Letter{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value,
		SourcePartition: -1, SourceOffset: -1, Headers: []Header{}, all: r.Headers}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case headerTopic:
			l.SourceTopic = v
		case headerPartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				l.SourcePartition = int32(p)
			}
		case headerOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				l.SourceOffset = o
			}
		case headerGroup:
			l.Group = v
		case headerGroupID:
			if l.Group == "" {
				l.Group = v
			}
		case headerMessage:
			l.Message = v
		case headerCount:
			l.DeliveryCount, _ = strconv.Atoi(v)
		case headerReason:
			l.Reason = v
		default:
			if !strings.HasPrefix(h.Key, HeaderPrefix) {
				l.Headers = append(l.Headers, Header{h.Key, v})
			}
		}
	}
	l.Copied = r.Key != nil || r.Value != nil || len(l.Headers) > 0
	if l.SourceTopic == "" || l.SourcePartition < 0 {
		return l, fmt.Errorf("offset %d of partition %d is not a dead letter: no %s and %s headers", r.Offset, r.Partition, headerTopic, headerPartition)
	}
	return l, nil
}

// Selector chooses dead letters.
type Selector struct {
	// Partitions of the dead-letter topic to read; none: all.
	Partitions []int32
	// From and To bound the offsets, inclusive; To < 0: to the end.
	From, To int64
	// Offsets, if any, are the only offsets selected (within the
	// partitions and bounds above).
	Offsets []int64
	// Headers must all match: a key names a record header or one of the
	// __dlq.errors.* headers (the prefix may be left out: "reason").
	Headers map[string]string
}

// match reports whether l is selected (its partition and the bounds were
// checked by the read).
func (s Selector) match(l Letter) bool {
	if len(s.Offsets) > 0 && !slices.Contains(s.Offsets, l.Offset) {
		return false
	}
	for k, want := range s.Headers {
		found := false
		for _, h := range l.all {
			if (h.Key == k || h.Key == HeaderPrefix+k) && string(h.Value) == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ParseHeaderMatch parses "key=value" header matches.
func ParseHeaderMatch(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("header match %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// Scan calls each for the dead letters of dlq that sel selects, in
// partition and offset order. base are the options that reach the cluster
// (seed brokers, TLS, SASL); Scan makes its own consumer. Records that are
// not dead letters are skipped.
func Scan(ctx context.Context, base []kgo.Opt, dlq string, sel Selector, each func(Letter) error) error {
	return scanTopic(ctx, base, dlq, sel.Partitions, sel.From, sel.To, func(r *kgo.Record) error {
		l, err := Parse(r)
		if err != nil || !sel.match(l) {
			return nil
		}
		return each(l)
	})
}

// scanTopic reads [from, to] (to < 0: to the end as of the start of the
// scan) of the partitions of topic (none: all), read_committed, calling
// each per record in partition and offset order.
func scanTopic(ctx context.Context, base []kgo.Opt, topic string, partitions []int32, from, to int64, each func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if e := ends.Error(); e != nil {
		return e
	}
	if _, ok := ends[topic]; !ok {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, topic)
	}
	want := map[int32]bool{}
	for _, p := range partitions {
		want[p] = true
	}
	var order []int32
	bounds := map[int32][2]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if len(want) > 0 && !want[o.Partition] {
			return
		}
		lo, hi := max(from, 0), o.Offset // hi exclusive
		if s, ok := starts.Lookup(topic, o.Partition); ok {
			lo = max(lo, s.Offset)
		}
		if to >= 0 {
			hi = min(hi, to+1)
		}
		if lo < hi {
			bounds[o.Partition] = [2]int64{lo, hi}
			order = append(order, o.Partition)
		}
	})
	slices.Sort(order)
	for _, p := range order {
		b := bounds[p]
		if err := scanPartition(ctx, base, topic, p, b[0], b[1], each); err != nil {
			return err
		}
	}
	return nil
}

// scanPartition reads [lo, hi) of one partition.
func scanPartition(ctx context.Context, base []kgo.Opt, topic string, p int32, lo, hi int64, each func(*kgo.Record) error) error {
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(lo)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are kept so that the scan sees how far
		// it got when the range ends with one.
		kgo.KeepControlRecords())
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	next := lo
	for next < hi {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return ferr
		}
		var stop error
		fs.EachRecord(func(r *kgo.Record) {
			if stop != nil || r.Offset >= hi {
				next = hi
				return
			}
			next = r.Offset + 1
			if !r.Attrs.IsControl() {
				stop = each(r)
			}
		})
		if stop != nil {
			return stop
		}
	}
	return nil
}

// markerKey is the key of the marker of a dead letter.
func markerKey(partition int32, offset int64) string {
	return strconv.Itoa(int(partition)) + ":" + strconv.FormatInt(offset, 10)
}

// marker is the value of a marker record.
type marker struct {
	To string    `json:"to"` // topic/partition
	At time.Time `json:"at"`
}

// Redriven reads the markers of dlq: where each redriven dead letter went,
// by markerKey. No marker topic: nothing was redriven.
func Redriven(ctx context.Context, base []kgo.Opt, dlq string) (map[string]string, error) {
	out := map[string]string{}
	err := scanTopic(ctx, base, MarkerTopic(dlq), nil, 0, -1, func(r *kgo.Record) error {
		var m marker
		if r.Value == nil {
			delete(out, string(r.Key))
			return nil
		}
		if json.Unmarshal(r.Value, &m) == nil {
			out[string(r.Key)] = m.To
		}
		return nil
	})
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return out, nil
	}
	return out, err
}

// List calls each for the dead letters sel selects, with Redriven filled
// from the markers.
func List(ctx context.Context, base []kgo.Opt, dlq string, sel Selector, each func(Letter) error) error {
	done, err := Redriven(ctx, base, dlq)
	if err != nil {
		return err
	}
	return Scan(ctx, base, dlq, sel, func(l Letter) error {
		l.Redriven = done[markerKey(l.Partition, l.Offset)]
		return each(l)
	})
}

// Options are what a redrive does besides selecting.
type Options struct {
	Selector
	// To is the topic to produce to; empty: each dead letter's source
	// topic and partition.
	To string
	// DryRun reports what would be redriven and produces nothing.
	DryRun bool
	// Progress, if set, is called after every transaction with the number
	// of dead letters handled so far.
	Progress func(handled int)
}

// Result statuses.
const (
	StatusRedriven = "redriven"
	StatusAlready  = "already redriven"
	StatusWould    = "would redrive"
)

// Result is what a redrive did with one dead letter.
type Result struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	To        string `json:"to,omitempty"` // topic/partition, or topic when the partitioner picks
	Status    string `json:"status"`
}

// txnRecords bounds the dead letters of one transaction: a long redrive
// commits its progress as it goes.
const txnRecords = 500

// Redrive produces the dead letters of dlq that opt selects again, each
// once ever (see the package comment): with their key, value and own
// headers (a header-only dead letter's from its source record), to their
// source topic and partition or to opt.To (partitioned by key). It returns
// one result per selected dead letter; a header-only one whose source
// record is gone gets a status saying so and is not redriven.
func Redrive(ctx context.Context, base []kgo.Opt, dlq string, opt Options) ([]Result, error) {
	var results []Result
	if opt.DryRun {
		err := List(ctx, base, dlq, opt.Selector, func(l Letter) error {
			r := Result{Partition: l.Partition, Offset: l.Offset, To: target(l, opt.To), Status: StatusWould}
			if l.Redriven != "" {
				r.To, r.Status = l.Redriven, StatusAlready
			}
			results = append(results, r)
			return nil
		})
		return results, err
	}
	if err := ensureMarkerTopic(ctx, base, dlq); err != nil {
		return nil, err
	}
	partitioner := kgo.ManualPartitioner()
	if opt.To != "" {
		partitioner = kgo.StickyKeyPartitioner(nil)
	}
	popts := append(append([]kgo.Opt(nil), base...),
		kgo.TransactionalID(transactionalID(dlq)),
		kgo.RecordPartitioner(partitioner),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	pr, err := kgo.NewClient(popts...)
	if err != nil {
		return nil, err
	}
	defer pr.Close()

	// Fence any other redrive of this topic before reading the markers:
	// the first produce of a transaction initializes the producer id,
	// which aborts the transaction of a redrive that is still running, so
	// every marker that will ever commit besides ours is read below.
	if err := pr.BeginTransaction(); err != nil {
		return nil, err
	}
	start := &kgo.Record{Topic: MarkerTopic(dlq), Key: []byte("run"), Value: []byte(time.Now().UTC().Format(time.RFC3339Nano)), Partition: 0}
	if err := pr.ProduceSync(ctx, start).FirstErr(); err != nil {
		abort(pr)
		return nil, err
	}
	done, err := Redriven(ctx, base, dlq)
	if err != nil {
		abort(pr)
		return nil, err
	}

	var inTxn []int // indexes in results of the open transaction's dead letters
	commit := func() error {
		if err := pr.Flush(ctx); err != nil {
			return err
		}
		if err := pr.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return err
		}
		for _, i := range inTxn {
			results[i].Status = StatusRedriven
		}
		inTxn = inTxn[:0]
		if opt.Progress != nil {
			opt.Progress(len(results))
		}
		return nil
	}
	var produceErr error
	failed := func(r *kgo.Record, err error) {
		if err != nil && produceErr == nil {
			produceErr = err
		}
	}
	sources := &sourceReader{base: base}
	err = Scan(ctx, base, dlq, opt.Selector, func(l Letter) error {
		key := markerKey(l.Partition, l.Offset)
		if to, ok := done[key]; ok {
			results = append(results, Result{Partition: l.Partition, Offset: l.Offset, To: to, Status: StatusAlready})
			return nil
		}
		if !l.Copied {
			src, err := sources.read(ctx, l.SourceTopic, l.SourcePartition, l.SourceOffset)
			var gone *SourceGoneError
			if errors.As(err, &gone) {
				// Nothing to redrive: say so and go on with the others.
				results = append(results, Result{Partition: l.Partition, Offset: l.Offset, Status: "not redriven: " + gone.Error()})
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading the source record of dead letter %d/%d: %w", l.Partition, l.Offset, err)
			}
			l.Key, l.Value = src.Key, src.Value
			for _, h := range src.Headers {
				l.Headers = append(l.Headers, Header{h.Key, string(h.Value)})
			}
		}
		if len(inTxn) == txnRecords {
			if err := commit(); err != nil {
				return err
			}
			if err := pr.BeginTransaction(); err != nil {
				return err
			}
		}
		out := record(l, opt.To)
		to := target(l, opt.To)
		mv, _ := json.Marshal(marker{To: to, At: time.Now().UTC()})
		pr.Produce(ctx, out, failed)
		pr.Produce(ctx, &kgo.Record{Topic: MarkerTopic(dlq), Key: []byte(key), Value: mv, Partition: 0}, failed)
		done[key] = to
		inTxn = append(inTxn, len(results))
		results = append(results, Result{Partition: l.Partition, Offset: l.Offset, To: to})
		return produceErr
	})
	if err == nil {
		err = produceErr
	}
	if err != nil {
		abort(pr)
		for _, i := range inTxn {
			results[i].Status = "not redriven: " + err.Error()
		}
		return results, err
	}
	return results, commit()
}

// abort ends the open transaction without committing (bounded: the
// producer may be fenced or the cluster gone).
func abort(pr *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr.AbortBufferedRecords(ctx)
	pr.EndTransaction(ctx, kgo.TryAbort)
}

// record is the record to produce for l: to its source topic and partition
// or to topic (partitioned by key).
func record(l Letter, topic string) *kgo.Record {
	out := &kgo.Record{Topic: l.SourceTopic, Partition: l.SourcePartition, Key: l.Key, Value: l.Value}
	if topic != "" {
		out.Topic, out.Partition = topic, -1
	}
	for _, h := range l.Headers {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	return out
}

// target names where l goes: "topic/partition" to its source, "topic" to
// another topic (the partitioner picks).
func target(l Letter, topic string) string {
	if topic != "" {
		return topic
	}
	return l.SourceTopic + "/" + strconv.Itoa(int(l.SourcePartition))
}

// ensureMarkerTopic creates dlq's marker topic (compacted, one partition)
// if it does not exist.
func ensureMarkerTopic(ctx context.Context, base []kgo.Opt, dlq string) error {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	defer cl.Close()
	compact := "compact"
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, MarkerTopic(dlq))
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}
