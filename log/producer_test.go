package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
	"time"
)

func TestIdempotentProducer(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	p, _ := m.CreatePartition("t", 0, testTopicID, smallSegments())
	const pid = 42

	// An unknown producer may start at any sequence.
	r0 := mustAppend(t, p, idemBatch(t, 3, pid, 0, 10), 0) // seq 10..12
	r1 := mustAppend(t, p, idemBatch(t, 2, pid, 0, 13), 0) // seq 13..14
	if r0.BaseOffset != 0 || r1.BaseOffset != 3 {
		t.Fatalf("%+v %+v", r0, r1)
	}
	// A retry of either is answered with the original offsets, nothing appended.
	d, err := appendCopy(p, idemBatch(t, 3, pid, 0, 10), 0)
	if err != nil || !d.Duplicate || d.BaseOffset != 0 || d.LastOffset != 2 || p.LogEndOffset() != 5 {
		t.Fatalf("dup: %+v %v", d, err)
	}
	// Gaps and repeats that match no cached batch are out of order.
	for _, seq := range []int32{16, 14, 0} {
		if _, err := appendCopy(p, idemBatch(t, 1, pid, 0, seq), 0); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	// Non-idempotent batches are never checked.
	mustAppend(t, p, simpleBatch(t, 1, 0, "x"), 0)
	mustAppend(t, p, simpleBatch(t, 1, 0, "x"), 0)

	// Only the last five batches are remembered.
	for i := range 6 {
		mustAppend(t, p, idemBatch(t, 1, pid, 0, int32(15+i)), 0)
	}
	if _, err := appendCopy(p, idemBatch(t, 1, pid, 0, 15), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("evicted batch: %v", err)
	}
	if d, _ := appendCopy(p, idemBatch(t, 1, pid, 0, 16), 0); !d.Duplicate {
		t.Fatal("fifth newest batch not deduplicated")
	}

	// A new epoch must start at 0; then the old epoch is fenced.
	if _, err := appendCopy(p, idemBatch(t, 1, pid, 1, 5), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at 5: %v", err)
	}
	mustAppend(t, p, idemBatch(t, 2, pid, 1, 0), 0)
	if _, err := appendCopy(p, idemBatch(t, 1, pid, 0, 21), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	leo := p.LogEndOffset()

	check := func(p *Partition) {
		t.Helper()
		if d, err := appendCopy(p, idemBatch(t, 2, pid, 1, 0), 0); err != nil || !d.Duplicate || d.LastOffset != leo-1 {
			t.Fatalf("dup after restart: %+v %v", d, err)
		}
		if _, err := appendCopy(p, idemBatch(t, 1, pid, 0, 0), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
			t.Fatalf("fencing after restart: %v", err)
		}
		if _, err := appendCopy(p, idemBatch(t, 1, pid, 1, 3), 0); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("gap after restart: %v", err)
		}
	}
	check(p)

	// Clean restart: from the snapshot written at close.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	check(m.Partition("t", 0))
	p = m.Partition("t", 0)
	r := mustAppend(t, p, idemBatch(t, 1, pid, 1, 2), 0)
	leo = r.LastOffset + 1

	// Crash: no snapshot at LEO; state comes from the last roll snapshot plus
	// the headers after it.
	m.crash()
	m = openManager(t, dir)
	defer m.Close()
	p = m.Partition("t", 0)
	if d, err := appendCopy(p, idemBatch(t, 1, pid, 1, 2), 0); err != nil || !d.Duplicate || d.BaseOffset != leo-1 {
		t.Fatalf("dup after crash: %+v %v", d, err)
	}
	mustAppend(t, p, idemBatch(t, 1, pid, 1, 3), 0)
}

func TestSequenceWraparound(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	mustAppend(t, p, idemBatch(t, 2, 7, 0, math.MaxInt32-1), 0) // MaxInt32-1, MaxInt32
	mustAppend(t, p, idemBatch(t, 1, 7, 0, 0), 0)
	if _, err := appendCopy(p, idemBatch(t, 1, 7, 0, 2), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatal(err)
	}
}

func TestProducerSnapshotCodec(t *testing.T) {
	s := newProducerState()
	for i := range 7 {
		s.update(BatchHeader{ProducerID: int64(i % 3), ProducerEpoch: 1, BaseSequence: int32(i), BaseOffset: int64(i), MaxTimestamp: int64(9 + i)}, nil)
	}
	// Producer 7 has an open transaction and a coordinator epoch: both must
	// survive the round trip, since the LSO after a restart depends on them.
	s.update(BatchHeader{ProducerID: 7, BaseOffset: 20, Attributes: attrTransactional | attrControl}, &EndTxnMarker{CoordinatorEpoch: 4})
	s.update(BatchHeader{ProducerID: 7, BaseOffset: 21, Attributes: attrTransactional}, nil)
	b := s.encode()
	got, err := decodeProducerState(b)
	if err != nil || len(got.m) != 4 || len(got.m[0].Batches) != 3 || got.m[0].Batches[0].Timestamp != 9 {
		t.Fatalf("%v %+v", err, got)
	}
	if e := got.m[7]; e.TxnFirstOffset != 21 || e.CoordinatorEpoch != 4 || got.firstUnstable() != 21 {
		t.Fatalf("producer 7 after round trip: %+v, first unstable %d", e, got.firstUnstable())
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := decodeProducerState(c); err == nil {
			t.Fatalf("corruption at %d accepted", i)
		}
		if _, err := decodeProducerState(b[:i]); err == nil {
			t.Fatalf("truncation at %d accepted", i)
		}
	}
}

// TestProducerSnapshotVersion0: a snapshot written before transactions
// (version 0: no coordinator epoch or open transaction) still loads, so an
// upgraded broker reopens its logs without replaying them.
func TestProducerSnapshotVersion0(t *testing.T) {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, 42)  // producer id
	b = binary.BigEndian.AppendUint16(b, 3)   // epoch
	b = binary.BigEndian.AppendUint64(b, 777) // last timestamp
	b = append(b, 1)
	for _, v := range []uint32{5, 9} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = binary.BigEndian.AppendUint64(b, 100)
	b = binary.BigEndian.AppendUint64(b, 104)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	s, err := decodeProducerState(b)
	if err != nil {
		t.Fatal(err)
	}
	e := s.m[42]
	if e == nil || e.Epoch != 3 || e.LastTimestamp != 777 || len(e.Batches) != 1 || e.Batches[0].LastOffset != 104 || e.Batches[0].Timestamp != 777 ||
		e.TxnFirstOffset != -1 || e.CoordinatorEpoch != -1 || s.firstUnstable() != noUnstable {
		t.Fatalf("decoded %+v", e)
	}
}

