package log

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
)

// The aborted-transaction index of a segment, "%020d.txnindex": Kafka's
// TransactionIndex layout, so Kafka's tools read it. Entries are appended in
// marker order, 34 bytes each (big endian):
//
//	version int16 (0) | producerId int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64
//
// The file exists only for segments that hold an abort marker. Each entry is
// fsynced as it is written: aborts are rare (one per aborted transaction per
// partition), and a durable entry means a segment below the newest producer
// snapshot never needs its index rebuilt. Entries past the segment's end (a
// crash lost the marker, or a truncation removed it) are dropped on load, and
// the index of every segment a recovery replays is rewritten from the replay.
const (
	txnIndexSuffix    = ".txnindex"
	txnIndexEntrySize = 34
)

func encodeAbortedTxns(as []AbortedTxn) []byte {
	b := make([]byte, 0, len(as)*txnIndexEntrySize)
	for _, a := range as {
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastStableOffset))
	}
	return b
}

// decodeAbortedTxns reads whole entries, ignoring a torn tail and stopping at
// an entry of an unknown version.
func decodeAbortedTxns(b []byte) []AbortedTxn {
	var as []AbortedTxn
	for ; len(b) >= txnIndexEntrySize; b = b[txnIndexEntrySize:] {
		if binary.BigEndian.Uint16(b) != 0 {
			break
		}
		as = append(as, AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		})
	}
	return as
}

// loadTxnIndex reads the segment's aborted-transaction index, if any. Called
// before the partition is shared.
func (s *segment) loadTxnIndex() error {
	b, err := os.ReadFile(segmentPath(s.dir, s.base, txnIndexSuffix))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	s.aborted = decodeAbortedTxns(b)
	return nil
}

// appendTxnIndex writes one entry to the index file and fsyncs it. appendMu
// held; the caller publishes the entry in s.aborted under mu.
func (s *segment) appendTxnIndex(a AbortedTxn) error {
	f, err := os.OpenFile(segmentPath(s.dir, s.base, txnIndexSuffix), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// Write at the end of the entries already known, so a torn entry from
	// a crash is overwritten rather than followed.
	at := int64(len(s.aborted)) * txnIndexEntrySize
	if _, err := f.WriteAt(encodeAbortedTxns([]AbortedTxn{a}), at); err != nil {
		return err
	}
	if err := f.Truncate(at + txnIndexEntrySize); err != nil {
		return err
	}
	return f.Sync()
}

// rewriteTxnIndex replaces the index file with as (removing it when empty).
func (s *segment) rewriteTxnIndex(as []AbortedTxn) error {
	path := segmentPath(s.dir, s.base, txnIndexSuffix)
	if len(as) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeFileAtomic(path, encodeAbortedTxns(as))
}

// keepAbortedBelow returns the entries of as whose marker lies below limit.
func keepAbortedBelow(as []AbortedTxn, limit int64) []AbortedTxn {
	i := slices.IndexFunc(as, func(a AbortedTxn) bool { return a.LastOffset >= limit })
	if i < 0 {
		return as
	}
	return slices.Clip(as[:i])
}
