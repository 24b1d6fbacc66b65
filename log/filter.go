package log

import "bytes"

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
		return b, nil
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return nil, err
	}
	var recs []byte
	kept, total := int32(0), int32(0)
	err = forRecords(h, data, func(raw []byte, rec *rawRecord) {
		total++
		if keep(h.BaseOffset + rec.offsetDelta) {
			recs = append(recs, raw...)
			kept++
		}
	})
	switch {
	case err != nil:
		return nil, err
	case kept == total:
		return b[:h.Size()], nil
	case kept == 0:
		return nil, nil
	}
	payload, err := compress(h.Compression(), bytes.HasPrefix(b[BatchHeaderSize:], xerialMagic), recs)
	if err != nil {
		return nil, err
	}
	nh := h
	nh.NumRecords = kept
	return encodeBatch(nh, payload), nil
}
