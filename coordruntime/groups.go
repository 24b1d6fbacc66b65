package coordruntime

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// OffsetsTopic is Kafka's internal topic holding group state and offsets.
const OffsetsTopic = "__consumer_offsets"

// Groups is the group coordinator: it runs the group shards of the
// __consumer_offsets partitions this node leads. Each shard is a pure state
// machine (coordinator.Shard); this is the I/O around it: a mutex per
// shard, a timer per shard, and appending the records each call produces
// to the partition (and the materialized store) before the call returns.
type Groups struct {
	env   *Env
	cfg   coordinator.Config
	check time.Duration // offsets.retention.check.interval.ms
	topic *internalTopic[*groupShard]
}

// groupShard owns one loaded shard.
type groupShard struct {
	g  *Groups
	ip *internalPartition

	mu     sync.Mutex // serializes every call on shard and its appends
	shard  *coordinator.Shard
	failed error // an append failed: the shard reloads from the log before the next call

	kick chan struct{} // a call may have moved the next deadline
	stop chan struct{}
	done chan struct{}
}

func newGroups(env *Env, cfg Config) (*Groups, error) {
	g := &Groups{env: env, cfg: cfg.Groups, check: cfg.OffsetsRetentionCheck}
	var err error
	g.topic, err = newInternalTopic(env, OffsetsTopic, storeDir(cfg, groupStateDir), cfg.OffsetsTopic, g.load)
	if err != nil {
		return nil, err
	}
	g.topic.refresh = func(sh *groupShard, img *raftmeta.Image) { sh.onMetadata(ImageTopics(img)) }
	return g, nil
}

// load builds a shard from the partition, then starts its timer.
func (g *Groups) load(ip *internalPartition) (*groupShard, error) {
	sh := &groupShard{g: g, ip: ip,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := sh.replay(); err != nil {
		return nil, err
	}
	go sh.timerLoop()
	// Topics may have changed while the groups were elsewhere.
	sh.onMetadata(ImageTopics(g.env.Image()))
	return sh, nil
}

// replay (re)builds the shard from the store and the log tail above what
// the store covers. The caller holds sh.mu or owns sh exclusively.
func (sh *groupShard) replay() error {
	g := sh.g
	now := g.env.Now()
	shard := coordinator.NewShard(g.cfg)
	err := sh.ip.load(func() { shard = coordinator.NewShard(g.cfg) },
		func(r coordinator.Record) error { return shard.Replay(now, r) })
	if err != nil {
		return err
	}
	sh.shard, sh.failed = shard, nil
	return nil
}

// EnsureTopic creates __consumer_offsets the first time a client looks for
// a coordinator, as Kafka does.
func (g *Groups) EnsureTopic(ctx context.Context) error { return g.topic.ensure(ctx) }

// Do runs fn on the shard coordinating group and returns once the records
// it produced are stored. A non-nil error is the Kafka error to answer
// with instead: this node is not (or not yet) the group's coordinator, or
// the append failed.
func (g *Groups) Do(group string, fn func(*coordinator.Shard)) *kerr.Error {
	sh, kerrv := g.topic.shardFor(func(n int32) int32 { return coordinator.GroupPartition(group, n) })
	if kerrv != nil {
		return kerrv
	}
	if err := sh.do(fn); err != nil {
		return kerr.NotCoordinator
	}
	return nil
}

// CompleteTxnOffsets applies a transaction marker, committed to partition
// part of __consumer_offsets, to the pending transactional offsets of the
// producer on that partition's shard (coordinator.Shard.CompleteTxnOffsets).
// An error means the shard is not loaded here: the transaction coordinator
// retries the marker, and the repeated marker applies the offsets.
func (g *Groups) CompleteTxnOffsets(part int32, producerID int64, commit bool) *kerr.Error {
	if part < 0 {
		return kerr.UnknownTopicOrPartition
	}
	sh, kerrv := g.topic.shardFor(func(n int32) int32 { return min(part, n-1) })
	if kerrv != nil {
		return kerrv
	}
	if sh.ip.part != part {
		return kerr.UnknownTopicOrPartition
	}
	if err := sh.do(func(s *coordinator.Shard) { s.CompleteTxnOffsets(producerID, commit) }); err != nil {
		return kerr.NotCoordinator
	}
	return nil
}

// ListGroups lists the groups of every shard this node coordinates that
// match the filters (ListGroups' StatesFilter and TypesFilter).
func (g *Groups) ListGroups(states, types []string) []kmsg.ListGroupsResponseGroup {
	var out []kmsg.ListGroupsResponseGroup
	for _, sh := range g.topic.loaded() {
		sh.do(func(s *coordinator.Shard) { out = append(out, s.ListGroups(states, types)...) })
	}
	return out
}

// EachOffset calls fn for every committed offset of the groups this node
// coordinates, under each shard's lock in turn (fn must not call back).
func (g *Groups) EachOffset(fn func(group, topic string, partition int32, offset int64)) {
	for _, sh := range g.topic.loaded() {
		sh.mu.Lock()
		sh.shard.EachOffset(fn)
		sh.mu.Unlock()
	}
}

func (sh *groupShard) internal() *internalPartition { return sh.ip }

// do runs fn on the shard, appends the records it produced, and returns
// once they are stored. A failed append leaves the shard's memory ahead of
// its log: the call fails and the shard replays the log before the next
// one, so a write that failed while this node kept the leadership (an ISR
// below min.insync.replicas, a slow follower) does not leave the groups
// without a coordinator until the leadership moves.
func (sh *groupShard) do(fn func(*coordinator.Shard)) error {
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
			sh.g.env.Logger.Error("reloading group coordinator", "partition", sh.ip.part, "err", err)
			return kerr.NotCoordinator
		}
		// Topics may have changed while the shard was failed.
		sh.shard.OnMetadata(sh.g.env.Now(), ImageTopics(sh.g.env.Image()))
	}
	fn(sh.shard)
	err := sh.appendLocked(sh.shard.Drain())
	select {
	case sh.kick <- struct{}{}:
	default:
	}
	return err
}

