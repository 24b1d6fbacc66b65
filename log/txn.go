package log

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Transactions on the partition side, as Kafka's UnifiedLog keeps them.
//
// A transactional producer's batches carry the transactional attribute bit;
// the first one a producer writes opens its transaction in this partition
// (producer state remembers its first offset). The transaction coordinator
// ends it with a control batch, the marker (AppendMarker on the leader; a
// follower copies it byte for byte). While a transaction is open, its first
// offset bounds the last stable offset (LSO): the LSO is the lower of the HW
// and the first offset of any open transaction, and read_committed readers
// stop there. An abort marker adds an entry to the aborted-transaction index
// of the segment it lands in (.txnindex), which read_committed fetches
// return so consumers can drop the aborted records (ReadCommitted).

// EndTxnMarker is the content of a control batch: Kafka's EndTransactionMarker.
type EndTxnMarker struct {
	Commit bool
	// CoordinatorEpoch is the epoch of the transaction coordinator (the
	// leader epoch of its __transaction_state partition); partitions fence
	// markers from an older one.
	CoordinatorEpoch int32
}

// Control record key: version int16 (0) | type int16 (0 abort, 1 commit).
// Value: version int16 (0) | coordinatorEpoch int32. Kafka's ControlRecordType
// and EndTransactionMarker layouts, so every client recognises the markers.
const (
	controlTypeAbort  int16 = 0
	controlTypeCommit int16 = 1
)

// buildMarkerBatch encodes a control batch with one marker record. Its base
// offset and leader epoch are filled in by Append.
func buildMarkerBatch(producerID int64, producerEpoch int16, m EndTxnMarker, ts int64) []byte {
	typ := controlTypeAbort
	if m.Commit {
		typ = controlTypeCommit
	}
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, 4) // key length
	rec = binary.BigEndian.AppendUint16(rec, 0)
	rec = binary.BigEndian.AppendUint16(rec, uint16(typ))
	rec = binary.AppendVarint(rec, 6) // value length
	rec = binary.BigEndian.AppendUint16(rec, 0)
	rec = binary.BigEndian.AppendUint32(rec, uint32(m.CoordinatorEpoch))
	rec = binary.AppendVarint(rec, 0) // headers

	b := make([]byte, BatchHeaderSize, BatchHeaderSize+binary.MaxVarintLen64+len(rec))
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], ^uint32(0))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0)
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(producerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(producerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], ^uint32(0))
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// ParseMarker decodes the marker of a control batch (whole stored batch
// bytes). It fails on anything but one uncompressed control record with a
// version-0 key of type abort or commit.
func ParseMarker(b []byte) (EndTxnMarker, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return EndTxnMarker{}, err
	}
	if !h.Control() || h.NumRecords != 1 || h.Compression() != CompressionNone || len(b) < h.Size() {
		return EndTxnMarker{}, fmt.Errorf("%w: not a marker batch", ErrCorruptMessage)
	}
	r := recReader{b: b[BatchHeaderSize:h.Size()]}
	var rec rawRecord
	if err := r.next(&rec); err != nil {
		return EndTxnMarker{}, fmt.Errorf("%w: marker record: %v", ErrCorruptMessage, err)
	}
	if len(rec.key) != 4 || binary.BigEndian.Uint16(rec.key) != 0 {
		return EndTxnMarker{}, fmt.Errorf("%w: marker key of %d bytes", ErrCorruptMessage, len(rec.key))
	}
	var m EndTxnMarker
	switch int16(binary.BigEndian.Uint16(rec.key[2:])) {
	case controlTypeAbort:
	case controlTypeCommit:
		m.Commit = true
	default:
		return EndTxnMarker{}, fmt.Errorf("%w: unknown control record type", ErrCorruptMessage)
	}
	// Kafka reads the coordinator epoch from any value version >= 0 that
	// is at least 6 bytes long.
	if len(rec.value) < 6 {
		return EndTxnMarker{}, fmt.Errorf("%w: marker value of %d bytes", ErrCorruptMessage, len(rec.value))
	}
	m.CoordinatorEpoch = int32(binary.BigEndian.Uint32(rec.value[2:]))
	return m, nil
}

