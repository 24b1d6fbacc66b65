package broker

// ListPartitionReassignments (key 46), v0 on every listener; relayed to
// the active controller, which answers from its image, so a reassignment
// just started or completed there is seen at once. A null topic list lists
// every reassignment in progress; partitions that do not exist or are not
// being reassigned are left out, as Kafka does. Deviations: none known.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleListPartitionReassignments(ctx context.Context, _ *reqCtx, req *kmsg.ListPartitionReassignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var parts []raftmeta.TopicPartition
	if req.Topics != nil {
		parts = []raftmeta.TopicPartition{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, raftmeta.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	for _, r := range s.meta.Image().Reassignments(parts) {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != r.Topic {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition, rp.Replicas = r.Partition, r.Replicas
		rp.AddingReplicas, rp.RemovingReplicas = nonNil(r.Adding), nonNil(r.Removing)
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp, nil
}

// nonNil is v, or an empty list for nil: the response's replica lists are
// not nullable.
func nonNil(v []int32) []int32 {
	if v == nil {
		return []int32{}
	}
	return v
}