// appendAt validates and appends a copy of b at now.
func appendAt(p *Partition, b []byte, now time.Time) (AppendResult, error) {
	b = bytes.Clone(b)
	h, err := ValidateProduceBatch(b, 1<<30)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Append(b, h, 0, now)
}

// TestDuplicateAnswersStoredTimestamp: Kafka answers a retried batch with
// the offsets and the timestamp the original got (its log append time on a
// LogAppendTime topic, its max timestamp otherwise), also after a restart,
// so the producer reports the same record metadata either way.
func TestDuplicateAnswersStoredTimestamp(t *testing.T) {
	for _, tsType := range []string{TimestampCreateTime, TimestampLogAppendTime} {
		t.Run(tsType, func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			cfg := DefaultPartitionConfig()
			cfg.MessageTimestampType = tsType
			p := mustCreate(t, m, "t", 0, testTopicID, cfg)
			first := testNow
			mustAppend(t, p, idemBatch(t, 2, 9, 0, 0), 0) // seq 0..1, offsets 0..1
			if _, err := appendAt(p, idemBatch(t, 1, 9, 0, 2), first.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			want := int64(1000) // idemBatch's max timestamp
			if tsType == TimestampLogAppendTime {
				want = first.UnixMilli()
			}
			check := func(p *Partition) {
				t.Helper()
				d, err := appendAt(p, idemBatch(t, 2, 9, 0, 0), first.Add(time.Minute))
				if err != nil || !d.Duplicate || d.BaseOffset != 0 || d.LastOffset != 1 || d.LogAppendTime != want {
					t.Fatalf("retry answered %+v %v, want offsets 0..1 at %d", d, err, want)
				}
			}
			check(p)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m = openManager(t, dir)
			check(m.Partition("t", 0))
			m.crash()
			m = openManager(t, dir)
			defer m.Close()
			check(m.Partition("t", 0))
		})
	}
}

