package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A group that only committed offsets (no member ever joined) is listed and
// described as an Empty classic group, and survives a replay.
func TestOffsetOnlyGroupIsListedEmpty(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = "simple", -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
	if resp := s.OffsetCommit(now, req, nil); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", resp)
	}
	recs := s.Drain()
	check := func(s *Shard) {
		t.Helper()
		ls := s.ListGroups(nil, []string{"classic"})
		if len(ls) != 1 || ls[0].Group != "simple" || ls[0].GroupState != "Empty" {
			t.Fatalf("listed %+v", ls)
		}
		if len(s.ListGroups([]string{"Stable"}, nil)) != 0 {
			t.Fatal("an offsets-only group matched the Stable filter")
		}
		if d := s.DescribeGroup("simple"); d.State != "Empty" {
			t.Fatalf("described %+v", d)
		}
	}
	check(s)
	replayed := NewShard(DefaultConfig())
	for _, r := range recs {
		if err := replayed.Replay(now, r); err != nil {
			t.Fatal(err)
		}
	}
	check(replayed)
	if err := replayed.DeleteGroup("simple"); err != nil {
		t.Fatal(err)
	}
	if ls := replayed.ListGroups(nil, nil); len(ls) != 0 {
		t.Fatalf("after delete: %+v", ls)
	}
}

// EnsureShareGroup creates an empty share group for a new id, persisted by
// the next Drain.
func TestEnsureShareGroupCreatesEmptyGroup(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	if empty, other := s.EnsureShareGroup("queue"); !empty || other {
		t.Fatalf("new group: empty %v, other type %v; want an empty share group", empty, other)
	}
	replayed := NewShard(DefaultConfig())
	for _, r := range s.Drain() {
		if err := replayed.Replay(now, r); err != nil {
			t.Fatal(err)
		}
	}
	for name, sh := range map[string]*Shard{"created": s, "replayed": replayed} {
		if exists, empty, other := sh.ShareGroupInfo("queue"); !exists || !empty || other {
			t.Errorf("%s: exists %v, empty %v, other type %v; want an empty share group", name, exists, empty, other)
		}
		if d := sh.ShareDescribe("queue", nil, false); d.ErrorCode != 0 || d.GroupState != "Empty" {
			t.Errorf("%s: described with error %d, state %q", name, d.ErrorCode, d.GroupState)
		}
	}
}

// Replaying a group record of each kind puts that group in place, and its
// tombstone (what DeleteGroup writes) takes it out again.
func TestReplayGroupRecordsAndTombstones(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := DefaultConfig()
	creations := []Record{
		{Key: groupKey(keyClassicGroup, "classic"), Value: NewClassicGroup("classic", cfg.Classic).Snapshot()},
		{Key: groupKey(keyConsumerGroup, "consumer"), Value: NewConsumerGroup("consumer", cfg.Consumer).encodeHeader()},
		{Key: groupKey(keyShareGroup, "share"), Value: NewShareGroup("share", cfg.Share).Snapshot()},
	}
	s := NewShard(cfg)
	for _, r := range creations {
		if err := s.Replay(now, r); err != nil {
			t.Fatalf("replaying %x: %v", r.Key, err)
		}
	}
	types := map[string]string{}
	for _, g := range s.ListGroups(nil, nil) {
		types[g.Group] = g.GroupType
	}
	want := map[string]string{"classic": "classic", "consumer": "consumer", "share": "share"}
	if len(types) != len(want) {
		t.Fatalf("after replay: groups %v, want %v", types, want)
	}
	for id, typ := range want {
		if types[id] != typ {
			t.Errorf("group %s replayed as type %q, want %q", id, types[id], typ)
		}
	}
	for id := range want {
		if err := s.DeleteGroup(id); err != nil {
			t.Fatalf("deleting %s: %v", id, err)
		}
	}
	tombstones := s.Drain()
	if len(tombstones) != len(want) {
		t.Fatalf("DeleteGroup wrote %d records, want %d tombstones", len(tombstones), len(want))
	}
	replayed := NewShard(cfg)
	for _, r := range append(creations, tombstones...) {
		if err := replayed.Replay(now, r); err != nil {
			t.Fatalf("replaying %x: %v", r.Key, err)
		}
	}
	if ls := replayed.ListGroups(nil, nil); len(ls) != 0 {
		t.Fatalf("groups left after their tombstones: %+v", ls)
	}
}
