package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/firsterr"
)

// epoch is the origin of the send stamps. Producer and consumer run in this
// process, so both read the same monotonic clock.
var epoch = time.Now()

func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// Latency measures end-to-end latency at a paced rate of o.Rate records per
// second with acks=all and o.Linger (default 0). It sends for o.Duration
// (default 10s) or until o.Records records when only that is given; with
// both set the run ends at whichever comes first.
//
// Record i is scheduled at start + i/Rate. The producer sleeps until that
// time and stamps the record with it; the consumer, started before the first
// send at the end of every partition, computes receive time minus scheduled
// time. Measuring from the schedule rather than the actual send keeps a
// stalled producer from hiding the stall (coordinated omission). A few
// warm-up records go through first, so that connections, metadata and the
// producer id are in place before the clock starts.
func Latency(ctx context.Context, o Options) (Result, error) {
	run, err := newLatencyRun(ctx, o, Options.withDefaults)
	if err != nil {
		return Result{}, err
	}
	o = run.o
	offsets, err := endOffsets(ctx, o, o.Topic)
	if err != nil {
		return Result{}, err
	}

	consumer, err := kgo.NewClient(append(consumerOpts(o),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: offsets}),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return Result{}, err
	}
	defer consumer.Close()
	producer, err := run.newProducer()
	if err != nil {
		return Result{}, err
	}
	defer producer.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failure firsterr.Keeper
	promise := failOnProduceError(&failure, cancel)

	// The consumer goroutine. A stamp of 0 marks a warm-up record.
	var (
		lat         = run.newRecorder()
		received    counter
		warmed      atomic.Int64
		lastReceive atomic.Int64 // since epoch
		consumed    = make(chan struct{})
	)
	go func() {
		defer close(consumed)
		for ctx.Err() == nil {
			fetches := consumer.PollFetches(ctx)
			now := sinceEpoch()
			fetches.EachError(func(t string, p int32, err error) {
				if ctx.Err() == nil {
					failure.Set(fmt.Errorf("fetching %s[%d]: %w", t, p, err))
					cancel()
				}
			})
			var n, b int64
			fetches.EachRecord(func(r *kgo.Record) {
				stamp, ours := readStamp(r, run.id)
				if !ours {
					return
				}
				if stamp == 0 {
					warmed.Add(1)
					return
				}
				lat.record(time.Duration(now - stamp))
				n++
				b += int64(len(r.Key) + len(r.Value))
			})
			if n > 0 {
				lastReceive.Store(now)
				received.add(n, b)
			}
		}
	}()

	newValue := stampedValues(o.RecordSize, run.id)

	// Warm up: one record to every partition, and wait for all of them.
	for p := range run.partitions {
		producer.Produce(ctx, &kgo.Record{Topic: o.Topic, Partition: int32(p), Value: newValue(0)}, promise)
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return warmed.Load() >= int64(run.partitions) }); err != nil {
		return Result{}, firstOf(failure.Err(), fmt.Errorf("warm-up records not received: %w", err))
	}

	start, sent, err := run.measurePaced(ctx, "latency", producer, &received, newValue, promise)
	cancel()
	<-consumed

	res := run.finish(Result{
		Workload: "latency",
		Records:  received.records.Load(),
		Bytes:    received.bytes.Load(),
		Latency:  lat.percentiles(),
	}, lastReceive.Load(), start)
	return res, latencyError(res, sent, failure.Err(), err)
}

// latencyRun is what Latency and ShareLatency settle before they start: the
// options with their defaults, the limits, the producer linger, the id that
// marks this run's records, and the partitions of the topic.
type latencyRun struct {
	o Options
	// maxRecords is how many records the run sends at most (0 for no
	// limit), duration for how long (0 for no limit): o.Duration, or until
	// o.Records records when only that is given, DefaultDuration when
	// neither is.
	maxRecords int64
	duration   time.Duration
	linger     time.Duration // o.Linger, default 0 rather than DefaultLinger
	id         uint64
	partitions int
}

// newLatencyRun reads the limits and linger of o, applies withDefaults,
// validates the result and makes sure the topic exists.
func newLatencyRun(ctx context.Context, o Options, withDefaults func(Options) Options) (latencyRun, error) {
	run := latencyRun{maxRecords: int64(max(o.Records, 0)), duration: o.Duration, linger: max(o.Linger, 0)}
	if run.maxRecords == 0 && run.duration <= 0 {
		run.duration = DefaultDuration
	}
	run.o = withDefaults(o)
	run.id = rand.Uint64() | 1
	var err error
	run.partitions, err = run.o.validTopic(ctx)
	return run, err
}