// TestSequenceAfterEpochBumpingMarker: a marker written with a bumped epoch
// (transactions version 2) leaves the producer no batches at that epoch, so
// its next batch must start at sequence 0, as in Kafka.
func TestSequenceAfterEpochBumpingMarker(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	mustAppend(t, p, txnBatch(t, 2, 5, 0, 0), 0)
	if _, err := p.AppendMarker(5, 1, EndTxnMarker{Commit: true}, 0, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := appendCopy(p, txnBatch(t, 1, 5, 1, 2), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence 2 after the bumped marker: %v", err)
	}
	mustAppend(t, p, txnBatch(t, 1, 5, 1, 0), 0)
}

// TestProducerCheckOrder: Kafka checks the epoch, then the sequence, then
// the transaction state; a retry of a stored batch is answered before any.
func TestProducerCheckOrder(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	mustAppend(t, p, idemBatch(t, 1, 5, 0, 0), 0)
	mustAppend(t, p, txnBatch(t, 1, 5, 0, 1), 0) // opens a transaction
	for _, c := range []struct {
		epoch int16
		seq   int32
		want  error
	}{
		{0, 0, nil},                   // a retry: the original offsets
		{0, 5, ErrOutOfOrderSequence}, // out of sequence before not transactional
		{0, 2, ErrInvalidTxnState},    // in sequence but not transactional
		{1, 0, ErrInvalidTxnState},    // a new epoch does not end the transaction
		{1, 3, ErrOutOfOrderSequence}, // a new epoch starts at 0
	} {
		d, err := appendCopy(p, idemBatch(t, 1, 5, c.epoch, c.seq), 0)
		if c.want == nil && (err != nil || !d.Duplicate) || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("epoch %d seq %d: %+v %v, want %v", c.epoch, c.seq, d, err, c.want)
		}
	}
}

func txnBatch(t testing.TB, n int, pid int64, epoch int16, seq int32) []byte {
	recs := make([]testRec, n)
	for i := range recs {
		recs[i] = testRec{value: []byte(fmt.Sprintf("v%d", i))}
	}
	return buildBatch(t, batchSpec{recs: recs, baseTs: 1000, pid: pid, epoch: epoch, seq: seq, txn: true})
}

// TestProducerExpiry: as Kafka's producer.id.expiration.ms, a producer
// without an open transaction whose last write is that old is forgotten,
// so its next batch is taken at any sequence; one with an open
// transaction is kept, and so is the expiry across a restart.
func TestProducerExpiry(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	p := mustCreate(t, m, "t", 0, testTopicID, DefaultPartitionConfig())
	mustAppend(t, p, idemBatch(t, 1, 1, 0, 0), 0) // max timestamp 1000
	mustAppend(t, p, txnBatch(t, 1, 2, 0, 0), 0)
	const day = 24 * time.Hour
	m.ExpireProducers(time.UnixMilli(1000).Add(day-time.Millisecond), day)
	if _, err := appendCopy(p, idemBatch(t, 1, 1, 0, 7), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap before expiry: %v", err)
	}
	m.ExpireProducers(time.UnixMilli(1000).Add(day), day)
	if got := len(p.Producers()); got != 1 {
		t.Fatalf("%d producers after expiry, want the one with an open transaction", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	defer m.Close()
	p = m.Partition("t", 0)
	mustAppend(t, p, idemBatch(t, 1, 1, 0, 7), 0)
	if _, err := appendCopy(p, txnBatch(t, 1, 2, 0, 3), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("producer with an open transaction: %v", err)
	}
}
