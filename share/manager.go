// Package share is the share runtime (KIP-932 queues) of one node: the share
// partitions of the log partitions this node leads, the share sessions of
// their consumers, the acquire loop, acknowledgement, the one deadline heap
// that expires record locks, the dead-letter writer, and the share-state
// store (behind StateStore: the local share coordinator, or a remote one
// reached over the peer RPC client, chosen per key from the metadata image).
//
// The state machine of a share partition is queue.SharePartition (pure); this
// package does its I/O: reading the log, persisting the state, writing dead
// letters, and the clock. It does not import the front end: what it needs of
// the rest of the node comes through the interfaces and function values of
// Deps, which the broker wires at start.
//
// Lock order: Manager.mu, then Part.mu, then the state store's locks
// (Stores.mu, then a remote store's mu; or the local share coordinator's),
// then deadlines.mu. A log.Partition's own locks are taken under Part.mu
// (reads of the log). Part.mu orders every change of a share partition and
// the enqueueing of its persistence, so states reach the store in the order
// they happened; waiting for durability happens after it is released.
// Nothing that may create a partition on disk, append to the log or wait on
// the network runs under Part.mu: the leader partition is looked up before
// it is taken, the leader epoch persisted with a state is read from the
// metadata image, and dead letters are written after it is released.
package share

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// Replicas is what the share runtime needs of the replica runtime.
type Replicas interface {
	// LeaderPartition returns the log of partition of t when this node
	// leads it (creating it on disk if the metadata is ahead of the
	// reconcile loop), with its state in the image; else
	// NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION.
	LeaderPartition(t *raftmeta.Topic, partition int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error)
	// AppendCommitted appends a batch the node encoded itself to p, led as
	// ps says, and returns once the ISR has it and the flush policy is met;
	// held to min.insync.replicas like an acks=all produce.
	AppendCommitted(ctx context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) (log.AppendResult, error)
}

// Peers is the one inter-broker RPC client: a request to another node's
// broker listener, sent at the version both nodes speak.
type Peers interface {
	Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error)
}

// Metrics are the series the share runtime reports.
type Metrics interface {
	ExpiredLocks(n int64)
	DeadLettered(topic string, records int)
}

// Deps is what the share runtime gets from the node at start.
type Deps struct {
	// Ctx ends when the node stops; background writes run under it.
	Ctx      context.Context
	Config   *config.Broker
	Image    func() *raftmeta.Image
	Now      func() time.Time
	Log      *slog.Logger
	Replicas Replicas
	// Coordinator is this node's share coordinator (the local state store).
	Coordinator Coordinator
	Peers       Peers
	Metrics     Metrics
	// NextProducerID allocates a producer id (from the controller's
	// producer-id blocks): each share partition owns one for its dead
	// letters.
	NextProducerID func(ctx context.Context) (int64, error)
	// Topics creates dead-letter topics on first use
	// (errors.deadletterqueue.auto.create.topics.enable).
	Topics TopicCreator
}

// Manager holds, on the partition leader, the share partitions of every
// share group fetching from it, the share sessions of its members, and the
// one deadline heap that expires their record locks.
type Manager struct {
	d      Deps
	nodeID int32
	stores *Stores
	timers *deadlines

	mu       sync.Mutex
	parts    map[coordinator.ShareKey]*Part
	sessions sessions
}

// Part is one share partition: the pure state machine plus the I/O around
// it. mu orders every change and the enqueueing of its persistence.
type Part struct {
	key   coordinator.ShareKey
	topic string
	p     *log.Partition
	// leaderEpoch is the leader epoch of p this node loaded the state
	// under (and claimed it with). Every state it writes carries it, so
	// that once a newer leader has claimed the state, the share
	// coordinator fences these writes: the image's current epoch would be
	// the new leader's, and pass.
	leaderEpoch int32

	mu      sync.Mutex
	q       *queue.SharePartition
	changed log.WaitSet // woken when records may have become available
	// The group's settings the runtime applies around the state machine,
	// refreshed with it on every metadata change (Reconcile).
	dlqTopic    string             // errors.deadletterqueue.topic.name
	dlqCopy     bool               // errors.deadletterqueue.copy.record.enable
	isolation   log.IsolationLevel // share.isolation.level
	recordLimit bool               // share.acquire.mode=record_limit
	renew       bool               // share.renew.acknowledge.enable
	// cache holds the log batches a key-ordered share partition still
	// needs (batchcache.go).
	cache batchCache
	// dlqWriting is set while the dead-letter writer runs (at most one per
	// share partition, so one write is in flight).
	dlqWriting bool
	// gone is set when the Manager no longer serves this Part (leadership
	// moved, offsets altered, reloaded): its writer stops, and the Part
	// that replaces it resends the write in progress.
	gone bool
}

