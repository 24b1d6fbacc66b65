package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/firsterr"
)

// Defaults of the share-group (queue) workloads, applied to zero-valued
// Options fields in place of the general ones.
const (
	DefaultWorkers         = 16
	DefaultSharePartitions = 4

	// shareStallTimeout ends a drain that has handed out no new record for
	// this long. It is longer than the default acquisition lock (30s), so a
	// record held by a stuck consumer has time to come back.
	shareStallTimeout = 60 * time.Second
	// shareFetchMaxWait bounds the broker's wait on an empty share fetch.
	// The client sends an acknowledgement on its next share fetch, and
	// while a fetch is waiting on the broker the acknowledgements queued
	// after it wait too: at the end of a drain every consumer has such a
	// fetch outstanding, so the last acknowledgements are confirmed up to
	// this long after the records were processed. The client default (5s)
	// would add as much to every drain.
	shareFetchMaxWait = 100 * time.Millisecond
	// shareSettleTimeout bounds flushing the last acknowledgements and
	// waiting for the share group's start offsets to reach the end.
	shareSettleTimeout = 30 * time.Second
	// groupResourceType is the GROUP config resource type (KIP-848/932).
	groupResourceType kmsg.ConfigResourceType = 32
)

func (o Options) withShareDefaults() Options {
	if o.Partitions <= 0 {
		o.Partitions = DefaultSharePartitions
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	return o.withDefaults()
}

// Share measures a share group draining a topic: the topic is filled up to
// o.Records records of o.RecordSize bytes if it holds fewer (with Produce),
// then o.Workers share consumers (default 16) in one new share group, which
// starts at the earliest offset, read every record the topic holds and
// ACCEPT each one.
//
// The clock starts when the first records are handed to a consumer and stops
// when the broker confirms the last acknowledgement (the latest successful
// ShareAckCallback once every consumer has flushed its acknowledgements).
// Every record is counted once, by partition and offset; records handed out
// again are counted in Result.Duplicates. The run fails if a record is still
// missing after shareStallTimeout without progress, if an acknowledgement
// fails, or if the share group's start offset has not reached the end of
// every partition once the acknowledgements are in.
func Share(ctx context.Context, o Options) (Result, error) {
	o = o.withShareDefaults()
	if _, err := o.validTopic(ctx); err != nil {
		return Result{}, err
	}
	avail, err := availableRecords(ctx, o, o.Topic)
	if err != nil {
		return Result{}, err
	}
	if short := int64(o.Records) - avail; short > 0 {
		fill := o
		fill.Records = int(short)
		if _, err := Produce(ctx, fill); err != nil {
			return Result{}, fmt.Errorf("filling topic %q: %w", o.Topic, err)
		}
	}
	window, err := offsetWindow(ctx, o, o.Topic)
	if err != nil {
		return Result{}, err
	}
	tracker := newShareTracker(o.Topic, window)
	if tracker.total == 0 {
		return Result{}, fmt.Errorf("topic %q holds no records", o.Topic)
	}

	group := shareGroupName(o.Topic)
	if err := setGroupConfig(ctx, o, group, "share.auto.offset.reset", "earliest"); err != nil {
		return Result{}, err
	}
	defer deleteGroup(o, group)
	if o.Ordering != "" {
		if err := setGroupConfig(ctx, o, group, "share.delivery.ordering", o.Ordering); err != nil {
			return Result{}, err
		}
	}

	var (
		acks    ackTracker
		failure firsterr.Keeper
	)
	clients, err := newShareClients(o, group, &acks, kgo.FetchMaxWait(shareFetchMaxWait))
	if err != nil {
		return Result{}, err
	}
	defer func() { closeAll(clients) }()

	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	start := time.Now()
	tracker.lastProgress.Store(sinceEpoch())
	var workers sync.WaitGroup
	for _, cl := range clients {
		workers.Add(1)
		go func() {
			defer workers.Done()
			if err := pollShare(pollCtx, cl, o.Work, tracker.add); err != nil {
				failure.Set(err)
				stopPolling()
			}
		}()
	}

	elapsed := func() time.Duration {
		if first := tracker.firstFetch.Load(); first > 0 {
			return time.Duration(sinceEpoch() - first)
		}
		return time.Since(start)
	}
	stopProgress := startProgress(o.Progress, func() Progress {
		return Progress{Workload: "share", Records: tracker.got.records.Load(), Bytes: tracker.got.bytes.Load(),
			Target: tracker.total, Elapsed: elapsed()}
	})
	defer stopProgress()

	drainErr := tracker.wait(pollCtx, shareStallTimeout)
	stopPolling()
	workers.Wait()
	if err := firstOf(failure.Err(), drainErr); err != nil {
		return tracker.result(0), err
	}

	// Every record has been handed out and marked ACCEPT; wait for the
	// broker to confirm the acknowledgements still in flight.
	settleCtx, cancelSettle := context.WithTimeout(ctx, shareSettleTimeout)
	defer cancelSettle()
	if err := flushAll(settleCtx, clients); err != nil {
		return tracker.result(0), fmt.Errorf("flushing acknowledgements: %w", err)
	}
	end := acks.last.Load()
	stopProgress()

	res := tracker.result(time.Duration(end - tracker.firstFetch.Load()))
	if o.Progress != nil {
		o.Progress(Progress{Workload: "share", Records: res.Records, Bytes: res.Bytes, Target: tracker.total,
			Elapsed: res.Elapsed, Done: true})
	}
	closeAll(clients)
	clients = nil
	if err := acks.err.Err(); err != nil {
		return res, fmt.Errorf("%d acknowledgements failed, first: %w", acks.failed.Load(), err)
	}
	if err := waitShareOffsets(settleCtx, o, group, o.Topic, window); err != nil {
		return res, err
	}
	return res, nil
}

// partitionWindow is the range of offsets [start, end) of one partition.
type partitionWindow struct{ start, end int64 }

// offsetWindow returns the start and end offsets of every partition of
// topic, indexed by partition.
func offsetWindow(ctx context.Context, o Options, topic string) ([]partitionWindow, error) {
	cl, err := o.newAdminClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %q: %w", topic, err)
	}
	var out []partitionWindow
	ends.Each(func(e kadm.ListedOffset) {
		for int(e.Partition) >= len(out) {
			out = append(out, partitionWindow{})
		}
		s, _ := starts.Lookup(e.Topic, e.Partition)
		out[e.Partition] = partitionWindow{start: s.Offset, end: e.Offset}
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %q does not exist", topic)
	}
	return out, nil
}

// shareTracker counts the records of a drain by partition and offset.
type shareTracker struct {
	topic  string
	window []partitionWindow
	total  int64

	mu     sync.Mutex
	seen   [][]uint64 // one bit per offset of each window
	unique int64

	got          counter
	duplicates   atomic.Int64
	firstFetch   atomic.Int64 // since epoch
	lastProgress atomic.Int64 // since epoch
	done         chan struct{}
}

func newShareTracker(topic string, window []partitionWindow) *shareTracker {
	t := &shareTracker{topic: topic, window: window, seen: make([][]uint64, len(window)), done: make(chan struct{})}
	for p, w := range window {
		n := max(w.end-w.start, 0)
		t.total += n
		t.seen[p] = make([]uint64, (n+63)/64)
	}
	return t
}

// add counts the records of one poll. Records outside the window (appended
// after the drain began) are not counted.
func (t *shareTracker) add(fetches kgo.Fetches) {
	now := sinceEpoch()
	t.firstFetch.CompareAndSwap(0, now)
	var records, bytes, dups int64
	t.mu.Lock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Topic != t.topic || fp.Partition < 0 || int(fp.Partition) >= len(t.window) {
			return
		}
		w, bits := t.window[fp.Partition], t.seen[fp.Partition]
		for _, r := range fp.Records {
			if r.Offset < w.start || r.Offset >= w.end {
				continue
			}
			i := r.Offset - w.start
			word, bit := i>>6, uint64(1)<<(i&63)
			if bits[word]&bit != 0 {
				dups++
				continue
			}
			bits[word] |= bit
			records++
			bytes += int64(len(r.Key) + len(r.Value))
		}
	})
	t.unique += records
	complete := records > 0 && t.unique == t.total
	t.mu.Unlock()
	if dups > 0 {
		t.duplicates.Add(dups)
	}
	if records > 0 {
		t.got.add(records, bytes)
		t.lastProgress.Store(now)
	}
	if complete {
		close(t.done)
	}
}

