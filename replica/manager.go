// Package replica is the replica manager of one node: the set of partition
// replicas it holds, leadership of them, the high watermark and ISR of the
// partitions it leads, the fetchers that copy the partitions it follows from
// their leaders, and the one leader-append path every write on a led
// partition takes (a client's produce, a coordinator's records, dead
// letters).
//
// It sits below the Kafka front end (broker/) and above the log and the
// metadata image. It knows the front end only through the narrow interfaces
// declared here (Metadata, Controller, Peers, InternalLogs), which the front
// end wires when the node starts, so it can be run and tested without a
// socket.
//
// Lock order (a lock may be taken while holding those listed before it,
// never the other way round):
//
//	Manager.replicaMu  serializes changes to the set of local replicas
//	                   (Reconcile, the on-demand creation in LeaderPartition)
//	Manager.fetchMu    guards the fetcher per leader (updateFetchers)
//	fetcher.mu         a fetcher's partitions; held while a fetched response
//	                   is appended, so a partition taken from the fetcher is
//	                   never appended to afterwards. Under it: the log's
//	                   locks and InternalLogs.FollowerTruncated (which takes
//	                   the coordinator store's locks)
//	leaderState.hwMu   one led partition's high watermark moves and the
//	                   start of an ISR expansion (advanceHighWatermark,
//	                   expandISR); held while the log is read and the HW
//	                   set
//	log.Partition      its own order (log/partition.go)
//	leaderState.mu     a leaf: followers' progress of one led partition,
//	                   never held while calling out
//
// No lock is held across a wait: waitReplicated and the ISR changes sent to
// the controller run with none held.
package replica

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/quota"
	"github.com/shoalmq/shoal/raftmeta"
)

// Metadata is the node's view of the metadata log (*raftmeta.Node).
type Metadata interface {
	// Image is the newest applied image.
	Image() *raftmeta.Image
	// Changed is closed when a newer image is published.
	Changed() <-chan struct{}
	// WaitFor waits until cond holds for the newest image or ctx ends.
	WaitFor(ctx context.Context, cond func(*raftmeta.Image) bool) (*raftmeta.Image, error)
}

// Controller is what the replica manager asks of the active controller.
type Controller interface {
	// AlterPartition asks the controller to change ISRs of partitions
	// this node leads.
	AlterPartition(ctx context.Context, items []raftmeta.AlterPartitionItem) ([]raftmeta.AlterPartitionResult, error)
	// BrokerEpoch is this broker's epoch from its latest registration,
	// which a follower's fetch carries.
	BrokerEpoch() int64
}

// Peers reaches other nodes with the Kafka protocol.
type Peers interface {
	// Dial returns a connection to node's inter-broker endpoint. Each
	// fetcher has its own, so a long-polling fetch waits behind nothing.
	Dial(node int32) Peer
	// Version is the version this node sends of API key.
	Version(key int16) int16
}

// Peer is one connection to another node; its requests go one at a time.
type Peer interface {
	Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
	Close()
}

// InternalLogs is told of changes to follower replicas of internal topics
// (raftmeta.IsInternalTopic), which the coordinator stores materialize.
type InternalLogs interface {
	// FollowerAppended: records reached a follower replica of topic.
	FollowerAppended(topic string)
	// FollowerTruncated: the follower replica p was truncated.
	FollowerTruncated(p *log.Partition)
}

// noInternalLogs is the InternalLogs of a node without coordinator stores.
type noInternalLogs struct{}

func (noInternalLogs) FollowerAppended(string)          {}
func (noInternalLogs) FollowerTruncated(*log.Partition) {}

// Config is what a Manager is built from.
type Config struct {
	Broker     *config.Broker
	Logs       *log.Manager
	Meta       Metadata
	Controller Controller
	Peers      Peers
	// Internal is optional.
	Internal InternalLogs
	// ISRChanged counts an ISR change this node made: kind is "shrink"
	// or "expand". Optional.
	ISRChanged func(kind string)
	Logger     *slog.Logger
	// Now is the clock every decision reads (time.Now when nil).
	Now func() time.Time
}

// Manager owns the partition replicas of one node.
type Manager struct {
	cfg      *config.Broker
	node     int32
	logs     *log.Manager
	meta     Metadata
	ctrl     Controller
	peers    Peers
	internal InternalLogs
	isrDone  func(kind string)
	log      *slog.Logger
	now      func() time.Time

	// leaderQuota and followerQuota are this broker's replication
	// throttles (throttle.go).
	leaderQuota, followerQuota *quota.Replication

	// ctx ends when the node stops; wg tracks the manager's goroutines
	// other than the fetchers (see Close).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// replicaMu serializes changes to the set of local replicas.
	replicaMu sync.Mutex
	// topicConfigs caches each topic version's log config (see
	// TopicPartitionConfig).
	topicConfigs sync.Map
	// minISR caches min.insync.replicas per topic version (*raftmeta.Topic).
	minISR sync.Map
	// leaders holds the follower tracking of each partition this node
	// leads, by *log.Partition.
	leaders sync.Map

	// coordPending is set when a coordinator skipped a partition it leads
	// because the partition's high watermark had not caught up yet;
	// coordKick then asks for another try when the HW moves.
	coordPending atomic.Bool
	coordKick    chan struct{}

	fetchMu  sync.Mutex
	fetchers map[int32]*fetcher
}