// markerOf decodes the marker of b when h is a control batch. A control
// batch without records (a cleaner may empty one, as Kafka's does) carries no
// marker and changes no producer state.
func markerOf(b []byte, h BatchHeader) (*EndTxnMarker, error) {
	if !h.Control() || h.NumRecords == 0 {
		return nil, nil
	}
	m, err := ParseMarker(b)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// AppendMarker writes a transaction marker (WriteTxnMarkers on the partition
// leader) for producerID at producerEpoch, ending its open transaction here.
// It fails with ErrInvalidProducerEpoch when the producer has since written
// with a higher epoch, and ErrTransactionCoordinatorFenced when a marker from
// a newer coordinator epoch was already written. A marker for a producer
// without an open transaction here is still written, as Kafka does (the
// coordinator may retry), and an abort adds an index entry either way.
//
// Like Append it returns once the batch is in the page cache; the caller
// waits for the HW as for a produce with acks=all before answering the
// coordinator, since a marker lost in a leader change would leave the
// transaction open.
func (p *Partition) AppendMarker(producerID int64, producerEpoch int16, m EndTxnMarker, leaderEpoch int32, now time.Time) (AppendResult, error) {
	if producerID < 0 {
		return AppendResult{}, fmt.Errorf("%w: marker without a producer id", ErrInvalidRecord)
	}
	b := buildMarkerBatch(producerID, producerEpoch, m, now.UnixMilli())
	h, err := ParseBatchHeader(b)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Append(b, h, leaderEpoch, now)
}

// LastStableOffset is the offset below which every transaction is decided:
// the HW, or the first offset of the earliest open transaction if lower.
// ListOffsets with read_committed answers it for "latest", and read_committed
// fetches stop there.
func (p *Partition) LastStableOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lsoLocked()
}

// lsoLocked computes the LSO. A transaction stays unstable until the HW
// passes its marker, not just until the marker is written (Kafka's
// unreplicated transactions): a marker lost in a leader change would reopen
// it, and read_committed readers must never have seen its records by then.
// An open transaction whose first records were deleted (DeleteRecords)
// bounds it at the log start, as in Kafka. mu held.
func (p *Partition) lsoLocked() int64 {
	first := p.firstUnstable
	for _, c := range p.unreplicated {
		if c.last >= p.hw {
			first = min(first, c.first)
		}
	}
	return min(p.hw, max(first, p.logStart))
}

// FirstUnstableOffset is the first offset of the earliest open transaction,
// -1 when none is open (DescribeProducers and LSO-lag metrics).
func (p *Partition) FirstUnstableOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.firstUnstable == noUnstable {
		return -1
	}
	return p.firstUnstable
}

// ProducerInfo describes one producer's state in the partition
// (DescribeProducers).
type ProducerInfo struct {
	ProducerID       int64
	Epoch            int16
	LastSequence     int32 // -1 when no batch is cached
	LastTimestamp    int64
	CoordinatorEpoch int32
	TxnFirstOffset   int64 // -1 when no transaction is open
}

// Producers returns the state of every producer the partition tracks.
func (p *Partition) Producers() []ProducerInfo {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers.m))
	for id, e := range p.producers.m {
		seq := int32(-1)
		if n := len(e.Batches); n > 0 {
			seq = e.Batches[n-1].LastSeq
		}
		out = append(out, ProducerInfo{ProducerID: id, Epoch: e.Epoch, LastSequence: seq, LastTimestamp: e.LastTimestamp, CoordinatorEpoch: e.CoordinatorEpoch, TxnFirstOffset: e.TxnFirstOffset})
	}
	return out
}

// TxnOpen reports whether the producer has an open transaction in the
// partition at exactly this epoch: its next transactional batch continues
// that transaction, so the leader need not ask the transaction coordinator
// about it again (KIP-890).
func (p *Partition) TxnOpen(producerID int64, epoch int16) bool {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	e := p.producers.m[producerID]
	return e != nil && e.Epoch == epoch && e.TxnFirstOffset >= 0
}

// IsolationLevel is Fetch's and ListOffsets' isolation_level.
type IsolationLevel int8

// Kafka's isolation levels.
const (
	ReadUncommitted IsolationLevel = 0
	ReadCommitted   IsolationLevel = 1
)