func (sh *groupShard) appendLocked(recs []coordinator.Record) error {
	if err := sh.ip.append(recs); err != nil {
		sh.g.env.Logger.Error("group coordinator append failed; reloading", "partition", sh.ip.part, "err", err)
		sh.failed = err
		// The groups in memory end here: pending joins and syncs answer
		// NOT_COORDINATOR rather than wait on a shard about to be replaced.
		sh.shard.Unload()
		return kerr.NotCoordinator
	}
	return nil
}

// timerLoop fires the shard's group timers (session and rebalance
// timeouts) and expires old offsets. Deadlines are read on the injected
// clock; the timer only sleeps until the clock says one is due.
func (sh *groupShard) timerLoop() {
	defer close(sh.done)
	env := sh.g.env
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	nextExpiry := env.Now().Add(sh.g.check)
	for {
		sh.mu.Lock()
		next := sh.shard.NextDeadline()
		sh.mu.Unlock()
		if next.IsZero() || next.After(nextExpiry) {
			next = nextExpiry
		}
		timer.Reset(max(next.Sub(env.Now()), 0))
		select {
		case <-sh.stop:
			return
		case <-sh.kick:
			continue
		case <-timer.C:
		}
		now := env.Now()
		topics := ImageTopics(env.Image())
		sh.do(func(s *coordinator.Shard) {
			s.Tick(now, topics)
			if !now.Before(nextExpiry) {
				s.ExpireOffsets(now)
			}
		})
		if !now.Before(nextExpiry) {
			nextExpiry = now.Add(sh.g.check)
		}
	}
}

func (sh *groupShard) onMetadata(topics coordinator.TopicsView) {
	now := sh.g.env.Now()
	sh.do(func(s *coordinator.Shard) { s.OnMetadata(now, topics) })
}

// unload stops the timer and ends the shard's groups.
func (sh *groupShard) unload() {
	close(sh.stop)
	<-sh.done
	sh.mu.Lock()
	sh.shard.Unload()
	sh.failed = kerr.NotCoordinator
	sh.mu.Unlock()
}
