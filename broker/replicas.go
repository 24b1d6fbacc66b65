package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// partitionConfig turns a topic's effective configuration into the log's.
func partitionConfig(tc config.TopicConfig) log.PartitionConfig {
	segmentBytes := tc.Int64("segment.bytes")
	if tc.String("internal.segment.bytes") != "" {
		segmentBytes = tc.Int64("internal.segment.bytes")
	}
	return log.PartitionConfig{
		SegmentBytes:         segmentBytes,
		SegmentMs:            tc.Int64("segment.ms"),
		SegmentIndexBytes:    int32(tc.Int64("segment.index.bytes")),
		IndexIntervalBytes:   int32(tc.Int64("index.interval.bytes")),
		RetentionMs:          tc.Int64("retention.ms"),
		RetentionBytes:       tc.Int64("retention.bytes"),
		FlushMessages:        tc.Int64("flush.messages"),
		FlushMs:              tc.Int64("flush.ms"),
		MaxMessageBytes:      int32(tc.Int64("max.message.bytes")),
		MessageTimestampType: tc.String("message.timestamp.type"),

		CleanupPolicy:          tc.String("cleanup.policy"),
		DeleteRetentionMs:      tc.Int64("delete.retention.ms"),
		MinCompactionLagMs:     tc.Int64("min.compaction.lag.ms"),
		MaxCompactionLagMs:     tc.Int64("max.compaction.lag.ms"),
		MinCleanableDirtyRatio: tc.Float64("min.cleanable.dirty.ratio"),
	}
}

// isReplica reports whether this node holds a replica of the partition.
func (s *Server) isReplica(ps raftmeta.PartitionState) bool {
	for _, r := range ps.Replicas {
		if r == s.cfg.NodeID {
			return true
		}
	}
	return false
}

// reconcile makes the local logs match the image: create the replicas this
// node is assigned, apply topic config changes, delete replicas of topics
// that are gone (or were recreated under a new id).
//
// reconcile and the on-demand creation in leaderPartition hold replicaMu and
// read the newest image under it, so a partition of a topic being deleted is
// never recreated from a stale image.
func (s *Server) reconcile() {
	s.replicaMu.Lock()
	defer s.replicaMu.Unlock()
	img := s.meta.Image()
	s.topicConfigs.Clear()
	s.cluster.minISR.Clear()
	want := map[string]map[int32]bool{}
	follow := map[fetchKey]fetchAssign{}
	for _, t := range img.Topics {
		cfg := s.topicPartitionConfig(t)
		parts := map[int32]bool{}
		for i, ps := range t.Partitions {
			if !s.isReplica(ps) {
				continue
			}
			parts[int32(i)] = true
			p := s.logs.Partition(t.Name, int32(i))
			if p == nil || p.TopicID() != t.ID {
				var err error
				if p, err = s.logs.CreatePartition(t.Name, int32(i), t.ID, cfg); err != nil {
					s.log.Error("creating partition", "topic", t.Name, "partition", i, "err", err)
					continue
				}
			}
			p.SetConfig(cfg)
			// A recovered log may hold acknowledged data above its last
			// checkpointed HW; a leader alone in its ISR owns all of it.
			if ps.Leader == s.cfg.NodeID {
				s.advanceHighWatermark(p, ps)
				continue
			}
			s.cluster.leaders.Delete(p)
			if ps.Leader >= 0 {
				follow[fetchKey{t.Name, int32(i)}] = fetchAssign{p: p, topicID: t.ID, leader: ps.Leader, epoch: ps.LeaderEpoch}
			}
		}
		want[t.Name] = parts
	}
	// Fetchers stop appending to partitions this node now leads or no
	// longer holds before anything else happens to them.
	s.updateFetchers(follow)
	for _, p := range s.logs.Partitions() {
		if !want[p.Topic()][p.Index()] {
			s.cluster.leaders.Delete(p)
			if err := s.logs.DeletePartition(p.Topic(), p.Index()); err != nil {
				s.log.Error("deleting partition", "topic", p.Topic(), "partition", p.Index(), "err", err)
			}
		}
	}
}

// leaderPartition finds the local log of a partition this node leads. The
// log is created on demand when the metadata already names this node leader
// but the reconcile loop has not caught up, so a produce right after
// CreateTopics does not fail.
func (s *Server) leaderPartition(t *raftmeta.Topic, idx int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error) {
	if t == nil || idx < 0 || int(idx) >= len(t.Partitions) {
		return nil, raftmeta.PartitionState{}, kerr.UnknownTopicOrPartition
	}
	ps := t.Partitions[idx]
	if ps.Leader != s.cfg.NodeID {
		return nil, ps, kerr.NotLeaderForPartition
	}
	p := s.logs.Partition(t.Name, idx)
	if p != nil && p.TopicID() == t.ID {
		return p, ps, nil
	}
	s.replicaMu.Lock()
	defer s.replicaMu.Unlock()
	if cur := s.meta.Image().Topics[t.Name]; cur == nil || cur.ID != t.ID {
		return nil, ps, kerr.UnknownTopicOrPartition
	}
	p, err := s.logs.CreatePartition(t.Name, idx, t.ID, s.topicPartitionConfig(t))
	if err != nil {
		s.log.Error("creating partition", "topic", t.Name, "partition", idx, "err", err)
		return nil, ps, kerr.KafkaStorageError
	}
	return p, ps, nil
}

// topicByID resolves a topic id in the image.
func topicByID(img *raftmeta.Image, id [16]byte) *raftmeta.Topic {
	name, ok := img.TopicIDs[id]
	if !ok {
		return nil
	}
	return img.Topics[name]
}

// topicPartitionConfig returns a topic's log configuration. Images are
// copy-on-write, so a *raftmeta.Topic pointer identifies one version of a
// topic's configs and can key the cache; reconcile resets it.
func (s *Server) topicPartitionConfig(t *raftmeta.Topic) log.PartitionConfig {
	if v, ok := s.topicConfigs.Load(t); ok {
		return v.(log.PartitionConfig)
	}
	cfg := partitionConfig(s.cfg.EffectiveTopicConfig(t.Configs))
	s.topicConfigs.Store(t, cfg)
	return cfg
}
