package broker

// EndTxn (key 26), v0-v5 on every listener.
//
// Commits or aborts the producer's transaction on its transaction
// coordinator; the answer comes once the PrepareCommit/PrepareAbort record
// is committed and one round of marker writes is done (coordruntime's
// Txns.End says why); markers that round missed follow in the background.
// v5+ is transactions version 2 (KIP-890): the epoch is bumped at every end
// and the answer carries the producer id and epoch to continue with.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleEndTxn(_ context.Context, _ *reqCtx, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	ereq := coordinator.EndTxnRequest{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID,
		ProducerEpoch: req.ProducerEpoch, Commit: req.Commit, V2: req.Version >= 5}
	var kerrv *kerr.Error
	var pid int64
	var epoch int16
	if err := s.coord.Txns.End(req.TransactionalID, func(sh *coordinator.TxnShard) {
		pid, epoch, kerrv = sh.EndTxn(s.now(), ereq)
	}); err != nil {
		kerrv = err
	}
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		return resp, nil
	}
	if req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
	}
	return resp, nil
}
