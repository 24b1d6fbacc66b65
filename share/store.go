package share

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// StateTopic holds the durable state of share partitions.
const StateTopic = "__share_group_state"

// StateStore is where the persisted state of share partitions lives: the
// share coordinator of a key, which is the leader of the __share_group_state
// partition the key hashes to. There are two implementations: this node's
// share coordinator (localStore) and another node's, reached with the
// share-state RPCs (remoteStore). Stores.For picks one per key from the
// metadata image; no caller tries one and falls back to the other.
type StateStore interface {
	// Read returns key's persisted state for the leader of its share
	// partition at leaderEpoch; found is false when it has none. The
	// coordinator stores the epoch if it is newer, fencing the previous
	// leader's writes, and refuses an older one (FENCED_LEADER_EPOCH).
	Read(ctx context.Context, key coordinator.ShareKey, leaderEpoch int32) (st coordinator.ShareState, found bool, kerrv *kerr.Error)
	// Write persists key's state and waits until it is durable.
	Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error
	// Enqueue queues key's new state and returns the channel its
	// durability is reported on. Callers enqueue one key's states in the
	// order they happened (holding what orders them); a state may be
	// skipped when a newer one of the key is queued behind it, since every
	// state is whole and the newest durable one is what counts.
	Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error
	// Summaries reports the state of keys, all of group.
	Summaries(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]Summary
	// Initialize sets keys' states to a start offset and state epoch with
	// no record states, refusing an older state epoch (FENCED_STATE_EPOCH).
	Initialize(ctx context.Context, group string, states map[coordinator.ShareKey]coordinator.ShareState) map[coordinator.ShareKey]*kerr.Error
	// Delete removes keys' states.
	Delete(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error
}

// Summary is what a share coordinator reports of one key.
type Summary struct {
	Found       bool
	StartOffset int64
	StateEpoch  int32
	// Complete is the number of records at or past the start offset whose
	// delivery is complete (acknowledged or archived); -1 if unknown.
	Complete int32
	Err      *kerr.Error
}

// Coordinator is this node's share coordinator, as the local StateStore
// uses it. It serves the keys of the __share_group_state partitions this
// node leads: NOT_COORDINATOR for others, COORDINATOR_LOAD_IN_PROGRESS while
// it loads.
type Coordinator interface {
	// EnsureTopic creates __share_group_state if it does not exist.
	EnsureTopic(ctx context.Context) error
	Read(key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error)
	// ReadAsLeader is Read by the leader of the key's share partition at
	// leaderEpoch (StateStore.Read).
	ReadAsLeader(ctx context.Context, key coordinator.ShareKey, leaderEpoch int32) (coordinator.ShareState, bool, error)
	// Enqueue queues a state change (nil deletes) for the group commit.
	Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error
	Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error
}

// localStore is the StateStore of the keys this node's share coordinator
// serves.
type localStore struct{ c Coordinator }

func (l *localStore) Read(ctx context.Context, key coordinator.ShareKey, leaderEpoch int32) (coordinator.ShareState, bool, *kerr.Error) {
	st, found, err := l.c.ReadAsLeader(ctx, key, leaderEpoch)
	return st, found, kerrOfErr(err)
}

func (l *localStore) Write(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	return l.c.Write(ctx, key, st)
}

func (l *localStore) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	return l.c.Enqueue(key, st)
}

func (l *localStore) Summaries(_ context.Context, _ string, keys []coordinator.ShareKey) map[coordinator.ShareKey]Summary {
	out := make(map[coordinator.ShareKey]Summary, len(keys))
	for _, k := range keys {
		st, ok, kerrv := l.c.Read(k)
		switch {
		case kerrv != nil:
			out[k] = Summary{StartOffset: -1, Err: kerrv}
		case !ok:
			out[k] = Summary{StartOffset: -1}
		default:
			// A state initialized without a start offset (-1) still has a
			// leader epoch of 0 or more.
			out[k] = Summary{Found: st.StartOffset >= 0 || st.LeaderEpoch >= 0, StartOffset: st.StartOffset, StateEpoch: st.StateEpoch, Complete: st.DeliveryComplete()}
		}
	}
	return out
}

func (l *localStore) Initialize(ctx context.Context, _ string, states map[coordinator.ShareKey]coordinator.ShareState) map[coordinator.ShareKey]*kerr.Error {
	out := make(map[coordinator.ShareKey]*kerr.Error, len(states))
	for k, want := range states {
		if cur, ok, _ := l.c.Read(k); ok && cur.StateEpoch > want.StateEpoch {
			out[k] = kerr.FencedStateEpoch
			continue
		}
		st := coordinator.InitialShareState(want.StartOffset, want.StateEpoch)
		out[k] = kerrOfErr(l.c.Write(ctx, k, &st))
	}
	return out
}

func (l *localStore) Delete(ctx context.Context, _ string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	out := make(map[coordinator.ShareKey]*kerr.Error, len(keys))
	for _, k := range keys {
		out[k] = kerrOfErr(l.c.Write(ctx, k, nil))
	}
	return out
}

// kerrOfErr is the Kafka error of err (nil for nil; UNKNOWN_SERVER_ERROR
// for an error that is not a Kafka error).
func kerrOfErr(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return kerr.UnknownServerError
}