// ReadIsolated is Read for a consumer: with ReadUncommitted it reads up to
// the HW; with ReadCommitted up to the LSO, and Aborted lists the aborted
// transactions overlapping the returned batches (what Fetch puts in
// AbortedTransactions), so the consumer can drop their records. maxOffset
// bounds the read further, as in Read (math.MaxInt64: no further bound).
func (p *Partition) ReadIsolated(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool, iso IsolationLevel) (ReadResult, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	upper := p.hw
	if iso == ReadCommitted {
		upper = p.lsoLocked()
	}
	res, err := p.readLocked(offset, maxBytes, min(upper, maxOffset), minOneBatch)
	if err != nil || iso != ReadCommitted || len(res.Data) == 0 {
		return res, err
	}
	end := offset
	for b := res.Data; len(b) >= BatchHeaderSize; {
		h, err := ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		end = h.LastOffset() + 1
		b = b[h.Size():]
	}
	res.Aborted = p.collectAbortedLocked(offset, end)
	return res, nil
}

// AbortedTxn is an entry of the aborted-transaction index: Kafka's AbortedTxn.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64 // the abort marker's offset
	// LastStableOffset is the LSO right after the abort: the first offset of
	// another open transaction, else LastOffset+1. A scan for [from, upper)
	// can stop at an entry whose LastStableOffset >= upper, since every later
	// abort belongs to a transaction that started at or after it.
	LastStableOffset int64
}

// collectAbortedLocked returns the aborted transactions overlapping
// [from, upper): LastOffset >= from and FirstOffset < upper. An abort is
// indexed in the segment holding its marker, which is at or after the
// segment holding from, so earlier segments are not searched. mu held.
func (p *Partition) collectAbortedLocked(from, upper int64) []AbortedTxn {
	var out []AbortedTxn
	for i := p.segmentFor(from); i < len(p.segs); i++ {
		for _, a := range p.segs[i].aborted {
			if a.LastOffset >= from && a.FirstOffset < upper {
				out = append(out, a)
			}
			if a.LastStableOffset >= upper {
				return out
			}
		}
	}
	return out
}

// applyBatch updates the state for an appended (or replayed) batch. It
// returns the transaction a marker completed and, for an abort, its index
// entry.
func (s *producerState) applyBatch(h BatchHeader, marker *EndTxnMarker) (*completedTxn, *AbortedTxn) {
	done := s.update(h, marker)
	if done == nil || !done.abort {
		return done, nil
	}
	return done, &AbortedTxn{ProducerID: done.producerID, FirstOffset: done.first, LastOffset: done.last, LastStableOffset: min(s.firstUnstable(), done.last+1)}
}

// txnUpdate is what an append changes in the partition's transaction state,
// published under mu by publishTxnLocked.
type txnUpdate struct {
	done          *completedTxn // the transaction a marker completed
	aborted       *AbortedTxn   // its index entry, for an abort
	firstUnstable int64         // the producer state's, after the batch
}

// applyProducerBatch updates the producer state for a batch just written at
// the end of seg and, for an abort marker, writes the aborted transaction to
// seg's index file. appendMu held.
//
// The batch is already in the log when this runs, so a failed index write
// cannot undo it: the entry is still published in memory (reads stay right)
// and the failure is logged; the file is rewritten by the next recovery
// replay that covers the segment.
func (p *Partition) applyProducerBatch(seg *segment, h BatchHeader, marker *EndTxnMarker) txnUpdate {
	done, a := p.producers.applyBatch(h, marker)
	if a != nil {
		if err := seg.appendTxnIndex(*a); err != nil {
			p.logger.Error("transaction index write failed", "partition", p.Dir(), "segment", seg.base, "error", err)
		}
	}
	return txnUpdate{done: done, aborted: a, firstUnstable: p.producers.firstUnstable()}
}

// publishTxnLocked makes an append's transaction changes visible to readers:
// the aborted entry (if any) joins seg's index, a completed transaction stays
// unstable until the HW passes its marker, and the LSO bound moves.
// appendMu and mu held.
func (p *Partition) publishTxnLocked(seg *segment, u txnUpdate) {
	if u.aborted != nil {
		seg.aborted = append(seg.aborted, *u.aborted)
	}
	if u.done != nil {
		p.unreplicated = append(p.unreplicated, *u.done)
	}
	p.firstUnstable = u.firstUnstable
	p.pruneUnreplicatedLocked()
}

// pruneUnreplicatedLocked forgets completed transactions whose marker is
// below the HW. mu held (write).
func (p *Partition) pruneUnreplicatedLocked() {
	p.unreplicated = slices.DeleteFunc(p.unreplicated, func(c completedTxn) bool { return c.last < p.hw })
}
