package broker

// InitProducerID (key 22), v0-v5 on every listener.
//
// Without a transactional id: an idempotent producer id from the blocks the
// controller allocates (AllocateProducerIDs), with epoch 0. With one: the
// transaction coordinator of the id (coordruntime.Txns) bumps its epoch,
// fencing older producers, with the transaction timeout checked against
// transaction.max.timeout.ms and, from v3, the producer id and epoch the
// client had (KIP-360) to recover instead of being fenced.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

// producerIDs hands out producer ids from blocks the controller allocates,
// so InitProducerID costs a raft round only once per block.
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

const producerIDBlock = 1000

func (s *Server) handleInitProducerID(ctx context.Context, _ *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		s.initTransactionalProducer(req, resp)
		return resp, nil
	}
	pid, err := s.nextProducerID(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid, 0
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

// nextProducerID hands out the next producer id, asking the controller for
// a new block when this node's is used up.
func (s *Server) nextProducerID(ctx context.Context) (int64, error) {
	s.pids.mu.Lock()
	defer s.pids.mu.Unlock()
	if s.pids.next >= s.pids.end {
		first, n, err := s.controller.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			return -1, err
		}
		s.pids.next, s.pids.end = first, first+n
	}
	pid := s.pids.next
	s.pids.next++
	return pid, nil
}
