package broker

// AddOffsetsToTxn (key 25), v0-v4 on every listener.
//
// Adds the group's __consumer_offsets partition to the producer's
// transaction, so the transaction's marker reaches the group coordinator
// that holds its TxnOffsetCommit offsets. The offsets topic is created if it
// does not exist yet, as FindCoordinator would.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

func (s *Server) handleAddOffsetsToTxn(ctx context.Context, _ *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if err := s.coord.Groups.EnsureTopic(ctx); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	t := s.meta.Image().Topics[coordruntime.OffsetsTopic]
	part := coordinator.GroupPartition(req.Group, int32(len(t.Partitions)))
	var kerrv *kerr.Error
	if err := s.coord.Txns.Do(req.TransactionalID, func(sh *coordinator.TxnShard) {
		kerrv = sh.AddOffsets(s.now(), req.TransactionalID, req.ProducerID, req.ProducerEpoch, part)
	}); err != nil {
		kerrv = err
	}
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}
