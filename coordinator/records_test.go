package coordinator

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
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

func TestStoreApplyLoadDrop(t *testing.T) {
	st, err := OpenStore(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := Record{Key: []byte("a"), Value: []byte("1")}
	b := Record{Key: []byte("b"), Value: []byte("2")}
	if err := st.Apply(3, 10, []Record{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(3, 11, []Record{{Key: []byte("a")}}); err != nil { // tombstone
		t.Fatal(err)
	}
	if err := st.Apply(4, 5, []Record{a}); err != nil {
		t.Fatal(err)
	}
	var got []Record
	applied, err := st.Load(3, func(r Record) error { got = append(got, r); return nil })
	if err != nil || applied != 11 || len(got) != 1 || !bytes.Equal(got[0].Key, []byte("b")) {
		t.Fatalf("load 3: applied %d, %v, %v", applied, got, err)
	}
	if err := st.Drop(3); err != nil {
		t.Fatal(err)
	}
	got = nil
	if applied, _ := st.Load(3, func(r Record) error { got = append(got, r); return nil }); applied != -1 || len(got) != 0 {
		t.Fatalf("after drop: applied %d, %v", applied, got)
	}
	if applied, _ := st.Load(4, func(Record) error { return nil }); applied != 5 {
		t.Fatalf("partition 4 lost by dropping 3: applied %d", applied)
	}
}
