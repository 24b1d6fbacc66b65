package broker

import (
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// logErrors maps the log's sentinel errors to Kafka error codes.
var logErrors = []struct {
	err  error
	kerr *kerr.Error
}{
	{log.ErrCorruptMessage, kerr.CorruptMessage},
	{log.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{log.ErrMessageTooLarge, kerr.MessageTooLarge},
	{log.ErrInvalidRecord, kerr.InvalidRecord},
	{log.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{log.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{log.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{log.ErrInvalidTxnState, kerr.InvalidTxnState},
	{log.ErrTransactionCoordinatorFenced, kerr.TransactionCoordinatorFenced},
	{log.ErrUnknownProducerID, kerr.UnknownProducerID},
	{log.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{log.ErrStorage, kerr.KafkaStorageError},
	{log.ErrLogDirNotFound, kerr.LogDirNotFound},
	{log.ErrNoReplica, kerr.ReplicaNotAvailable},
	{log.ErrInvalidTopic, kerr.InvalidTopicException},
	// A partition deleted or closed under a request: the client refreshes
	// its metadata and finds out which.
	{log.ErrPartitionDeleted, kerr.UnknownTopicOrPartition},
	{log.ErrClosed, kerr.NotLeaderForPartition},
}

// errorCode returns the Kafka error code for err: its own if it carries one,
// the log's mapping, or UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, m := range logErrors {
		if errors.Is(err, m.err) {
			return m.kerr.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the human-readable message for responses that carry one.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	var ce *raftmeta.Error
	if errors.As(err, &ce) && ce.Message != "" {
		m := ce.Message
		return &m
	}
	m := err.Error()
	return &m
}

func sortBy[T any, K int16 | int32 | int64 | string](xs []T, key func(T) K) {
	sort.Slice(xs, func(i, j int) bool { return key(xs[i]) < key(xs[j]) })
}

// codeErr turns a response error code into an error (nil for 0).
func codeErr(code int16) error {
	return kerr.ErrorForCode(code)
}