// newProducer returns the producer of the run: its linger, and the
// partition of each record chosen by sendPaced.
func (run latencyRun) newProducer() (*kgo.Client, error) {
	return kgo.NewClient(append(producerOpts(run.o, run.linger), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
}

// newRecorder sizes a recorder for the samples the run can produce.
func (run latencyRun) newRecorder() *recorder {
	return newRecorder(int(min(max(int64(run.duration.Seconds()+1)*int64(run.o.Rate), run.maxRecords), 1<<24)))
}

// stampedValues returns a function that builds record values of
// max(size, latencyHeaderBytes) bytes carrying a send stamp and runID (see
// readStamp).
func stampedValues(size int, runID uint64) func(stamp int64) []byte {
	size = max(size, latencyHeaderBytes)
	template := payload(size)
	binary.LittleEndian.PutUint64(template[8:], runID)
	return func(stamp int64) []byte {
		v := make([]byte, size)
		copy(v, template)
		binary.LittleEndian.PutUint64(v, uint64(stamp))
		return v
	}
}

// readStamp returns the send stamp of a value built by stampedValues for
// runID; ours is false for any other record.
func readStamp(r *kgo.Record, runID uint64) (stamp int64, ours bool) {
	if len(r.Value) < latencyHeaderBytes || binary.LittleEndian.Uint64(r.Value[8:]) != runID {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(r.Value)), true
}

// failOnProduceError is the produce promise of a latency run: the first
// failed record becomes the run's failure and ends the run (cancel).
func failOnProduceError(failure *firsterr.Keeper, cancel context.CancelFunc) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		if err != nil {
			failure.Set(fmt.Errorf("producing to %s[%d]: %w", r.Topic, r.Partition, err))
			cancel()
		}
	}
}

// measurePaced is the measured phase of a latency run, after the warm-up:
// it sends at o.Rate with sendPaced (reporting progress as workload), waits
// until received has counted every record sent, and then for every
// produce ack. It returns when the schedule started, how many records were
// sent, and why the wait failed, if it did.
func (run latencyRun) measurePaced(ctx context.Context, workload string, producer *kgo.Client, received *counter,
	newValue func(stamp int64) []byte, promise func(*kgo.Record, error)) (start time.Time, sent int64, err error) {
	start = time.Now()
	stopProgress := startProgress(run.o.Progress, func() Progress {
		return Progress{Workload: workload, Records: received.records.Load(), Bytes: received.bytes.Load(),
			Target: run.maxRecords, Total: run.duration, Elapsed: time.Since(start)}
	})
	defer stopProgress()
	sent = sendPaced(ctx, producer, run.o.Topic, run.partitions, run.o.Rate, start, run.maxRecords, run.duration, newValue, promise)

	err = waitFor(ctx, latencyDrainWait, func() bool { return received.records.Load() >= sent })
	if err == nil {
		// A record can be read before its producer sees the ack; collect
		// every ack so that closing the producer fails nothing.
		err = producer.Flush(ctx)
	}
	return start, sent, err
}

// sendPaced sends record i at start + i/rate, round robin over the
// partitions, with the value newValue builds for the scheduled time (since
// epoch). Measuring from the schedule rather than the actual send keeps a
// stalled producer from hiding the stall (coordinated omission). It stops
// after maxRecords records or when the schedule passes duration (a zero
// limit does not apply), or when ctx ends, and returns how many it sent.
func sendPaced(ctx context.Context, producer *kgo.Client, topic string, partitions, rate int, start time.Time,
	maxRecords int64, duration time.Duration, newValue func(stamp int64) []byte, promise func(*kgo.Record, error)) int64 {
	var (
		sent     int64
		pace     = newPacer()
		interval = float64(time.Second) / float64(rate)
	)
	defer pace.close()
	for i := int64(0); maxRecords == 0 || i < maxRecords; i++ {
		offset := time.Duration(float64(i) * interval)
		if duration > 0 && offset >= duration {
			break
		}
		sched := start.Add(offset)
		if pace.sleepUntil(ctx, sched) != nil {
			break
		}
		producer.Produce(ctx, &kgo.Record{
			Topic:     topic,
			Partition: int32(i % int64(partitions)),
			Value:     newValue(int64(sched.Sub(epoch))),
		}, promise)
		sent++
	}
	return sent
}

// finish completes the result of a latency run whose schedule started at
// start and whose last record arrived at lastReceive (since epoch; 0 if none
// did), and reports it as done.
func (run latencyRun) finish(res Result, lastReceive int64, start time.Time) Result {
	if lastReceive > 0 {
		res.Elapsed = time.Duration(lastReceive) - start.Sub(epoch)
	}
	res.finish()
	if run.o.Progress != nil {
		run.o.Progress(Progress{Workload: res.Workload, Records: res.Records, Bytes: res.Bytes, Target: run.maxRecords,
			Total: run.duration, Elapsed: res.Elapsed, Done: true})
	}
	return res
}

// latencyError is the error of a latency run that sent sent records: the
// run's first failure, then waitErr (the wait for the records to arrive),
// then a count that does not match.
func latencyError(res Result, sent int64, failure, waitErr error) error {
	if failure != nil {
		return failure
	}
	if waitErr != nil {
		return fmt.Errorf("received %d of %d records: %w", res.Records, sent, waitErr)
	}
	if res.Records != sent {
		return fmt.Errorf("received %d records, sent %d", res.Records, sent)
	}
	return nil
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(ctx context.Context, o Options, topic string) (map[int32]kgo.Offset, error) {
	cl, err := o.newAdminClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %q: %w", topic, err)
	}
	out := make(map[int32]kgo.Offset)
	ends.Each(func(e kadm.ListedOffset) {
		out[e.Partition] = kgo.NewOffset().At(e.Offset)
	})
	return out, nil
}

// waitFor polls cond every millisecond until it holds, ctx ends or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func firstOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
