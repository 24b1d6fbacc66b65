package coordruntime

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/shoalmq/shoal/log"
)

// BatchRecord is one record a node writes itself (group state, offsets,
// share state, dead letters).
type BatchRecord struct {
	Key, Value []byte // nil Value: a tombstone
	Headers    []log.RecordHeader
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeBatch builds an uncompressed v2 record batch, without producer id,
// timestamped now. The log assigns its offsets on append.
func EncodeBatch(recs []BatchRecord, now time.Time) []byte {
	var body []byte
	for i, r := range recs {
		var rec []byte
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
	b := make([]byte, 61, 61+len(body))
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(body))) // bytes after the length field
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)          // partition leader epoch, set by the log
	b[16] = 2                                               // magic
	binary.BigEndian.PutUint32(b[23:], uint32(len(recs)-1)) // last offset delta
	binary.BigEndian.PutUint64(b[27:], uint64(ms))          // base timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(ms))          // max timestamp
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))          // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)              // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)          // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(len(recs)))   // record count
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// appendVarintBytes appends a varint length (-1 for nil) and the bytes.
func appendVarintBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}
