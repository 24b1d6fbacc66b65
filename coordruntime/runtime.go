// Package coordruntime runs the coordinators that keep their state in
// internal, compacted topics: the group coordinator on __consumer_offsets
// (groups.go), the share coordinator on __share_group_state (sharestate.go)
// and the transaction coordinator on __transaction_state (txn.go). All are
// users of one machinery, internalTopic:
//
//   - for each partition of its topic this node leads (and has committed
//     up to its log end), load the partition's records into a shard: first
//     what the pebble store has materialized, then the log tail above it;
//   - serve requests on the loaded shard; what a request changes is
//     appended through the replica runtime's leader-append path and
//     answered once committed;
//   - keep the store close behind the partition's high watermark, in bulk
//     passes off the request path, both while this node leads the
//     partition and while it only follows it, so a later load replays a
//     short tail;
//   - on leadership loss, unload the shard.
//
// The state machines are pure and live in coordinator/; this package is the
// I/O around them. It reaches the rest of the node only through the narrow
// interfaces of Env, which the front end wires at start.
//
// Lock order (a lock is taken only while holding locks above it, never
// below it):
//
//	internalTopic.creating   creating the topic; held across the controller call
//	internalTopic.mu         the loaded shards; held across a load and a refresh
//	groupShard.mu, txnShard.mu
//	                         one group or transaction shard: its state machine and its appends
//	                         (the log append, the wait for the ISR, the fsync)
//	storePart.mu             one partition's store entries and role; held while
//	                         a load or a materialization pass reads the log
//	log.Partition locks      (log/partition.go); with the replica runtime's
//	                         leader state, taken inside Appender.AppendCommitted
//
// internalStore.mu, shareStatePart.mu and shareStatePart.qmu are leaves:
// held only to look up or swap a map or a queue, with nothing taken under
// them. The share state writer holds no lock across its append: it takes
// the queue under qmu, appends, then publishes the states under mu.
package coordruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// Appender is the replica runtime's leader-append path.
type Appender interface {
	// AppendCommitted appends batch to p, which this node leads in state
	// ps, and returns once the batch is committed (on the ISR) and fsynced
	// where the topic's flush policy asks. It refuses the batch when this
	// node no longer leads p at ps's leader epoch (NOT_LEADER_OR_FOLLOWER)
	// or the ISR is below min.insync.replicas (NOT_ENOUGH_REPLICAS, or
	// NOT_ENOUGH_REPLICAS_AFTER_APPEND once appended).
	AppendCommitted(ctx context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) (log.AppendResult, error)
}

// Replicas is what the runtime needs of the local replicas.
type Replicas interface {
	// LeaderReady returns this node's log of partition idx of t when this
	// node leads it and everything in the log is committed (HW = LEO): the
	// point from which a coordinator may load it. Otherwise nil.
	LeaderReady(t *raftmeta.Topic, idx int32) *log.Partition
	// Replica returns this node's replica of a partition, or nil.
	Replica(topic string, idx int32) *log.Partition
}

// TopicCreator creates the internal topics through the active controller.
type TopicCreator interface {
	// CreateTopic creates a topic and returns once this node has applied
	// the metadata that holds it. A topic that exists already is no error.
	CreateTopic(ctx context.Context, req raftmeta.CreateTopicRequest) error
}

// Env is everything the runtime takes from the node around it.
type Env struct {
	NodeID int32
	// Image returns the current metadata image.
	Image func() *raftmeta.Image
	// Now is the clock every deadline and record timestamp is read from.
	Now      func() time.Time
	Logger   *slog.Logger
	Appender Appender
	Replicas Replicas
	Topics   TopicCreator
	// Loaded, if set, is told how many records each load replayed from
	// the log (the metrics).
	Loaded func(topic string, records int)

	// ctx ends with the node or when the runtime closes: writes in
	// flight give up.
	ctx context.Context
}

// Config is the runtime's configuration, in Kafka's terms.
type Config struct {
	// Dir is where the stores live: the first log dir.
	Dir string
	// Groups configures the group state machines.
	Groups coordinator.Config
	// OffsetsRetentionCheck is offsets.retention.check.interval.ms.
	OffsetsRetentionCheck time.Duration
	OffsetsTopic          TopicSpec
	ShareStateTopic       TopicSpec
	Txns                  TxnConfig
}

