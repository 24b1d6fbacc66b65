package broker

import (
	"container/heap"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// shareManager holds, on the partition leader, the share partitions of every
// share group fetching from it, the share sessions of its members, and the
// one timer structure that expires their record locks.
type shareManager struct {
	srv *Server

	mu       sync.Mutex
	parts    map[coordinator.ShareKey]*sharePart
	sessions map[sessionKey]*shareSession

	timers *deadlines

	// peers reaches the share coordinators on other nodes (the leaders of
	// __share_group_state partitions) and the leaders of dead-letter
	// partitions.
	peers cluster.Peers
}

// sharePart is one share partition: the pure state machine plus the I/O
// around it. mu orders every change and the enqueueing of its persistence.
type sharePart struct {
	key   coordinator.ShareKey
	topic string
	p     *log.Partition

	mu        sync.Mutex
	sp        *queue.SharePartition
	changed   chan struct{} // closed when records may have become available
	dlqTopic  string
	groupName string

	// remote orders the writes of this partition's state to a share
	// coordinator on another node.
	remote remoteStateWriter
}

// remoteStateWriter sends one share partition's states to a remote share
// coordinator one at a time, always the newest: a write that is durable
// makes every older state of the partition durable too.
type remoteStateWriter struct {
	mu      sync.Mutex
	pending *coordinator.ShareState
	waiters []chan error
	running bool
}

// sessionKey identifies a share session: (group, member) on this broker.
type sessionKey struct{ group, member string }

type shareSession struct {
	epoch int32
	conn  *conn
	parts map[topicPart]bool
}

type topicPart struct {
	id        [16]byte
	partition int32
}

func newShareManager(s *Server) *shareManager {
	m := &shareManager{
		srv:      s,
		parts:    map[coordinator.ShareKey]*sharePart{},
		sessions: map[sessionKey]*shareSession{},
		peers:    s.peers.Peers(cluster.LaneShare),
	}
	m.timers = newDeadlines(m.fire)
	return m
}

func (m *shareManager) close() { m.timers.close() }

// shareConfig is the queue configuration of a group.
func (s *Server) shareConfig(gc config.GroupConfig) queue.Config {
	cfg := queue.DefaultConfig()
	cfg.LockDuration = gc.Millis("share.record.lock.duration.ms")
	cfg.DeliveryLimit = int(gc.Int64("share.delivery.count.limit"))
	cfg.MaxInFlight = int(s.cfg.Int("group.share.partition.max.record.locks"))
	cfg.ReleaseBackoff = gc.Millis("share.release.backoff.ms")
	return cfg
}

// part returns the share partition of a group on a partition this node
// leads, loading it from the share coordinator the first time.
func (m *shareManager) part(ctx context.Context, group string, t *raftmeta.Topic, partition int32) (*sharePart, *kerr.Error) {
	p, ps, kerrv := m.srv.leaderPartition(t, partition)
	if kerrv != nil {
		return nil, kerrv
	}
	key := coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}
	m.mu.Lock()
	sp := m.parts[key]
	m.mu.Unlock()
	if sp != nil && sp.p == p {
		return sp, nil
	}
	if err := m.srv.coord.ShareState.EnsureTopic(ctx); err != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	st, found, kerrv := m.readState(ctx, key)
	if kerrv != nil {
		return nil, kerrv
	}
	gc := m.srv.cfg.EffectiveGroupConfig(m.srv.meta.Image().GroupConfig(group))
	qcfg := m.srv.shareConfig(gc)
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
		if err := m.writeState(ctx, key, &init); err != nil {
			return nil, kerr.CoordinatorNotAvailable
		}
	}
	q.OnLogStart(p.LogStartOffset())
	sp = &sharePart{key: key, topic: t.Name, p: p, sp: q, changed: make(chan struct{}), groupName: group, dlqTopic: gc.String("errors.deadletterqueue.topic.name")}
	m.mu.Lock()
	if cur := m.parts[key]; cur != nil && cur.p == p {
		sp = cur // another request loaded it first
	} else {
		m.parts[key] = sp
	}
	m.mu.Unlock()
	return sp, nil
}

