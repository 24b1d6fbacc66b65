package raftmeta

import (
	"reflect"
	"testing"

	"github.com/shoalmq/shoal/quota"
)

func sampleRecords() []Record {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []Record{
		&RegisterBroker{ID: 3, IncarnationID: id, Rack: "rack-a",
			Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h1", Port: 9092, SecurityProtocol: "PLAINTEXT"}, {Listener: "SSL", Host: "h1", Port: 9093, SecurityProtocol: "SSL"}}},
		&RegisterBroker{ID: 0},
		&FenceBroker{ID: 3, Epoch: 1 << 33},
		&UnfenceBroker{ID: 0, Epoch: 7},
		&CreateTopic{Name: "orders", ID: id, Configs: map[string]string{"retention.ms": "1", "cleanup.policy": "compact"},
			Partitions: []PartitionState{{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 7, PartitionEpoch: 9}, {Replicas: []int32{2, 1}, ISR: []int32{2, 1}, Leader: -1}}},
		&CreateTopic{Name: "empty-configs", ID: id, Configs: map[string]string{}, Partitions: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		&DeleteTopic{ID: id},
		&CreatePartitions{TopicID: id, New: []PartitionState{{Replicas: []int32{5}, ISR: []int32{5}, Leader: 5}}},
		&AlterTopicConfigs{TopicID: id, Set: map[string]string{"a": "b"}, Delete: []string{"c", "d"}},
		&AlterTopicConfigs{TopicID: id, Set: map[string]string{}},
		&AlterGroupConfigs{Group: "g", Set: map[string]string{"consumer.session.timeout.ms": "45000"}, Delete: []string{"consumer.heartbeat.interval.ms"}},
		&AlterGroupConfigs{Group: "g", Set: map[string]string{}},
		&AllocateProducerIDs{BrokerID: 1, First: 1 << 40, Count: 1000},
		&ChangePartition{TopicID: id, Partition: 4, ISR: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 3},
		&ChangePartition{TopicID: id, Partition: 0, Replicas: []int32{3, 4}, ISR: []int32{3}, Leader: 3, LeaderEpoch: 1, PartitionEpoch: 1},
		&ChangePartition{TopicID: id, Partition: 0, Replicas: []int32{}, Leader: NoLeader, LeaderEpoch: 1, PartitionEpoch: 1},
		&ChangePartition{TopicID: id, Partition: 1, Replicas: []int32{3, 4, 1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2, Adding: []int32{3, 4}, Removing: []int32{1}},
		&UnregisterBroker{ID: 3, Epoch: 1 << 33},
		&CreateACL{ID: id, Binding: sampleBinding},
		&DeleteACL{ID: id},
		&UpsertScramCredential{User: "alice", Credential: sampleCredential},
		&DeleteScramCredential{User: "alice", Mechanism: ScramSHA512},
		&AlterClientQuota{Entity: quota.Entity{User: quota.Named("alice"), ClientID: quota.DefaultName()},
			Set: map[string]float64{quota.ProducerByteRate: 1 << 20, quota.RequestPercentage: 12.5}, Remove: []string{quota.ConsumerByteRate}},
		&AlterClientQuota{Entity: quota.Entity{IP: quota.Named("10.0.0.1")}, Set: map[string]float64{}},
		&AlterBrokerConfigs{Broker: "", Set: map[string]string{"log.retention.ms": "1000"}, Delete: []string{"log.segment.bytes"}},
		&AlterBrokerConfigs{Broker: "2", Set: map[string]string{}},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	recs := sampleRecords()
	in := entry{proposer: 0xdeadbeefcafe, seq: 42, records: recs}
	b := encodeEntry(in)
	out, err := decodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the entry:\n in %#v\nout %#v", in, out)
	}
	// Every strict prefix is corrupt, never a panic or a silently shorter
	// entry.
	for i := range len(b) {
		if _, err := decodeEntry(b[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", i, len(b))
		}
	}
}

// A later writer may append fields to a record body; this version reads the
// fields it knows and skips the rest.
func TestRecordSkipsUnknownTrailingFields(t *testing.T) {
	var body encoder
	(&DeleteTopic{ID: [16]byte{9}}).encode(&body)
	body.str("a field from the future")
	e := &encoder{}
	frameRecord(e, typeDeleteTopic, body.b)
	r, err := decodeRecord(&decoder{b: e.b})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.(*DeleteTopic).ID; got != ([16]byte{9}) {
		t.Fatalf("id %x", got)
	}
}

// A ChangePartition of a replica set written before reassignments existed
// has no Adding and Removing fields: it decodes as one without a
// reassignment in progress.
func TestChangePartitionWithoutReassignmentFields(t *testing.T) {
	var body encoder
	body.uuid([16]byte{7})
	body.i32(2)
	body.bool(true)
	body.i32s([]int32{3, 4})
	body.i32s([]int32{3})
	body.i32(3)
	body.i32(1)
	body.i32(5)
	e := &encoder{}
	frameRecord(e, typeChangePartition, body.b)
	r, err := decodeRecord(&decoder{b: e.b})
	if err != nil {
		t.Fatal(err)
	}
	want := &ChangePartition{TopicID: [16]byte{7}, Partition: 2, Replicas: []int32{3, 4}, ISR: []int32{3}, Leader: 3, LeaderEpoch: 1, PartitionEpoch: 5}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

func TestRecordRejectsNewerVersionAndUnknownType(t *testing.T) {
	for _, b := range [][]byte{
		{byte(typeDeleteTopic), recordVersion + 1, 0},
		{200, recordVersion, 0},
	} {
		if _, err := decodeRecord(&decoder{b: b}); err == nil {
			t.Fatalf("%v decoded", b)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(entry{proposer: 1, seq: 1, records: sampleRecords()}))
	f.Add([]byte{entryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		en, err := decodeEntry(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes equal.
		again, err := decodeEntry(encodeEntry(en))
		if err != nil || !reflect.DeepEqual(en, again) {
			t.Fatalf("re-encoding changed the entry: %v", err)
		}
	})
}

func FuzzDecodeImage(f *testing.F) {
	img := newImage("c")
	img, _ = img.apply(2, sampleRecords()[:4])
	f.Add(encodeImage(img))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeImage(b)
	})
}
