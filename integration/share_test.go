package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareWorkersEachRecordOnce has 16 share consumers drain a 4-partition
// topic concurrently. Nobody fails, so every record must be delivered and
// accepted exactly once, and the share-partition start offsets must end at
// the high watermarks.
func TestShareWorkersEachRecordOnce(t *testing.T) {
	const (
		partitions = 4
		total      = 100_000
		workers    = 16
	)
	n, topic, group, admin := startShareTopic(t, partitions, "share.auto.offset.reset=earliest")

	start := time.Now()
	produceSpread(t, n, topic, partitions, total)
	hwm := highWatermarks(t, n, topic)
	t.Logf("produced %d records in %v, high watermarks %s", total, time.Since(start), fmtInt64s(hwm))

	// counts[p][o] is how many times offset o of partition p was delivered.
	counts := make([][]atomic.Int32, partitions)
	for p := range counts {
		counts[p] = make([]atomic.Int32, hwm[int32(p)])
	}
	var (
		seen        atomic.Int64
		redelivered atomic.Int64
		perWorker   [workers]atomic.Int64
		acks        ackResults
		fetchErrs   sync.Map
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allSeen := make(chan struct{})
	var once sync.Once

	start = time.Now()
	cls := make([]*kgo.Client, workers)
	var wg sync.WaitGroup
	for w := range cls {
		cls[w] = shareClient(t, n, group, topic, kgo.ShareAckCallback(acks.callback))
		wg.Add(1)
		go func(w int, cl *kgo.Client) {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(tp string, p int32, err error) {
					if !errors.Is(err, context.Canceled) {
						fetchErrs.Store(fmt.Sprintf("%s/%d: %v", tp, p, err), true)
					}
				})
				recs := fs.Records()
				for _, r := range recs {
					if r.Partition < 0 || int(r.Partition) >= partitions || r.Offset < 0 || r.Offset >= int64(len(counts[r.Partition])) {
						fetchErrs.Store(fmt.Sprintf("record outside the produced range: %d/%d", r.Partition, r.Offset), true)
						continue
					}
					counts[r.Partition][r.Offset].Add(1)
					perWorker[w].Add(1)
					if r.DeliveryCount() != 1 {
						redelivered.Add(1)
					}
				}
				cl.MarkAcks(kgo.AckAccept)
				if seen.Add(int64(len(recs))) >= total {
					once.Do(func() { close(allSeen) })
				}
			}
		}(w, cls[w])
	}

	select {
	case <-allSeen:
	case <-time.After(90 * time.Second):
		t.Errorf("only %d of %d records delivered after 90s", seen.Load(), total)
	}
	busy := 0
	for w := range perWorker {
		if perWorker[w].Load() > 0 {
			busy++
		}
	}
	t.Logf("%d deliveries in %v, %d of %d workers got records", seen.Load(), time.Since(start), busy, workers)
	cancel()
	wg.Wait()
	flushAcksAndClose(t, cls, admin, group, topic, hwm)

	fetchErrs.Range(func(k, _ any) bool {
		t.Errorf("fetch error: %v", k)
		return true
	})
	if ok, failed := acks.snapshot(); len(failed) > 0 {
		t.Errorf("%d acknowledgements failed (%d succeeded), first: %v", len(failed), ok, failed[0])
	}
	var missing, dups int
	var sample []string
	for p := range counts {
		for o := range counts[p] {
			switch c := counts[p][o].Load(); {
			case c == 0:
				missing++
			case c > 1:
				dups++
			default:
				continue
			}
			if len(sample) < 10 {
				sample = append(sample, fmt.Sprintf("%d/%d x%d", p, o, counts[p][o].Load()))
			}
		}
	}
	if missing > 0 || dups > 0 {
		t.Errorf("%d records never delivered, %d delivered more than once: %v", missing, dups, sample)
	}
	if r := redelivered.Load(); r > 0 {
		t.Errorf("%d deliveries had a delivery count above 1", r)
	}
}

// shareDelivery is one delivery of one record to one worker.
type shareDelivery struct {
	worker   int
	count    int32
	received time.Time
	// end is when the worker stopped holding the record at the latest as
	// far as a correct broker goes: when it handed in its ack (the broker
	// applies it later) or, if earlier, shortly before the lock deadline.
	end    time.Time
	action string // accept, release or expired (lock ran out first)
}

