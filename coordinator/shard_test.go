package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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

// Which groups a consumer or share heartbeat finds, creates or takes over,
// as Kafka's group coordinator decides: only a join creates a group; a
// consumer join takes over an empty classic group, including the one Kafka
// keeps for an id known only by its committed offsets; a share heartbeat
// takes over no group of another kind, empty or not. Each refusal is
// GROUP_ID_NOT_FOUND with Kafka's message.
func TestHeartbeatGroupTypes(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	topics := newFakeTopics()
	topics.set("t", 1)
	consumer := func(group string, epoch int32) (int16, string) {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = group, "m-"+group, epoch
		req.RebalanceTimeoutMillis, req.SubscribedTopicNames = 30000, []string{"t"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp := s.ConsumerHeartbeat(now, "c", "/127.0.0.1", req, topics)
		return resp.ErrorCode, deref(resp.ErrorMessage)
	}
	share := func(group string, epoch int32) (int16, string) {
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.MemberEpoch = group, "s-"+group, epoch
		req.SubscribedTopicNames = []string{"t"}
		resp := s.ShareHeartbeat(now, "c", "/127.0.0.1", req, topics, nil)
		return resp.ErrorCode, deref(resp.ErrorMessage)
	}
	s.EnsureShareGroup("empty-share")
	for _, id := range []string{"offsets-only", "offsets-only-2"} {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation = id, -1
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
		s.OffsetCommit(now, commit, topics)
	}
	if code, msg := consumer("left", 0); code != 0 {
		t.Fatalf("consumer join of a new group: %d %q", code, msg)
	}
	if code, msg := consumer("left", -1); code != 0 {
		t.Fatalf("the only member leaving: %d %q", code, msg)
	}
	notFound := kerr.GroupIDNotFound.Code
	for _, tc := range []struct {
		name     string
		call     func(string, int32) (int16, string)
		group    string
		epoch    int32
		wantCode int16
		wantMsg  string
	}{
		{"consumer join creates", consumer, "c", 0, 0, ""},
		{"share join creates", share, "s", 0, 0, ""},
		{"consumer rejoin of a missing group", consumer, "missing", 3, notFound, "Consumer group missing not found."},
		{"share rejoin of a missing group", share, "missing", 3, notFound, "Share group missing not found."},
		{"share join of a consumer group with members", share, "c", 0, notFound, "Group c is not a share group."},
		{"consumer join of a share group with members", consumer, "s", 0, notFound, "Group s is not a consumer group"},
		{"consumer join of an empty share group", consumer, "empty-share", 0, notFound, "Group empty-share is not a consumer group"},
		{"share join of an empty consumer group", share, "left", 0, notFound, "Group left is not a share group."},
		{"share join of an id known by its committed offsets", share, "offsets-only", 0, notFound, "Group offsets-only is not a share group."},
		{"consumer rejoin of an id known by its committed offsets", consumer, "offsets-only", 3, notFound, "Group offsets-only is not a consumer group"},
		{"consumer join of an id known by its committed offsets", consumer, "offsets-only-2", 0, 0, ""},
	} {
		if code, msg := tc.call(tc.group, tc.epoch); code != tc.wantCode || (tc.wantMsg != "" && msg != tc.wantMsg) {
			t.Errorf("%s: error %d %q, want %d %q", tc.name, code, msg, tc.wantCode, tc.wantMsg)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