// wait returns nil once every record has been handed out, or an error when
// ctx ends or no new record came for stall.
func (t *shareTracker) wait(ctx context.Context, stall time.Duration) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return nil
		case <-ctx.Done():
			return t.missing(ctx.Err().Error())
		case <-tick.C:
			if idle := time.Duration(sinceEpoch() - t.lastProgress.Load()); idle > stall {
				return t.missing(fmt.Sprintf("no new record for %s", idle.Round(time.Second)))
			}
		}
	}
}

func (t *shareTracker) missing(why string) error {
	got := t.got.records.Load()
	return fmt.Errorf("%d of %d records received, %d missing (%s)", got, t.total, t.total-got, why)
}

func (t *shareTracker) result(elapsed time.Duration) Result {
	res := Result{
		Workload:   "share",
		Records:    t.got.records.Load(),
		Bytes:      t.got.bytes.Load(),
		Elapsed:    elapsed,
		Duplicates: t.duplicates.Load(),
	}
	res.finish()
	return res
}

// ackTracker collects the outcome of every acknowledgement of a set of share
// consumers.
type ackTracker struct {
	last   atomic.Int64 // since epoch: latest successful acknowledgement
	failed atomic.Int64
	err    firsterr.Keeper
}

func (a *ackTracker) callback(_ *kgo.Client, results kgo.ShareAckResults) {
	now := sinceEpoch()
	ok := false
	for _, r := range results {
		if r.Err != nil {
			a.failed.Add(1)
			a.err.Set(fmt.Errorf("acknowledging %s[%d]: %w", r.Topic, r.Partition, r.Err))
		} else {
			ok = true
		}
	}
	for ok {
		prev := a.last.Load()
		if now <= prev || a.last.CompareAndSwap(prev, now) {
			break
		}
	}
}