// initialOffset applies share.auto.offset.reset to a share partition with no
// state: latest (the high watermark), earliest (the log start) or
// by_duration (the first record at or after now minus the duration).
func (m *shareManager) initialOffset(p *log.Partition, reset string) (int64, error) {
	switch {
	case reset == "earliest":
		return p.LogStartOffset(), nil
	case strings.HasPrefix(reset, "by_duration:"):
		d, err := config.ParseISODuration(strings.TrimPrefix(reset, "by_duration:"))
		if err != nil {
			return 0, err
		}
		off, _, found, err := p.OffsetForTimestamp(m.srv.now().Add(-d).UnixMilli())
		if err != nil {
			return 0, err
		}
		if found {
			return off, nil
		}
	}
	return p.HighWatermark(), nil
}

// persist enqueues the share partition's state if it changed. Called with
// sp.mu held, so states reach the writer in the order they happened; the
// caller waits on the returned channel after unlocking.
func (m *shareManager) persistLocked(sp *sharePart) <-chan error {
	if !sp.sp.TakeDirty() {
		return nil
	}
	_, ps, _ := m.srv.leaderPartition(m.srv.meta.Image().Topics[sp.topic], sp.key.Partition)
	st := coordinator.ShareState{LeaderEpoch: ps.LeaderEpoch}
	st.PersistedState = sp.sp.Persisted()
	if kerrv := m.srv.coord.ShareState.Lookup(sp.key); kerrv == kerr.NotCoordinator {
		return m.enqueueRemote(sp, &st)
	}
	return m.srv.coord.ShareState.Enqueue(sp.key, &st)
}

// The share coordinator of a share partition is the leader of its
// __share_group_state partition. When that is another node, the partition's
// leader reads and writes its state there with ReadShareGroupState and
// WriteShareGroupState.

// stateCoordinator is the node leading key's __share_group_state partition.
func (m *shareManager) stateCoordinator(key coordinator.ShareKey) (int32, *kerr.Error) {
	t := m.srv.meta.Image().Topics[coordruntime.ShareStateTopic]
	if t == nil || len(t.Partitions) == 0 {
		return -1, kerr.CoordinatorNotAvailable
	}
	leader := t.Partitions[coordinator.SharePartitionFor(key, int32(len(t.Partitions)))].Leader
	if leader < 0 {
		return -1, kerr.CoordinatorNotAvailable
	}
	return leader, nil
}

// remoteTimeout bounds one share state RPC to another node.
const remoteTimeout = 10 * time.Second

// readState returns key's persisted state from its share coordinator, here
// or on another node.
func (m *shareManager) readState(ctx context.Context, key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error) {
	st, found, kerrv := m.srv.coord.ShareState.Read(key)
	if kerrv != kerr.NotCoordinator {
		return st, found, kerrv
	}
	leader, kerrv := m.stateCoordinator(key)
	if kerrv != nil {
		return st, false, kerrv
	}
	if leader == m.srv.cfg.NodeID {
		return st, false, kerr.CoordinatorLoadInProgress
	}
	req := kmsg.NewPtrReadShareGroupStateRequest()
	req.SetVersion(m.srv.peerVersion(req.Key()))
	req.GroupID = key.Group
	rt := kmsg.NewReadShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
	rp.Partition = key.Partition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	r, err := m.peers.Request(ctx, leader, req)
	if err != nil {
		return st, false, kerr.CoordinatorNotAvailable
	}
	resp := r.(*kmsg.ReadShareGroupStateResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return st, false, kerr.CoordinatorNotAvailable
	}
	op := resp.Topics[0].Partitions[0]
	if op.ErrorCode != 0 {
		if e, ok := kerr.ErrorForCode(op.ErrorCode).(*kerr.Error); ok {
			return st, false, e
		}
		return st, false, kerr.UnknownServerError
	}
	st.StateEpoch, st.StartOffset = op.StateEpoch, op.StartOffset
	for _, b := range op.StateBatches {
		st.Batches = append(st.Batches, stateBatchOf(b.FirstOffset, b.LastOffset, b.DeliveryState, b.DeliveryCount))
	}
	return st, op.StartOffset >= 0, nil
}

// writeState persists key's state with its share coordinator, here or on
// another node, and waits until it is durable.
func (m *shareManager) writeState(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	if kerrv := m.srv.coord.ShareState.Lookup(key); kerrv != kerr.NotCoordinator {
		return m.srv.coord.ShareState.Write(ctx, key, st)
	}
	return m.writeRemote(ctx, key, st)
}

