package broker

// InitProducerID (key 22), v0-v5 on every listener.
//
// Hands out idempotent producer ids, each with epoch 0, from the blocks the
// controller allocates (cluster.ProducerIDs). Deviation: transactions are not
// implemented, so a request with a transactional id is answered
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED instead of an id the transaction APIs
// could not honour.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleInitProducerID(ctx context.Context, _ *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		// Transactions are not implemented yet; say so instead of handing
		// out an id the transaction APIs could not honour.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	id, err := s.producerIDs.Next(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
