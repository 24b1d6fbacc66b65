package coordinator

import (
	"reflect"
	"testing"

	"github.com/shoalmq/shoal/queue"
)

// GroupPartition must agree with Kafka's abs(String.hashCode()) % n, so a
// group lands on the partition number Kafka would give it.
func TestGroupPartitionMatchesKafka(t *testing.T) {
	for _, tc := range []struct {
		group string
		n     int32
		want  int32
	}{
		{"", 50, 0},
		{"test", 50, 48},              // "test".hashCode() = 3556498
		{"hello", 50, 22},             // "hello".hashCode() = 99162322
		{"polygenelubricants", 50, 0}, // hashCode() = Integer.MIN_VALUE; Kafka's abs maps it to 0
		{"Aa", 7, 2112 % 7},           // "Aa" and "BB" collide in Java (2112)
		{"BB", 7, 2112 % 7},
		{"zzzzzzzz", 50, 12},   // hashCode() = -1910022912 (overflows, negative)
		{"\U0001F600", 50, 49}, // a surrogate pair: hashCode() = 1772899
	} {
		if got := GroupPartition(tc.group, tc.n); got != tc.want {
			t.Errorf("GroupPartition(%q, %d) = %d, want %d", tc.group, tc.n, got, tc.want)
		}
	}
}

// SharePartitionFor hashes a share key as GroupPartition hashes its string
// "group:topicId:partition", which places it where earlier versions did.
func TestSharePartitionForHashesTheKeyString(t *testing.T) {
	id := [16]byte{0x00, 0x1f, 0xa0, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xee}
	for _, k := range []ShareKey{
		{Group: "g", TopicID: id, Partition: 0},
		{Group: "", Partition: 7},
		{Group: "orders-workers", TopicID: id, Partition: 2147483647},
		{Group: "gr\u00fcn-\U0001F600", TopicID: id, Partition: 12},
	} {
		for _, n := range []int32{1, 3, 50} {
			if got, want := SharePartitionFor(k, n), GroupPartition(k.String(), n); got != want {
				t.Errorf("SharePartitionFor(%v, %d) = %d, want %d", k, n, got, want)
			}
		}
	}
}

func TestRecordKeysRoundTrip(t *testing.T) {
	k, err := decodeKey(offsetKey("g", "orders", 7))
	if err != nil || k.version != keyOffsetCommit || k.group != "g" || k.topic != "orders" || k.partition != 7 {
		t.Fatalf("offset key: %+v %v", k, err)
	}
	k, err = decodeKey(groupKey(keyConsumerGroup, "grp"))
	if err != nil || k.version != keyConsumerGroup || k.group != "grp" {
		t.Fatalf("group key: %+v %v", k, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0x53, 0x01, 0, 9, 'x'}, {0, 9, 1, 2}} {
		if _, err := decodeKey(bad); err == nil {
			t.Errorf("decodeKey(%v) accepted", bad)
		}
	}
	v := OffsetValue{Offset: 42, LeaderEpoch: 3, Metadata: "m", CommitTimestamp: 1000}
	got, err := decodeOffsetValue(v.encode())
	if err != nil || got != v {
		t.Fatalf("offset value: %+v %v", got, err)
	}
}

// A share state round-trips with its dead-letter producer; a version 0
// value (written before dead letters were part of the state) has none.
func TestShareStateValueVersions(t *testing.T) {
	st := ShareState{LeaderEpoch: 3}
	st.StartOffset, st.StateEpoch = 10, 2
	st.Batches = []queue.StateBatch{{First: 10, Last: 12, State: queue.DeadLettering, DeliveryCount: 1}}
	st.Producer = queue.DeadLetterProducer{ID: 4000, Epoch: 1, Sequence: 17}
	got, err := DecodeShareState(EncodeShareState(st))
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, st)
	}
	v0 := EncodeShareState(st)
	v0 = v0[:len(v0)-deadLetterProducerSize]
	v0[1] = 0 // version 0
	got, err = DecodeShareState(v0)
	if err != nil || got.Producer.ID != -1 || got.StartOffset != 10 || len(got.Batches) != 1 {
		t.Fatalf("version 0: %+v %v", got, err)
	}
	if _, err := DecodeShareState(append(EncodeShareState(st), 0)); err == nil {
		t.Fatal("a value with a trailing byte decoded")
	}
}
