package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// offsetsTopic is Kafka's internal topic holding group state and offsets.
const offsetsTopic = "__consumer_offsets"

// groupCoordinator runs the group shards of the __consumer_offsets
// partitions this node leads. Each shard is a pure state machine
// (coordinator.Shard); this is the I/O around it: a mutex per shard, a timer
// per shard, and appending the records each call produces to the
// partition (and the materialized store) before the call's response goes
// out.
type groupCoordinator struct {
	srv *Server
	// st materializes the records of __consumer_offsets: those this node
	// appends as coordinator, and those it replicates as a follower.
	st  *internalStore
	cfg coordinator.Config

	mu     sync.Mutex
	shards map[int32]*shardRuntime
	// creating guards the one-time creation of __consumer_offsets.
	creating sync.Mutex
}

// shardRuntime owns one loaded shard.
type shardRuntime struct {
	gc        *groupCoordinator
	ip        *internalPartition
	partition int32
	p         *log.Partition

	mu     sync.Mutex // serializes every call on shard and its appends
	shard  *coordinator.Shard
	failed error // set when an append failed: the shard must reload

	kick chan struct{} // a call may have moved the next deadline
	stop chan struct{}
	done chan struct{}
}

func newGroupCoordinator(s *Server) (*groupCoordinator, error) {
	st, err := newInternalStore(s, offsetsTopic, groupStateDir)
	if err != nil {
		return nil, err
	}
	cfg := coordinator.DefaultConfig()
	c := s.cfg
	cfg.Classic.MinSessionTimeout = c.Millis("group.min.session.timeout.ms")
	cfg.Classic.MaxSessionTimeout = c.Millis("group.max.session.timeout.ms")
	cfg.Classic.InitialRebalanceDelay = c.Millis("group.initial.rebalance.delay.ms")
	cfg.Classic.MaxSize = int(c.Int("group.max.size"))
	cfg.Consumer.SessionTimeout = c.Millis("group.consumer.session.timeout.ms")
	cfg.Consumer.HeartbeatInterval = c.Millis("group.consumer.heartbeat.interval.ms")
	cfg.Consumer.MaxSize = int(c.Int("group.consumer.max.size"))
	cfg.Consumer.Assignors = c.List("group.consumer.assignors")
	cfg.OffsetsRetention = time.Duration(c.Int("offsets.retention.minutes")) * time.Minute
	cfg.MaxMetadataSize = int(c.Int("offset.metadata.max.bytes"))
	return &groupCoordinator{srv: s, st: st, cfg: cfg, shards: map[int32]*shardRuntime{}}, nil
}

// close unloads every shard and closes the store.
func (gc *groupCoordinator) close() error {
	gc.mu.Lock()
	shards := gc.shards
	gc.shards = map[int32]*shardRuntime{}
	gc.mu.Unlock()
	for _, sr := range shards {
		gc.st.release(sr.ip)
		sr.unload()
	}
	return gc.st.close()
}

// reconcile loads the shards of partitions this node now leads and unloads
// the others, whose replicas (where this node holds one) the store then
// materializes as a follower. Called with every new metadata image.
func (gc *groupCoordinator) reconcile(img *raftmeta.Image) {
	t := img.Topics[offsetsTopic]
	lead := map[int32]bool{}
	if t != nil {
		for i, ps := range t.Partitions {
			if ps.Leader == gc.srv.cfg.NodeID {
				lead[int32(i)] = true
			}
		}
	}
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for part, sr := range gc.shards {
		if t == nil || !lead[part] || sr.p.TopicID() != t.ID {
			delete(gc.shards, part)
			gc.st.release(sr.ip)
			go sr.unload()
		}
	}
	gc.st.follow(gc.srv.followedPartitions(img, offsetsTopic))
	topics := imageTopics{img}
	for part := range lead {
		if sr := gc.shards[part]; sr != nil {
			sr.onMetadata(topics)
			continue
		}
		p, _, kerrv := gc.srv.replicas.LeaderPartition(t, part)
		if kerrv != nil || !gc.srv.replicas.LeaderCaughtUp(p) {
			continue
		}
		sr, err := gc.load(part, p)
		if err != nil {
			gc.srv.log.Error("loading group coordinator", "partition", part, "err", err)
			continue
		}
		gc.shards[part] = sr
	}
}