// setConfigLocked applies a group's effective configuration to the share
// partition; sp.mu held (or sp not yet shared).
func (sp *Part) setConfigLocked(gc config.GroupConfig, qcfg queue.Config) {
	oldOrdering, oldIsolation := sp.q.Config().Ordering, sp.isolation
	sp.q.SetConfig(qcfg)
	sp.dlqTopic = gc.String("errors.deadletterqueue.topic.name")
	sp.dlqCopy = gc.String("errors.deadletterqueue.copy.record.enable") == "true"
	sp.isolation = log.ReadUncommitted
	if gc.String("share.isolation.level") == "read_committed" {
		sp.isolation = log.ReadCommitted
	}
	if sp.isolation != oldIsolation || qcfg.Ordering != oldOrdering {
		sp.cache.clear() // which batches to skip, and whether keys matter
	}
	sp.recordLimit = gc.String("share.acquire.mode") == "record_limit"
	sp.renew = gc.String("share.renew.acknowledge.enable") != "false"
}

// New starts the share runtime; Close stops it.
func New(d Deps) *Manager {
	m := &Manager{
		d:        d,
		nodeID:   d.Config.NodeID,
		parts:    map[coordinator.ShareKey]*Part{},
		sessions: sessions{m: map[SessionKey]*Session{}},
	}
	m.stores = newStores(d.Ctx, m.nodeID, d.Image, &localStore{c: d.Coordinator}, d.Peers)
	m.timers = newDeadlines(d.Now, m.fire)
	return m
}

// Close stops the deadline heap's goroutine.
func (m *Manager) Close() { m.timers.close() }

// States is the share-state store of every key, for the share group admin
// APIs.
func (m *Manager) States() *Stores { return m.stores }

// queueConfig is the queue configuration of a group.
func (m *Manager) queueConfig(gc config.GroupConfig) queue.Config {
	cfg := queue.DefaultConfig()
	cfg.LockDuration = gc.Millis("share.record.lock.duration.ms")
	cfg.DeliveryLimit = int(gc.Int64("share.delivery.count.limit"))
	cfg.MaxInFlight = int(gc.Int64("share.partition.max.record.locks"))
	cfg.ReleaseBackoff = gc.Millis("share.release.backoff.ms")
	if gc.String("share.delivery.ordering") == "key" {
		cfg.Ordering = queue.OrderKey
	}
	cfg.DeadLetter = gc.String("errors.deadletterqueue.topic.name") != ""
	return cfg
}

