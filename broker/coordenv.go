package broker

// The coordinator runtime's view of this node (coordruntime.Env): the
// replica manager as it is, and the one adapter topic creation needs.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) coordEnv() coordruntime.Env {
	return coordruntime.Env{
		NodeID:   s.cfg.NodeID,
		Image:    s.meta.Image,
		Now:      s.now,
		Logger:   s.log.With("component", "coordinator"),
		Appender: s.replicas,
		Replicas: s.replicas,
		Topics:   coordTopics{s},
		Loaded:   s.metrics.coordinatorLoaded,
	}
}

// coordTopics is coordruntime's TopicCreator: the controller client creates
// the topic, then this node applies the image that holds it. The replica
// manager is the runtime's Appender and Replicas as it is.
type coordTopics struct{ s *Server }

func (n coordTopics) CreateTopic(ctx context.Context, req raftmeta.CreateTopicRequest) error {
	res := n.s.controller.CreateTopics(ctx, []raftmeta.CreateTopicRequest{req})
	if err := res[0].Err; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	n.s.applyImage()
	return nil
}
