package broker

// ListTransactions (key 66), v0-v1 on every listener.
//
// Lists the transactional ids of every __transaction_state partition this
// node coordinates, filtered by state, producer id and (v1, KIP-994) how
// long the transaction has been running. Clients ask every broker and merge.
// Deviation: v2's transactional id pattern (KIP-1152) is not served.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleListTransactions(_ context.Context, _ *reqCtx, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	f := coordinator.TxnListFilter{States: req.StateFilters, ProducerIDs: req.ProducerIDFilters, MinDuration: -1}
	if req.Version >= 1 && req.DurationFilterMillis >= 0 {
		f.MinDuration = time.Duration(req.DurationFilterMillis) * time.Millisecond
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