// TestShareNoRecordHeldByTwoWorkers runs workers that accept, accept slowly,
// release, or sit on a batch past its lock, and checks from the receive and
// ack times that no record was ever held by two workers at once.
func TestShareNoRecordHeldByTwoWorkers(t *testing.T) {
	const (
		partitions = 3
		total      = 6000
		lock       = 3 * time.Second
	)
	n, topic, group, admin := startShareTopic(t, partitions, "share.auto.offset.reset=earliest",
		fmt.Sprintf("share.record.lock.duration.ms=%d", lock.Milliseconds()))
	// Small stored batches, so that batches are spread over the workers.
	produceChunked(t, n, topic, partitions, total, 3*partitions)
	hwm := highWatermarks(t, n, topic)

	type key struct {
		p int32
		o int64
	}
	var (
		mu         sync.Mutex
		deliveries = map[key][]shareDelivery{}
	)
	kinds := []string{"accept", "accept", "release", "release", "slow", "slow", "stall"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var cls []*kgo.Client
	acks := make([]ackResults, len(kinds))
	// The other workers start once the stalling one holds records, so it
	// cannot find the topic drained before its first fetch.
	stalled := make(chan struct{})
	var stalledOnce sync.Once
	for w, kind := range kinds {
		opts := []kgo.Opt{kgo.ShareMaxRecords(20), kgo.ShareAckCallback(acks[w].callback)}
		if w%2 == 1 {
			// Some workers make the broker split stored batches.
			opts = append(opts, kgo.ShareMaxRecordsStrict())
		}
		cl := shareClient(t, n, group, topic, opts...)
		cls = append(cls, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			polls := 0
			if kind != "stall" {
				select {
				case <-stalled:
				case <-ctx.Done():
				case <-time.After(30 * time.Second):
					t.Error("the stalling worker received nothing in 30s")
				}
			}
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				received := time.Now()
				recs := fs.Records()
				if len(recs) == 0 {
					continue
				}
				polls++
				if kind == "stall" {
					stalledOnce.Do(func() { close(stalled) })
				}
				switch {
				case kind == "slow":
					time.Sleep(time.Duration(20+rng.Intn(80)) * time.Millisecond)
				case kind == "stall" && polls%5 == 1:
					// Hold this batch past its lock: it goes to someone
					// else and the late accept fails.
					time.Sleep(lock + time.Second)
				}
				var release, accept []*kgo.Record
				for _, r := range recs {
					if kind == "release" && rng.Intn(3) == 0 {
						release = append(release, r)
					} else {
						accept = append(accept, r)
					}
				}
				marked := time.Now()
				// MarkAcks with no records marks the whole poll.
				if len(release) > 0 {
					cl.MarkAcks(kgo.AckRelease, release...)
				}
				if len(accept) > 0 {
					cl.MarkAcks(kgo.AckAccept, accept...)
				}
				mu.Lock()
				for _, r := range recs {
					end := marked
					// AcquisitionDeadline is measured from when the client
					// decoded the response; the broker's deadline is a bit
					// earlier. Some slack keeps the bound safe.
					expired := false
					if dl := r.AcquisitionDeadline().Add(-1500 * time.Millisecond); dl.Before(end) {
						end, expired = dl, true
					}
					action := "accept"
					if expired {
						action = "expired"
					} else if kind == "release" && containsRecord(release, r) {
						action = "release"
					}
					k := key{r.Partition, r.Offset}
					deliveries[k] = append(deliveries[k], shareDelivery{
						worker: w, count: r.DeliveryCount(), received: received, end: end, action: action,
					})
				}
				mu.Unlock()
			}
		}()
	}

	waitStartOffsets(t, admin, group, topic, hwm, 90*time.Second)
	cancel()
	wg.Wait()
	closeAll(cls...)

	for w := range acks {
		ok, failed := acks[w].snapshot()
		t.Logf("worker %d (%s): %d acks succeeded, %d failed %v", w, kinds[w], ok, len(failed), failed[:min(3, len(failed))])
	}
	mu.Lock()
	defer mu.Unlock()
	var overlaps, badCounts, redeliveries, expired int
	perWorker := make([]int, len(kinds))
	maxCount := map[int32]int{}
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < hwm[p]; o++ {
			ds := deliveries[key{p, o}]
			if len(ds) == 0 {
				t.Errorf("%d/%d was never delivered", p, o)
				continue
			}
			redeliveries += len(ds) - 1
			for _, d := range ds {
				perWorker[d.worker]++
				if d.action == "expired" {
					expired++
				}
			}
			// Every acquisition bumps the count, so the counts of one
			// record's deliveries are distinct. (Receive order can differ:
			// a worker busy past the lock polls its buffered, already
			// expired records late; and a worker that never polls its
			// buffered records again leaves a gap in the counts seen.)
			sort.Slice(ds, func(i, j int) bool { return ds[i].count < ds[j].count })
			maxCount[ds[len(ds)-1].count]++
			for i := range ds {
				if i > 0 && ds[i].count == ds[i-1].count {
					badCounts++
					if badCounts <= 5 {
						t.Errorf("%d/%d: delivery counts not distinct: %s", p, o, fmtDeliveries(ds))
					}
				}
				for j := i + 1; j < len(ds); j++ {
					a, b := ds[i], ds[j]
					if a.received.Before(b.end) && b.received.Before(a.end) {
						overlaps++
						if overlaps <= 10 {
							t.Errorf("%d/%d held by workers %d and %d at once: %s", p, o, a.worker, b.worker, fmtDeliveries(ds))
						}
					}
				}
			}
		}
	}
	t.Logf("%d records, %d redeliveries, %d lock expiries; deliveries per worker %v (%v); records by last delivery count %v",
		total, redeliveries, expired, perWorker, kinds, maxCount)
	if overlaps > 0 {
		t.Errorf("%d overlapping holds", overlaps)
	}
	if redeliveries == 0 || expired == 0 {
		t.Errorf("%d redeliveries, %d lock expiries: the releasing and stalling workers did not exercise both", redeliveries, expired)
	}
}

func containsRecord(rs []*kgo.Record, r *kgo.Record) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func fmtDeliveries(ds []shareDelivery) string {
	var b strings.Builder
	t0 := ds[0].received
	for _, d := range ds {
		fmt.Fprintf(&b, "[w%d #%d %s %v..%v] ", d.worker, d.count, d.action,
			d.received.Sub(t0).Round(time.Millisecond), d.end.Sub(t0).Round(time.Millisecond))
	}
	return b.String()
}
