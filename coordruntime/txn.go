package coordruntime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
)

// TxnStateTopic is Kafka's internal topic holding transaction state.
const TxnStateTopic = "__transaction_state"

// MarkerWriter writes transaction markers for the coordinator: the front end
// sends WriteTxnMarkers to the leader of each partition (writing those this
// node leads directly).
type MarkerWriter interface {
	// WriteMarkers writes job's markers and returns the partitions that
	// are done: their marker is written, or they no longer exist. The
	// others are retried.
	WriteMarkers(ctx context.Context, job coordinator.TxnMarkers) []coordinator.TxnPartition
}

// TxnConfig is the transaction coordinator's configuration.
type TxnConfig struct {
	State coordinator.TxnConfig
	// AbortInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms:
	// how often timed-out transactions are aborted (and idle ids expired).
	AbortInterval time.Duration
	Topic         TopicSpec
}

// Txns is the transaction coordinator: one coordinator.TxnShard per
// __transaction_state partition this node leads. Every call's records are
// appended (acks=all) before it is answered; marker jobs are sent only once
// the Prepare record that queued them is committed, and their completion
// reported back to the shard.
type Txns struct {
	env     *Env
	cfg     TxnConfig
	ids     coordinator.ProducerIDs
	markers MarkerWriter
	topic   *internalTopic[*txnShard]
}

// txnShard owns one loaded __transaction_state partition.
type txnShard struct {
	t  *Txns
	ip *internalPartition

	mu     sync.Mutex // serializes every call on shard and its appends
	shard  *coordinator.TxnShard
	failed error // an append failed: the shard reloads from the log before the next call
	// changed is closed (and replaced) whenever a call wrote records, so
	// a partition leader waiting for a transaction to finish its markers
	// retries at once instead of after a backoff (Txns.Changed).
	changed chan struct{}

	stop chan struct{}
	// ctx ends with stop: marker writes in flight give up when the shard
	// unloads (the next coordinator resends them).
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	jobs   sync.WaitGroup // marker jobs in flight, inline or in the background
}

