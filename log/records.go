package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedBatchBytes bounds how far one batch may inflate: produce
// validation refuses a batch whose records claim more (see validate.go), and
// decoding (ListOffsets by timestamp, compaction, dump tools) reports one as
// corrupt instead of exhausting memory.
var MaxDecompressedBatchBytes = 64 << 20

// Record is one decoded record of a batch. Key, Value and header values alias
// the batch (uncompressed) or the decompressed buffer; they stay valid as long
// as the caller keeps them.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value (tombstone)
	Headers   []RecordHeader
}

// RecordHeader is one record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// minRecordSize is the smallest encoding of a record: length, attributes,
// timestamp delta, offset delta, key length, value length and header count,
// one byte each. It bounds how many records a byte slice can hold, so counts
// read from the wire never size an allocation beyond what the bytes can back.
const minRecordSize = 7

// rawRecord is a record as it sits in the bytes, without copies.
type rawRecord struct {
	timestampDelta int64
	offsetDelta    int64
	key, value     []byte
	keyNull        bool
	valueNull      bool
	numHeaders     int
	headers        []byte // the encoded headers, parsed on demand
}

// recReader consumes records from a byte slice.
type recReader struct{ b []byte }

func (r *recReader) varint() (int64, error) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint in record", ErrCorruptMessage)
	}
	r.b = r.b[n:]
	return v, nil
}

// bytesField reads a varint length followed by that many bytes; -1 is null.
func (r *recReader) bytesField() (b []byte, null bool, err error) {
	l, err := r.varint()
	if err != nil {
		return nil, false, err
	}
	if l < 0 {
		if l != -1 {
			return nil, false, fmt.Errorf("%w: negative field length %d", ErrCorruptMessage, l)
		}
		return nil, true, nil
	}
	if l > int64(len(r.b)) {
		return nil, false, fmt.Errorf("%w: field length %d exceeds remaining %d bytes", ErrCorruptMessage, l, len(r.b))
	}
	b = r.b[:l:l]
	r.b = r.b[l:]
	return b, false, nil
}

// next parses one record, checking its length prefix against its contents.
func (r *recReader) next(rec *rawRecord) error {
	l, err := r.varint()
	if err != nil {
		return err
	}
	if l < 0 || l > int64(len(r.b)) {
		return fmt.Errorf("%w: record length %d with %d bytes left", ErrCorruptMessage, l, len(r.b))
	}
	body := recReader{b: r.b[:l]}
	r.b = r.b[l:]
	if len(body.b) < 1 {
		return fmt.Errorf("%w: empty record", ErrCorruptMessage)
	}
	body.b = body.b[1:] // attributes: unused in v2
	if rec.timestampDelta, err = body.varint(); err != nil {
		return err
	}
	if rec.offsetDelta, err = body.varint(); err != nil {
		return err
	}
	if rec.key, rec.keyNull, err = body.bytesField(); err != nil {
		return err
	}
	if rec.value, rec.valueNull, err = body.bytesField(); err != nil {
		return err
	}
	nh, err := body.varint()
	if err != nil {
		return err
	}
	if nh < 0 || nh > int64(len(body.b))/2 {
		return fmt.Errorf("%w: header count %d with %d bytes left", ErrCorruptMessage, nh, len(body.b))
	}
	rec.numHeaders = int(nh)
	rec.headers = body.b
	for i := int64(0); i < nh; i++ {
		k, kNull, err := body.bytesField()
		if err != nil {
			return err
		}
		if kNull {
			return fmt.Errorf("%w: null header key", ErrCorruptMessage)
		}
		_ = k
		if _, _, err := body.bytesField(); err != nil {
			return err
		}
	}
	if len(body.b) != 0 {
		return fmt.Errorf("%w: %d bytes left inside record", ErrCorruptMessage, len(body.b))
	}
	return nil
}

