package broker

// InitProducerID (key 22), v0-v5 on every listener.
//
// Without a transactional id: a new idempotent producer id, with epoch 0, from
// the blocks the controller allocates (cluster.ProducerIDs), whatever id and
// epoch the request names: an idempotent producer bumps its epoch itself
// (KIP-360) and asks for a new id only once the epoch is exhausted. With one: the
// transaction coordinator of the id (coordruntime.Txns) bumps its epoch,
// fencing older producers, with the transaction timeout checked against
// transaction.max.timeout.ms and, from v3, the producer id and epoch the
// client had (KIP-360) to recover instead of being fenced.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleInitProducerID(ctx context.Context, _ *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// As Kafka: a producer id without an epoch, or an epoch without an id,
	// is refused before either kind of request is looked at. (Both fields
	// are from v3; older requests decode them as -1.)
	if (req.ProducerID == -1) != (req.ProducerEpoch == -1) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	if req.TransactionalID != nil {
		s.initTransactionalProducer(req, resp)
		return resp, nil
	}
	id, err := s.producerIDs.Next(ctx)
	if err != nil {
		// Kafka's answer while its next id block is on the way: the
		// producer retries it, where most other codes are fatal to it.
		s.log.Warn("no producer id block for InitProducerId", "err", err)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

func (s *Server) initTransactionalProducer(req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	id := *req.TransactionalID
	if id == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return
	}
	ireq := coordinator.InitProducerIDRequest{
		TransactionalID: id, Timeout: time.Duration(req.TransactionTimeoutMillis) * time.Millisecond,
		ExpectedProducerID: -1, ExpectedEpoch: -1,
	}
	if req.Version >= 3 {
		ireq.ExpectedProducerID, ireq.ExpectedEpoch = req.ProducerID, req.ProducerEpoch
	}
	var kerrv *kerr.Error
	if err := s.coord.Txns.Do(id, func(sh *coordinator.TxnShard) {
		resp.ProducerID, resp.ProducerEpoch, kerrv = sh.InitProducerID(s.now(), ireq)
	}); err != nil {
		kerrv = err
	}
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
	}
}
