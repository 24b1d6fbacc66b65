package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/internal/firsterr"
)

// DefaultTxnSize is the number of records per transaction of ProduceTxn.
const DefaultTxnSize = 100

// ProduceTxn produces o.Records records of o.RecordSize bytes in groups of
// txnSize, the same way for both modes so the two can be compared:
//
//   - transactional: each group is one transaction (begin, produce, flush,
//     commit), with a transactional id of its own per producer and run;
//   - idempotent: each group is produced and flushed, without a
//     transaction: what the run costs without the transaction protocol.
//
// producers producers (at least 1, at most o.Partitions) run at once, each
// with a client of its own, as a pipeline runs one producer per input
// partition: producer i writes partitions i, i+producers, i+2*producers, ...
// and the records are shared out evenly. Each group goes whole to one of
// the producer's partitions, the next group to the next one: where
// franz-go's sticky partitioner would put a group of this size, but the
// same on every broker compared.
//
// Throughput is timed from the first produce to the last commit (or flush)
// of any producer; a client's connection and producer id are part of it.
// The result's latency is each group's, from its first produce call to its
// commit (or, idempotent, to its last acknowledgement): the difference
// between the two modes is what a transaction adds to a group.
func ProduceTxn(ctx context.Context, o Options, txnSize, producers int, transactional bool) (Result, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if txnSize <= 0 {
		txnSize = DefaultTxnSize
	}
	if producers < 1 || producers > o.Partitions {
		return Result{}, fmt.Errorf("%d producers for %d partitions: want 1 to %d", producers, o.Partitions, o.Partitions)
	}
	if _, err := ensureTopic(ctx, o, o.Topic, o.Partitions); err != nil {
		return Result{}, err
	}
	workload := "produce-idempotent"
	if transactional {
		workload = "produce-transactional"
	}
	if producers > 1 {
		workload = fmt.Sprintf("%s (%d producers)", workload, producers)
	}
	run := time.Now().UnixNano()
	clients := make([]*kgo.Client, producers)
	for i := range clients {
		opts := append(producerOpts(o, o.Linger), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if transactional {
			opts = append(opts, kgo.TransactionalID(fmt.Sprintf("%s-%d-%d", o.Topic, run, i)))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return Result{}, err
		}
		defer cl.Close()
		clients[i] = cl
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		acked   counter
		failure firsterr.Keeper
		wg      sync.WaitGroup
		groups  = newRecorder(o.Records/txnSize + 1)
	)
	start := time.Now()
	stopProgress := startProgress(o.Progress, func() Progress {
		return Progress{Workload: workload, Records: acked.records.Load(), Bytes: acked.bytes.Load(),
			Target: int64(o.Records), Elapsed: time.Since(start)}
	})
	defer stopProgress()
	for i, cl := range clients {
		p := txnProducer{cl: cl, transactional: transactional, txnSize: txnSize,
			value: payload(o.RecordSize), acked: &acked, failure: &failure, groups: groups}
		for part := i; part < o.Partitions; part += producers {
			p.partitions = append(p.partitions, int32(part))
		}
		records := o.Records / producers
		if i < o.Records%producers {
			records++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(ctx, records); err != nil {
				failure.Set(err)
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := failure.Err(); err != nil {
		return Result{}, err
	}
	res := Result{Workload: workload, Records: acked.records.Load(), Bytes: acked.bytes.Load(), Elapsed: time.Since(start),
		Latency: groups.percentiles()}
	res.finish()
	return res, nil
}

// txnProducer is one producer of ProduceTxn.
type txnProducer struct {
	cl            *kgo.Client
	transactional bool
	txnSize       int
	partitions    []int32 // written in turn, a group at a time
	value         []byte
	acked         *counter
	failure       *firsterr.Keeper
	groups        *recorder // each group's time, first produce to commit
}

// run produces records in groups of txnSize, each group a transaction when
// transactional.
func (p txnProducer) run(ctx context.Context, records int) error {
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			p.failure.Set(fmt.Errorf("producing to %s[%d]: %w", r.Topic, r.Partition, err))
			return
		}
		p.acked.add(1, int64(len(r.Value)))
	}
	for sent, group := 0, 0; sent < records; group++ {
		n := min(p.txnSize, records-sent)
		partition := p.partitions[group%len(p.partitions)]
		begin := time.Now()
		if p.transactional {
			if err := p.cl.BeginTransaction(); err != nil {
				return err
			}
		}
		for range n {
			p.cl.Produce(ctx, &kgo.Record{Value: p.value, Partition: partition}, promise)
		}
		// A transaction ends only once its records are acknowledged.
		if err := p.cl.Flush(ctx); err != nil {
			return err
		}
		if p.transactional {
			if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				return fmt.Errorf("committing: %w", err)
			}
		}
		p.groups.record(time.Since(begin))
		if err := p.failure.Err(); err != nil {
			return err
		}
		sent += n
	}
	return nil
}
