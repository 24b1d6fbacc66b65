package broker

// DescribeTransactions (key 65), v0 on every listener.
//
// Describes transactional ids on their transaction coordinator: a node that
// does not coordinate an id answers NOT_COORDINATOR for it (clients ask each
// id's coordinator, found with FindCoordinator).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

func (s *Server) handleDescribeTransactions(_ context.Context, _ *reqCtx, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		var d coordinator.TxnDescription
		var kerrv *kerr.Error
		if err := s.coord.Txns.Do(id, func(sh *coordinator.TxnShard) { d, kerrv = sh.Describe(id) }); err != nil {
			kerrv = err
		}
		if kerrv != nil {
			st.ErrorCode = kerrv.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = d.State.String()
		st.TimeoutMillis = int32(d.Timeout.Milliseconds())
		st.StartTimestamp, st.ProducerID, st.ProducerEpoch = d.StartMs, d.ProducerID, d.ProducerEpoch
		for _, tp := range d.Partitions {
			if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
				st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
			}
			last := &st.Topics[len(st.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
