package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTxnSize is the number of records per transaction of ProduceTxn.
const DefaultTxnSize = 100

// ProduceTxn produces o.Records records of o.RecordSize bytes in groups of
// txnSize, the same way for both modes so the two can be compared:
//
//   - transactional: each group is one transaction (begin, produce, flush,
//     commit), with a transactional id of its own per run;
//   - idempotent: each group is produced and flushed, without a
//     transaction: what the run costs without the transaction protocol.
//
// Throughput is timed from the first produce to the last commit (or flush).
func ProduceTxn(ctx context.Context, o Options, txnSize int, transactional bool) (Result, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if txnSize <= 0 {
		txnSize = DefaultTxnSize
	}
	if _, err := ensureTopic(ctx, o, o.Topic, o.Partitions); err != nil {
		return Result{}, err
	}
	workload := "produce-idempotent"
	opts := producerOpts(o, o.Linger)
	if transactional {
		workload = "produce-transactional"
		opts = append(opts, kgo.TransactionalID(fmt.Sprintf("%s-%d", o.Topic, time.Now().UnixNano())))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()

	var (
		value   = payload(o.RecordSize)
		acked   counter
		failure firstError
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failure.set(fmt.Errorf("producing to %s[%d]: %w", r.Topic, r.Partition, err))
			return
		}
		acked.add(1, int64(len(r.Value)))
	}
	start := time.Now()
	stopProgress := startProgress(o.Progress, func() Progress {
		return Progress{Workload: workload, Records: acked.records.Load(), Bytes: acked.bytes.Load(),
			Target: int64(o.Records), Elapsed: time.Since(start)}
	})
	defer stopProgress()
	for sent := 0; sent < o.Records; {
		n := min(txnSize, o.Records-sent)
		if transactional {
			if err := cl.BeginTransaction(); err != nil {
				return Result{}, err
			}
		}
		for range n {
			cl.Produce(ctx, &kgo.Record{Value: value}, promise)
		}
		// A transaction ends only once its records are acknowledged.
		if err := cl.Flush(ctx); err != nil {
			return Result{}, err
		}
		if transactional {
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				return Result{}, fmt.Errorf("committing: %w", err)
			}
		}
		if err := failure.get(); err != nil {
			return Result{}, err
		}
		sent += n
	}
	res := Result{Workload: workload, Records: acked.records.Load(), Bytes: acked.bytes.Load(), Elapsed: time.Since(start)}
	res.finish()
	return res, nil
}