// writeRemote sends one WriteShareGroupState to key's share coordinator on
// another node.
func (m *shareManager) writeRemote(ctx context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	leader, kerrv := m.stateCoordinator(key)
	if kerrv != nil {
		return kerrv
	}
	if leader == m.srv.cfg.NodeID {
		return kerr.CoordinatorLoadInProgress
	}
	req := kmsg.NewPtrWriteShareGroupStateRequest()
	req.SetVersion(m.srv.peerVersion(req.Key()))
	req.GroupID = key.Group
	rt := kmsg.NewWriteShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	rp.Partition = key.Partition
	rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = st.StateEpoch, st.LeaderEpoch, st.StartOffset
	for _, b := range st.Batches {
		sb := kmsg.NewWriteShareGroupStateRequestTopicPartitionStateBatch()
		sb.FirstOffset, sb.LastOffset, sb.DeliveryState, sb.DeliveryCount = b.First, b.Last, int8(b.State), b.DeliveryCount
		rp.StateBatches = append(rp.StateBatches, sb)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	r, err := m.peers.Request(ctx, leader, req)
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	resp := r.(*kmsg.WriteShareGroupStateResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kerr.CoordinatorNotAvailable
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// enqueueRemote queues sp's newest state for its remote share coordinator
// (sp.mu held, so states are queued in the order they happened) and returns
// the channel its durability is reported on.
func (m *shareManager) enqueueRemote(sp *sharePart, st *coordinator.ShareState) <-chan error {
	done := make(chan error, 1)
	w := &sp.remote
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = st
	w.waiters = append(w.waiters, done)
	if !w.running {
		w.running = true
		go m.remoteWriteLoop(sp)
	}
	return done
}

// remoteWriteLoop writes sp's newest pending state until none is left.
func (m *shareManager) remoteWriteLoop(sp *sharePart) {
	w := &sp.remote
	for {
		w.mu.Lock()
		st, waiters := w.pending, w.waiters
		w.pending, w.waiters = nil, nil
		if st == nil {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		err := m.writeRemote(m.srv.ctx, sp.key, st)
		for _, done := range waiters {
			done <- err
		}
	}
}

// wakeLocked tells parked fetches that records may be available, and
// re-arms the partition's timer. sp.mu held.
func (m *shareManager) wakeLocked(sp *sharePart) {
	close(sp.changed)
	sp.changed = make(chan struct{})
	m.timers.schedule(sp, sp.sp.NextDeadline())
}

// fire runs when a share partition's earliest deadline passes: expired
// locks return records, and the change is persisted.
func (m *shareManager) fire(sp *sharePart) {
	now := m.srv.now()
	sp.mu.Lock()
	held := sp.sp.Counts().Acquired
	archived, available := sp.sp.Tick(now)
	// Tick only expires locks, so the drop in acquired records is the
	// number whose lock ran out.
	m.srv.metrics.expiredLocks(held - sp.sp.Counts().Acquired)
	done := m.persistLocked(sp)
	if available || len(archived) > 0 || done != nil {
		m.wakeLocked(sp)
	} else {
		m.timers.schedule(sp, sp.sp.NextDeadline())
	}
	sp.mu.Unlock()
	m.deadLetter(sp, archived)
	if done != nil {
		if err := <-done; err != nil {
			m.srv.log.Warn("persisting share state after lock expiry", "group", sp.key.Group, "topic", sp.topic, "partition", sp.key.Partition, "err", err)
		}
	}
}

// releaseSession releases what a closed session's member holds on its
// partitions (session close, connection drop).
func (m *shareManager) releaseSession(key sessionKey, sess *shareSession) {
	now := m.srv.now()
	var waits []<-chan error
	for tp := range sess.parts {
		m.mu.Lock()
		sp := m.parts[coordinator.ShareKey{Group: key.group, TopicID: tp.id, Partition: tp.partition}]
		m.mu.Unlock()
		if sp == nil {
			continue
		}
		sp.mu.Lock()
		archived := sp.sp.ReleaseMember(now, key.member)
		if done := m.persistLocked(sp); done != nil {
			waits = append(waits, done)
		}
		m.wakeLocked(sp)
		sp.mu.Unlock()
		m.deadLetter(sp, archived)
	}
	for _, w := range waits {
		<-w
	}
}

// onConnClose drops the share sessions bound to a closed connection.
func (m *shareManager) onConnClose(c *conn) {
	m.mu.Lock()
	var gone []sessionKey
	var sessions []*shareSession
	for k, sess := range m.sessions {
		if sess.conn == c {
			gone = append(gone, k)
			sessions = append(sessions, sess)
			delete(m.sessions, k)
		}
	}
	m.mu.Unlock()
	for i, k := range gone {
		m.releaseSession(k, sessions[i])
	}
}

// reconcile drops share partitions whose log partition this node no longer
// leads (or that was deleted) and applies group config changes.
func (m *shareManager) reconcile(img *raftmeta.Image) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, sp := range m.parts {
		t := img.Topics[sp.topic]
		if t == nil || t.ID != k.TopicID || int(k.Partition) >= len(t.Partitions) || t.Partitions[k.Partition].Leader != m.srv.cfg.NodeID {
			delete(m.parts, k)
			m.timers.schedule(sp, time.Time{})
			continue
		}
		gc := m.srv.cfg.EffectiveGroupConfig(img.GroupConfig(k.Group))
		sp.mu.Lock()
		sp.sp.SetConfig(m.srv.shareConfig(gc))
		sp.dlqTopic = gc.String("errors.deadletterqueue.topic.name")
		sp.mu.Unlock()
	}
}

// drop forgets a share partition's in-memory state (offsets altered or
// deleted by an admin): the next fetch reloads it.
func (m *shareManager) drop(key coordinator.ShareKey) {
	m.mu.Lock()
	sp := m.parts[key]
	delete(m.parts, key)
	m.mu.Unlock()
	if sp != nil {
		m.timers.schedule(sp, time.Time{})
		sp.mu.Lock()
		m.wakeLocked(sp)
		sp.mu.Unlock()
	}
}

// loaded returns the in-memory share partition of key, if any.
func (m *shareManager) loaded(key coordinator.ShareKey) *sharePart {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.parts[key]
}

// deadlines is the broker's one timer structure for share partitions: a
// heap of (deadline, partition) served by one goroutine. Entries are lazily
// invalidated: a partition's current deadline is in due, and a popped entry
// that no longer matches is skipped.
type deadlines struct {
	fire func(*sharePart)

	mu   sync.Mutex
	h    deadlineHeap
	due  map[*sharePart]time.Time
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type deadlineEntry struct {
	at time.Time
	sp *sharePart
}

type deadlineHeap []deadlineEntry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newDeadlines(fire func(*sharePart)) *deadlines {
	d := &deadlines{fire: fire, due: map[*sharePart]time.Time{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.loop()
	return d
}

// schedule sets sp's next deadline; the zero time cancels it.
func (d *deadlines) schedule(sp *sharePart, at time.Time) {
	d.mu.Lock()
	if at.IsZero() {
		delete(d.due, sp)
	} else if cur, ok := d.due[sp]; !ok || !cur.Equal(at) {
		d.due[sp] = at
		heap.Push(&d.h, deadlineEntry{at, sp})
	}
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *deadlines) loop() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		var fire []*sharePart
		now := time.Now()
		for d.h.Len() > 0 && !d.h[0].at.After(now) {
			e := heap.Pop(&d.h).(deadlineEntry)
			if cur, ok := d.due[e.sp]; ok && cur.Equal(e.at) {
				delete(d.due, e.sp)
				fire = append(fire, e.sp)
			}
		}
		wait := time.Hour
		if d.h.Len() > 0 {
			wait = d.h[0].at.Sub(now)
		}
		d.mu.Unlock()
		for _, sp := range fire {
			d.fire(sp)
		}
		if len(fire) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-d.stop:
			return
		case <-d.kick:
		case <-timer.C:
		}
	}
}

func (d *deadlines) close() {
	close(d.stop)
	<-d.done
}

// String names a share partition in logs.
func (sp *sharePart) String() string {
	return fmt.Sprintf("%s/%s-%d", sp.key.Group, sp.topic, sp.key.Partition)
}
