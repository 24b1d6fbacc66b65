package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// FilterBatch returns the v2 batch b holding only the records whose offset
// keep reports, the way compaction leaves a batch: the same base offset,
// last offset delta, timestamps, producer fields and codec, fewer records,
// a new length and CRC. Clients read such a batch as they read a compacted
// one. b itself is returned when every record is kept or b is a control
// batch, and nil when none is. A batch that does not decode is an error.
func FilterBatch(b []byte, keep func(offset int64) bool) ([]byte, error) {
	return filterBatch(b, keep, func(h BatchHeader, data []byte) (RecordIndex, error) {
		return indexRecords(h, data, nil)
	})
}

// RecordIndex is where each record of one v2 batch starts and its offset,
// for filtering the same batch many times: FilterBatch finds the records by
// decoding three varints of each, and a key-ordered share partition cuts
// each batch of its window down to a few records on every fetch, so the
// varints of a thousand-record batch were decoded again and again.
type RecordIndex struct {
	// pos[i] is where record i starts in the batch's record data (after
	// inflating); pos[n] is the data's length.
	pos []int32
	// delta[i] is record i's offset delta; nil when it is i for every
	// record (a batch compaction never cut).
	delta []int32
}

// IndexBatch indexes the records of the v2 batch b. A control batch gets an
// empty index (RecordIndex.Filter returns it whole); a batch that does not
// decode is an error.
func IndexBatch(b []byte) (RecordIndex, error) {
	return IndexBatchKeys(b, nil)
}

// IndexBatchKeys is IndexBatch that also hands key, when not nil, the
// offset and key (nil for a null key) of each record, in offset order, from
// the same walk over the records: a key-ordered share partition needs both
// of every batch it reads.
func IndexBatchKeys(b []byte, key func(offset int64, k []byte)) (RecordIndex, error) {
	h, data, err := batchData(b)
	if err != nil || h.Control() {
		return RecordIndex{}, err
	}
	return indexRecords(h, data, key)
}

// Filter is FilterBatch for b, the batch x indexes.
func (x RecordIndex) Filter(b []byte, keep func(offset int64) bool) ([]byte, error) {
	return filterBatch(b, keep, func(h BatchHeader, data []byte) (RecordIndex, error) {
		return x, x.check(h, data)
	})
}

// check refuses x as the index of the batch h heads, whose record data
// (inflated) is data, when it was built from another batch.
func (x RecordIndex) check(h BatchHeader, data []byte) error {
	if h.NumRecords < 0 || len(x.pos) != int(h.NumRecords)+1 || int(x.pos[len(x.pos)-1]) != len(data) {
		return fmt.Errorf("%w: record index of another batch", ErrCorruptMessage)
	}
	return nil
}

// OffsetRange is the offsets First to Last, both included.
type OffsetRange struct{ First, Last int64 }

// CutPieces appends to pieces b's batch, the batch x indexes, cut down to
// the records whose offsets lie in ranges (ascending and disjoint), as
// Filter cuts it, in pieces that make that batch one after the other: b
// whole when every record is in them (or b is a control batch), nothing when
// none is, else a new header followed by the kept records, as spans of b
// when it is not compressed. The pieces may alias b.
//
// Why not Filter: a key-ordered share fetch keeps a few dozen records of a
// batch of a thousand, and Filter asks about every record of the batch; the
// records in a range are found here from the index by offset, so a cut
// costs what it keeps. Why pieces: the fetch copies the pieces of all its
// cuts into its response once, into memory that need not be cleared first
// (bytes.Join); a buffer made up front for them is cleared by the runtime
// first, and in a broker's CPU profile of key-ordered fetches the clearing
// took as long as the copy.
func (x RecordIndex) CutPieces(pieces [][]byte, b []byte, ranges []OffsetRange) ([][]byte, error) {
	h, data, err := batchData(b)
	switch {
	case err != nil:
		return pieces, err
	case h.Control():
		return append(pieces, b[:h.Size():h.Size()]), nil
	}
	if err := x.check(h, data); err != nil {
		return pieces, err
	}
	var c cut
	for _, r := range ranges {
		lo, hi := r.First-h.BaseOffset, r.Last-h.BaseOffset
		if lo > int64(h.LastOffsetDelta) {
			break
		}
		if hi < 0 {
			continue
		}
		c.add(x, x.firstFrom(max(lo, 0)), x.firstFrom(min(hi, int64(h.LastOffsetDelta))+1))
	}
	switch c.kept {
	case h.NumRecords:
		return append(pieces, b[:h.Size():h.Size()]), nil
	case 0:
		return pieces, nil
	}
	return c.appendPieces(pieces, b, h, data)
}