// New returns the replica manager of a node; it holds no replica until
// Reconcile. Its goroutines end when ctx does; Close waits for them.
func New(ctx context.Context, c Config) *Manager {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Internal == nil {
		c.Internal = noInternalLogs{}
	}
	if c.ISRChanged == nil {
		c.ISRChanged = func(string) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Manager{
		cfg: c.Broker, node: c.Broker.NodeID, logs: c.Logs, meta: c.Meta, ctrl: c.Controller, peers: c.Peers,
		internal: c.Internal, isrDone: c.ISRChanged, log: c.Logger, now: c.Now,
		leaderQuota:   quota.NewReplication(replicationWindow(c.Broker)),
		followerQuota: quota.NewReplication(replicationWindow(c.Broker)),
		ctx:           ctx, cancel: cancel,
		coordKick: make(chan struct{}, 1),
		fetchers:  map[int32]*fetcher{},
	}
}

// Close stops the manager's goroutines and fetchers and waits for them.
// The logs stay open: they belong to the caller.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
	m.stopFetchers()
}

// partitionConfig turns a topic's effective configuration into the log's.
func partitionConfig(tc config.TopicConfig) log.PartitionConfig {
	segmentBytes := tc.Int64("segment.bytes")
	if tc.String("internal.segment.bytes") != "" {
		segmentBytes = tc.Int64("internal.segment.bytes")
	}
	return log.PartitionConfig{
		SegmentBytes:                segmentBytes,
		SegmentMs:                   tc.Int64("segment.ms"),
		SegmentIndexBytes:           int32(tc.Int64("segment.index.bytes")),
		IndexIntervalBytes:          int32(tc.Int64("index.interval.bytes")),
		RetentionMs:                 tc.Int64("retention.ms"),
		RetentionBytes:              tc.Int64("retention.bytes"),
		FlushMessages:               tc.Int64("flush.messages"),
		FlushMs:                     tc.Int64("flush.ms"),
		MaxMessageBytes:             int32(tc.Int64("max.message.bytes")),
		MessageTimestampType:        tc.String("message.timestamp.type"),
		MessageTimestampBeforeMaxMs: tc.Int64("message.timestamp.before.max.ms"),
		MessageTimestampAfterMaxMs:  tc.Int64("message.timestamp.after.max.ms"),

		CleanupPolicy:          tc.String("cleanup.policy"),
		DeleteRetentionMs:      tc.Int64("delete.retention.ms"),
		MinCompactionLagMs:     tc.Int64("min.compaction.lag.ms"),
		MaxCompactionLagMs:     tc.Int64("max.compaction.lag.ms"),
		MinCleanableDirtyRatio: tc.Float64("min.cleanable.dirty.ratio"),
	}
}

// isReplica reports whether this node holds a replica of the partition.
func (m *Manager) isReplica(ps raftmeta.PartitionState) bool {
	return slices.Contains(ps.Replicas, m.node)
}

// Reconcile makes the local logs match the newest image: create the
// replicas this node is assigned, apply topic config changes, delete
// replicas of topics that are gone (or were recreated under a new id), and
// point the fetchers at the leaders of the partitions this node follows.
//
// Reconcile and the on-demand creation in LeaderPartition hold replicaMu
// and read the newest image under it, so a partition of a topic being
// deleted is never recreated from a stale image.
func (m *Manager) Reconcile() {
	m.replicaMu.Lock()
	defer m.replicaMu.Unlock()
	img := m.meta.Image()
	m.topicConfigs.Clear()
	m.minISR.Clear()
	want := map[string]map[int32]bool{}
	follow := map[fetchKey]fetchAssign{}
	for _, t := range img.Topics {
		cfg := m.TopicPartitionConfig(t)
		parts := map[int32]bool{}
		for i, ps := range t.Partitions {
			if !m.isReplica(ps) {
				continue
			}
			parts[int32(i)] = true
			p := m.logs.Partition(t.Name, int32(i))
			if p == nil || p.TopicID() != t.ID {
				var err error
				if p, err = m.logs.CreatePartition(t.Name, int32(i), t.ID, cfg); err != nil {
					m.log.Error("creating partition", "topic", t.Name, "partition", i, "err", err)
					continue
				}
			}
			if p.Offline() {
				// Its log dir failed: nothing to lead or follow with until
				// a restart, and a fetch could put it back in the ISR.
				m.leaders.Delete(p)
				continue
			}
			p.SetConfig(cfg)
			// A recovered log may hold acknowledged data above its last
			// checkpointed HW; a leader alone in its ISR owns all of it.
			if ps.Leader == m.node {
				m.advanceHighWatermark(p, ps)
				continue
			}
			m.leaders.Delete(p)
			if ps.Leader >= 0 {
				follow[fetchKey{t.Name, int32(i)}] = fetchAssign{p: p, topicID: t.ID, leader: ps.Leader, epoch: ps.LeaderEpoch, throttled: m.followerListed(t, int32(i))}
			}
		}
		want[t.Name] = parts
	}
	// Fetchers stop appending to partitions this node now leads or no
	// longer holds before anything else happens to them.
	m.updateFetchers(follow)
	for _, p := range m.logs.Partitions() {
		if !want[p.Topic()][p.Index()] {
			m.leaders.Delete(p)
			if err := m.logs.DeletePartition(p.Topic(), p.Index()); err != nil {
				m.log.Error("deleting partition", "topic", p.Topic(), "partition", p.Index(), "err", err)
			}
		}
	}
}

