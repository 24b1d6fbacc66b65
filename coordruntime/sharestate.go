package coordruntime

import (
	"context"
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

// stateWrite is one queued change; a nil state deletes.
type stateWrite struct {
	key  coordinator.ShareKey
	st   *coordinator.ShareState
	done chan error
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
// FENCED_LEADER_EPOCH.
func (sc *ShareCoordinator) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	done := make(chan error, 1)
	sp, kerrv := sc.partFor(key)
	if kerrv != nil {
		done <- kerrv
		return done
	}
	if st != nil {
		// A write from an older leader epoch is fenced.
		sp.mu.Lock()
		cur, ok := sp.states[key]
		sp.mu.Unlock()
		if ok && st.LeaderEpoch < cur.LeaderEpoch {
			done <- kerr.FencedLeaderEpoch
			return done
		}
	}
	sp.qmu.Lock()
	sp.queue = append(sp.queue, stateWrite{key: key, st: st, done: done})
	sp.qmu.Unlock()
	select {
	case sp.kick <- struct{}{}:
	default:
	}
	return done
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
		latest := map[coordinator.ShareKey]int{}
		for i, w := range batch {
			latest[w.key] = i
		}
		recs := make([]coordinator.Record, 0, len(latest))
		for i, w := range batch {
			if latest[w.key] != i {
				continue
			}
			r := coordinator.Record{Key: coordinator.EncodeShareKey(w.key)}
			if w.st != nil {
				r.Value = coordinator.EncodeShareState(*w.st)
			}
			recs = append(recs, r)
		}
		err := sp.ip.append(recs)
		if err == nil {
			sp.mu.Lock()
			for i, w := range batch {
				if latest[w.key] != i {
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
		for _, w := range batch {
			w.done <- err
		}
	}
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
	st := coordinator.ShareState{}
	st.StartOffset, st.StateEpoch = startOffset, stateEpoch
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
