package coordinator

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/shoalmq/shoal/queue"
)

// The share coordinator's records in __share_group_state: one per share
// partition (group, topic id, partition), holding the whole persisted state
// (start offset, state epoch, in-flight batches). Compaction keeps the
// newest; a tombstone deletes the state (DeleteShareGroupState).
//
// Value version 1 adds the share partition's dead-letter producer (id,
// epoch, next sequence) after the batches; version 0 has none (id -1).
const (
	keyShareState     int16 = 0x5303
	shareStateValueV0 int16 = 0
	shareStateValue   int16 = 1
)

// DeadLetterProducerTag is the tagged field that carries a share
// partition's dead-letter producer (EncodeDeadLetterProducer) in a
// partition of WriteShareGroupState and ReadShareGroupState between shoal
// nodes. Kafka defines no such field; the number is far above the tags
// Kafka assigns, and a peer that does not know it skips it.
const DeadLetterProducerTag uint32 = 10000

// EncodeDeadLetterProducer encodes a dead-letter producer: id, epoch and
// sequence, big-endian.
func EncodeDeadLetterProducer(p queue.DeadLetterProducer) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(p.ID))
	b = binary.BigEndian.AppendUint16(b, uint16(p.Epoch))
	return binary.BigEndian.AppendUint32(b, uint32(p.Sequence))
}

// DecodeDeadLetterProducer decodes EncodeDeadLetterProducer's bytes.
func DecodeDeadLetterProducer(b []byte) (queue.DeadLetterProducer, error) {
	if len(b) != deadLetterProducerSize {
		return queue.DeadLetterProducer{ID: -1}, fmt.Errorf("%w: dead-letter producer of %d bytes", errBadRecord, len(b))
	}
	return queue.DeadLetterProducer{
		ID:       int64(binary.BigEndian.Uint64(b)),
		Epoch:    int16(binary.BigEndian.Uint16(b[8:])),
		Sequence: int32(binary.BigEndian.Uint32(b[10:])),
	}, nil
}

const deadLetterProducerSize = 8 + 2 + 4

// Tags is the tagged fields of a flexible-version Kafka message, as kmsg
// holds the ones it does not know (UnknownTags).
type Tags interface {
	Each(func(key uint32, val []byte))
	Set(key uint32, val []byte)
}

// SetDeadLetterProducer puts p in a share-state RPC partition's tags (DeadLetterProducerTag),
// unless it has no id.
func SetDeadLetterProducer(tags Tags, p queue.DeadLetterProducer) {
	if p.ID >= 0 {
		tags.Set(DeadLetterProducerTag, EncodeDeadLetterProducer(p))
	}
}

// DeadLetterProducerOf is the dead-letter producer in a share-state RPC
// partition's tags (id -1 when there is none, or it does not decode).
func DeadLetterProducerOf(tags Tags) queue.DeadLetterProducer {
	p := queue.DeadLetterProducer{ID: -1}
	tags.Each(func(key uint32, val []byte) {
		if key == DeadLetterProducerTag {
			if got, err := DecodeDeadLetterProducer(val); err == nil {
				p = got
			}
		}
	})
	return p
}

// ShareKey names one share partition.
type ShareKey struct {
	Group     string
	TopicID   [16]byte
	Partition int32
}

// String is the key's identity as Kafka hashes it onto __share_group_state
// partitions ("group:topicId:partition").
func (k ShareKey) String() string {
	return fmt.Sprintf("%s:%x:%d", k.Group, k.TopicID, k.Partition)
}

// EncodeShareKey encodes a share state record key.
func EncodeShareKey(k ShareKey) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(keyShareState))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Group)))
	b = append(b, k.Group...)
	b = append(b, k.TopicID[:]...)
	return binary.BigEndian.AppendUint32(b, uint32(k.Partition))
}

// DecodeShareKey decodes a share state record key.
func DecodeShareKey(b []byte) (ShareKey, error) {
	var k ShareKey
	if len(b) < 4 || int16(binary.BigEndian.Uint16(b)) != keyShareState {
		return k, fmt.Errorf("%w: not a share state key", errBadRecord)
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) != 4+n+16+4 {
		return k, fmt.Errorf("%w: share state key of %d bytes", errBadRecord, len(b))
	}
	k.Group = string(b[4 : 4+n])
	copy(k.TopicID[:], b[4+n:])
	k.Partition = int32(binary.BigEndian.Uint32(b[4+n+16:]))
	return k, nil
}

