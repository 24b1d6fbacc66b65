package broker

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
)

// TestInitProducerIDIdempotent: without a transactional id every request
// gets a new producer id at epoch 0 (the idempotent producer bumps its own
// epoch, KIP-360), and, as in Kafka, a request naming only one of a producer
// id and an epoch is INVALID_REQUEST, with or without a transactional id.
func TestInitProducerIDIdempotent(t *testing.T) {
	s := startTestServer(t)
	c := dialRaw(t, s.Addrs()[0])
	init := func(version int16, txnID *string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = txnID, 60000
		req.ProducerID, req.ProducerEpoch = pid, epoch
		return c.roundTrip(req, version).(*kmsg.InitProducerIDResponse)
	}
	first := init(5, nil, -1, -1)
	if first.ErrorCode != 0 || first.ProducerID < 0 || first.ProducerEpoch != 0 {
		t.Fatalf("first id: %+v", first)
	}
	again := init(5, nil, first.ProducerID, first.ProducerEpoch)
	if again.ErrorCode != 0 || again.ProducerID == first.ProducerID || again.ProducerEpoch != 0 {
		t.Fatalf("with its current id: %+v, want a new id at epoch 0", again)
	}
	if old := init(2, nil, -1, -1); old.ErrorCode != 0 || old.ProducerID < 0 {
		t.Fatalf("v2: %+v", old)
	}
	txnID := "tx"
	for _, c := range []struct {
		txnID *string
		pid   int64
		epoch int16
	}{
		{nil, first.ProducerID, -1},
		{nil, -1, 3},
		{&txnID, 7, -1},
		{&txnID, -1, 0},
	} {
		r := init(5, c.txnID, c.pid, c.epoch)
		if r.ErrorCode != kerr.InvalidRequest.Code || r.ProducerID != -1 || r.ProducerEpoch != -1 {
			t.Errorf("producer id %d epoch %d: %+v, want INVALID_REQUEST", c.pid, c.epoch, r)
		}
	}
}

type noProducerIDs struct{}

func (noProducerIDs) AllocateProducerIDs(context.Context, int64) (int64, int64, error) {
	return 0, 0, errors.New("no active controller")
}

// TestInitProducerIDWithoutBlock: when no producer id block can be had,
// Kafka answers COORDINATOR_LOAD_IN_PROGRESS, which producers retry; an
// UNKNOWN_SERVER_ERROR would be fatal to the Java producer.
func TestInitProducerIDWithoutBlock(t *testing.T) {
	s := &Server{producerIDs: cluster.NewProducerIDs(noProducerIDs{}), log: slog.New(slog.DiscardHandler)}
	resp, err := s.handleInitProducerID(context.Background(), nil, kmsg.NewPtrInitProducerIDRequest())
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != kerr.CoordinatorLoadInProgress.Code || r.ProducerID != -1 || r.ProducerEpoch != -1 {
		t.Fatalf("%+v, want COORDINATOR_LOAD_IN_PROGRESS", r)
	}
}
