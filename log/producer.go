package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Idempotent producer state, as Kafka's ProducerStateManager keeps it for
// non-transactional idempotent producers.
//
// Per producer id the partition remembers the current epoch and the last
// maxCachedBatches batches (sequence range, the offsets and timestamp they
// got). A retried batch that matches one of them is answered with the
// original offsets and timestamp and not appended again; anything else must
// continue the sequence.
//
// A producer id the partition does not know may start at any sequence
// (Kafka >= 2.5 behaviour: its state may have expired, see expire, or its
// batches may be gone with a truncated or fully deleted log, and rejecting it
// with UNKNOWN_PRODUCER_ID made clients reset needlessly).
// ErrUnknownProducerID is therefore never returned by Append.

const maxCachedBatches = 5

type batchMeta struct {
	FirstSeq, LastSeq      int32
	BaseOffset, LastOffset int64
	// Timestamp is the stored batch's max timestamp (its log append time
	// on a LogAppendTime topic): Kafka answers a retry with it.
	Timestamp int64
}

type producerEntry struct {
	Epoch         int16
	LastTimestamp int64
	Batches       []batchMeta // oldest first, at most maxCachedBatches
	// CoordinatorEpoch is the transaction coordinator epoch of the last
	// marker written for this producer (-1 before any); a marker from an
	// older coordinator is fenced.
	CoordinatorEpoch int32
	// TxnFirstOffset is the first offset of the producer's open transaction
	// in this partition, -1 when none is open.
	TxnFirstOffset int64
}

// producerState is the per-partition producer table.
//
// Invariant: ongoing[id] == m[id].TxnFirstOffset for exactly the producers
// whose TxnFirstOffset >= 0; it exists so the first unstable offset (the
// lowest first offset of an open transaction, which bounds the last stable
// offset) costs a pass over open transactions, not over every producer.
type producerState struct {
	m       map[int64]*producerEntry
	ongoing map[int64]int64
}

func newProducerState() *producerState {
	return &producerState{m: map[int64]*producerEntry{}, ongoing: map[int64]int64{}}
}

// noUnstable is firstUnstable's answer when no transaction is open.
const noUnstable = math.MaxInt64

// firstUnstable is the lowest first offset of an open transaction, or
// noUnstable.
func (s *producerState) firstUnstable() int64 {
	first := int64(noUnstable)
	for _, off := range s.ongoing {
		first = min(first, off)
	}
	return first
}

// completedTxn is a transaction ended by a marker: offsets first..last
// (last is the marker's offset).
type completedTxn struct {
	producerID  int64
	first, last int64
	abort       bool
}