// firstFrom is the index of the first record whose offset delta is d or
// more (the record count when there is none).
func (x RecordIndex) firstFrom(d int64) int32 {
	n := int32(len(x.pos) - 1)
	if x.delta == nil {
		return int32(min(d, int64(n)))
	}
	i, _ := slices.BinarySearch(x.delta, int32(min(d, math.MaxInt32)))
	return int32(i)
}

// offset is record i's offset delta.
func (x RecordIndex) offset(i int32) int64 {
	if x.delta != nil {
		return int64(x.delta[i])
	}
	return int64(i)
}

// filterBatch decodes b once and filters it through the record index that
// index gives for its header and inflated records; a control batch is
// returned whole.
func filterBatch(b []byte, keep func(offset int64) bool, index func(BatchHeader, []byte) (RecordIndex, error)) ([]byte, error) {
	h, data, err := batchData(b)
	switch {
	case err != nil:
		return nil, err
	case h.Control():
		return b[:h.Size()], nil
	}
	x, err := index(h, data)
	if err != nil {
		return nil, err
	}
	return x.filter(b, h, data, keep)
}

// batchData parses b's header and returns its record data, inflated.
func batchData(b []byte) (BatchHeader, []byte, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Size() > len(b) {
		return h, nil, ErrCorruptMessage
	}
	if h.Control() {
		return h, nil, nil
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	return h, data, err
}

// indexRecords walks the records of data, the record data of the batch h
// heads, handing each record's offset and key to key when it is not nil.
// Records are skipped by their length prefix, not parsed past their key:
// their contents were checked when produced.
func indexRecords(h BatchHeader, data []byte, key func(offset int64, k []byte)) (RecordIndex, error) {
	if h.NumRecords < 0 || int(h.NumRecords) > len(data)/minRecordSize {
		return RecordIndex{}, fmt.Errorf("%w: %d records in %d bytes", ErrCorruptMessage, h.NumRecords, len(data))
	}
	x := RecordIndex{pos: make([]int32, h.NumRecords+1)}
	pos := 0
	for i := range h.NumRecords {
		n, off, rest, ok := recordAt(data[pos:])
		if ok && key != nil {
			var k []byte
			if k, ok = recordKey(rest); ok {
				key(h.BaseOffset+off, k)
			}
		}
		if !ok {
			return RecordIndex{}, fmt.Errorf("%w: record %d of the batch at %d", ErrCorruptMessage, i, h.BaseOffset)
		}
		if off != int64(i) && x.delta == nil {
			x.delta = make([]int32, h.NumRecords)
			for j := range i {
				x.delta[j] = j
			}
		}
		if x.delta != nil {
			x.delta[i] = int32(off)
		}
		x.pos[i] = int32(pos)
		pos += n
	}
	if pos != len(data) {
		return RecordIndex{}, fmt.Errorf("%w: %d bytes after the last record", ErrCorruptMessage, len(data)-pos)
	}
	x.pos[h.NumRecords] = int32(pos)
	return x, nil
}

// filter builds the cut batch: the kept records are copied once, in runs.
func (x RecordIndex) filter(b []byte, h BatchHeader, data []byte, keep func(offset int64) bool) ([]byte, error) {
	var c cut
	for i := range h.NumRecords {
		if keep(h.BaseOffset + x.offset(i)) {
			c.add(x, i, i+1)
		}
	}
	switch c.kept {
	case h.NumRecords:
		return b[:h.Size()], nil
	case 0:
		return nil, nil
	}
	pieces, err := c.appendPieces(nil, b, h, data)
	if err != nil {
		return nil, err
	}
	return bytes.Join(pieces, nil), nil
}

// cut is the records a batch is cut down to: runs of consecutive records
// (spans of the record data), the records kept and their bytes.
type cut struct {
	runs []struct{ from, to int32 }
	kept int32
	size int
}

// add keeps records i to j-1 of the batch x indexes.
func (c *cut) add(x RecordIndex, i, j int32) {
	if i >= j {
		return
	}
	from, to := x.pos[i], x.pos[j]
	if k := len(c.runs); k > 0 && c.runs[k-1].to == from {
		c.runs[k-1].to = to
	} else {
		c.runs = append(c.runs, struct{ from, to int32 }{from, to})
	}
	c.kept += j - i
	c.size += int(to - from)
}

// appendRecords appends c's records, from the record data data, to dst.
func (c *cut) appendRecords(dst, data []byte) []byte {
	for _, r := range c.runs {
		dst = append(dst, data[r.from:r.to]...)
	}
	return dst
}

// appendPieces appends to pieces the batch b (header h, record data data,
// inflated) holding only c's records, some but not all of b's: a new header,
// then the records' spans of data, or their payload compressed again.
func (c *cut) appendPieces(pieces [][]byte, b []byte, h BatchHeader, data []byte) ([][]byte, error) {
	head := make([]byte, BatchHeaderSize)
	pieces = append(pieces, head)
	body := len(pieces)
	if h.Compression() != CompressionNone {
		payload, err := compress(h.Compression(), bytes.HasPrefix(b[BatchHeaderSize:], xerialMagic), c.appendRecords(make([]byte, 0, c.size), data))
		if err != nil {
			return pieces[:body-1], err
		}
		pieces = append(pieces, payload)
	} else {
		for _, r := range c.runs {
			pieces = append(pieces, data[r.from:r.to:r.to])
		}
	}
	size := BatchHeaderSize
	for _, p := range pieces[body:] {
		size += len(p)
	}
	nh := h
	nh.NumRecords = c.kept
	putHeader(head, nh, size)
	crc := crc32.Checksum(head[offAttributes:], castagnoli)
	for _, p := range pieces[body:] {
		crc = crc32.Update(crc, castagnoli, p)
	}
	binary.BigEndian.PutUint32(head[offCRC:], crc)
	return pieces, nil
}

// recordAt reads the record at the start of b: its encoded size (length
// prefix included), offset delta and the record's bytes after it, without
// parsing those.
func recordAt(b []byte) (size int, offsetDelta int64, rest []byte, ok bool) {
	l, k := binary.Varint(b)
	if k <= 0 || l < 1 || l > int64(len(b)-k) {
		return 0, 0, nil, false
	}
	body := b[k : k+int(l)][1:] // after the attributes
	if _, m := binary.Varint(body); m > 0 {
		if offsetDelta, n := binary.Varint(body[m:]); n > 0 {
			return k + int(l), offsetDelta, body[m+n:], true
		}
	}
	return 0, 0, nil, false
}

// recordKey reads the key at the start of rest, a record's bytes after its
// offset delta: nil for a null key.
func recordKey(rest []byte) ([]byte, bool) {
	l, n := binary.Varint(rest)
	switch {
	case n <= 0 || l < -1 || l > int64(len(rest)-n):
		return nil, false
	case l == -1:
		return nil, true
	}
	return rest[n : n+int(l) : n+int(l)], true
}
