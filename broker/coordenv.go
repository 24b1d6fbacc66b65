package broker

// The coordinator runtime's view of this node: small adapters from the
// interfaces coordruntime declares to the replica runtime, the controller
// client and the metrics.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) coordEnv() coordruntime.Env {
	return coordruntime.Env{
		NodeID:   s.cfg.NodeID,
		Image:    s.meta.Image,
		Now:      s.now,
		Logger:   s.log,
		Appender: s.replicas,
		Replicas: coordNode{s},
		Topics:   coordNode{s},
		Loaded:   s.metrics.coordinatorLoaded,
	}
}

// coordNode adapts the Server to coordruntime's Replicas and TopicCreator;
// the replica manager is its Appender as is.
type coordNode struct{ s *Server }

func (n coordNode) LeaderReady(t *raftmeta.Topic, idx int32) *log.Partition {
	p, _, kerrv := n.s.replicas.LeaderPartition(t, idx)
	if kerrv != nil || !n.s.replicas.LeaderCaughtUp(p) {
		return nil
	}
	return p
}

func (n coordNode) Replica(topic string, idx int32) *log.Partition {
	return n.s.logs.Partition(topic, idx)
}

func (n coordNode) CreateTopic(ctx context.Context, req raftmeta.CreateTopicRequest) error {
	res := n.s.controller.CreateTopics(ctx, []raftmeta.CreateTopicRequest{req})
	if err := res[0].Err; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	n.s.applyImage()
	return nil
}
