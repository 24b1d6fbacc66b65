package log

import (
	"encoding/binary"
	"time"
)

// EncodeBatch builds the uncompressed v2 batch a node writes itself
// (coordinator records, dead letters): recs' keys, values and headers in
// order (their Offset and Timestamp are not used), no producer id,
// timestamped now. Its offsets and leader epoch are placeholders that
// Partition.Append assigns. recs must not be empty.
func EncodeBatch(recs []Record, now time.Time) []byte {
	var body, rec []byte
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		rec = appendVarintBytes(rec, r.Key)
		rec = appendVarintBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = appendVarintBytes(rec, []byte(h.Key))
			rec = appendVarintBytes(rec, h.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	ms := now.UnixMilli()
	return encodeBatch(BatchHeader{
		PartitionLeaderEpoch: -1,
		LastOffsetDelta:      int32(len(recs) - 1),
		BaseTimestamp:        ms,
		MaxTimestamp:         ms,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		NumRecords:           int32(len(recs)),
	}, body)
}

// appendVarintBytes appends a varint length (-1 for nil) and the bytes.
func appendVarintBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}
