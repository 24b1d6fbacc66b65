package raftmeta

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func mustApply(t *testing.T, img *Image, index uint64, recs ...Record) *Image {
	t.Helper()
	next, err := img.apply(index, recs)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// mustRoundTrip fails the test unless img's snapshot decodes to img.
func mustRoundTrip(t *testing.T, img *Image) {
	t.Helper()
	got, err := decodeImage(encodeImage(img))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(img, got) {
		t.Fatalf("snapshot round trip:\n in %+v\nout %+v", img, got)
	}
}

func TestImageCopyOnWrite(t *testing.T) {
	idA, idB := [16]byte{1}, [16]byte{2}
	v1 := mustApply(t, newImage("c"), 2,
		&RegisterBroker{ID: 1},
		&CreateTopic{Name: "a", ID: idA, Partitions: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		&CreateTopic{Name: "b", ID: idB, Configs: map[string]string{"x": "1"}, Partitions: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
	)
	snapshot := encodeImage(v1)

	v2 := mustApply(t, v1, 3,
		&AlterTopicConfigs{TopicID: idB, Set: map[string]string{"y": "2"}, Delete: []string{"x"}},
		&CreatePartitions{TopicID: idB, New: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		&ChangePartition{TopicID: idB, Partition: 0, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1},
		&AllocateProducerIDs{BrokerID: 1, First: 0, Count: 10},
	)
	v3 := mustApply(t, v2, 4, &DeleteTopic{ID: idA})

	// Older versions are untouched.
	if got := encodeImage(v1); string(got) != string(snapshot) {
		t.Fatal("applying changed an earlier image")
	}
	if v1.Topics["b"].Configs["x"] != "1" || len(v1.Topics["b"].Partitions) != 1 || v1.NextProducerID != 0 {
		t.Fatal("earlier image modified")
	}
	if _, ok := v2.Topics["a"]; !ok {
		t.Fatal("delete reached an earlier image")
	}
	// Unchanged topics are shared, changed ones are not.
	if v2.Topics["a"] != v1.Topics["a"] {
		t.Fatal("unchanged topic was copied")
	}
	if v2.Topics["b"] == v1.Topics["b"] {
		t.Fatal("changed topic is shared")
	}
	if v3.Topics["b"] != v2.Topics["b"] {
		t.Fatal("unchanged topic was copied")
	}
	// And the new state is what the records say.
	b := v3.Topics["b"]
	if !reflect.DeepEqual(b.Configs, map[string]string{"y": "2"}) || len(b.Partitions) != 2 || b.Partitions[0].LeaderEpoch != 1 || b.Partitions[0].PartitionEpoch != 1 {
		t.Fatalf("topic b: %+v", b)
	}
	if v3.TopicByID(idA) != nil || v3.Topic("a") != nil || len(v3.TopicIDs) != 1 || v3.NextProducerID != 10 || v3.Applied != 4 {
		t.Fatalf("image: %+v", v3)
	}
	if v1.Brokers[1].Epoch != 2 {
		t.Fatalf("broker epoch %d, want the registration's index", v1.Brokers[1].Epoch)
	}
}

// The records of one entry apply all or nothing.
func TestImageApplyIsAtomic(t *testing.T) {
	v1 := mustApply(t, newImage("c"), 2, &RegisterBroker{ID: 1})
	v2, err := v1.apply(3, []Record{
		&CreateTopic{Name: "a", ID: [16]byte{1}, Partitions: []PartitionState{{Replicas: []int32{1}}}},
		&AllocateProducerIDs{BrokerID: 1, First: 0, Count: 5},
		&DeleteTopic{ID: [16]byte{9}},
	})
	if !errors.Is(err, kerr.UnknownTopicID) {
		t.Fatalf("got %v", err)
	}
	if v2.Applied != 3 || len(v2.Topics) != 0 || v2.NextProducerID != 0 {
		t.Fatalf("partial apply: %+v", v2)
	}
}

func TestImageApplyRejects(t *testing.T) {
	id := [16]byte{1}
	base := mustApply(t, newImage("c"), 2,
		&RegisterBroker{ID: 1},
		&CreateTopic{Name: "a", ID: id, Partitions: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 5}}},
		&AllocateProducerIDs{BrokerID: 1, First: 0, Count: 100},
	)
	for _, tc := range []struct {
		name string
		rec  Record
		want *kerr.Error
	}{
		{"same name", &CreateTopic{Name: "a", ID: [16]byte{2}, Partitions: []PartitionState{{}}}, kerr.TopicAlreadyExists},
		{"same id", &CreateTopic{Name: "b", ID: id, Partitions: []PartitionState{{}}}, kerr.TopicAlreadyExists},
		{"zero id", &CreateTopic{Name: "b", Partitions: []PartitionState{{}}}, kerr.InvalidRequest},
		{"no partitions", &CreateTopic{Name: "b", ID: [16]byte{2}}, kerr.InvalidPartitions},
		{"stale producer block", &AllocateProducerIDs{BrokerID: 1, First: 0, Count: 100}, kerr.UnknownServerError},
		{"empty producer block", &AllocateProducerIDs{BrokerID: 1, First: 100, Count: 0}, kerr.InvalidRequest},
		{"unknown topic", &AlterTopicConfigs{TopicID: [16]byte{7}}, kerr.UnknownTopicID},
		{"unknown partition", &ChangePartition{TopicID: id, Partition: 1, PartitionEpoch: 6, LeaderEpoch: 3}, kerr.UnknownTopicOrPartition},
		{"stale partition epoch", &ChangePartition{TopicID: id, Partition: 0, PartitionEpoch: 5, LeaderEpoch: 4}, kerr.FencedLeaderEpoch},
		{"stale leader epoch", &ChangePartition{TopicID: id, Partition: 0, PartitionEpoch: 6, LeaderEpoch: 2}, kerr.FencedLeaderEpoch},
		{"negative broker", &RegisterBroker{ID: -1}, kerr.InvalidRequest},
		{"fence unknown broker", &FenceBroker{ID: 9, Epoch: 2}, kerr.BrokerIDNotRegistered},
		{"fence stale epoch", &FenceBroker{ID: 1, Epoch: 1}, kerr.StaleBrokerEpoch},
		{"unfence stale epoch", &UnfenceBroker{ID: 1, Epoch: 3}, kerr.StaleBrokerEpoch},
		{"empty group", &AlterGroupConfigs{Set: map[string]string{"k": "v"}}, kerr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := base.apply(3, []Record{tc.rec}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestImageSnapshotRoundTrip(t *testing.T) {
	img := mustApply(t, newImage("cluster-1"), 5,
		&RegisterBroker{ID: 1, IncarnationID: [16]byte{4}, Rack: "r", Endpoints: []Endpoint{{Listener: "L", Host: "h", Port: 1, SecurityProtocol: "PLAINTEXT"}}},
		&RegisterBroker{ID: 2},
		&CreateTopic{Name: "a", ID: [16]byte{1}, Configs: map[string]string{"k": "v"}, Partitions: []PartitionState{{Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 3}}},
		&CreateTopic{Name: "b", ID: [16]byte{2}, Partitions: []PartitionState{{Replicas: []int32{2}, Leader: NoLeader}}},
		&AllocateProducerIDs{BrokerID: 1, First: 0, Count: 7},
		&AlterGroupConfigs{Group: "g1", Set: map[string]string{"consumer.session.timeout.ms": "45000", "consumer.heartbeat.interval.ms": "5000"}},
		&AlterGroupConfigs{Group: "g2", Set: map[string]string{"consumer.session.timeout.ms": "60000"}},
		&ChangePartition{TopicID: [16]byte{1}, Partition: 0, Replicas: []int32{2, 1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 4, Adding: []int32{2}, Removing: []int32{1}},
	)
	if !img.Topics["a"].Partitions[0].Reassigning() {
		t.Fatal("the reassignment did not apply")
	}
	if len(img.GroupConfigs) != 2 {
		t.Fatalf("group configs %v", img.GroupConfigs)
	}
	mustRoundTrip(t, img)
}

// Version 1 to 4 snapshots, written before group configs, ACLs and SCRAM
// credentials, client quotas and broker configs, and reassignments existed,
// are version 5 without the trailing sections and still decode.
func TestImageDecodesVersion1Snapshot(t *testing.T) {
	img := mustApply(t, newImage("cluster-1"), 3,
		&RegisterBroker{ID: 1},
		&CreateTopic{Name: "a", ID: [16]byte{1}, Configs: map[string]string{"k": "v"}, Partitions: []PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
	)
	b := encodeImage(img)
	// Version 5 ends with six empty sections: group configs, ACLs, SCRAM
	// credentials, client quotas, broker configs and reassignments.
	if b[0] != 5 || string(b[len(b)-6:]) != "\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("unexpected layout: version %d, last bytes %v", b[0], b[len(b)-6:])
	}
	for v, cut := range map[byte]int{1: 6, 2: 5, 3: 3, 4: 1} {
		old := append([]byte{v}, b[1:len(b)-cut]...)
		got, err := decodeImage(old)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if !reflect.DeepEqual(img, got) {
			t.Fatalf("version %d:\n in %+v\nout %+v", v, img, got)
		}
	}
	if _, err := decodeImage(append([]byte{snapshotVersion + 1}, b[1:]...)); err == nil {
		t.Fatal("a newer snapshot version decoded")
	}
}

func TestImageGroupConfigs(t *testing.T) {
	v1 := mustApply(t, newImage("c"), 2,
		&AlterGroupConfigs{Group: "a", Set: map[string]string{"x": "1", "y": "2"}},
		&AlterGroupConfigs{Group: "b", Set: map[string]string{"x": "3"}},
	)
	snapshot := encodeImage(v1)
	v2 := mustApply(t, v1, 3,
		&AlterGroupConfigs{Group: "a", Set: map[string]string{"z": "4"}, Delete: []string{"x", "missing"}},
	)
	v3 := mustApply(t, v2, 4,
		&AlterGroupConfigs{Group: "b", Delete: []string{"x"}},
		&AlterGroupConfigs{Group: "c", Delete: []string{"x"}},
	)

	if got := encodeImage(v1); string(got) != string(snapshot) {
		t.Fatal("applying changed an earlier image")
	}
	if !reflect.DeepEqual(v1.GroupConfig("a"), map[string]string{"x": "1", "y": "2"}) {
		t.Fatalf("v1 group a: %v", v1.GroupConfig("a"))
	}
	if !reflect.DeepEqual(v2.GroupConfig("a"), map[string]string{"y": "2", "z": "4"}) {
		t.Fatalf("v2 group a: %v", v2.GroupConfig("a"))
	}
	// Unchanged overrides are shared, changed ones are not.
	if reflect.ValueOf(v2.GroupConfigs["b"]).Pointer() != reflect.ValueOf(v1.GroupConfigs["b"]).Pointer() {
		t.Fatal("unchanged group overrides were copied")
	}
	if reflect.ValueOf(v2.GroupConfigs["a"]).Pointer() == reflect.ValueOf(v1.GroupConfigs["a"]).Pointer() {
		t.Fatal("changed group overrides are shared")
	}
	// Removing the last override removes the group; removing from a group
	// without overrides adds nothing.
	if v3.GroupConfig("b") != nil || v3.GroupConfig("c") != nil || len(v3.GroupConfigs) != 1 {
		t.Fatalf("v3 groups: %v", v3.GroupConfigs)
	}
	if v2.GroupConfig("b") == nil {
		t.Fatal("removal reached an earlier image")
	}
	if v3.GroupConfig("nope") != nil {
		t.Fatal("unknown group has overrides")
	}
	mustRoundTrip(t, v3)
}

// HasPartition answers the partition-range check every request naming a
// topic-partition makes: a negative index, one past the topic's partitions
// and any index of a missing (nil) topic are not partitions.
func TestTopicHasPartition(t *testing.T) {
	tp := &Topic{Name: "t", Partitions: make([]PartitionState, 3)}
	for _, c := range []struct {
		topic *Topic
		p     int32
		want  bool
	}{
		{tp, 0, true},
		{tp, 2, true},
		{tp, 3, false},
		{tp, -1, false},
		{nil, 0, false},
		{&Topic{Name: "empty"}, 0, false},
	} {
		if got := c.topic.HasPartition(c.p); got != c.want {
			t.Errorf("%v.HasPartition(%d) = %v, want %v", c.topic, c.p, got, c.want)
		}
	}
}
