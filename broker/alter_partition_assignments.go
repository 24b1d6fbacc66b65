package broker

// AlterPartitionReassignments (key 45, kmsg's AlterPartitionAssignments),
// v0-v1 on every listener; relayed to the active controller. Kafka's
// semantics (KIP-455): each partition gets target replicas, or a null list
// cancels its reassignment; the answer comes once the change is in the
// metadata log, not once the data has moved (ListPartitionReassignments
// shows progress). v1's allowReplicationFactorChange=false (KIP-860)
// refuses a target of another size with INVALID_REPLICATION_FACTOR.
// Deviations: none known.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleAlterPartitionAssignments(ctx context.Context, _ *reqCtx, req *kmsg.AlterPartitionAssignmentsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.Version < 1 || req.AllowReplicationFactorChange
	var reqs []raftmeta.ReassignRequest
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			reqs = append(reqs, raftmeta.ReassignRequest{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas,
				KeepReplicationFactor: !resp.AllowReplicationFactorChange})
		}
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	errs := s.ctrl.AlterPartitionReassignments(ctx, reqs)
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			err := errs[i]
			i++
			if errors.Is(err, context.DeadlineExceeded) {
				err = kerr.RequestTimedOut
			}
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode, rp.ErrorMessage = errorCode(err), errorMessage(err)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
