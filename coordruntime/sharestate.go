package coordruntime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
)

// ShareStateTopic holds the durable state of share partitions.
const ShareStateTopic = "__share_group_state"

// ShareCoordinator is the share coordinator: it keeps the persisted state
// of share partitions in __share_group_state (materialized in its own
// pebble store) for the partitions of that topic this node leads, and
// serves what the share state RPCs (Initialize/Read/Write/Delete/
// ReadSummary) and the share runtime on this node ask of it. Writes are
// group-committed: concurrent writers of one state partition share a batch.
//
// Every method answers for one key (group, topic id, partition): with the
// state when this node coordinates the key's state partition, else with
// the Kafka error for the caller to act on (NOT_COORDINATOR: another node
// leads it; COORDINATOR_LOAD_IN_PROGRESS: this node is loading it;
// COORDINATOR_NOT_AVAILABLE: no __share_group_state yet).
type ShareCoordinator struct {
	topic *internalTopic[*shareStatePart]
}

// shareStatePart is one loaded __share_group_state partition.
type shareStatePart struct {
	ip *internalPartition

	mu     sync.Mutex // guards states
	states map[coordinator.ShareKey]coordinator.ShareState

	qmu   sync.Mutex // guards queue
	queue []stateWrite
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// stateWrite is one queued change; a nil state deletes. A claim is queued
// like a write (see ReadAsLeader): it reads the state in write order and
// may turn into a write of it with a newer leader epoch.
type stateWrite struct {
	key   coordinator.ShareKey
	st    *coordinator.ShareState
	claim *stateClaim
	done  chan error
}

// stateClaim is a new share-partition leader's read of its state: epoch is
// its leader epoch; st and found are the answer, set by the writer before
// done reports.
type stateClaim struct {
	epoch int32
	st    coordinator.ShareState
	found bool
}

func newShareCoordinator(env *Env, cfg Config) (*ShareCoordinator, error) {
	sc := &ShareCoordinator{}
	var err error
	sc.topic, err = newInternalTopic(env, ShareStateTopic, storeDir(cfg, shareStateDir), cfg.ShareStateTopic, loadShareStatePart)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// loadShareStatePart replays a state partition and starts its writer.
func loadShareStatePart(ip *internalPartition) (*shareStatePart, error) {
	sp := &shareStatePart{
		ip:     ip,
		states: map[coordinator.ShareKey]coordinator.ShareState{},
		kick:   make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	err := ip.load(func() { clear(sp.states) }, func(r coordinator.Record) error {
		k, err := coordinator.DecodeShareKey(r.Key)
		if err != nil {
			return err
		}
		if r.Value == nil {
			delete(sp.states, k)
			return nil
		}
		st, err := coordinator.DecodeShareState(r.Value)
		if err != nil {
			return err
		}
		sp.states[k] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	go sp.writeLoop()
	return sp, nil
}

// EnsureTopic creates __share_group_state the first time it is needed.
func (sc *ShareCoordinator) EnsureTopic(ctx context.Context) error { return sc.topic.ensure(ctx) }

// partFor returns the loaded state partition holding key.
func (sc *ShareCoordinator) partFor(key coordinator.ShareKey) (*shareStatePart, *kerr.Error) {
	return sc.topic.shardFor(func(n int32) int32 { return coordinator.SharePartitionFor(key, n) })
}

func (sp *shareStatePart) internal() *internalPartition { return sp.ip }

// Read returns a share partition's persisted state, and whether it has one.
func (sc *ShareCoordinator) Read(key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error) {
	sp, kerrv := sc.partFor(key)
	if kerrv != nil {
		return coordinator.ShareState{}, false, kerrv
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	st, ok := sp.states[key]
	return st, ok, nil
}

// Enqueue queues a state change (nil: delete the state) and returns the
// channel its durability is reported on. Callers enqueue in the order their
// changes happened (while holding whatever orders them) and wait
// afterwards, so the writer's last-wins coalescing keeps the newest state.
// A state from an older leader epoch than the stored one is refused with
// FENCED_LEADER_EPOCH, one with an older state epoch with
// FENCED_STATE_EPOCH (see fenced).
func (sc *ShareCoordinator) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	done := make(chan error, 1)
	sp, kerrv := sc.partFor(key)
	if kerrv != nil {
		done <- kerrv
		return done
	}
	sp.push(stateWrite{key: key, st: st, done: done})
	return done
}

// ReadAsLeader is ReadShareGroupState from the leader of the key's share
// partition at leaderEpoch, as Kafka's share coordinator serves it: an
// older epoch than the stored one is refused (FENCED_LEADER_EPOCH), and a
// newer one is stored before the state is returned, so that every later
// write of the previous leader is fenced. Without that, the previous
// leader (which keeps serving until its metadata catches up) could
// acknowledge records after the new leader loaded the state without them,
// and its write of that state would be silently overwritten.
//
// The claim goes through the write queue, so the state returned includes
// every write queued before it.
func (sc *ShareCoordinator) ReadAsLeader(ctx context.Context, key coordinator.ShareKey, leaderEpoch int32) (coordinator.ShareState, bool, error) {
	sp, kerrv := sc.partFor(key)
	if kerrv != nil {
		return coordinator.ShareState{}, false, kerrv
	}
	c := &stateClaim{epoch: leaderEpoch}
	done := make(chan error, 1)
	sp.push(stateWrite{key: key, claim: c, done: done})
	select {
	case err := <-done:
		if err != nil {
			return coordinator.ShareState{}, false, err
		}
		return c.st, c.found, nil
	case <-ctx.Done():
		return coordinator.ShareState{}, false, ctx.Err()
	}
}

// Write persists a state (nil: deletes it) and waits until it is durable.
func (sc *ShareCoordinator) Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	select {
	case err := <-sc.Enqueue(key, st):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// push queues w for the writer and wakes it.
func (sp *shareStatePart) push(w stateWrite) {
	sp.qmu.Lock()
	sp.queue = append(sp.queue, w)
	sp.qmu.Unlock()
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

// writeLoop is the group commit: it takes every queued change, keeps the
// newest per key, appends them as one batch and reports to every writer.
func (sp *shareStatePart) writeLoop() {
	defer close(sp.done)
	for {
		select {
		case <-sp.stop:
			sp.failQueued(kerr.NotCoordinator)
			return
		case <-sp.kick:
		}
		sp.qmu.Lock()
		batch := sp.queue
		sp.queue = nil
		sp.qmu.Unlock()
		if len(batch) == 0 {
			continue
		}
		// Fence each write against the state it would replace: the
		// durable one, or the write accepted before it in this batch. A
		// check at Enqueue alone would let a stale write queued right
		// behind a newer one land.
		errs := make([]*kerr.Error, len(batch))
		latest := map[coordinator.ShareKey]int{}
		sp.mu.Lock()
		for i := range batch {
			w := &batch[i]
			cur, ok := sp.states[w.key]
			if j, queued := latest[w.key]; queued {
				cur, ok = coordinator.ShareState{}, batch[j].st != nil
				if ok {
					cur = *batch[j].st
				}
			}
			if w.claim != nil {
				if errs[i] = claim(w, cur, ok); errs[i] == nil && w.st != nil {
					latest[w.key] = i
				}
				sp.debug("share state claimed", w.key, w.claim.epoch, cur, ok, errs[i])
				continue
			}
			if errs[i] = fenced(cur, ok, w.st); errs[i] == nil {
				latest[w.key] = i
			} else {
				sp.debug("share state write fenced", w.key, w.st.LeaderEpoch, cur, ok, errs[i])
			}
		}
		sp.mu.Unlock()
		// isLatest reports whether batch[i] is the write its key keeps. (A
		// key with no accepted write has no entry; latest's zero value
		// must not pass for index 0.)
		isLatest := func(i int) bool {
			j, ok := latest[batch[i].key]
			return ok && j == i
		}
		recs := make([]coordinator.Record, 0, len(latest))
		for i, w := range batch {
			if !isLatest(i) {
				continue
			}
			r := coordinator.Record{Key: coordinator.EncodeShareKey(w.key)}
			if w.st != nil {
				r.Value = coordinator.EncodeShareState(*w.st)
			}
			recs = append(recs, r)
		}
		var err error
		if len(recs) > 0 {
			err = sp.ip.append(recs)
		}
		if err == nil {
			sp.mu.Lock()
			for i, w := range batch {
				if !isLatest(i) {
					continue
				}
				if w.st == nil {
					delete(sp.states, w.key)
				} else {
					sp.states[w.key] = *w.st
				}
			}
			sp.mu.Unlock()
		}
		for i, w := range batch {
			if errs[i] != nil {
				w.done <- errs[i]
				continue
			}
			w.done <- err
		}
	}
}

// debug logs, at debug level, a claim or a refused write of key by the
// share-partition leader at epoch, over the state it found (cur; ok: there
// was one). Both are rare (a leader change, a deposed leader still
// writing), and they say which state a new leader took over: what an
// operator or a test needs to follow a share partition across failovers.
func (sp *shareStatePart) debug(msg string, key coordinator.ShareKey, epoch int32, cur coordinator.ShareState, ok bool, kerrv *kerr.Error) {
	lg := sp.ip.env.Logger
	if !lg.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	lg.Debug(msg, "state_partition", sp.ip.part, "group", key.Group, "topic_id", fmt.Sprintf("%x", key.TopicID), "partition", key.Partition,
		"leader_epoch", epoch, "found", ok, "stored_leader_epoch", cur.LeaderEpoch, "start_offset", cur.StartOffset,
		"state_batches", fmt.Sprint(cur.Batches), "err", kerrv)
}

// claim answers a claim over the current state cur (ok: there is one):
// FENCED_LEADER_EPOCH for an older leader epoch than the stored one; for a
// newer one, the claim becomes a write of cur with that epoch.
func claim(w *stateWrite, cur coordinator.ShareState, ok bool) *kerr.Error {
	c := w.claim
	c.st, c.found = cur, ok
	switch {
	case !ok || c.epoch < 0 || c.epoch == cur.LeaderEpoch:
		return nil
	case c.epoch < cur.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	}
	c.st.LeaderEpoch = c.epoch
	w.st = &c.st
	return nil
}

// fenced is the error a write of st (nil: a delete) gets over the current
// state cur (ok: there is one), as Kafka's share coordinator answers
// WriteShareGroupState: FENCED_STATE_EPOCH for a state from before the
// last AlterShareGroupOffsets (InitializeShareGroupState with the next state
// epoch), FENCED_LEADER_EPOCH for a writer from an older leader epoch of the
// log partition within the same state epoch. A newer state epoch starts the
// leader epochs afresh (Initialize writes leader epoch 0); a delete is never
// fenced.
func fenced(cur coordinator.ShareState, ok bool, st *coordinator.ShareState) *kerr.Error {
	switch {
	case st == nil || !ok:
		return nil
	case st.StateEpoch < cur.StateEpoch:
		return kerr.FencedStateEpoch
	case st.StateEpoch == cur.StateEpoch && st.LeaderEpoch < cur.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	}
	return nil
}

func (sp *shareStatePart) failQueued(err error) {
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	for _, w := range sp.queue {
		w.done <- err
	}
	sp.queue = nil
}

// unload stops the writer; what it had not taken fails with NOT_COORDINATOR.
func (sp *shareStatePart) unload() {
	close(sp.stop)
	<-sp.done
}

// Initialize sets a share partition's state to start at startOffset with
// no records in flight (InitializeShareGroupState), unless the stored state
// has a newer state epoch (FENCED_STATE_EPOCH).
func (sc *ShareCoordinator) Initialize(ctx context.Context, key coordinator.ShareKey, stateEpoch int32, startOffset int64) error {
	if cur, ok, _ := sc.Read(key); ok && cur.StateEpoch > stateEpoch {
		return kerr.FencedStateEpoch
	}
	st := coordinator.InitialShareState(startOffset, stateEpoch)
	return sc.Write(ctx, key, &st)
}

// Delete removes a share partition's state and waits until that is
// durable.
func (sc *ShareCoordinator) Delete(ctx context.Context, key coordinator.ShareKey) error {
	return sc.Write(ctx, key, nil)
}

// ShareSummary is what ReadShareGroupStateSummary reports of one key.
type ShareSummary struct {
	StateEpoch  int32
	StartOffset int64
	LeaderEpoch int32
	// DeliveryComplete is the number of records at or past the start
	// offset whose delivery is complete (acknowledged or archived).
	DeliveryComplete int32
}

// Summary returns the summary of a share partition's state, and whether it
// has one.
func (sc *ShareCoordinator) Summary(key coordinator.ShareKey) (ShareSummary, bool, *kerr.Error) {
	st, ok, kerrv := sc.Read(key)
	if kerrv != nil || !ok {
		return ShareSummary{}, false, kerrv
	}
	return ShareSummary{StateEpoch: st.StateEpoch, StartOffset: st.StartOffset, LeaderEpoch: st.LeaderEpoch,
		DeliveryComplete: st.DeliveryComplete()}, true, nil
}