// DecodeRecords decodes every record of one batch (b may hold trailing bytes
// after the batch; they are ignored). The CRC is not checked: callers that
// read from the log rely on recovery having checked it, and dump tools want
// to show a damaged batch anyway (use VerifyBatchCRC).
//
// Allocation is bounded by the bytes actually present: record and header
// counts from the wire never size a slice beyond what the bytes can hold, and
// decompression stops at MaxDecompressedBatchBytes.
func DecodeRecords(b []byte) (BatchHeader, []Record, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, nil, err
	}
	if h.Magic != 2 {
		return h, nil, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, h.Magic)
	}
	if h.Size() > len(b) {
		return h, nil, fmt.Errorf("%w: batch length says %d bytes, have %d", ErrCorruptMessage, h.Size(), len(b))
	}
	if h.NumRecords < 0 {
		return h, nil, fmt.Errorf("%w: negative record count %d", ErrCorruptMessage, h.NumRecords)
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return h, nil, err
	}
	n := int(h.NumRecords)
	if limit := len(data) / minRecordSize; n > limit {
		// The count cannot be true; parse what is there and fail below.
		n = limit
	}
	recs := make([]Record, 0, n)
	r := recReader{b: data}
	for i := int32(0); i < h.NumRecords; i++ {
		var raw rawRecord
		if err := r.next(&raw); err != nil {
			return h, recs, err
		}
		rec := Record{
			Offset:    h.BaseOffset + raw.offsetDelta,
			Timestamp: h.BaseTimestamp + raw.timestampDelta,
		}
		if h.LogAppendTime() {
			rec.Timestamp = h.MaxTimestamp
		}
		if !raw.keyNull {
			rec.Key = raw.key
		}
		if !raw.valueNull {
			rec.Value = raw.value
		}
		if raw.numHeaders > 0 {
			rec.Headers = make([]RecordHeader, 0, raw.numHeaders)
			hr := recReader{b: raw.headers}
			for j := 0; j < raw.numHeaders; j++ {
				k, _, _ := hr.bytesField() // validated by next
				v, vNull, _ := hr.bytesField()
				if vNull {
					v = nil
				}
				rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
			}
		}
		recs = append(recs, rec)
	}
	if len(r.b) != 0 {
		return h, recs, fmt.Errorf("%w: %d bytes after the last record", ErrCorruptMessage, len(r.b))
	}
	return h, recs, nil
}

// VerifyBatchCRC reports whether the stored CRC of the whole batch at the
// start of b matches its contents.
func VerifyBatchCRC(b []byte) bool {
	h, err := ParseBatchHeader(b)
	if err != nil || h.Size() > len(b) {
		return false
	}
	return batchCRC(b[:h.Size()]) == h.CRC
}

// xerialMagic starts snappy payloads written by the Java client's
// xerial-snappy framing; other clients send one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(MaxDecompressedBatchBytes)),
		zstd.WithDecoderMaxWindow(uint64(MaxDecompressedBatchBytes)))
	if err != nil {
		panic(err) // only invalid options fail
	}
	return d
})

func decompress(codec int8, in []byte) ([]byte, error) {
	limit := MaxDecompressedBatchBytes
	switch codec {
	case CompressionNone:
		return in, nil
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrCorruptMessage, err)
		}
		return readLimited(zr, limit, "gzip")
	case CompressionLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(in)), limit, "lz4")
	case CompressionZstd:
		out, err := zstdDecoder().DecodeAll(in, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorruptMessage, err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: zstd payload inflates past %d bytes", ErrCorruptMessage, limit)
		}
		return out, nil
	case CompressionSnappy:
		return inflateSnappy(in, nil, int64(limit))
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptMessage, codec)
	}
}

func readLimited(r io.Reader, limit int, codec string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptMessage, codec, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: %s payload inflates past %d bytes", ErrCorruptMessage, codec, limit)
	}
	return buf.Bytes(), nil
}

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err) // only invalid options fail
	}
	return e
})

// writeAndClose writes raw through the compressing writer w and closes it,
// which flushes the end of the stream.
func writeAndClose(w io.WriteCloser, raw []byte) error {
	if _, err := w.Write(raw); err != nil {
		return err
	}
	return w.Close()
}

// xerialBlockSize is the block size of the Java client's xerial framing.
const xerialBlockSize = 32 << 10

// compress encodes a batch's records with codec, the inverse of decompress.
// With xerial, snappy output uses the Java client's framing.
func compress(codec int8, xerial bool, raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return raw, nil
	case CompressionGzip:
		if err := writeAndClose(gzip.NewWriter(&buf), raw); err != nil {
			return nil, err
		}
	case CompressionLZ4:
		if err := writeAndClose(lz4.NewWriter(&buf), raw); err != nil {
			return nil, err
		}
	case CompressionZstd:
		return zstdEncoder().EncodeAll(raw, nil), nil
	case CompressionSnappy:
		if !xerial {
			return snappy.Encode(nil, raw), nil
		}
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1}) // version 1, compatible version 1
		for len(raw) > 0 {
			n := min(len(raw), xerialBlockSize)
			blk := snappy.Encode(nil, raw[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(blk))))
			buf.Write(blk)
			raw = raw[n:]
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptMessage, codec)
	}
	return buf.Bytes(), nil
}
