package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// FilterBatch returns the v2 batch b holding only the records whose offset
// keep reports, the way compaction leaves a batch: the same base offset,
// last offset delta, timestamps, producer fields and codec, fewer records,
// a new length and CRC. Clients read such a batch as they read a compacted
// one. b itself is returned when every record is kept or b is a control
// batch, and nil when none is. A batch that does not decode is an error.
func FilterBatch(b []byte, keep func(offset int64) bool) ([]byte, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Size() > len(b) {
		return nil, ErrCorruptMessage
	}
	if h.Control() {
		return b[:h.Size()], nil
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return nil, err
	}
	// Only the offset of each record is needed: records are skipped by
	// their length prefix, not parsed (their contents were checked when
	// produced), and the kept ones are copied once, in runs.
	type run struct{ from, to int }
	var runs []run
	kept, size := int32(0), 0
	pos := 0
	for i := int32(0); i < h.NumRecords; i++ {
		n, off, ok := recordAt(data[pos:])
		if !ok {
			return nil, fmt.Errorf("%w: record %d of the batch at %d", ErrCorruptMessage, i, h.BaseOffset)
		}
		if keep(h.BaseOffset + off) {
			if k := len(runs); k > 0 && runs[k-1].to == pos {
				runs[k-1].to = pos + n
			} else {
				runs = append(runs, run{pos, pos + n})
			}
			kept++
			size += n
		}
		pos += n
	}
	switch {
	case pos != len(data):
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrCorruptMessage, len(data)-pos)
	case kept == h.NumRecords:
		return b[:h.Size()], nil
	case kept == 0:
		return nil, nil
	}
	recs := make([]byte, 0, size)
	for _, r := range runs {
		recs = append(recs, data[r.from:r.to]...)
	}
	payload, err := compress(h.Compression(), bytes.HasPrefix(b[BatchHeaderSize:], xerialMagic), recs)
	if err != nil {
		return nil, err
	}
	nh := h
	nh.NumRecords = kept
	return encodeBatch(nh, payload), nil
}

// recordAt reads the record at the start of b: its encoded size (length
// prefix included) and offset delta, without parsing the rest of it.
func recordAt(b []byte) (size int, offsetDelta int64, ok bool) {
	l, k := binary.Varint(b)
	if k <= 0 || l < 1 || l > int64(len(b)-k) {
		return 0, 0, false
	}
	body := b[k : k+int(l)][1:] // after the attributes
	if _, m := binary.Varint(body); m > 0 {
		if offsetDelta, n := binary.Varint(body[m:]); n > 0 {
			return k + int(l), offsetDelta, true
		}
	}
	return 0, 0, false
}
