package log

import (
	"fmt"
	"strings"
	"time"
)

// The topic's rules for each record of a produced batch, applied on append
// as Kafka's LogValidator applies them: on a compacted topic every record
// needs a key; with message.timestamp.type=CreateTime each record's
// timestamp must lie within message.timestamp.before.max.ms before and
// message.timestamp.after.max.ms after the broker's clock (KIP-937); and a
// producer may not stamp its batch LogAppendTime. A batch breaking them is
// refused whole, naming each record at fault (ProduceResponse RecordErrors),
// so a producer fails those records with their own message and the rest
// with the batch.

// RecordError is one record a produced batch was refused for: its index in
// the batch and why.
type RecordError struct {
	Index   int32
	Message string
}

// RecordsError refuses a produced batch for the records it lists. Err is
// ErrInvalidTimestamp when any of them has a refused timestamp, else
// ErrInvalidRecord.
type RecordsError struct {
	Err     error
	Records []RecordError
}

// Error is the message Kafka answers the partition with.
func (e *RecordsError) Error() string {
	if e.Err == ErrInvalidTimestamp {
		return "One or more records have been rejected due to invalid timestamp"
	}
	shown := make([]string, 0, 3)
	for _, r := range e.Records[:min(len(e.Records), 3)] {
		shown = append(shown, fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", r.Index, r.Message))
	}
	return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		len(e.Records), strings.Join(shown, ", "))
}

func (e *RecordsError) Unwrap() error { return e.Err }

// checkRecordRules applies the rules above to batch b of partition tp
// (topic-index), at now. Timestamps are checked only on a batch
// ValidateProduceBatch walked: the broker's own batches (markers,
// coordinator records, dead letters) carry its clock or a record's original
// time. The records are read only when a key must be checked or the
// batch's timestamp range does not fit the bounds, to name the records at
// fault.
func checkRecordRules(cfg *PartitionConfig, b []byte, h BatchHeader, now time.Time, tp string) error {
	nowMs := now.UnixMilli()
	if !cfg.compact() && (!h.deltas.known || timestampsFit(cfg, h, nowMs)) {
		return nil
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return err
	}
	var refused []RecordError
	cause := ErrInvalidRecord
	i := int32(0)
	err = forRecords(h, data, func(_ []byte, rec *rawRecord) {
		var msg string
		if cfg.compact() && rec.keyNull {
			msg = "Compacted topic cannot accept message without key in topic partition " + tp + "."
		} else if h.deltas.known {
			if msg = timestampError(cfg, h, rec, i, nowMs); msg != "" {
				cause = ErrInvalidTimestamp
			}
		}
		if msg != "" {
			refused = append(refused, RecordError{Index: i, Message: msg})
		}
		i++
	})
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return &RecordsError{Err: cause, Records: refused}
	}
	return nil
}

// recordTime is a record's timestamp as a reader sees it: the batch's
// max timestamp in a LogAppendTime batch, else the base timestamp plus
// the record's delta.
func recordTime(h BatchHeader, delta int64) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.BaseTimestamp + delta
}

// timestampError is why the timestamp of record i is refused, or "".
// The arithmetic wraps as Kafka's does.
func timestampError(cfg *PartitionConfig, h BatchHeader, rec *rawRecord, i int32, nowMs int64) string {
	ts := recordTime(h, rec.timestampDelta)
	if cfg.MessageTimestampType == TimestampCreateTime && ts != -1 {
		before, after := cfg.MessageTimestampBeforeMaxMs, cfg.MessageTimestampAfterMaxMs
		if diff := nowMs - ts; diff > before || -diff > after {
			return fmt.Sprintf("Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]",
				ts, h.BaseOffset+int64(i), nowMs-before, nowMs+after)
		}
		return ""
	}
	if h.LogAppendTime() {
		return fmt.Sprintf("Invalid timestamp type in message with offset %d. Producer should not set timestamp type to LogAppendTime.", h.BaseOffset+int64(i))
	}
	return ""
}

// timestampsFit reports, from the batch header and its records' delta
// range alone, that no record's timestamp can be refused. It may answer
// false for a batch whose records all pass; the records are then read.
func timestampsFit(cfg *PartitionConfig, h BatchHeader, nowMs int64) bool {
	if cfg.MessageTimestampType != TimestampCreateTime {
		return !h.LogAppendTime()
	}
	lo, hi := recordTime(h, h.deltas.min), recordTime(h, h.deltas.max)
	if h.LogAppendTime() && lo == -1 {
		return false
	}
	return lo <= hi && withinBounds(cfg, lo, nowMs) && withinBounds(cfg, hi, nowMs)
}

// withinBounds reports that ts lies within the bounds around nowMs,
// refusing (for the record walk to decide) where the difference overflows.
func withinBounds(cfg *PartitionConfig, ts, nowMs int64) bool {
	if ts <= nowMs {
		d := nowMs - ts
		return d >= 0 && d <= cfg.MessageTimestampBeforeMaxMs
	}
	d := ts - nowMs
	return d > 0 && d <= cfg.MessageTimestampAfterMaxMs
}