// newShareClients creates o.Workers share consumers of o.Topic in group.
func newShareClients(o Options, group string, acks *ackTracker, extra ...kgo.Opt) ([]*kgo.Client, error) {
	clients := make([]*kgo.Client, 0, o.Workers)
	for range o.Workers {
		opts := append(consumerOpts(o),
			kgo.ShareGroup(group),
			kgo.ConsumeTopics(o.Topic),
			kgo.ShareAckCallback(acks.callback),
		)
		cl, err := kgo.NewClient(append(opts, extra...)...)
		if err != nil {
			closeAll(clients)
			return nil, err
		}
		clients = append(clients, cl)
	}
	return clients, nil
}

// pollShare polls cl until ctx ends, hands every non-empty poll to handle,
// spends work on each of its records and then marks them ACCEPT.
func pollShare(ctx context.Context, cl *kgo.Client, work time.Duration, handle func(kgo.Fetches)) error {
	for {
		fetches := cl.PollFetches(ctx)
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
				ferr = fmt.Errorf("share fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil && ctx.Err() == nil {
			return ferr
		}
		if n := fetches.NumRecords(); n > 0 {
			handle(fetches)
			if work > 0 {
				time.Sleep(time.Duration(n) * work)
			}
			cl.MarkAcks(kgo.AckAccept)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// flushAll flushes the acknowledgements of every client at once.
func flushAll(ctx context.Context, clients []*kgo.Client) error {
	var (
		wg      sync.WaitGroup
		failure firsterr.Keeper
	)
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cl.FlushAcks(ctx); err != nil {
				failure.Set(err)
			}
		}()
	}
	wg.Wait()
	return failure.Err()
}

// closeAll closes every client at once: closing a share consumer leaves the
// group, one round trip or more each.
func closeAll(clients []*kgo.Client) {
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.Close()
		}()
	}
	wg.Wait()
}

var shareGroupSeq atomic.Int64

// shareGroupName returns a group name not used before, so that every run
// starts from a share group with no state.
func shareGroupName(topic string) string {
	return fmt.Sprintf("%s-share-%d-%d", topic, time.Now().UnixNano(), shareGroupSeq.Add(1))
}

// setGroupConfig sets one config of a group with IncrementalAlterConfigs.
func setGroupConfig(ctx context.Context, o Options, group, key, value string) error {
	cl, err := o.newAdminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = groupResourceType, group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op, cfg.Value = key, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(value)
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("setting %s=%s on group %q: %w", key, value, group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = ": " + *r.ErrorMessage
			}
			return fmt.Errorf("setting %s=%s on group %q: %w%s", key, value, group, err, msg)
		}
	}
	return nil
}

// deleteGroup removes a finished run's share group, on a best-effort basis.
func deleteGroup(o Options, group string) {
	_ = cleanUp(o, func(ctx context.Context, adm *kadm.Client) error {
		_, err := adm.DeleteGroups(ctx, group)
		return err
	})
}

// waitShareOffsets waits until the share group's start offset has reached
// the end of the window on every partition, that is, until the broker
// reports every record of the window acknowledged.
func waitShareOffsets(ctx context.Context, o Options, group, topic string, window []partitionWindow) error {
	cl, err := o.newAdminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		last = nil
		described, err := adm.DescribeShareGroupOffsets(ctx, group)
		if err == nil {
			err = described.Error()
		}
		if err != nil {
			last = fmt.Errorf("describing share group offsets: %w", err)
		} else {
			offsets := described[group].Offsets[topic]
			for p, w := range window {
				if w.end <= w.start {
					continue
				}
				so, ok := offsets[int32(p)]
				switch {
				case !ok:
					last = fmt.Errorf("share group has no start offset for %s[%d]", topic, p)
				case so.Err != nil:
					last = fmt.Errorf("share group start offset of %s[%d]: %w", topic, p, so.Err)
				case so.StartOffset < w.end:
					last = fmt.Errorf("share group start offset of %s[%d] is %d, want %d: not every record was accepted",
						topic, p, so.StartOffset, w.end)
				}
				if last != nil {
					break
				}
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}