// Stores chooses the StateStore of each key: the node leading the key's
// __share_group_state partition in the current metadata image serves it,
// this node's share coordinator when that is this node, else a remote store
// for that node. The choice is made once per operation from the image; a
// store that no longer serves the key answers NOT_COORDINATOR, which the
// caller's client retries after the metadata moves on.
type Stores struct {
	ctx   context.Context
	self  int32
	image func() *raftmeta.Image
	local StateStore
	peers Peers

	mu      sync.Mutex
	remotes map[int32]*remoteStore
}

func newStores(ctx context.Context, self int32, image func() *raftmeta.Image, local StateStore, peers Peers) *Stores {
	return &Stores{ctx: ctx, self: self, image: image, local: local, peers: peers, remotes: map[int32]*remoteStore{}}
}

// stateCoordinator is the node leading key's __share_group_state partition.
func stateCoordinator(img *raftmeta.Image, key coordinator.ShareKey) (int32, *kerr.Error) {
	t := img.Topics[StateTopic]
	if t == nil || len(t.Partitions) == 0 {
		return -1, kerr.CoordinatorNotAvailable
	}
	leader := t.Partitions[coordinator.SharePartitionFor(key, int32(len(t.Partitions)))].Leader
	if leader < 0 {
		return -1, kerr.CoordinatorNotAvailable
	}
	return leader, nil
}

// For returns the store serving key (COORDINATOR_NOT_AVAILABLE when its
// state partition has no leader or does not exist).
func (s *Stores) For(key coordinator.ShareKey) (StateStore, *kerr.Error) {
	node, kerrv := stateCoordinator(s.image(), key)
	if kerrv != nil {
		return nil, kerrv
	}
	return s.node(node), nil
}

// node is the store of the keys node coordinates.
func (s *Stores) node(id int32) StateStore {
	if id == s.self {
		return s.local
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.remotes[id]
	if r == nil {
		r = newRemoteStore(s.ctx, id, s.peers)
		s.remotes[id] = r
	}
	return r
}

// byNode groups keys by the node coordinating their state. Keys with no
// coordinator go to failed. Without a __share_group_state topic no key has
// state: every key goes to none.
func (s *Stores) byNode(keys []coordinator.ShareKey) (nodes map[int32][]coordinator.ShareKey, failed map[coordinator.ShareKey]*kerr.Error, none bool) {
	img := s.image()
	if img.Topics[StateTopic] == nil {
		return nil, nil, true
	}
	nodes = map[int32][]coordinator.ShareKey{}
	failed = map[coordinator.ShareKey]*kerr.Error{}
	for _, k := range keys {
		id, kerrv := stateCoordinator(img, k)
		if kerrv != nil {
			failed[k] = kerrv
			continue
		}
		nodes[id] = append(nodes[id], k)
	}
	return nodes, failed, false
}

// Summaries reads the state of keys (all of group) from their share
// coordinators, each node asked once.
func (s *Stores) Summaries(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]Summary {
	nodes, failed, none := s.byNode(keys)
	out := map[coordinator.ShareKey]Summary{}
	if none {
		for _, k := range keys {
			out[k] = Summary{StartOffset: -1, Complete: -1}
		}
		return out
	}
	for k, e := range failed {
		out[k] = Summary{StartOffset: -1, Complete: -1, Err: e}
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]Summary {
		return s.node(id).Summaries(ctx, group, keys)
	})
	for k, v := range got {
		out[k] = v
	}
	return out
}

// Initialize sets keys' start offsets with their share coordinators (no
// record states, the given state epoch) and returns each key's error.
func (s *Stores) Initialize(ctx context.Context, group string, states map[coordinator.ShareKey]coordinator.ShareState) map[coordinator.ShareKey]*kerr.Error {
	keys := slices.Collect(maps.Keys(states))
	nodes, failed, none := s.byNode(keys)
	if none {
		failed = map[coordinator.ShareKey]*kerr.Error{}
		for _, k := range keys {
			failed[k] = kerr.CoordinatorNotAvailable
		}
		return failed
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		mine := make(map[coordinator.ShareKey]coordinator.ShareState, len(keys))
		for _, k := range keys {
			mine[k] = states[k]
		}
		return s.node(id).Initialize(ctx, group, mine)
	})
	for k, v := range got {
		failed[k] = v
	}
	return failed
}

// Delete deletes keys' states with their share coordinators and returns
// each key's error.
func (s *Stores) Delete(ctx context.Context, group string, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
	nodes, failed, none := s.byNode(keys)
	if none {
		return map[coordinator.ShareKey]*kerr.Error{}
	}
	got := eachNode(nodes, func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]*kerr.Error {
		return s.node(id).Delete(ctx, group, keys)
	})
	for k, v := range got {
		failed[k] = v
	}
	return failed
}

// eachNode runs fn for every node's keys concurrently and waits for all.
func eachNode[V any](nodes map[int32][]coordinator.ShareKey, fn func(id int32, keys []coordinator.ShareKey) map[coordinator.ShareKey]V) map[coordinator.ShareKey]V {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[coordinator.ShareKey]V{}
	)
	for id, keys := range nodes {
		wg.Go(func() {
			r := fn(id, keys)
			mu.Lock()
			for k, v := range r {
				out[k] = v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}
