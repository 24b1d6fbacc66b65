package broker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/share"
)

// shareStateTopic holds the durable state of share partitions.
const shareStateTopic = share.StateTopic

// shareCoordinator is the share coordinator: it keeps the persisted state
// of share partitions in __share_group_state (materialized in its own pebble
// store) for the partitions of that topic this node leads, and serves the
// share state RPCs (Initialize/Read/Write/Delete/ReadSummary). Writes are
// group-committed: concurrent writers of one state partition share a batch.
type shareCoordinator struct {
	srv *Server
	// st materializes the records of __share_group_state: those this node
	// appends as coordinator, and those it replicates as a follower.
	st *internalStore

	creating sync.Mutex
	mu       sync.Mutex
	parts    map[int32]*shareStatePart
}

type shareStatePart struct {
	ip *internalPartition

	mu     sync.Mutex
	states map[coordinator.ShareKey]coordinator.ShareState

	qmu   sync.Mutex
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

func newShareCoordinator(s *Server) (*shareCoordinator, error) {
	st, err := newInternalStore(s, shareStateTopic, shareStateDir)
	if err != nil {
		return nil, err
	}
	return &shareCoordinator{srv: s, st: st, parts: map[int32]*shareStatePart{}}, nil
}

func (sc *shareCoordinator) close() error {
	sc.mu.Lock()
	parts := sc.parts
	sc.parts = map[int32]*shareStatePart{}
	sc.mu.Unlock()
	for _, sp := range parts {
		sc.st.release(sp.ip)
		sp.shutdown()
	}
	return sc.st.close()
}

func (sc *shareCoordinator) ensureTopic(ctx context.Context) error {
	c := sc.srv.cfg
	return sc.srv.ensureInternalTopic(ctx, &sc.creating, shareStateTopic,
		int32(c.Int("share.coordinator.state.topic.num.partitions")),
		int16(c.Int("share.coordinator.state.topic.replication.factor")),
		c.Int("offsets.topic.segment.bytes"))
}

// reconcile loads the state partitions this node leads and drops others,
// whose replicas (where this node holds one) the store then materializes as
// a follower.
func (sc *shareCoordinator) reconcile(img *raftmeta.Image) {
	t := img.Topics[shareStateTopic]
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for part, sp := range sc.parts {
		if t == nil || int(part) >= len(t.Partitions) || t.Partitions[part].Leader != sc.srv.cfg.NodeID || sp.ip.p.TopicID() != t.ID {
			delete(sc.parts, part)
			sc.st.release(sp.ip)
			go sp.shutdown()
		}
	}
	sc.st.follow(sc.srv.followedPartitions(img, shareStateTopic))
	if t == nil {
		return
	}
	for i, ps := range t.Partitions {
		part := int32(i)
		if ps.Leader != sc.srv.cfg.NodeID || sc.parts[part] != nil {
			continue
		}
		p, _, kerrv := sc.srv.leaderPartition(t, part)
		if kerrv != nil || !sc.srv.leaderCaughtUp(p) {
			continue
		}
		sp := &shareStatePart{
			ip:     &internalPartition{srv: sc.srv, topic: shareStateTopic, part: part, p: p, st: sc.st},
			states: map[coordinator.ShareKey]coordinator.ShareState{},
			kick:   make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		}
		err := sp.ip.load(func() { clear(sp.states) }, func(r coordinator.Record) error {
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
			sc.srv.log.Error("loading share coordinator", "partition", part, "err", err)
			continue
		}
		go sp.writeLoop()
		sc.parts[part] = sp
	}
}

// partFor returns the loaded state partition holding key.
func (sc *shareCoordinator) partFor(key coordinator.ShareKey) (*shareStatePart, *kerr.Error) {
	t := sc.srv.meta.Image().Topics[shareStateTopic]
	if t == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	part := coordinator.SharePartitionFor(key, int32(len(t.Partitions)))
	if t.Partitions[part].Leader != sc.srv.cfg.NodeID {
		return nil, kerr.NotCoordinator
	}
	sc.mu.Lock()
	sp := sc.parts[part]
	sc.mu.Unlock()
	if sp == nil {
		return nil, kerr.CoordinatorLoadInProgress
	}
	return sp, nil
}

// read returns a share partition's persisted state.
func (sc *shareCoordinator) read(key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error) {
	sp, kerrv := sc.partFor(key)
	if kerrv != nil {
		return coordinator.ShareState{}, false, kerrv
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	st, ok := sp.states[key]
	return st, ok, nil
}

// enqueue queues a state change and returns the channel its durability is
// reported on. Callers enqueue in the order their changes happened (while
// holding whatever orders them) and wait afterwards, so the writer's
// last-wins coalescing keeps the newest state.
func (sc *shareCoordinator) enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
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

// write persists a state and waits until it is durable.
func (sc *shareCoordinator) write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	select {
	case err := <-sc.enqueue(key, st):
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

func (sp *shareStatePart) shutdown() {
	close(sp.stop)
	<-sp.done
}
