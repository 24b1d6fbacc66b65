package broker

// ElectLeaders (key 43), v0-v2 on every listener; relayed to the active
// controller.

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// ElectLeaders (KIP-183, KIP-460): an operator moves leadership back to
// preferred replicas, or elects a leader from outside the ISR for
// partitions that have none. The active controller decides; other nodes
// relay the request to it.

func (s *Server) handleElectLeaders(ctx context.Context, rc *reqCtx, req *kmsg.ElectLeadersRequest, forward forwardFunc) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	typ, err := electionType(req)
	if err != nil {
		return electLeadersFailed(req, resp, err), nil
	}
	if fwd, ok := forward(ctx, rc, req); ok {
		s.awaitElections(ctx, typ, fwd.(*kmsg.ElectLeadersResponse))
		return fwd, nil
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	results, err := s.ctrl.ElectLeaders(ctx, typ, requestedPartitions(req))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = kerr.RequestTimedOut
		}
		return electLeadersFailed(req, resp, err), nil
	}
	resp.Topics = groupElectResults(results)
	return resp, nil
}

// electionType reads the request's election type; v0 has none and always
// means preferred.
func electionType(req *kmsg.ElectLeadersRequest) (raftmeta.ElectionType, error) {
	if req.Version < 1 {
		return raftmeta.PreferredElection, nil
	}
	switch t := raftmeta.ElectionType(req.ElectionType); t {
	case raftmeta.PreferredElection, raftmeta.UncleanElection:
		return t, nil
	default:
		return 0, &raftmeta.Error{Code: kerr.InvalidRequest, Message: "Unknown election type " + strconv.Itoa(int(req.ElectionType)) + "; expected 0 (preferred) or 1 (unclean)."}
	}
}

// requestedPartitions lists the partitions a request names. A null topic
// array (nil) means every partition; an empty one means none, so the
// result must stay non-nil then.
func requestedPartitions(req *kmsg.ElectLeadersRequest) []raftmeta.TopicPartition {
	if req.Topics == nil {
		return nil
	}
	parts := []raftmeta.TopicPartition{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, raftmeta.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	return parts
}

// groupElectResults turns the controller's per-partition results into the
// response's topics, in the order topics first appear.
func groupElectResults(results []raftmeta.ElectLeadersResult) []kmsg.ElectLeadersResponseTopic {
	var topics []kmsg.ElectLeadersResponseTopic
	idx := map[string]int{}
	for _, r := range results {
		i, ok := idx[r.Topic]
		if !ok {
			i = len(topics)
			idx[r.Topic] = i
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = r.Topic
			topics = append(topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = r.Partition
		rp.ErrorCode, rp.ErrorMessage = errorCode(r.Err), errorMessage(r.Err)
		topics[i].Partitions = append(topics[i].Partitions, rp)
	}
	return topics
}

// electLeadersFailed answers a request that failed as a whole: the error
// goes in the top-level code (v1+) and on every requested partition, as
// Kafka does, so that v0 clients see it too and clients that look at the
// first partition (NOT_CONTROLLER) retry.
func electLeadersFailed(req *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse, err error) *kmsg.ElectLeadersResponse {
	resp.ErrorCode = errorCode(err)
	var results []raftmeta.ElectLeadersResult
	for _, tp := range requestedPartitions(req) {
		results = append(results, raftmeta.ElectLeadersResult{Topic: tp.Topic, Partition: tp.Partition, Err: err})
	}
	resp.Topics = groupElectResults(results)
	return resp
}

// awaitElections lets this node's image catch up with the leaders the
// controller elected for a relayed request, so that a client asking this
// node for metadata next sees them. It gives up quietly after a few
// seconds: the elections happened either way.
func (s *Server) awaitElections(ctx context.Context, typ raftmeta.ElectionType, resp *kmsg.ElectLeadersResponse) {
	var elected []raftmeta.TopicPartition
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				elected = append(elected, raftmeta.TopicPartition{Topic: t.Topic, Partition: p.Partition})
			}
		}
	}
	if len(elected) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		for _, tp := range elected {
			if !electionVisible(img, typ, tp) {
				return false
			}
		}
		return true
	})
}

// electionVisible reports whether img shows the outcome of a successful
// election of partition tp. A partition gone from the image no longer
// needs waiting for.
func electionVisible(img *raftmeta.Image, typ raftmeta.ElectionType, tp raftmeta.TopicPartition) bool {
	t := img.Topic(tp.Topic)
	if !t.HasPartition(tp.Partition) {
		return true
	}
	p := t.Partitions[tp.Partition]
	if typ == raftmeta.PreferredElection {
		return len(p.Replicas) > 0 && p.Leader == p.Replicas[0]
	}
	return p.Leader != raftmeta.NoLeader
}
