package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume reads exactly o.Records records of o.Topic from the start of every
// partition with a plain consumer (no group). The clock starts when the
// consumer client is created and stops at the last record.
func Consume(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	n := int64(o.Records)
	avail, err := availableRecords(ctx, o, o.Topic)
	if err != nil {
		return Result{}, err
	}
	if avail < n {
		return Result{}, fmt.Errorf("topic %q holds %d records, fewer than the %d to consume", o.Topic, avail, n)
	}

	var got counter
	start := time.Now()
	cl, err := kgo.NewClient(append(consumerOpts(o),
		kgo.ConsumeTopics(o.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()

	stopProgress := startProgress(o.Progress, func() Progress {
		return Progress{Workload: "consume", Records: got.records.Load(), Bytes: got.bytes.Load(),
			Target: n, Elapsed: time.Since(start)}
	})
	defer stopProgress()

	var (
		records, bytes int64
		end            time.Time
	)
	for records < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return Result{}, ferr
		}
		var batchRecords, batchBytes int64
		fetches.EachRecord(func(r *kgo.Record) {
			if records+batchRecords < n {
				batchRecords++
				batchBytes += int64(len(r.Key) + len(r.Value))
			}
		})
		end = time.Now()
		records += batchRecords
		bytes += batchBytes
		got.add(batchRecords, batchBytes)
	}
	stopProgress()

	res := Result{Workload: "consume", Records: records, Bytes: bytes, Elapsed: end.Sub(start)}
	res.finish()
	if o.Progress != nil {
		o.Progress(Progress{Workload: "consume", Records: records, Bytes: bytes, Target: n,
			Elapsed: res.Elapsed, Done: true})
	}
	return res, nil
}

// availableRecords returns the number of records between the start and end
// offsets of every partition of topic.
func availableRecords(ctx context.Context, o Options, topic string) (int64, error) {
	cl, err := o.newAdminClient()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, fmt.Errorf("topic %q does not exist", topic)
	}
	if err != nil {
		return 0, fmt.Errorf("listing start offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("listing end offsets of %q: %w", topic, err)
	}
	if len(ends[topic]) == 0 {
		return 0, fmt.Errorf("topic %q does not exist", topic)
	}
	var total int64
	ends.Each(func(e kadm.ListedOffset) {
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			total += e.Offset - s.Offset
		}
	})
	return total, nil
}
