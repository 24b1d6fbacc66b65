package broker

// ListTransactions (key 66), v0-v2 on every listener.
//
// Lists the transactional ids of every __transaction_state partition this
// node coordinates, filtered by state, producer id, (v1, KIP-994) how long
// the transaction has been running and (v2, KIP-1152) an RE2 pattern the
// whole transactional id must match; an empty or null pattern matches all,
// one that does not compile answers INVALID_REGULAR_EXPRESSION. Clients ask
// every broker and merge.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleListTransactions(_ context.Context, _ *reqCtx, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	f := coordinator.TxnListFilter{States: req.StateFilters, ProducerIDs: req.ProducerIDFilters, MinDuration: -1}
	if req.Version >= 1 && req.DurationFilterMillis >= 0 {
		f.MinDuration = time.Duration(req.DurationFilterMillis) * time.Millisecond
	}
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := coordinator.CompileWholeMatch(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
		f.IDPattern = re
	}
	for _, name := range req.StateFilters {
		if _, ok := coordinator.ParseTxnState(name); !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	now := s.now()
	s.coord.Txns.Each(func(sh *coordinator.TxnShard) {
		rows, _ := sh.List(now, f)
		for _, r := range rows {
			resp.TransactionStates = append(resp.TransactionStates, kmsg.ListTransactionsResponseTransactionState{
				TransactionalID: r.TransactionalID, ProducerID: r.ProducerID, TransactionState: r.State.String(),
			})
		}
	})
	return resp, nil
}
