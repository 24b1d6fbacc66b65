package broker

// InitProducerID (key 22), v0-v5 on every listener.
//
// Hands out idempotent producer ids from blocks the controller allocates
// (AllocateProducerIDs), each with epoch 0. Deviation: transactions are not
// implemented, so a request with a transactional id is answered
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED instead of an id the transaction APIs
// could not honour.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
		// Transactions are not implemented yet; say so instead of handing
		// out an id the transaction APIs could not honour.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	s.pids.mu.Lock()
	defer s.pids.mu.Unlock()
	if s.pids.next >= s.pids.end {
		first, n, err := s.controller.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
		s.pids.next, s.pids.end = first, first+n
	}
	resp.ProducerID, resp.ProducerEpoch = s.pids.next, 0
	s.pids.next++
	return resp, nil
}
