package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/firsterr"
)

// shareWarmupWait bounds the warm-up of ShareLatency: every consumer in the
// group with an assignment and a warm-up record received from every
// partition.
const shareWarmupWait = 30 * time.Second

// ShareLatency measures end-to-end latency through a share group: records
// are sent at a paced rate of o.Rate records per second (acks=all, linger
// o.Linger, default 0) to o.Partitions partitions (default 4) and read by
// o.Workers share consumers (default 16) of one new group, each of which
// ACCEPTs what it gets. The latency of a record is the time from its
// scheduled send (stamped in the value, as in Latency) to its first
// delivery to a consumer. It sends for o.Duration (default 10s) or until
// o.Records records when only that is given.
//
// The group starts at the end of the topic. Before the clock starts every
// consumer must hold an assignment and every partition must have delivered
// a warm-up record, so that joining the group is not measured.
func ShareLatency(ctx context.Context, o Options) (Result, error) {
	run, err := newLatencyRun(ctx, o, Options.withShareDefaults)
	if err != nil {
		return Result{}, err
	}
	o = run.o
	group := shareGroupName(o.Topic)
	if err := setGroupConfig(ctx, o, group, "share.auto.offset.reset", "latest"); err != nil {
		return Result{}, err
	}
	defer deleteGroup(o, group)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acks    ackTracker
		failure firsterr.Keeper
	)
	clients, err := newShareClients(o, group, &acks, kgo.FetchMaxWait(time.Second))
	if err != nil {
		return Result{}, err
	}
	defer func() { closeAll(clients) }()
	producer, err := run.newProducer()
	if err != nil {
		return Result{}, err
	}
	defer producer.Close()
	promise := failOnProduceError(&failure, cancel)

	// The consumers. A stamp of 0 marks a warm-up record.
	var (
		lat         = run.newRecorder()
		received    counter
		duplicates  atomic.Int64
		lastReceive atomic.Int64 // since epoch
		warmed      = make([]atomic.Bool, run.partitions)
		seenMu      sync.Mutex
		seen        = make(map[[2]int64]struct{})
		workers     sync.WaitGroup
	)
	handle := func(fetches kgo.Fetches) {
		now := sinceEpoch()
		var n, b, dups int64
		seenMu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			stamp, ours := readStamp(r, run.id)
			if !ours {
				return
			}
			if stamp == 0 {
				if int(r.Partition) < len(warmed) {
					warmed[r.Partition].Store(true)
				}
				return
			}
			key := [2]int64{int64(r.Partition), r.Offset}
			if _, ok := seen[key]; ok {
				dups++
				return
			}
			seen[key] = struct{}{}
			lat.record(time.Duration(now - stamp))
			n++
			b += int64(len(r.Key) + len(r.Value))
		})
		seenMu.Unlock()
		if dups > 0 {
			duplicates.Add(dups)
		}
		if n > 0 {
			lastReceive.Store(now)
			received.add(n, b)
		}
	}
	for _, cl := range clients {
		workers.Add(1)
		go func() {
			defer workers.Done()
			if err := pollShare(ctx, cl, 0, handle); err != nil {
				failure.Set(err)
				cancel()
			}
		}()
	}
	stopWorkers := func() {
		cancel()
		workers.Wait()
	}
	defer stopWorkers()

	newValue := stampedValues(o.RecordSize, run.id)

	// Warm up. The group's share partitions start at the end of the log
	// when first fetched, so a warm-up record sent before that is never
	// delivered: send one to every partition not yet heard from, again and
	// again, until all are.
	warmupErr := warmUpShare(ctx, o, group, func() bool {
		cold := false
		for p := range warmed {
			if !warmed[p].Load() {
				cold = true
				producer.Produce(ctx, &kgo.Record{Topic: o.Topic, Partition: int32(p), Value: newValue(0)}, promise)
			}
		}
		return !cold
	})
	if warmupErr != nil {
		return Result{}, firstOf(failure.Err(), fmt.Errorf("share group warm-up: %w", warmupErr))
	}

	start, sent, err := run.measurePaced(ctx, "share-e2e", producer, &received, newValue, promise)
	stopWorkers()
	if err == nil {
		// Hand the last acknowledgements to the broker before leaving.
		flushCtx, cancelFlush := context.WithTimeout(context.Background(), shareSettleTimeout)
		err = flushAll(flushCtx, clients)
		cancelFlush()
	}

	res := run.finish(Result{
		Workload:   "share-e2e",
		Records:    received.records.Load(),
		Bytes:      received.bytes.Load(),
		Latency:    lat.percentiles(),
		Duplicates: duplicates.Load(),
	}, lastReceive.Load(), start)
	if err := latencyError(res, sent, failure.Err(), err); err != nil {
		return res, err
	}
	if aerr := acks.err.Err(); aerr != nil {
		return res, fmt.Errorf("%d acknowledgements failed, first: %w", acks.failed.Load(), aerr)
	}
	return res, nil
}

// warmUpShare waits until all o.Workers consumers of group hold an
// assignment and then until round, called every 50ms, reports every
// partition warm.
func warmUpShare(ctx context.Context, o Options, group string, round func() bool) error {
	cl, err := o.newAdminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(shareWarmupWait)
	joined := false
	for {
		if !joined {
			described, err := adm.DescribeShareGroups(ctx, group)
			if err == nil {
				if g, ok := described[group]; ok && g.Err == nil && len(g.Members) >= o.Workers {
					joined = true
					for _, m := range g.Members {
						if len(m.Assignment) == 0 {
							joined = false
						}
					}
				}
			}
		}
		if joined && round() {
			return nil
		}
		if time.Now().After(deadline) {
			if !joined {
				return fmt.Errorf("fewer than %d consumers with an assignment after %s", o.Workers, shareWarmupWait)
			}
			return fmt.Errorf("warm-up records not received after %s", shareWarmupWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