func newTxns(env *Env, cfg Config, ids coordinator.ProducerIDs, markers MarkerWriter) (*Txns, error) {
	t := &Txns{env: env, cfg: cfg.Txns, ids: ids, markers: markers}
	var err error
	t.topic, err = newInternalTopic(env, TxnStateTopic, storeDir(cfg, txnStateDir), cfg.Txns.Topic, t.load)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// EnsureTopic creates __transaction_state the first time a client looks for
// a transaction coordinator, as Kafka does.
func (t *Txns) EnsureTopic(ctx context.Context) error {
	return t.topic.ensure(ctx)
}

// load replays a partition into a new shard whose coordinator epoch is the
// partition's leader epoch it is loaded for (a new one loads a new shard),
// resends the markers of transactions that were waiting for them, and
// starts the timeout loop.
func (t *Txns) load(ip *internalPartition) (*txnShard, error) {
	sh := &txnShard{t: t, ip: ip, changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	sh.ctx, sh.cancel = context.WithCancel(t.env.ctx)
	if err := sh.replay(); err != nil {
		sh.cancel()
		return nil, err
	}
	go sh.tickLoop()
	return sh, nil
}

// replay (re)builds the shard from the partition. The caller holds sh.mu or
// owns sh exclusively.
func (sh *txnShard) replay() error {
	t := sh.t
	epoch := sh.ip.leaderEpoch
	shard := coordinator.NewTxnShard(t.cfg.State, t.ids, epoch)
	err := sh.ip.load(func() { shard = coordinator.NewTxnShard(t.cfg.State, t.ids, epoch) },
		func(r coordinator.Record) error { return shard.Replay(r) })
	if err != nil {
		return err
	}
	shard.OnTransition(sh.logTransition)
	sh.shard, sh.failed = shard, nil
	for _, job := range shard.PendingMarkers() {
		sh.jobs.Add(1)
		go sh.deliverMarkers(job)
	}
	return nil
}

func (sh *txnShard) internal() *internalPartition { return sh.ip }

// logTransition logs a transaction's state change at debug level, as
// Kafka logs its transitions; the check keeps the hot path free of the
// call's allocations when debug is off.
func (sh *txnShard) logTransition(tr coordinator.TxnTransition) {
	if !sh.t.env.Logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	sh.t.env.Logger.Debug("transaction state change", "transactional_id", tr.TransactionalID,
		"from", tr.From.String(), "to", tr.To.String(), "producer_id", tr.ProducerID, "producer_epoch", tr.ProducerEpoch)
}

// Do runs fn on the shard coordinating transactionalID and returns once the
// records it produced are committed. Marker jobs it queued are written in
// the background. A non-nil error is the Kafka error to answer with
// instead: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
// COORDINATOR_NOT_AVAILABLE.
func (t *Txns) Do(transactionalID string, fn func(*coordinator.TxnShard)) *kerr.Error {
	sh, kerrv := t.shardFor(transactionalID)
	if kerrv != nil {
		return kerrv
	}
	if err := sh.doInBackground(fn); err != nil {
		return kerr.NotCoordinator
	}
	return nil
}

// End is Do for EndTxn: the markers of the transaction fn ends are written
// on the caller's goroutine, and the transaction completed, before it
// returns, as far as one round of marker writes gets within
// markerInlineWait; what is left is written in the background.
//
// Kafka answers EndTxn once the Prepare record is durable and writes the
// markers afterwards. The producer's next transaction cannot start before
// the markers are written anyway (its first AddPartitionsToTxn, or a
// version-2 producer's first produce, gets CONCURRENT_TRANSACTIONS until
// then, which clients retry after a backoff), so writing them here costs
// the producer nothing and saves it that retry. The order the log keeps
// is Kafka's: Prepare committed, then the markers, then Complete.
func (t *Txns) End(transactionalID string, fn func(*coordinator.TxnShard)) *kerr.Error {
	sh, kerrv := t.shardFor(transactionalID)
	if kerrv != nil {
		return kerrv
	}
	jobs, err := sh.do(fn)
	if err != nil {
		return kerr.NotCoordinator
	}
	for _, job := range jobs {
		sh.writeMarkersInline(job)
	}
	return nil
}

func (t *Txns) shardFor(transactionalID string) (*txnShard, *kerr.Error) {
	return t.topic.shardFor(func(n int32) int32 { return coordinator.TxnStatePartition(transactionalID, n) })
}

// Each runs fn on every shard this node coordinates, in turn
// (ListTransactions). fn must not call back.
func (t *Txns) Each(fn func(*coordinator.TxnShard)) {
	for _, sh := range t.topic.loaded() {
		sh.doInBackground(fn)
	}
}

// do runs fn and appends the records it produced. It returns the marker
// jobs fn queued, already counted in sh.jobs, for the caller to write
// (deliverMarkers or writeMarkersInline) once do has returned: the
// Prepare records that queued them are committed by then. A failed append
// leaves the shard's memory ahead of its log: the call fails, its jobs are
// dropped, and the shard replays the log before the next call.
func (sh *txnShard) do(fn func(*coordinator.TxnShard)) ([]coordinator.TxnMarkers, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	select {
	case <-sh.stop:
		// Unloading: the partition has (or is about to have) another
		// coordinator, which this one must not write after.
		return nil, kerr.NotCoordinator
	default:
	}
	if sh.failed != nil {
		if err := sh.replay(); err != nil {
			sh.t.env.Logger.Error("reloading transaction coordinator", "partition", sh.ip.part, "err", err)
			return nil, kerr.NotCoordinator
		}
	}
	fn(sh.shard)
	recs, jobs := sh.shard.Drain()
	if err := sh.ip.append(recs); err != nil {
		sh.t.env.Logger.Error("transaction coordinator append failed; reloading", "partition", sh.ip.part, "err", err)
		sh.failed = err
		return nil, kerr.NotCoordinator
	}
	// Counted under sh.mu, after the stop check: unload waits for them.
	sh.jobs.Add(len(jobs))
	if len(recs) > 0 {
		close(sh.changed)
		sh.changed = make(chan struct{})
	}
	return jobs, nil
}

// doInBackground is do, with the marker jobs fn queued written by
// background senders.
func (sh *txnShard) doInBackground(fn func(*coordinator.TxnShard)) error {
	jobs, err := sh.do(fn)
	for _, job := range jobs {
		go sh.deliverMarkers(job)
	}
	return err
}

// Changed returns a channel closed at the next change the shard
// coordinating transactionalID writes, or nil when this node does not
// coordinate it. Taken before a call that may answer
// CONCURRENT_TRANSACTIONS, it tells when retrying may succeed.
func (t *Txns) Changed(transactionalID string) <-chan struct{} {
	sh, kerrv := t.shardFor(transactionalID)
	if kerrv != nil {
		return nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.changed
}

// Marker retries back off from markerRetryMin to markerRetryMax.
const (
	markerRetryMin = 50 * time.Millisecond
	markerRetryMax = time.Second
)

// markerInlineWait bounds the round of marker writes End makes before it
// answers; a leader that is down or slow leaves its markers to the
// background sender instead of holding the producer's EndTxn.
const markerInlineWait = time.Second

// writeMarkersInline makes one round of job's marker writes on the
// caller's goroutine, completing the transaction if every partition is
// done, and hands what is left to deliverMarkers. job is counted in
// sh.jobs.
func (sh *txnShard) writeMarkersInline(job coordinator.TxnMarkers) {
	ctx, cancel := context.WithTimeout(sh.ctx, markerInlineWait)
	job = sh.writeMarkers(ctx, job)
	cancel()
	if len(job.Partitions) == 0 || sh.ctx.Err() != nil {
		sh.jobs.Done()
		return
	}
	go sh.deliverMarkers(job)
}

// deliverMarkers writes job's markers, reporting written partitions to the
// shard, until every partition is done or the shard unloads (the next
// coordinator resends what is left). job is counted in sh.jobs.
func (sh *txnShard) deliverMarkers(job coordinator.TxnMarkers) {
	defer sh.jobs.Done()
	backoff := markerRetryMin
	for {
		before := len(job.Partitions)
		job = sh.writeMarkers(sh.ctx, job)
		if len(job.Partitions) == 0 {
			return
		}
		if len(job.Partitions) < before {
			backoff = markerRetryMin
			continue
		}
		select {
		case <-sh.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, markerRetryMax)
	}
}

// writeMarkers makes one round of job's marker writes, reports the
// partitions done to the shard (the last one completes the transaction)
// and returns the job with the partitions left.
func (sh *txnShard) writeMarkers(ctx context.Context, job coordinator.TxnMarkers) coordinator.TxnMarkers {
	done := sh.t.markers.WriteMarkers(ctx, job)
	if len(done) == 0 {
		return job
	}
	now := sh.t.env.Now()
	// MarkersWritten queues no marker jobs: nothing to deliver.
	sh.do(func(s *coordinator.TxnShard) {
		s.MarkersWritten(now, job.TransactionalID, job.ProducerID, job.ProducerEpoch, done)
	})
	job.Partitions = without(job.Partitions, done)
	return job
}

func without(all, done []coordinator.TxnPartition) []coordinator.TxnPartition {
	out := all[:0:0]
	for _, tp := range all {
		found := false
		for _, d := range done {
			if d == tp {
				found = true
				break
			}
		}
		if !found {
			out = append(out, tp)
		}
	}
	return out
}

// tickLoop aborts timed-out transactions and expires idle ids every
// AbortInterval.
func (sh *txnShard) tickLoop() {
	defer close(sh.done)
	tick := time.NewTicker(sh.t.cfg.AbortInterval)
	defer tick.Stop()
	for {
		select {
		case <-sh.stop:
			return
		case <-tick.C:
		}
		now := sh.t.env.Now()
		sh.doInBackground(func(s *coordinator.TxnShard) { s.Tick(now) })
	}
}

// unload stops the timeout loop and the marker senders; calls fail with
// NOT_COORDINATOR from then on. sh.mu is taken before waiting for the
// marker jobs: a call that passed the stop check before stop closed holds
// it until it has counted its jobs, and none counts any after, so the
// wait sees every job.
func (sh *txnShard) unload() {
	close(sh.stop)
	sh.cancel()
	<-sh.done
	sh.mu.Lock()
	sh.failed = kerr.NotCoordinator
	sh.mu.Unlock()
	sh.jobs.Wait()
}
