package log

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// timedRecs are records stamped at deltas from a batch's base timestamp,
// each with a key.
func timedRecs(deltas ...int64) []testRec {
	recs := make([]testRec, len(deltas))
	for i, d := range deltas {
		recs[i] = testRec{key: []byte("k"), value: []byte("v"), tsDelta: d}
	}
	return recs
}

// refusedRecords returns the record indexes err names, failing unless it
// refuses the batch with want.
func refusedRecords(t *testing.T, err error, want error) []int32 {
	t.Helper()
	var re *RecordsError
	if !errors.As(err, &re) || !errors.Is(err, want) {
		t.Fatalf("append: %v, want a RecordsError of %v", err, want)
	}
	var idx []int32
	for _, r := range re.Records {
		idx = append(idx, r.Index)
	}
	return idx
}

func TestAppendTimestampBounds(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	now := testNow.UnixMilli()
	cfg := DefaultPartitionConfig()
	cfg.MessageTimestampBeforeMaxMs = hour
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		batch := func(base int64, deltas ...int64) []byte {
			return buildBatch(t, batchSpec{recs: timedRecs(deltas...), baseTs: base, codec: codec})
		}
		// Kafka 4's default after.max.ms is an hour: the third record,
		// two hours ahead, is refused, and the batch with it.
		_, err := appendCopy(p, batch(now, 0, hour, 2*hour), 0)
		if got := refusedRecords(t, err, ErrInvalidTimestamp); fmt.Sprint(got) != "[2]" {
			t.Errorf("codec %d: records %v refused, want [2]", codec, got)
		}
		want := fmt.Sprintf("Timestamp %d of message with offset 2 is out of range. The timestamp should be within [%d, %d]", now+2*hour, now-hour, now+hour)
		var re *RecordsError
		if errors.As(err, &re) && re.Records[0].Message != want {
			t.Errorf("codec %d: record error %q, want %q", codec, re.Records[0].Message, want)
		}
		// Before it by more than before.max.ms: a negative delta.
		_, err = appendCopy(p, batch(now, -2*hour, 0, -3*hour), 0)
		if got := refusedRecords(t, err, ErrInvalidTimestamp); fmt.Sprint(got) != "[0 2]" {
			t.Errorf("codec %d: records %v refused, want [0 2]", codec, got)
		}
		// On the bounds, and a record without a timestamp (-1).
		if _, err := appendCopy(p, batch(now, -hour, hour), 0); err != nil {
			t.Errorf("codec %d: records on the bounds: %v", codec, err)
		}
		if _, err := appendCopy(p, batch(-1, 0), 0); err != nil {
			t.Errorf("codec %d: record without a timestamp: %v", codec, err)
		}
	}
	if p.LogEndOffset() != 15 {
		t.Errorf("LEO %d, want 15: only the accepted batches stored", p.LogEndOffset())
	}
	// Unbounded both ways, nothing is refused; with LogAppendTime,
	// timestamps are the broker's.
	cfg.MessageTimestampBeforeMaxMs, cfg.MessageTimestampAfterMaxMs = math.MaxInt64, math.MaxInt64
	p.SetConfig(cfg)
	if _, err := appendCopy(p, buildBatch(t, batchSpec{recs: timedRecs(0, math.MaxInt64/2), baseTs: 0}), 0); err != nil {
		t.Errorf("unbounded: %v", err)
	}
	cfg.MessageTimestampBeforeMaxMs, cfg.MessageTimestampAfterMaxMs = 0, 0
	cfg.MessageTimestampType = TimestampLogAppendTime
	p.SetConfig(cfg)
	if _, err := appendCopy(p, buildBatch(t, batchSpec{recs: timedRecs(0, 1), baseTs: now + 2*hour}), 0); err != nil {
		t.Errorf("LogAppendTime topic: %v", err)
	}
}

// A producer may not stamp its batch LogAppendTime, whatever the topic's
// timestamp type.
func TestAppendRefusesProducerLogAppendTime(t *testing.T) {
	for _, typ := range []string{TimestampCreateTime, TimestampLogAppendTime} {
		cfg := DefaultPartitionConfig()
		cfg.MessageTimestampType = typ
		mgr, p, _ := newTestPartition(t, cfg)
		for _, ts := range []int64{testNow.UnixMilli(), -1} {
			b := buildBatch(t, batchSpec{recs: timedRecs(0, 0), baseTs: ts})
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			setLogAppendTime(b, &h, ts)
			_, err = appendCopy(p, b, 0)
			if typ == TimestampCreateTime && ts != -1 {
				// Kafka reads the batch's time as the records'
				// and checks it against the bounds only.
				if err != nil {
					t.Errorf("%s topic, stamped %d: %v", typ, ts, err)
				}
				continue
			}
			if got := refusedRecords(t, err, ErrInvalidTimestamp); fmt.Sprint(got) != "[0 1]" {
				t.Errorf("%s topic, stamped %d: records %v refused, want [0 1]", typ, ts, got)
			}
		}
		mgr.Close()
	}
}

// On a compacted topic a record without a key is refused and named; a
// timestamp refused in the same batch makes it INVALID_TIMESTAMP, as in
// Kafka.
func TestAppendCompactedRecordErrors(t *testing.T) {
	mgr, p, _ := newTestPartition(t, compactConfig())
	defer mgr.Close()
	now := testNow.UnixMilli()
	recs := []testRec{{key: []byte("a")}, {value: []byte("x")}, {value: []byte("y")}, {value: []byte("z")}, {key: []byte("b")}}
	_, err := appendCopy(p, buildBatch(t, batchSpec{recs: recs, baseTs: now, codec: CompressionGzip}), 0)
	if got := refusedRecords(t, err, ErrInvalidRecord); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("records %v refused, want [1 2 3]", got)
	}
	one := "RecordError(batchIndex=%d, message='Compacted topic cannot accept message without key in topic partition orders-0.')"
	want := "One or more records have been rejected due to 3 record errors in total, and only showing the first three errors at most: [" +
		strings.Join([]string{fmt.Sprintf(one, 1), fmt.Sprintf(one, 2), fmt.Sprintf(one, 3)}, ", ") + "]"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	recs[4].tsDelta = 2 * int64(time.Hour/time.Millisecond)
	_, err = appendCopy(p, buildBatch(t, batchSpec{recs: recs, baseTs: now}), 0)
	if got := refusedRecords(t, err, ErrInvalidTimestamp); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("records %v refused, want [1 2 3 4]", got)
	}
	if err.Error() != "One or more records have been rejected due to invalid timestamp" {
		t.Errorf("message %q", err)
	}
}