// part returns the share partition of a group on a partition this node
// leads, loading it from its state store the first time.
func (m *Manager) part(ctx context.Context, group string, t *raftmeta.Topic, partition int32) (*Part, *kerr.Error) {
	p, ps, kerrv := m.d.Replicas.LeaderPartition(t, partition)
	if kerrv != nil {
		return nil, kerrv
	}
	key := coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}
	m.mu.Lock()
	sp := m.parts[key]
	m.mu.Unlock()
	if sp != nil && sp.p == p && sp.leaderEpoch == ps.LeaderEpoch {
		return sp, nil
	}
	if err := m.d.Coordinator.EnsureTopic(ctx); err != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	store, kerrv := m.stores.For(key)
	if kerrv != nil {
		return nil, kerrv
	}
	st, found, kerrv := store.Read(ctx, key, ps.LeaderEpoch)
	if kerrv != nil {
		return nil, kerrv
	}
	gc := m.d.Config.EffectiveGroupConfig(m.d.Image().GroupConfig(group))
	qcfg := m.queueConfig(gc)
	var q *queue.SharePartition
	if found && st.StartOffset >= 0 {
		q = queue.Restore(qcfg, st.PersistedState)
	} else {
		start, err := m.initialOffset(p, gc.String("share.auto.offset.reset"))
		if err != nil {
			return nil, kerr.KafkaStorageError
		}
		q = queue.New(qcfg, start)
		init := coordinator.ShareState{LeaderEpoch: ps.LeaderEpoch}
		init.PersistedState = q.Persisted()
		if found {
			init.StateEpoch = st.StateEpoch
		}
		if err := store.Write(ctx, key, &init); err != nil {
			return nil, kerr.CoordinatorNotAvailable
		}
	}
	if m.d.Log.Enabled(ctx, slog.LevelDebug) {
		m.d.Log.Debug("share partition state loaded", "group", group, "topic", t.Name, "partition", partition,
			"leader_epoch", ps.LeaderEpoch, "found", found, "state_leader_epoch", st.LeaderEpoch,
			"start_offset", st.StartOffset, "state_batches", fmt.Sprint(st.Batches))
	}
	q.OnLogStart(p.LogStartOffset())
	sp = &Part{key: key, topic: t.Name, p: p, leaderEpoch: ps.LeaderEpoch, q: q}
	sp.setConfigLocked(gc, qcfg)
	m.mu.Lock()
	if cur := m.parts[key]; cur != nil && cur.p == p && cur.leaderEpoch == ps.LeaderEpoch {
		sp = cur // another request loaded it first
	} else {
		if cur != nil {
			markGone(cur)
		}
		m.parts[key] = sp
	}
	m.mu.Unlock()
	// A restored state may hold records still waiting for their dead letter.
	sp.mu.Lock()
	m.startDeadLettersLocked(sp)
	sp.mu.Unlock()
	return sp, nil
}

// initialOffset applies share.auto.offset.reset to a share partition with no
// state: latest (the high watermark), earliest (the log start) or
// by_duration (the first record at or after now minus the duration).
func (m *Manager) initialOffset(p *log.Partition, reset string) (int64, error) {
	kind, d, err := config.ParseShareAutoOffsetReset(reset)
	if err != nil {
		return 0, err
	}
	switch kind {
	case config.ResetEarliest:
		return p.LogStartOffset(), nil
	case config.ResetByDuration:
		off, _, found, err := p.OffsetForTimestamp(m.d.Now().Add(-d).UnixMilli())
		if err != nil {
			return 0, err
		}
		if found {
			return off, nil
		}
	}
	return p.HighWatermark(), nil
}

// applyLocked carries out what the share partition asks after a change
// (its queue.Ready), sp.mu held: it enqueues the state to persist (under
// sp.mu, so states reach the store in the order they happened), re-arms the
// partition's deadline, starts the dead-letter writer when records wait for
// their dead letter, and wakes parked fetches when wake is set or the
// change made records available, archived some, or is to be persisted. The
// caller waits on the returned channel (nil: nothing to persist) after
// unlocking. Dead letters are written in the background (deadletter.go):
// no caller waits for the dead-letter topic.
func (m *Manager) applyLocked(sp *Part, wake bool) <-chan error {
	rd := sp.q.Ready()
	var done <-chan error
	if rd.MustPersist {
		done = m.persistLocked(sp, rd.Persist)
	}
	if wake || rd.Available || len(rd.DeadLetter) > 0 || done != nil {
		sp.changed.WakeAll()
	}
	m.timers.schedule(sp, rd.Deadline)
	m.startDeadLettersLocked(sp)
	return done
}

// markGone marks a Part the Manager no longer serves, so that its
// dead-letter writer stops. Taken under Manager.mu (then Part.mu).
func markGone(sp *Part) {
	sp.mu.Lock()
	sp.gone = true
	sp.mu.Unlock()
}

// persistLocked enqueues a share partition's new state with the store
// serving its key, under the leader epoch the partition was loaded with.
func (m *Manager) persistLocked(sp *Part, ps queue.PersistedState) <-chan error {
	st := coordinator.ShareState{LeaderEpoch: sp.leaderEpoch, PersistedState: ps}
	store, kerrv := m.stores.For(sp.key)
	if kerrv != nil {
		return failed(kerrv)
	}
	return store.Enqueue(sp.key, &st)
}

// failed is a channel that reports err.
func failed(err error) <-chan error {
	done := make(chan error, 1)
	done <- err
	return done
}