// load rebuilds a shard from the store and the log tail above what the
// store covers, then starts its timer.
func (gc *groupCoordinator) load(part int32, p *log.Partition) (*shardRuntime, error) {
	now := gc.srv.now()
	ip := &internalPartition{srv: gc.srv, topic: offsetsTopic, part: part, p: p, st: gc.st}
	shard := coordinator.NewShard(gc.cfg)
	err := ip.load(func() { shard = coordinator.NewShard(gc.cfg) },
		func(r coordinator.Record) error { return shard.Replay(now, r) })
	if err != nil {
		return nil, err
	}
	sr := &shardRuntime{gc: gc, ip: ip, partition: part, p: p, shard: shard,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go sr.timerLoop()
	// Topics may have changed while the groups were elsewhere.
	sr.onMetadata(imageTopics{gc.srv.meta.Image()})
	return sr, nil
}

// shardFor returns the loaded shard coordinating a group, or the error
// Kafka answers when this node is not (or not yet) its coordinator.
func (gc *groupCoordinator) shardFor(group string) (*shardRuntime, *kerr.Error) {
	t := gc.srv.meta.Image().Topics[offsetsTopic]
	if t == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	part := coordinator.GroupPartition(group, int32(len(t.Partitions)))
	if t.Partitions[part].Leader != gc.srv.cfg.NodeID {
		return nil, kerr.NotCoordinator
	}
	gc.mu.Lock()
	sr := gc.shards[part]
	gc.mu.Unlock()
	if sr == nil {
		return nil, kerr.CoordinatorLoadInProgress
	}
	return sr, nil
}

// do runs fn on the shard, appends the records it produced, and returns
// once they are stored. A failed append marks the shard failed: its memory
// is ahead of its log, so it answers NOT_COORDINATOR until reloaded.
func (sr *shardRuntime) do(fn func(*coordinator.Shard)) error {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.failed != nil {
		return kerr.NotCoordinator
	}
	fn(sr.shard)
	err := sr.appendLocked(sr.shard.Drain())
	select {
	case sr.kick <- struct{}{}:
	default:
	}
	return err
}

func (sr *shardRuntime) appendLocked(recs []coordinator.Record) error {
	if err := sr.ip.append(recs); err != nil {
		sr.gc.srv.log.Error("group coordinator append failed; unloading", "partition", sr.partition, "err", err)
		sr.failed = err
		return kerr.NotCoordinator
	}
	return nil
}

// timerLoop fires the shard's group timers (session and rebalance
// timeouts) and expires old offsets.
func (sr *shardRuntime) timerLoop() {
	defer close(sr.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	nextExpiry := sr.gc.srv.now().Add(sr.gc.srv.cfg.OffsetsRetentionCheck)
	for {
		sr.mu.Lock()
		next := sr.shard.NextDeadline()
		sr.mu.Unlock()
		if next.IsZero() || next.After(nextExpiry) {
			next = nextExpiry
		}
		timer.Reset(max(next.Sub(sr.gc.srv.now()), 0))
		select {
		case <-sr.stop:
			return
		case <-sr.kick:
			continue
		case <-timer.C:
		}
		now := sr.gc.srv.now()
		topics := imageTopics{sr.gc.srv.meta.Image()}
		sr.do(func(s *coordinator.Shard) {
			s.Tick(now, topics)
			if !now.Before(nextExpiry) {
				s.ExpireOffsets(now)
			}
		})
		if !now.Before(nextExpiry) {
			nextExpiry = now.Add(sr.gc.srv.cfg.OffsetsRetentionCheck)
		}
	}
}

func (sr *shardRuntime) onMetadata(topics imageTopics) {
	now := sr.gc.srv.now()
	sr.do(func(s *coordinator.Shard) { s.OnMetadata(now, topics) })
}

// unload stops the timer and ends the shard's groups.
func (sr *shardRuntime) unload() {
	close(sr.stop)
	<-sr.done
	sr.mu.Lock()
	sr.shard.Unload()
	sr.failed = kerr.NotCoordinator
	sr.mu.Unlock()
}

// ensureOffsetsTopic creates __consumer_offsets the first time a client
// looks for a coordinator, as Kafka does.
func (gc *groupCoordinator) ensureOffsetsTopic(ctx context.Context) error {
	c := gc.srv.cfg
	return gc.srv.ensureInternalTopic(ctx, &gc.creating, offsetsTopic, c.OffsetsTopicPartitions, c.OffsetsTopicReplication, c.Int("offsets.topic.segment.bytes"))
}
