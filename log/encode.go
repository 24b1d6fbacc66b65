package log

import (
	"encoding/binary"
	"time"
)

// EncodeBatch builds the uncompressed v2 batch a node writes itself
// (coordinator records): recs' keys, values and headers in
// order (their Offset and Timestamp are not used), no producer id,
// timestamped now. Its offsets and leader epoch are placeholders that
// Partition.Append assigns. recs must not be empty.
func EncodeBatch(recs []Record, now time.Time) []byte {
	return EncodeProducerBatch(recs, now, -1, -1, -1)
}

// EncodeProducerBatch is EncodeBatch written by an idempotent producer:
// producer id, epoch and the sequence of the first record, so that the
// leader of the partition answers a resent batch as a duplicate (the
// dead letters of a share partition).
func EncodeProducerBatch(recs []Record, now time.Time, producerID int64, producerEpoch int16, baseSequence int32) []byte {
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
		ProducerID:           producerID,
		ProducerEpoch:        producerEpoch,
		BaseSequence:         baseSequence,
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
