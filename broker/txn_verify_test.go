package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// What a produce and a TxnOffsetCommit answer for each answer of the
// transaction coordinator to their verification, by request version, as
// Kafka's leaders and group coordinator answer.
func TestTxnVerifyAnswers(t *testing.T) {
	for _, c := range []struct {
		coord   *kerr.Error
		version int16
		produce *kerr.Error
		commit  *kerr.Error
	}{
		{kerr.TransactionAbortable, 11, kerr.TransactionAbortable, kerr.TransactionAbortable},
		{kerr.TransactionAbortable, 10, kerr.InvalidTxnState, kerr.TransactionAbortable},
		{kerr.TransactionAbortable, 4, kerr.InvalidTxnState, kerr.TransactionAbortable},
		{kerr.TransactionAbortable, 3, kerr.InvalidTxnState, kerr.InvalidTxnState},
		{kerr.ProducerFenced, 11, kerr.InvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{kerr.ConcurrentTransactions, 11, kerr.NotEnoughReplicas, kerr.ConcurrentTransactions},
		{kerr.NotCoordinator, 11, kerr.NotEnoughReplicas, kerr.NotCoordinator},
		{kerr.InvalidProducerIDMapping, 11, kerr.InvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
		{kerr.InvalidProducerIDMapping, 3, kerr.InvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
		{kerr.ClusterAuthorizationFailed, 11, kerr.InvalidTxnState, kerr.ClusterAuthorizationFailed},
		{kerr.RequestTimedOut, 11, kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable},
	} {
		if got := errorCode(produceTxnError(c.coord.Code, c.version)); got != c.produce.Code {
			t.Errorf("produce v%d, coordinator %s: %s, want %s", c.version, c.coord.Message, kerr.ErrorForCode(got), c.produce.Message)
		}
		if got := txnOffsetVerifyError(c.coord.Code, c.version); got.Code != c.commit.Code {
			t.Errorf("TxnOffsetCommit v%d, coordinator %s: %s, want %s", c.version, c.coord.Message, got.Message, c.commit.Message)
		}
	}
	if err := produceTxnError(0, 11); err != nil {
		t.Errorf("verified produce: %v", err)
	}
	msg := errorMessage(produceTxnError(kerr.ConcurrentTransactions.Code, 11))
	if want := "Unable to verify the partition has been added to the transaction. Underlying error: CONCURRENT_TRANSACTIONS"; msg == nil || *msg != want {
		t.Errorf("message %q, want %q", deref(msg), want)
	}
}