// TopicSpec is how an internal topic is created.
type TopicSpec struct {
	Partitions        int32
	ReplicationFactor int16
	SegmentBytes      int64
	// MinISR, if set, is the topic's min.insync.replicas, capped at the
	// replication factor it gets.
	MinISR int
}

// ConfigFrom reads the runtime's configuration from the broker's.
func ConfigFrom(c *config.Broker) Config {
	g := coordinator.DefaultConfig()
	g.Classic.MinSessionTimeout = c.Millis("group.min.session.timeout.ms")
	g.Classic.MaxSessionTimeout = c.Millis("group.max.session.timeout.ms")
	g.Classic.InitialRebalanceDelay = c.Millis("group.initial.rebalance.delay.ms")
	g.Classic.MaxSize = int(c.Int("group.max.size"))
	g.Consumer.SessionTimeout = c.Millis("group.consumer.session.timeout.ms")
	g.Consumer.HeartbeatInterval = c.Millis("group.consumer.heartbeat.interval.ms")
	g.Consumer.MaxSize = int(c.Int("group.consumer.max.size"))
	g.Consumer.Assignors = c.List("group.consumer.assignors")
	g.OffsetsRetention = time.Duration(c.Int("offsets.retention.minutes")) * time.Minute
	g.MaxMetadataSize = int(c.Int("offset.metadata.max.bytes"))
	segment := c.Int("offsets.topic.segment.bytes")
	return Config{
		Dir:                   c.LogDirs[0],
		Groups:                g,
		OffsetsRetentionCheck: c.OffsetsRetentionCheck,
		OffsetsTopic: TopicSpec{Partitions: c.OffsetsTopicPartitions,
			ReplicationFactor: c.OffsetsTopicReplication, SegmentBytes: segment},
		ShareStateTopic: TopicSpec{Partitions: int32(c.Int("share.coordinator.state.topic.num.partitions")),
			ReplicationFactor: int16(c.Int("share.coordinator.state.topic.replication.factor")), SegmentBytes: segment,
			MinISR: int(c.Int("share.coordinator.state.topic.min.isr"))},
		Txns: TxnConfig{
			State: coordinator.TxnConfig{MaxTimeout: c.Millis("transaction.max.timeout.ms"),
				IDExpiration: c.Millis("transactional.id.expiration.ms")},
			AbortInterval: c.Millis("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
			Topic: TopicSpec{Partitions: int32(c.Int("transaction.state.log.num.partitions")),
				ReplicationFactor: int16(c.Int("transaction.state.log.replication.factor")),
				SegmentBytes:      c.Int("transaction.state.log.segment.bytes"),
				MinISR:            int(c.Int("transaction.state.log.min.isr"))},
		},
	}
}

// The materialized stores live in the first log dir, beside the
// partitions; the log manager is told to leave them alone (Dirs).
const (
	groupStateDir = "__coordinator_state"
	shareStateDir = "__share_state"
	txnStateDir   = "__txn_state"
)

// Dirs names the directories the runtime keeps inside the first log dir,
// which the log manager must not take for partitions.
func Dirs() []string { return []string{groupStateDir, shareStateDir, txnStateDir} }

// Runtime is the node's coordinator runtime: the group coordinator, the
// share coordinator and the transaction coordinator.
type Runtime struct {
	cancel context.CancelFunc

	// Groups serves the group APIs' shards on __consumer_offsets.
	Groups *Groups
	// ShareState serves share-partition state on __share_group_state.
	ShareState *ShareCoordinator
	// Txns is the transaction coordinator on __transaction_state.
	Txns *Txns

	// reconcileMu serializes Reconcile; reconciled is the Applied index
	// of the newest image reconciled.
	reconcileMu sync.Mutex
	reconciled  uint64
}

// New opens the stores and returns the runtime, with nothing loaded until
// the first Reconcile. Writes in flight give up when ctx (the node's
// lifetime) ends, or at Close. The transaction coordinator takes producer
// ids from ids and writes its markers through markers.
func New(ctx context.Context, cfg Config, env Env, ids coordinator.ProducerIDs, markers MarkerWriter) (*Runtime, error) {
	var cancel context.CancelFunc
	env.ctx, cancel = context.WithCancel(ctx)
	rt := &Runtime{cancel: cancel}
	var err error
	if rt.Groups, err = newGroups(&env, cfg); err != nil {
		cancel()
		return nil, err
	}
	if rt.ShareState, err = newShareCoordinator(&env, cfg); err != nil {
		cancel()
		return nil, errors.Join(err, rt.Groups.topic.close())
	}
	if rt.Txns, err = newTxns(&env, cfg, ids, markers); err != nil {
		cancel()
		return nil, errors.Join(err, rt.Groups.topic.close(), rt.ShareState.topic.close())
	}
	return rt, nil
}

// Reconcile loads the shards of the internal partitions this node now
// leads and unloads the others. Called with every new metadata image.
//
// An image older than one already reconciled is ignored. Images arrive
// from more than one goroutine (the node's metadata watcher, and a
// coordinator that has just created its topic), so an older one can come
// second; applied, it would unload the shards the newer one loaded, and
// with no newer image to follow they would stay unloaded.
func (rt *Runtime) Reconcile(img *raftmeta.Image) {
	rt.reconcileMu.Lock()
	defer rt.reconcileMu.Unlock()
	if img.Applied < rt.reconciled {
		return
	}
	rt.reconciled = img.Applied
	rt.Groups.topic.reconcile(img)
	rt.ShareState.topic.reconcile(img)
	rt.Txns.topic.reconcile(img)
}

// Close unloads every shard and closes the stores. Writes in flight fail.
func (rt *Runtime) Close() error {
	rt.cancel()
	return errors.Join(rt.Groups.topic.close(), rt.ShareState.topic.close(), rt.Txns.topic.close())
}

// FollowerAdvanced tells the runtime that the replica fetcher stored
// records of a partition of topic this node follows. It only signals: the
// store catches up in bulk on its own goroutine, off the fetch path.
func (rt *Runtime) FollowerAdvanced(topic string) {
	if is := rt.store(topic); is != nil {
		is.wake()
	}
}

// FollowerTruncated tells the runtime that this node's follower replica p
// was truncated, so a store holding records the log lost is rebuilt.
func (rt *Runtime) FollowerTruncated(p *log.Partition) {
	if is := rt.store(p.Topic()); is != nil {
		is.truncated(p)
	}
}

// store returns the store materializing topic, or nil when topic is not a
// coordinator's.
func (rt *Runtime) store(topic string) *internalStore {
	switch topic {
	case OffsetsTopic:
		return rt.Groups.topic.store
	case ShareStateTopic:
		return rt.ShareState.topic.store
	case TxnStateTopic:
		return rt.Txns.topic.store
	}
	return nil
}

// shard is what internalTopic needs of a loaded shard.
type shard interface {
	// internal is the partition the shard was loaded from and appends to.
	internal() *internalPartition
	// unload stops the shard; requests on it fail from then on.
	unload()
}

// internalTopic is the machinery every coordinator on an internal topic
// shares: the topic's creation, its store, and one loaded shard per
// partition this node leads.
type internalTopic[S shard] struct {
	env   *Env
	name  string
	spec  TopicSpec
	store *internalStore
	// load builds the shard of a partition this node now leads, replaying
	// the partition's records into it (see internalPartition.load).
	load func(ip *internalPartition) (S, error)
	// refresh, if set, is called with each new image for every shard that
	// stays loaded.
	refresh func(S, *raftmeta.Image)

	creating sync.Mutex
	mu       sync.Mutex
	shards   map[int32]S
}

func newInternalTopic[S shard](env *Env, name, dir string, spec TopicSpec, load func(*internalPartition) (S, error)) (*internalTopic[S], error) {
	st, err := openInternalStore(name, dir, env.Logger, env.Loaded)
	if err != nil {
		return nil, err
	}
	return &internalTopic[S]{env: env, name: name, spec: spec, store: st, load: load, shards: map[int32]S{}}, nil
}

// reconcile loads the shards of the partitions this node now leads and
// unloads the others, whose replicas (where this node holds one) the store
// then materializes as a follower.
func (it *internalTopic[S]) reconcile(img *raftmeta.Image) {
	t := img.Topics[it.name]
	it.mu.Lock()
	defer it.mu.Unlock()
	// A shard is loaded for one leader epoch (internalPartition.current):
	// a new epoch, even with this node still the leader, loads a new
	// shard, as Kafka's coordinators reload on a new leader epoch.
	for part, sh := range it.shards {
		ip := sh.internal()
		if !t.HasPartition(part) || t.Partitions[part].Leader != it.env.NodeID ||
			t.Partitions[part].LeaderEpoch != ip.leaderEpoch || ip.p.TopicID() != t.ID {
			delete(it.shards, part)
			it.store.release(ip)
			go sh.unload()
		}
	}
	it.store.follow(it.followed(img))
	if t == nil {
		return
	}
	for i, ps := range t.Partitions {
		part := int32(i)
		if ps.Leader != it.env.NodeID {
			continue
		}
		if sh, ok := it.shards[part]; ok {
			if it.refresh != nil {
				it.refresh(sh, img)
			}
			continue
		}
		p := it.env.Replicas.LeaderReady(t, part)
		if p == nil {
			continue
		}
		sh, err := it.load(&internalPartition{env: it.env, topic: it.name, part: part, p: p, st: it.store, leaderEpoch: ps.LeaderEpoch})
		if err != nil {
			it.env.Logger.Error("loading coordinator", "topic", it.name, "partition", part, "err", err)
			continue
		}
		it.shards[part] = sh
	}
}

// followed returns the local replicas of the topic's partitions that this
// node holds but does not lead.
func (it *internalTopic[S]) followed(img *raftmeta.Image) map[int32]*log.Partition {
	out := map[int32]*log.Partition{}
	t := img.Topics[it.name]
	if t == nil {
		return out
	}
	for i, ps := range t.Partitions {
		if ps.Leader == it.env.NodeID || !slices.Contains(ps.Replicas, it.env.NodeID) {
			continue
		}
		if p := it.env.Replicas.Replica(it.name, int32(i)); p != nil && p.TopicID() == t.ID {
			out[int32(i)] = p
		}
	}
	return out
}

// shardFor returns the loaded shard of the partition a key hashes to
// (partitionOf, given the topic's partition count), or the error Kafka
// answers when this node is not (or not yet) its coordinator.
func (it *internalTopic[S]) shardFor(partitionOf func(n int32) int32) (S, *kerr.Error) {
	var none S
	t := it.env.Image().Topics[it.name]
	if t == nil {
		return none, kerr.CoordinatorNotAvailable
	}
	part := partitionOf(int32(len(t.Partitions)))
	if t.Partitions[part].Leader != it.env.NodeID {
		return none, kerr.NotCoordinator
	}
	it.mu.Lock()
	sh, ok := it.shards[part]
	it.mu.Unlock()
	if !ok {
		return none, kerr.CoordinatorLoadInProgress
	}
	return sh, nil
}

// loaded returns the shards loaded now.
func (it *internalTopic[S]) loaded() []S {
	it.mu.Lock()
	defer it.mu.Unlock()
	out := make([]S, 0, len(it.shards))
	for _, sh := range it.shards {
		out = append(out, sh)
	}
	return out
}

// close unloads every shard and closes the store.
func (it *internalTopic[S]) close() error {
	it.mu.Lock()
	shards := it.shards
	it.shards = map[int32]S{}
	it.mu.Unlock()
	for _, sh := range shards {
		it.store.release(sh.internal())
		sh.unload()
	}
	return it.store.close()
}

// ensure creates the topic the first time it is needed, as Kafka does for
// its internal topics: compacted, with the replication factor (and
// min.insync.replicas) capped at the brokers there are.
func (it *internalTopic[S]) ensure(ctx context.Context) error {
	if it.env.Image().Topics[it.name] != nil {
		return nil
	}
	it.creating.Lock()
	defer it.creating.Unlock()
	img := it.env.Image()
	if img.Topics[it.name] != nil {
		return nil
	}
	rf := min(it.spec.ReplicationFactor, int16(len(img.UnfencedBrokers())))
	cfgs := map[string]*string{
		"cleanup.policy":   ptr("compact"),
		"compression.type": ptr("producer"),
		"segment.bytes":    ptr(fmt.Sprint(it.spec.SegmentBytes)),
	}
	if it.spec.MinISR > 0 {
		cfgs["min.insync.replicas"] = ptr(fmt.Sprint(min(it.spec.MinISR, int(max(rf, 1)))))
	}
	return it.env.Topics.CreateTopic(ctx, raftmeta.CreateTopicRequest{
		Name: it.name, NumPartitions: it.spec.Partitions, ReplicationFactor: max(rf, 1), Configs: cfgs,
	})
}

func ptr(s string) *string { return &s }

// storeDir is where the store of an internal topic lives.
func storeDir(cfg Config, dir string) string { return filepath.Join(cfg.Dir, dir) }
