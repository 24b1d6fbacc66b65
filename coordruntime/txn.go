package coordruntime

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
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

// errEpochChanged fails a shard whose partition's leader epoch moved on, so
// it reloads with the new coordinator epoch.
var errEpochChanged = errors.New("coordinator epoch changed")

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
	epoch  int32 // the coordinator epoch: the partition's leader epoch at load
	failed error // an append failed: the shard reloads from the log before the next call
	// changed is closed (and replaced) whenever a call wrote records, so
	// a partition leader waiting for a transaction to finish its markers
	// retries at once instead of after a backoff (Txns.Changed).
	changed chan struct{}

	stop chan struct{}
	done chan struct{}
	jobs sync.WaitGroup // marker senders in flight
}

func newTxns(env *Env, cfg Config, ids coordinator.ProducerIDs, markers MarkerWriter) (*Txns, error) {
	t := &Txns{env: env, cfg: cfg.Txns, ids: ids, markers: markers}
	var err error
	t.topic, err = newInternalTopic(env, TxnStateTopic, storeDir(cfg, txnStateDir), cfg.Txns.Topic, t.load)
	if err != nil {
		return nil, err
	}
	t.topic.refresh = t.refreshEpoch
	return t, nil
}

// EnsureTopic creates __transaction_state the first time a client looks for
// a transaction coordinator, as Kafka does.
func (t *Txns) EnsureTopic(ctx context.Context) error {
	return t.topic.ensure(ctx)
}

// load replays a partition into a new shard whose coordinator epoch is the
// partition's leader epoch, resends the markers of transactions that were
// waiting for them, and starts the timeout loop.
func (t *Txns) load(ip *internalPartition) (*txnShard, error) {
	sh := &txnShard{t: t, ip: ip, changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if err := sh.replay(); err != nil {
		return nil, err
	}
	go sh.tickLoop()
	return sh, nil
}

// replay (re)builds the shard from the partition. The caller holds sh.mu or
// owns sh exclusively.
func (sh *txnShard) replay() error {
	t := sh.t
	epoch := int32(-1)
	if tp := t.env.Image().Topics[TxnStateTopic]; tp.HasPartition(sh.ip.part) {
		epoch = tp.Partitions[sh.ip.part].LeaderEpoch
	}
	shard := coordinator.NewTxnShard(t.cfg.State, t.ids, epoch)
	err := sh.ip.load(func() { shard = coordinator.NewTxnShard(t.cfg.State, t.ids, epoch) },
		func(r coordinator.Record) error { return shard.Replay(r) })
	if err != nil {
		return err
	}
	shard.OnTransition(sh.logTransition)
	sh.shard, sh.epoch, sh.failed = shard, epoch, nil
	for _, job := range shard.PendingMarkers() {
		sh.sendMarkers(job)
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
// records it produced are committed. A non-nil error is the Kafka error to
// answer with instead: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
// COORDINATOR_NOT_AVAILABLE.
func (t *Txns) Do(transactionalID string, fn func(*coordinator.TxnShard)) *kerr.Error {
	sh, kerrv := t.topic.shardFor(func(n int32) int32 { return coordinator.TxnStatePartition(transactionalID, n) })
	if kerrv != nil {
		return kerrv
	}
	if err := sh.do(fn); err != nil {
		return kerr.NotCoordinator
	}
	return nil
}

// Each runs fn on every shard this node coordinates, in turn
// (ListTransactions). fn must not call back.
func (t *Txns) Each(fn func(*coordinator.TxnShard)) {
	for _, sh := range t.topic.loaded() {
		sh.do(fn)
	}
}

// do runs fn, appends the records it produced and, once they are committed,
// starts the marker jobs it queued. A failed append leaves the shard's
// memory ahead of its log: the call fails and the shard replays the log
// before the next one.
func (sh *txnShard) do(fn func(*coordinator.TxnShard)) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	select {
	case <-sh.stop:
		// Unloading: the partition has (or is about to have) another
		// coordinator, which this one must not write after.
		return kerr.NotCoordinator
	default:
	}
	if sh.failed != nil {
		if err := sh.replay(); err != nil {
			sh.t.env.Logger.Error("reloading transaction coordinator", "partition", sh.ip.part, "err", err)
			return kerr.NotCoordinator
		}
	}
	fn(sh.shard)
	recs, jobs := sh.shard.Drain()
	if err := sh.ip.append(recs); err != nil {
		sh.t.env.Logger.Error("transaction coordinator append failed; reloading", "partition", sh.ip.part, "err", err)
		sh.failed = err
		return kerr.NotCoordinator
	}
	for _, job := range jobs {
		sh.sendMarkers(job)
	}
	if len(recs) > 0 {
		close(sh.changed)
		sh.changed = make(chan struct{})
	}
	return nil
}

// Changed returns a channel closed at the next change the shard
// coordinating transactionalID writes, or nil when this node does not
// coordinate it. Taken before a call that may answer
// CONCURRENT_TRANSACTIONS, it tells when retrying may succeed.
func (t *Txns) Changed(transactionalID string) <-chan struct{} {
	sh, kerrv := t.topic.shardFor(func(n int32) int32 { return coordinator.TxnStatePartition(transactionalID, n) })
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

// sendMarkers writes job's markers on its own goroutine, reporting written
// partitions to the shard, until every partition is done or the shard
// unloads (the next coordinator resends what is left). sh.mu held.
func (sh *txnShard) sendMarkers(job coordinator.TxnMarkers) {
	sh.jobs.Add(1)
	go func() {
		defer sh.jobs.Done()
		ctx, cancel := context.WithCancel(sh.t.env.ctx)
		defer cancel()
		go func() {
			select {
			case <-sh.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		backoff := markerRetryMin
		for len(job.Partitions) > 0 {
			done := sh.t.markers.WriteMarkers(ctx, job)
			if len(done) > 0 {
				now := sh.t.env.Now()
				sh.do(func(s *coordinator.TxnShard) {
					s.MarkersWritten(now, job.TransactionalID, job.ProducerID, job.ProducerEpoch, done)
				})
				job.Partitions = without(job.Partitions, done)
				backoff = markerRetryMin
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, markerRetryMax)
		}
	}()
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
		sh.do(func(s *coordinator.TxnShard) { s.Tick(now) })
	}
}

// unload stops the timeout loop and the marker senders; calls fail with
// NOT_COORDINATOR from then on.
func (sh *txnShard) unload() {
	close(sh.stop)
	<-sh.done
	sh.jobs.Wait()
	sh.mu.Lock()
	sh.failed = kerr.NotCoordinator
	sh.mu.Unlock()
}

// refreshEpoch reloads a shard whose partition got a new leader epoch while
// this node stayed its leader: its markers must carry the new coordinator
// epoch.
func (t *Txns) refreshEpoch(sh *txnShard, img *raftmeta.Image) {
	tp := img.Topics[TxnStateTopic]
	if !tp.HasPartition(sh.ip.part) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if tp.Partitions[sh.ip.part].LeaderEpoch != sh.epoch && sh.failed == nil {
		sh.failed = errEpochChanged
	}
}