// ShareState is a share partition's durable state plus the leader epoch of
// the writer (WriteShareGroupState fences older leaders with it).
type ShareState struct {
	queue.PersistedState
	LeaderEpoch int32
}

// InitialShareState is the state InitializeShareGroupState writes: a start
// offset and state epoch, nothing in flight, no dead-letter producer.
func InitialShareState(startOffset int64, stateEpoch int32) ShareState {
	var st ShareState
	st.StartOffset, st.StateEpoch, st.Producer.ID = startOffset, stateEpoch, -1
	return st
}

// EncodeShareState encodes a share state record value.
func EncodeShareState(st ShareState) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(shareStateValue))
	b = binary.BigEndian.AppendUint64(b, uint64(st.StartOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(st.StateEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(st.LeaderEpoch))
	b = binary.AppendUvarint(b, uint64(len(st.Batches)))
	for _, sb := range st.Batches {
		b = binary.BigEndian.AppendUint64(b, uint64(sb.First))
		b = binary.BigEndian.AppendUint64(b, uint64(sb.Last))
		b = append(b, byte(sb.State))
		b = binary.BigEndian.AppendUint16(b, uint16(sb.DeliveryCount))
	}
	return append(b, EncodeDeadLetterProducer(st.Producer)...)
}

// DecodeShareState decodes a share state record value.
func DecodeShareState(b []byte) (ShareState, error) {
	var st ShareState
	st.Producer.ID = -1
	const head = 2 + 8 + 4 + 4
	if len(b) < head {
		return st, fmt.Errorf("%w: share state value", errBadRecord)
	}
	switch int16(binary.BigEndian.Uint16(b)) {
	case shareStateValueV0:
	case shareStateValue:
		if len(b) < head+deadLetterProducerSize {
			return st, fmt.Errorf("%w: share state value", errBadRecord)
		}
		p, err := DecodeDeadLetterProducer(b[len(b)-deadLetterProducerSize:])
		if err != nil {
			return st, err
		}
		st.Producer = p
		b = b[:len(b)-deadLetterProducerSize]
	default:
		return st, fmt.Errorf("%w: share state value", errBadRecord)
	}
	st.StartOffset = int64(binary.BigEndian.Uint64(b[2:]))
	st.StateEpoch = int32(binary.BigEndian.Uint32(b[10:]))
	st.LeaderEpoch = int32(binary.BigEndian.Uint32(b[14:]))
	n, w := binary.Uvarint(b[head:])
	rest := b[head+max(w, 0):]
	const per = 8 + 8 + 1 + 2
	if w <= 0 || n > uint64(len(rest)/per) || uint64(len(rest)) != n*per {
		return st, fmt.Errorf("%w: share state batches", errBadRecord)
	}
	st.Batches = make([]queue.StateBatch, n)
	for i := range st.Batches {
		r := rest[i*per:]
		st.Batches[i] = queue.StateBatch{
			First:         int64(binary.BigEndian.Uint64(r)),
			Last:          int64(binary.BigEndian.Uint64(r[8:])),
			State:         queue.State(r[16]),
			DeliveryCount: int16(binary.BigEndian.Uint16(r[17:])),
		}
	}
	return st, nil
}

// SharePartitionFor maps a share key to its __share_group_state partition:
// GroupPartition of k.String(), hashed without formatting the string, as
// every persisted acknowledgement asks it.
func SharePartitionFor(k ShareKey, partitions int32) int32 {
	var buf [64]byte
	tail := append(hex.AppendEncode(append(buf[:0], ':'), k.TopicID[:]), ':')
	tail = strconv.AppendInt(tail, int64(k.Partition), 10)
	h := javaHash(0, k.Group)
	for _, c := range tail { // ASCII: one code unit a byte
		h = 31*h + int32(c)
	}
	return absMod(h, partitions)
}
