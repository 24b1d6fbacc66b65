package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// BatchHeaderSize is the size of a RecordBatch v2 header: everything before
// the first record.
const BatchHeaderSize = 61

// Byte offsets of the header fields. The CRC covers attributes..end, so
// baseOffset, batchLength and partitionLeaderEpoch can be rewritten by the
// broker without touching the CRC.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// lengthFieldEnd is where the bytes counted by batchLength start.
	lengthFieldEnd = 12
	// minBatchLength is the smallest legal batchLength: a header with no records.
	minBatchLength = BatchHeaderSize - lengthFieldEnd
)

// Attribute bits.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs as stored in the low attribute bits.
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors the broker maps to Kafka error codes.
var (
	ErrCorruptMessage       = errors.New("log: corrupt message")              // CORRUPT_MESSAGE (2)
	ErrUnsupportedMagic     = errors.New("log: unsupported message format")   // UNSUPPORTED_FOR_MESSAGE_FORMAT (43)
	ErrMessageTooLarge      = errors.New("log: message too large")            // MESSAGE_TOO_LARGE (10)
	ErrInvalidRecord        = errors.New("log: invalid record")               // INVALID_RECORD (87)
	ErrOffsetOutOfRange     = errors.New("log: offset out of range")          // OFFSET_OUT_OF_RANGE (1)
	ErrOutOfOrderSequence   = errors.New("log: out of order sequence number") // OUT_OF_ORDER_SEQUENCE_NUMBER (45)
	ErrInvalidProducerEpoch = errors.New("log: invalid producer epoch")       // INVALID_PRODUCER_EPOCH (47)
	ErrUnknownProducerID    = errors.New("log: unknown producer id")          // UNKNOWN_PRODUCER_ID (59)
	ErrInvalidTimestamp     = errors.New("log: invalid timestamp")            // INVALID_TIMESTAMP (32)
	ErrInvalidTxnState      = errors.New("log: invalid transaction state")    // INVALID_TXN_STATE (48)
	// ErrTransactionCoordinatorFenced: TRANSACTION_COORDINATOR_FENCED (52).
	ErrTransactionCoordinatorFenced = errors.New("log: transaction coordinator fenced")
	ErrPartitionDeleted             = errors.New("log: partition deleted")             // NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION
	ErrClosed                       = errors.New("log: closed")                        // KAFKA_STORAGE_ERROR or NOT_LEADER_OR_FOLLOWER
	ErrStorage                      = errors.New("log: storage error")                 // KAFKA_STORAGE_ERROR (56)
	ErrDuplicatePartition           = errors.New("log: partition present in two dirs") // startup failure
)

// BatchHeader is the decoded fixed part of a RecordBatch v2.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // batchLength field: bytes after the length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32

	// deltas is set by ValidateProduceBatch: the records' timestamp
	// deltas, which the topic's timestamp bounds are checked against.
	deltas deltaRange
}

// Size is the number of bytes of the whole batch, header included.
func (h BatchHeader) Size() int { return lengthFieldEnd + int(h.Length) }

// LastOffset is the offset of the last record of the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec id (attributes & 7).
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps were set by the broker.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports attribute bit 4.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports attribute bit 5 (transaction markers).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// ParseBatchHeader decodes the first BatchHeaderSize bytes of b. It checks only
// that the header is present and that batchLength is not below the minimum; it
// does not check the magic, the CRC or that the body is present.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, need a %d byte batch header", ErrCorruptMessage, len(b), BatchHeaderSize)
	}
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offRecordCount:])),
	}
	if h.Length < minBatchLength {
		return h, fmt.Errorf("%w: batch length %d below minimum %d", ErrCorruptMessage, h.Length, minBatchLength)
	}
	return h, nil
}

// batchCRC computes the CRC-32C a v2 batch must carry: over attributes..end.
// b must hold exactly one whole batch.
func batchCRC(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], castagnoli)
}