// lastSeqOf is the sequence of the batch's last record; sequences wrap from
// MaxInt32 to 0.
func lastSeqOf(h BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func nextSeq(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// check decides what to do with a batch from an idempotent producer: append it
// (nil, nil), answer it as a duplicate (meta, nil) or reject it. marker is
// the decoded marker of a control batch, nil otherwise.
func (s *producerState) check(h BatchHeader, marker *EndTxnMarker) (*batchMeta, error) {
	if h.ProducerID < 0 {
		return nil, nil
	}
	e := s.m[h.ProducerID]
	if marker != nil {
		return nil, checkMarker(e, h, *marker)
	}
	if e == nil {
		return nil, nil
	}
	// Kafka's order: a retry of a stored batch is answered first, then the
	// epoch, the sequence and the transaction state are checked.
	last := lastSeqOf(h)
	if h.ProducerEpoch == e.Epoch {
		for i := range e.Batches {
			if b := &e.Batches[i]; b.FirstSeq == h.BaseSequence && b.LastSeq == last {
				dup := *b
				return &dup, nil
			}
		}
	}
	if h.ProducerEpoch < e.Epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.Epoch)
	}
	// A new epoch starts at sequence 0, and so does the first batch at an
	// epoch a marker bumped (transactions version 2), which left no batch
	// to continue from.
	want := int32(0)
	if h.ProducerEpoch == e.Epoch && len(e.Batches) > 0 {
		want = nextSeq(e.Batches[len(e.Batches)-1].LastSeq)
	}
	if h.BaseSequence != want {
		return nil, fmt.Errorf("%w: producer %d epoch %d expected sequence %d, got %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, want, h.BaseSequence)
	}
	// While a transaction is open the producer may only write
	// transactional batches until its marker, whatever its epoch.
	if e.TxnFirstOffset >= 0 && !h.Transactional() {
		return nil, fmt.Errorf("%w: producer %d has an open transaction and sent a non-transactional batch", ErrInvalidTxnState, h.ProducerID)
	}
	return nil, nil
}

// expire forgets the producers without an open transaction whose last
// write (its timestamp) is at least afterMs old, as Kafka's
// producer.id.expiration.ms does: the table does not grow with every
// producer id ever seen, and a forgotten producer's next batch is taken
// like an unknown one's, at any sequence.
func (s *producerState) expire(nowMs, afterMs int64) {
	for id, e := range s.m {
		if e.TxnFirstOffset < 0 && nowMs-e.LastTimestamp >= afterMs {
			delete(s.m, id)
		}
	}
}

// ExpireProducers forgets, in every partition, the producers idle for
// after or longer (see producerState.expire). The broker calls it
// periodically (Kafka's producer.id.expiration.check.interval.ms).
func (m *Manager) ExpireProducers(now time.Time, after time.Duration) {
	for _, p := range m.Partitions() {
		p.appendMu.Lock()
		p.producers.expire(now.UnixMilli(), after.Milliseconds())
		p.appendMu.Unlock()
	}
}

// checkMarker fences markers from an older producer epoch or an older
// transaction coordinator. The marker's epoch may be higher than the
// producer's: transactions version 2 writes markers with the bumped epoch.
func checkMarker(e *producerEntry, h BatchHeader, m EndTxnMarker) error {
	if e == nil {
		return nil
	}
	if h.ProducerEpoch < e.Epoch {
		return fmt.Errorf("%w: marker for producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.Epoch)
	}
	if m.CoordinatorEpoch < e.CoordinatorEpoch {
		return fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, already saw %d", ErrTransactionCoordinatorFenced, h.ProducerID, m.CoordinatorEpoch, e.CoordinatorEpoch)
	}
	return nil
}

// update records an appended batch (which carries its final offsets); marker
// is the decoded marker of a control batch, nil otherwise. It reports the
// transaction a marker completed. It is also how recovery replays batches,
// so it must accept whatever check accepted and never fail.
func (s *producerState) update(h BatchHeader, marker *EndTxnMarker) *completedTxn {
	if h.ProducerID < 0 || (h.Control() && marker == nil) {
		return nil
	}
	e := s.m[h.ProducerID]
	if e == nil {
		e = &producerEntry{Epoch: h.ProducerEpoch, CoordinatorEpoch: -1, TxnFirstOffset: -1}
		s.m[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.Epoch {
		e.Epoch = h.ProducerEpoch
		e.Batches = e.Batches[:0]
	}
	if marker != nil {
		// A marker without data in this partition still completes an
		// (empty) transaction, as in Kafka.
		done := &completedTxn{producerID: h.ProducerID, first: h.BaseOffset, last: h.BaseOffset, abort: !marker.Commit}
		if e.TxnFirstOffset >= 0 {
			done.first = e.TxnFirstOffset
		}
		e.TxnFirstOffset = -1
		delete(s.ongoing, h.ProducerID)
		e.CoordinatorEpoch = marker.CoordinatorEpoch
		e.LastTimestamp = h.MaxTimestamp
		return done
	}
	if h.Transactional() && e.TxnFirstOffset < 0 {
		e.TxnFirstOffset = h.BaseOffset
		s.ongoing[h.ProducerID] = h.BaseOffset
	}
	if len(e.Batches) == maxCachedBatches {
		copy(e.Batches, e.Batches[1:])
		e.Batches = e.Batches[:maxCachedBatches-1]
	}
	e.Batches = append(e.Batches, batchMeta{FirstSeq: h.BaseSequence, LastSeq: lastSeqOf(h), BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), Timestamp: h.MaxTimestamp})
	e.LastTimestamp = h.MaxTimestamp
	return nil
}

// Snapshot file "%020d.snapshot" named by the offset it is valid at: the state
// after every batch below that offset. Layout (big endian):
//
//	version int16 (2) | count int32 |
//	count × (producerId int64 | epoch int16 | lastTimestamp int64 |
//	         coordinatorEpoch int32 | txnFirstOffset int64 |
//	         n int8 | n × (firstSeq int32 | lastSeq int32 | baseOffset int64 | lastOffset int64 |
//	                       timestamp int64)) |
//	crc32c uint32 of everything before it
//
// Version 0 (before transactions) lacks coordinatorEpoch and txnFirstOffset,
// versions 0 and 1 the batches' timestamps (the producer's last timestamp
// stands in, as Kafka's snapshots keep only that); both are still read, so a
// log written before them reopens without a replay. The open transactions
// the snapshot carries are what lets the last stable offset survive a
// restart whose replay starts after a transaction's first batch.
const producerSnapshotVersion = 2

func (s *producerState) encode() []byte {
	ids := make([]int64, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := binary.BigEndian.AppendUint16(nil, producerSnapshotVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := s.m[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastTimestamp))
		b = binary.BigEndian.AppendUint32(b, uint32(e.CoordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.TxnFirstOffset))
		b = append(b, byte(len(e.Batches)))
		for _, m := range e.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.BaseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeProducerState(b []byte) (*producerState, error) {
	bad := fmt.Errorf("malformed producer snapshot")
	if len(b) < 10 {
		return nil, bad
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	version := binary.BigEndian.Uint16(body)
	if crc32.Checksum(body, castagnoli) != sum || version > producerSnapshotVersion {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint32(body[2:]))
	body = body[6:]
	entryMin := 8 + 2 + 8 + 1
	if version >= 1 {
		entryMin += 4 + 8
	}
	batchSize := 24
	if version >= 2 {
		batchSize += 8
	}
	if n < 0 || n > len(body)/entryMin {
		return nil, bad
	}
	s := &producerState{m: make(map[int64]*producerEntry, n), ongoing: map[int64]int64{}}
	for range n {
		if len(body) < entryMin {
			return nil, bad
		}
		id := int64(binary.BigEndian.Uint64(body))
		e := &producerEntry{
			Epoch:            int16(binary.BigEndian.Uint16(body[8:])),
			LastTimestamp:    int64(binary.BigEndian.Uint64(body[10:])),
			CoordinatorEpoch: -1,
			TxnFirstOffset:   -1,
		}
		if version >= 1 {
			e.CoordinatorEpoch = int32(binary.BigEndian.Uint32(body[18:]))
			e.TxnFirstOffset = int64(binary.BigEndian.Uint64(body[22:]))
			if e.TxnFirstOffset >= 0 {
				s.ongoing[id] = e.TxnFirstOffset
			}
		}
		k := int(body[entryMin-1])
		body = body[entryMin:]
		if k > maxCachedBatches || len(body) < k*batchSize {
			return nil, bad
		}
		for range k {
			m := batchMeta{
				FirstSeq:   int32(binary.BigEndian.Uint32(body)),
				LastSeq:    int32(binary.BigEndian.Uint32(body[4:])),
				BaseOffset: int64(binary.BigEndian.Uint64(body[8:])),
				LastOffset: int64(binary.BigEndian.Uint64(body[16:])),
				Timestamp:  e.LastTimestamp,
			}
			if version >= 2 {
				m.Timestamp = int64(binary.BigEndian.Uint64(body[24:]))
			}
			e.Batches = append(e.Batches, m)
			body = body[batchSize:]
		}
		s.m[id] = e
	}
	if len(body) != 0 {
		return nil, bad
	}
	return s, nil
}

// listSnapshots returns the offsets of the snapshot files in dir, ascending.
func listSnapshots(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, de := range ents {
		if off, ok := nameOffset(de.Name(), snapshotSuffix); ok {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// writeSnapshot persists the state at offset and prunes older snapshots,
// keeping the newest keepSnapshots so a torn newest one has a fallback.
func (s *producerState) writeSnapshot(dir string, offset int64) error {
	if err := writeFileAtomic(segmentPath(dir, offset, snapshotSuffix), s.encode()); err != nil {
		return err
	}
	const keepSnapshots = 2
	offs, err := listSnapshots(dir)
	if err != nil {
		return err
	}
	var older []int64
	for _, o := range offs {
		if o < offset {
			older = append(older, o)
		}
	}
	for len(older) > keepSnapshots-1 {
		_ = os.Remove(segmentPath(dir, older[0], snapshotSuffix))
		older = older[1:]
	}
	return nil
}

// loadLatestSnapshot returns the newest readable snapshot at or below limit
// and deletes the ones above it (they describe truncated data).
func loadLatestSnapshot(dir string, limit int64) (*producerState, int64, bool) {
	offs, err := listSnapshots(dir)
	if err != nil {
		return nil, 0, false
	}
	for i := len(offs) - 1; i >= 0; i-- {
		path := segmentPath(dir, offs[i], snapshotSuffix)
		if offs[i] > limit {
			_ = os.Remove(path)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if s, err := decodeProducerState(b); err == nil {
			return s, offs[i], true
		}
		_ = os.Remove(filepath.Clean(path))
	}
	return nil, 0, false
}