// fire runs when a share partition's earliest deadline passes: expired
// locks return records, and the change is persisted.
func (m *Manager) fire(sp *Part) {
	now := m.d.Now()
	sp.mu.Lock()
	held := sp.q.Counts().Acquired
	sp.q.Tick(now)
	// Tick only expires locks, so the drop in acquired records is the
	// number whose lock ran out.
	m.d.Metrics.ExpiredLocks(held - sp.q.Counts().Acquired)
	done := m.applyLocked(sp, false)
	sp.mu.Unlock()
	if done != nil {
		if err := <-done; err != nil {
			m.d.Log.Warn("persisting share state after lock expiry", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "err", err)
		}
	}
}

// Reconcile drops share partitions whose log partition this node no longer
// leads (or that was deleted) and applies group config changes.
func (m *Manager) Reconcile(img *raftmeta.Image) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, sp := range m.parts {
		t := img.Topics[sp.topic]
		if !t.HasPartition(k.Partition) || t.ID != k.TopicID || t.Partitions[k.Partition].Leader != m.nodeID {
			delete(m.parts, k)
			m.timers.schedule(sp, time.Time{})
			markGone(sp)
			continue
		}
		gc := m.d.Config.EffectiveGroupConfig(img.GroupConfig(k.Group))
		sp.mu.Lock()
		cfg := m.queueConfig(gc)
		changed := cfg != sp.q.Config()
		sp.setConfigLocked(gc, cfg)
		if changed {
			m.applyLocked(sp, true)
		}
		sp.mu.Unlock()
	}
}

// Drop forgets a share partition's in-memory state (offsets altered or
// deleted by an admin): the next fetch reloads it. Its deadline is
// cancelled and fetches parked on it are woken to load the new state.
func (m *Manager) Drop(key coordinator.ShareKey) {
	m.mu.Lock()
	sp := m.parts[key]
	delete(m.parts, key)
	m.mu.Unlock()
	if sp != nil {
		m.timers.schedule(sp, time.Time{})
		sp.mu.Lock()
		sp.gone = true
		sp.changed.WakeAll()
		sp.mu.Unlock()
	}
}

// Progress is, from memory, the start offset of a share partition this
// node serves and the number of records past it whose delivery is
// complete; ok is false when the partition is not loaded here.
func (m *Manager) Progress(key coordinator.ShareKey) (start, complete int64, ok bool) {
	m.mu.Lock()
	sp := m.parts[key]
	m.mu.Unlock()
	if sp == nil {
		return 0, 0, false
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	c := sp.q.Counts()
	return sp.q.StartOffset(), c.Acknowledged + c.Archived, true
}

// Unsettled reports, from memory, at most max runs of a share partition's
// records delivered and not yet done (queue.SharePartition.Unsettled), and
// the delivery limit they count towards; ok is false when the partition
// is not loaded here (its leader has it).
func (m *Manager) Unsettled(key coordinator.ShareKey, max int) (runs []queue.Unsettled, deliveryLimit int, ok bool) {
	m.mu.Lock()
	sp := m.parts[key]
	m.mu.Unlock()
	if sp == nil {
		return nil, 0, false
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.q.Unsettled(max), sp.q.Config().DeliveryLimit, true
}

// loaded lists the loaded share partitions, for callers that then lock
// each one in turn without holding m.mu through all of them.
func (m *Manager) loaded() []*Part {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := make([]*Part, 0, len(m.parts))
	for _, sp := range m.parts {
		parts = append(parts, sp)
	}
	return parts
}

// PartStats is what the metrics report of one loaded share partition.
type PartStats struct {
	Key           coordinator.ShareKey
	Topic         string
	Counts        queue.Counts
	StartOffset   int64
	HighWatermark int64
}

// Stats reports every loaded share partition.
func (m *Manager) Stats() []PartStats {
	parts := m.loaded()
	out := make([]PartStats, 0, len(parts))
	for _, sp := range parts {
		sp.mu.Lock()
		st := PartStats{Key: sp.key, Topic: sp.topic, Counts: sp.q.Counts(), StartOffset: sp.q.StartOffset()}
		sp.mu.Unlock()
		st.HighWatermark = sp.p.HighWatermark()
		out = append(out, st)
	}
	return out
}
