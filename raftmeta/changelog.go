package raftmeta

import (
	"context"
	"encoding/base64"
	"log/slog"
	"maps"
	"slices"
)

// propose proposes recs and, once they are applied, writes one INFO line
// per administrative change (topic created or deleted, partitions added,
// configs altered, broker registered, fenced or unfenced) and per partition
// whose leader or ISR moved. Only the active controller logs them, so a
// cluster's logs name each change once, on the node that decided it;
// before is the image the change was decided against, which still names a
// topic being deleted.
func (c *Controller) propose(ctx context.Context, before *Image, recs ...Record) (*Image, error) {
	after, err := c.n.Propose(ctx, recs...)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		logChange(c.n.log, before, r, c.d.SensitiveBrokerConfig)
	}
	return after, nil
}

// logChange writes the line for one applied record; see propose. The
// values of broker configs sensitive names (nil: none) are not written.
func logChange(l *slog.Logger, before *Image, r Record, sensitive func(string) bool) {
	switch r := r.(type) {
	case *CreateTopic:
		rf := 0
		if len(r.Partitions) > 0 {
			rf = len(r.Partitions[0].Replicas)
		}
		l.Info("created topic", "topic", r.Name, "topic_id", topicIDString(r.ID),
			"partitions", len(r.Partitions), "replication_factor", rf, "configs", sortedConfig(r.Configs))
	case *DeleteTopic:
		l.Info("deleted topic", "topic", before.TopicIDs[r.ID], "topic_id", topicIDString(r.ID))
	case *CreatePartitions:
		t := before.TopicByID(r.TopicID)
		if t == nil {
			return
		}
		l.Info("added partitions", "topic", t.Name, "from", len(t.Partitions), "to", len(t.Partitions)+len(r.New))
	case *AlterTopicConfigs:
		l.Info("altered topic configs", "topic", before.TopicIDs[r.TopicID], "set", sortedConfig(r.Set), "deleted", r.Delete)
	case *AlterGroupConfigs:
		l.Info("altered group configs", "group", r.Group, "set", sortedConfig(r.Set), "deleted", r.Delete)
	case *AlterBrokerConfigs:
		set := r.Set
		if sensitive != nil {
			set = maps.Clone(set)
			for k := range set {
				if sensitive(k) {
					set[k] = "[hidden]"
				}
			}
		}
		l.Info("altered broker configs", "resource", r.Broker, "set", sortedConfig(set), "deleted", r.Delete)
	case *AlterClientQuota:
		l.Info("altered client quota", "entity", r.Entity.String(), "set", r.Set, "removed", r.Remove)
	case *RegisterBroker:
		l.Info("broker registered", "broker", r.ID, "rack", r.Rack)
	case *FenceBroker:
		l.Info("broker fenced", "broker", r.ID, "epoch", r.Epoch)
	case *UnfenceBroker:
		l.Info("broker unfenced", "broker", r.ID, "epoch", r.Epoch)
	case *ChangePartition:
		logPartitionChange(l, before, r)
	case *AllocateProducerIDs:
		l.Debug("allocated producer ids", "broker", r.BrokerID, "first", r.First, "count", r.Count)
	}
}

// logPartitionChange logs a leader, ISR or replica set move of one
// partition.
func logPartitionChange(l *slog.Logger, before *Image, r *ChangePartition) {
	t := before.TopicByID(r.TopicID)
	if !t.HasPartition(r.Partition) {
		return
	}
	old := t.Partitions[r.Partition]
	attrs := []any{"topic", t.Name, "partition", r.Partition}
	replicasMoved := r.Replicas != nil && !slices.Equal(r.Replicas, old.Replicas)
	if old.Leader == r.Leader && slices.Equal(old.ISR, r.ISR) && !replicasMoved {
		// A new leader epoch for the same leader (its broker registered
		// again after a restart): nothing an operator acts on.
		l.Debug("partition leader epoch bumped", append(attrs, "leader", r.Leader, "leader_epoch", r.LeaderEpoch)...)
		return
	}
	what := "partition replicas changed"
	switch {
	case old.Leader != r.Leader:
		what = "partition leader changed"
		attrs = append(attrs, "leader", r.Leader, "previous_leader", old.Leader, "leader_epoch", r.LeaderEpoch)
	case len(r.ISR) < len(old.ISR):
		what = "partition ISR shrunk"
	case len(r.ISR) > len(old.ISR):
		what = "partition ISR expanded"
	}
	attrs = append(attrs, "isr", r.ISR, "previous_isr", old.ISR)
	if replicasMoved {
		attrs = append(attrs, "replicas", r.Replicas, "previous_replicas", old.Replicas)
	}
	l.Info(what, attrs...)
}

// sortedConfig renders a config map as key=value pairs in key order, so a
// line reads the same on every run.
func sortedConfig(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// topicIDString renders a topic id as Kafka prints it (URL-safe base64
// without padding).
func topicIDString(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}
