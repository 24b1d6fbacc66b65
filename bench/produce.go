package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/firsterr"
)

// Produce creates the topic if it is missing and produces o.Records records
// of o.RecordSize bytes with acks=all, idempotence and o.Linger, without
// compression. Throughput is timed from the first produce call to the last
// acknowledgement; the latency percentiles are those of single records, from
// the produce call to the acknowledgement.
func Produce(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if _, err := o.validTopic(ctx); err != nil {
		return Result{}, err
	}
	cl, err := kgo.NewClient(producerOpts(o, o.Linger)...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		n        = int64(o.Records)
		value    = payload(o.RecordSize)
		lat      = newRecorder(o.Records)
		acked    counter
		finished atomic.Int64
		allDone  = make(chan struct{})
		start    time.Time
		elapsed  atomic.Int64 // first produce to last ack, set by the last promise
		failure  firsterr.Keeper
	)
	// The record's Timestamp is set just before the produce call; it keeps
	// the monotonic clock reading, so the promise can compute the latency
	// without a closure per record. All records share one value buffer: the
	// client only reads it.
	promise := func(r *kgo.Record, err error) {
		now := time.Now()
		if err != nil {
			failure.Set(fmt.Errorf("producing to %s[%d]: %w", r.Topic, r.Partition, err))
			cancel()
		} else {
			lat.record(now.Sub(r.Timestamp))
			acked.add(1, int64(len(r.Value)))
		}
		if finished.Add(1) == n {
			elapsed.Store(int64(now.Sub(start)))
			close(allDone)
		}
	}

	start = time.Now()
	stopProgress := startProgress(o.Progress, func() Progress {
		return Progress{Workload: "produce", Records: acked.records.Load(), Bytes: acked.bytes.Load(),
			Target: n, Elapsed: time.Since(start)}
	})

	for i := int64(0); i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		r := &kgo.Record{Value: value, Timestamp: time.Now()}
		if o.Keys > 0 {
			r.Key = []byte("k" + strconv.FormatInt(i%int64(o.Keys), 10))
		}
		cl.Produce(ctx, r, promise)
	}
	// With idempotence the client does not abandon records already sent, so
	// a cancelled run does not wait for them: closing the client fails them.
	select {
	case <-allDone:
	case <-ctx.Done():
		failure.Set(ctx.Err())
	}
	stopProgress()

	res := Result{
		Workload: "produce",
		Records:  acked.records.Load(),
		Bytes:    acked.bytes.Load(),
		Elapsed:  time.Duration(elapsed.Load()),
		Latency:  lat.percentiles(),
	}
	if res.Elapsed == 0 {
		res.Elapsed = time.Since(start)
	}
	res.finish()
	if o.Progress != nil {
		o.Progress(Progress{Workload: "produce", Records: res.Records, Bytes: res.Bytes, Target: n,
			Elapsed: res.Elapsed, Done: true})
	}
	if err := failure.Err(); err != nil {
		return res, err
	}
	if res.Records != n {
		return res, errors.New("produce: not every record was acknowledged")
	}
	return res, nil
}