// LeaderPartition finds the local log of a partition this node leads. The
// log is created on demand when the metadata already names this node leader
// but Reconcile has not caught up, so a produce right after CreateTopics
// does not fail.
func (m *Manager) LeaderPartition(t *raftmeta.Topic, idx int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error) {
	if !t.HasPartition(idx) {
		return nil, raftmeta.PartitionState{}, kerr.UnknownTopicOrPartition
	}
	ps := t.Partitions[idx]
	if ps.Leader != m.node {
		return nil, ps, kerr.NotLeaderForPartition
	}
	p := m.logs.Partition(t.Name, idx)
	if p != nil && p.TopicID() == t.ID {
		return p, ps, nil
	}
	m.replicaMu.Lock()
	defer m.replicaMu.Unlock()
	if cur := m.meta.Image().Topics[t.Name]; cur == nil || cur.ID != t.ID {
		return nil, ps, kerr.UnknownTopicOrPartition
	}
	p, err := m.logs.CreatePartition(t.Name, idx, t.ID, m.TopicPartitionConfig(t))
	if err != nil {
		m.log.Error("creating partition", "topic", t.Name, "partition", idx, "err", err)
		return nil, ps, kerr.KafkaStorageError
	}
	return p, ps, nil
}

// LeaderPartitionAt is LeaderPartition for a request that names the leader
// epoch it expects (KIP-320).
func (m *Manager) LeaderPartitionAt(t *raftmeta.Topic, idx, currentEpoch int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error) {
	p, ps, kerrv := m.LeaderPartition(t, idx)
	if kerrv == nil {
		kerrv = checkLeaderEpoch(currentEpoch, ps)
	}
	return p, ps, kerrv
}

// checkLeaderEpoch applies KIP-320: a client that knows a newer epoch than
// ours is ahead of our metadata; one with an older epoch is fenced.
func checkLeaderEpoch(current int32, ps raftmeta.PartitionState) *kerr.Error {
	switch {
	case current < 0:
		return nil
	case current > ps.LeaderEpoch:
		return kerr.UnknownLeaderEpoch
	case current < ps.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	}
	return nil
}

// TopicPartitionConfig returns a topic's log configuration. Images are
// copy-on-write, so a *raftmeta.Topic pointer identifies one version of a
// topic's configs and can key the cache; Reconcile resets it.
func (m *Manager) TopicPartitionConfig(t *raftmeta.Topic) log.PartitionConfig {
	if v, ok := m.topicConfigs.Load(t); ok {
		return v.(log.PartitionConfig)
	}
	cfg := partitionConfig(m.cfg.EffectiveTopicConfig(t.Configs))
	m.topicConfigs.Store(t, cfg)
	return cfg
}

// minInsyncReplicas returns a topic's min.insync.replicas (cached per topic
// version, like TopicPartitionConfig).
func (m *Manager) minInsyncReplicas(t *raftmeta.Topic) int {
	if v, ok := m.minISR.Load(t); ok {
		return v.(int)
	}
	n := int(m.cfg.EffectiveTopicConfig(t.Configs).Int64("min.insync.replicas"))
	m.minISR.Store(t, n)
	return n
}

// LeaderReady returns this node's log of partition idx of t when this node
// leads it and has a known high watermark: every record in its log is
// committed. A new leader's coordinators load only then, so they never
// serve state that could still be truncated; when it has not,
// CoordinatorRetry fires once an internal partition's HW moves. Otherwise
// nil. (coordruntime.Replicas)
func (m *Manager) LeaderReady(t *raftmeta.Topic, idx int32) *log.Partition {
	p, _, kerrv := m.LeaderPartition(t, idx)
	if kerrv != nil {
		return nil
	}
	if p.HighWatermark() >= p.LogEndOffset() {
		return p
	}
	m.coordPending.Store(true)
	return nil
}

// Replica returns this node's replica of a partition, led or followed, or
// nil. (coordruntime.Replicas)
func (m *Manager) Replica(topic string, idx int32) *log.Partition {
	return m.logs.Partition(topic, idx)
}

// CoordinatorRetry receives when the HW of an internal partition moved
// after LeaderReady answered nil: the coordinators may load now. The
// receiver calls CoordinatorRetried before trying again.
func (m *Manager) CoordinatorRetry() <-chan struct{} { return m.coordKick }

// CoordinatorRetried clears the pending retry CoordinatorRetry announced;
// a LeaderReady that answers nil afterwards arms it again.
func (m *Manager) CoordinatorRetried() { m.coordPending.Store(false) }