// ValidateProduceBatch checks what a producer sent for one partition: exactly
// one whole v2 batch, magic 2, consistent length fields, a size within
// maxMessageBytes, a valid CRC-32C, a record count that matches
// lastOffsetDelta, no control batch, a sequence number wherever there is a
// producer id, and records that parse with consecutive offset deltas, after
// inflating the payload with its codec (see validate.go). The bytes are not
// changed: what is accepted is stored exactly as sent.
//
// It never panics, and allocates nothing proportional to any length field:
// lengths are checked against len(b) before use and inflation is bounded.
func ValidateProduceBatch(b []byte, maxMessageBytes int) (BatchHeader, error) {
	// Magic sits at the same place in every message format version, so check
	// it first: a v0/v1 message is named for its format rather than as a
	// short v2 header. (The broker's produce path refuses those earlier,
	// with Kafka's INVALID_RECORD.)
	if len(b) > offMagic && b[offMagic] != 2 {
		return BatchHeader{Magic: int8(b[offMagic])}, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, int8(b[offMagic]))
	}
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if size > len(b) {
		return h, fmt.Errorf("%w: batch length says %d bytes, have %d", ErrCorruptMessage, size, len(b))
	}
	if size < len(b) {
		// Kafka v2 rule: a produce carries exactly one batch per partition.
		return h, fmt.Errorf("%w: %d trailing bytes after the batch (one batch per partition)", ErrInvalidRecord, len(b)-size)
	}
	if h.BaseOffset != 0 {
		// The broker assigns offsets; Kafka refuses a client's batch
		// claiming any.
		return h, fmt.Errorf("%w: the baseOffset of the record batch should be 0, but it is %d", ErrInvalidRecord, h.BaseOffset)
	}
	if maxMessageBytes > 0 && size > maxMessageBytes {
		return h, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, size, maxMessageBytes)
	}
	if c := batchCRC(b); c != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptMessage, h.CRC, c)
	}
	// A header whose offsets and count disagree is INVALID_RECORD in
	// Kafka, not CORRUPT_MESSAGE (which producers retry).
	switch {
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: batch has an invalid offset range: [0, %d]", ErrInvalidRecord, h.LastOffsetDelta)
	case h.NumRecords <= 0:
		return h, fmt.Errorf("%w: invalid reported count for record batch: %d", ErrInvalidRecord, h.NumRecords)
	case int64(h.NumRecords) != int64(h.LastOffsetDelta)+1:
		return h, fmt.Errorf("%w: inconsistent batch offset range [0, %d] and count of records %d", ErrInvalidRecord, h.LastOffsetDelta, h.NumRecords)
	}
	if h.Control() {
		return h, fmt.Errorf("%w: control batch from a client", ErrInvalidRecord)
	}
	// Kafka's LogValidator: an idempotent or transactional batch numbers
	// its records; without a sequence the duplicate check cannot work.
	if h.ProducerID >= 0 && h.BaseSequence < 0 {
		return h, fmt.Errorf("%w: sequence number %d in a batch of producer id %d", ErrInvalidRecord, h.BaseSequence, h.ProducerID)
	}
	if h.Transactional() && h.ProducerID < 0 {
		return h, fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidRecord)
	}
	if h.Compression() > CompressionZstd {
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptMessage, h.Compression())
	}
	deltas, err := checkBatchRecords(h.Compression(), b[BatchHeaderSize:size], h.NumRecords)
	if err != nil {
		return h, err
	}
	h.deltas = deltas
	return h, nil
}

// patchBatch writes the broker-assigned base offset and leader epoch into a
// stored batch. Both fields lie outside the CRC.
func patchBatch(b []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
}

// setLogAppendTime stamps the batch with the broker's time. Attributes and
// maxTimestamp are inside the CRC, so this is the one case where the stored
// bytes differ from the producer's and the CRC is recomputed.
func setLogAppendTime(b []byte, h *BatchHeader, ts int64) {
	h.Attributes |= attrLogAppendTime
	h.MaxTimestamp = ts
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	h.CRC = batchCRC(b[:h.Size()])
	binary.BigEndian.PutUint32(b[offCRC:], h.CRC)
}
