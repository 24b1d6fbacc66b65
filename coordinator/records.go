// Package coordinator hosts consumer groups: the classic protocol
// (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), the KIP-848 consumer protocol
// (ConsumerGroupHeartbeat), and committed offsets.
//
// Groups are partitioned by __consumer_offsets partition; each partition's
// groups and offsets form a Shard. A Shard is a pure state machine: callers
// serialize calls on it and pass the time; it never reads a clock, starts a
// goroutine or does I/O. Every durable change comes out of Drain as a Record
// to append to the shard's __consumer_offsets partition; replaying those
// records (Replay) rebuilds the shard, which is how a coordinator loads.
//
// Transactions follow the same pattern on __transaction_state: a TxnShard per
// partition (txn.go) holds the transactional ids and adds marker jobs to its
// output.
package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one __consumer_offsets entry. A nil Value is a tombstone: the
// key's state is deleted, and compaction eventually drops both.
type Record struct {
	Key, Value []byte
}

// Key versions. Offset commits use Kafka's own OffsetCommitKey (version 1)
// and OffsetCommitValue (version 3) layouts, so Kafka tooling that decodes
// __consumer_offsets reads shoal's offsets. Group state uses shoal's own
// versions, chosen far from Kafka's (0-2 for classic metadata, 3-16 for the
// KIP-848 records) so no tool mistakes one for the other.
const (
	keyOffsetCommit   int16 = 1
	keyClassicGroup   int16 = 0x5301
	keyConsumerGroup  int16 = 0x5302
	keyShareGroup     int16 = 0x5304
	keyConsumerMember int16 = 0x5305
)

var errBadRecord = errors.New("coordinator: malformed record")

// offsetKey encodes the key of a committed offset.
func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// OffsetValue is a committed offset.
type OffsetValue struct {
	Offset          int64
	LeaderEpoch     int32
	Metadata        string
	CommitTimestamp int64 // ms
}

func (v OffsetValue) encode() []byte {
	kv := kmsg.OffsetCommitValue{Version: 3, Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp, ExpireTimestamp: -1}
	return kv.AppendTo(nil)
}

func decodeOffsetValue(b []byte) (OffsetValue, error) {
	var kv kmsg.OffsetCommitValue
	if err := kv.ReadFrom(b); err != nil {
		return OffsetValue{}, fmt.Errorf("%w: offset value: %v", errBadRecord, err)
	}
	return OffsetValue{Offset: kv.Offset, LeaderEpoch: kv.LeaderEpoch, Metadata: kv.Metadata, CommitTimestamp: kv.CommitTimestamp}, nil
}

// groupKey encodes the key of a group's state record.
func groupKey(version int16, group string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	b = binary.BigEndian.AppendUint16(b, uint16(len(group)))
	return append(b, group...)
}

// memberKey encodes the key of a consumer group member's record: the group
// key followed by the member id, length first.
func memberKey(group, member string) []byte {
	b := groupKey(keyConsumerMember, group)
	b = binary.BigEndian.AppendUint16(b, uint16(len(member)))
	return append(b, member...)
}

// decodedKey is a parsed record key.
type decodedKey struct {
	version   int16
	group     string
	member    string
	topic     string
	partition int32
}

func decodeKey(b []byte) (decodedKey, error) {
	if len(b) < 2 {
		return decodedKey{}, fmt.Errorf("%w: key of %d bytes", errBadRecord, len(b))
	}
	v := int16(binary.BigEndian.Uint16(b))
	switch v {
	case keyOffsetCommit:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(b); err != nil {
			return decodedKey{}, fmt.Errorf("%w: offset key: %v", errBadRecord, err)
		}
		return decodedKey{version: v, group: k.Group, topic: k.Topic, partition: k.Partition}, nil
	case keyClassicGroup, keyConsumerGroup, keyShareGroup:
		if len(b) < 4 || int(binary.BigEndian.Uint16(b[2:])) != len(b)-4 {
			return decodedKey{}, fmt.Errorf("%w: group key", errBadRecord)
		}
		return decodedKey{version: v, group: string(b[4:])}, nil
	case keyConsumerMember:
		if len(b) < 4 {
			return decodedKey{}, fmt.Errorf("%w: member key", errBadRecord)
		}
		gl := int(binary.BigEndian.Uint16(b[2:]))
		rest := b[4:]
		if len(rest) < gl+2 || int(binary.BigEndian.Uint16(rest[gl:])) != len(rest)-gl-2 {
			return decodedKey{}, fmt.Errorf("%w: member key", errBadRecord)
		}
		return decodedKey{version: v, group: string(rest[:gl]), member: string(rest[gl+2:])}, nil
	}
	return decodedKey{}, fmt.Errorf("%w: unknown key version %d", errBadRecord, v)
}

// GroupPartition maps a group id to its __consumer_offsets partition the
// way Kafka does (the absolute value of Java's String.hashCode, modulo the
// partition count), so a group lands on the same partition number as it
// would on Kafka.
func GroupPartition(group string, partitions int32) int32 {
	return absMod(javaHash(0, group), partitions)
}

// javaHash continues Java's String.hashCode, h so far, over the UTF-16 code
// units of s (a rune past the BMP is a surrogate pair).
func javaHash(h int32, s string) int32 {
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// absMod is Kafka's Utils.abs(h) % partitions.
func absMod(h, partitions int32) int32 {
	if h == math.MinInt32 {
		h = 0 // Kafka's Utils.abs maps MinInt to 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
