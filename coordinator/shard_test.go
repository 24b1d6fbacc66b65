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
		if d := s.DescribeGroup("simple", 6); d.State != "Empty" {
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

// commitOne commits offset 5 of t-0 for group with the given generation,
// member and OffsetCommit version, and answers the partition's error.
func commitOne(s *Shard, now time.Time, group, member string, generation int32, version int16) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, generation
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
	return s.OffsetCommit(now, req, nil).Topics[0].Partitions[0].ErrorCode
}

// A commit claiming a generation for a group the coordinator does not
// have: Kafka answers GROUP_ID_NOT_FOUND from OffsetCommit v9 and
// ILLEGAL_GENERATION before it. An id known only by its committed offsets
// is an Empty classic group to Kafka, which knows no member of it.
func TestOffsetCommitWithoutGroup(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	if code := commitOne(s, now, "offsets-only", "", -1, 9); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	for _, tc := range []struct {
		group      string
		member     string
		generation int32
		version    int16
		want       *kerr.Error
	}{
		{"missing", "m", 1, 8, kerr.IllegalGeneration},
		{"missing", "m", 1, 9, kerr.GroupIDNotFound},
		{"missing", "m", 0, 9, kerr.GroupIDNotFound},
		{"offsets-only", "m", 1, 8, kerr.UnknownMemberID},
		{"offsets-only", "m", 1, 9, kerr.UnknownMemberID},
		{"offsets-only", "m", -1, 9, nil},
		{"missing-2", "", -1, 9, nil},
	} {
		var want int16
		if tc.want != nil {
			want = tc.want.Code
		}
		if code := commitOne(s, now, tc.group, tc.member, tc.generation, tc.version); code != want {
			t.Errorf("v%d commit to %s by %q generation %d: error %d, want %d", tc.version, tc.group, tc.member, tc.generation, code, want)
		}
	}
}

// OffsetDelete refuses what Kafka refuses: a classic group with members
// that does not use the consumer protocol (NON_EMPTY_GROUP), every topic of
// a consumer-protocol classic group whose subscriptions are not known yet
// (GROUP_SUBSCRIBED_TO_TOPIC), and a share group (GROUP_ID_NOT_FOUND).
func TestOffsetDeleteGroupChecks(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	join := func(group, protocolType string) {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.ProtocolType = 3, group, protocolType
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
		s.JoinGroup(now, "c", "/127.0.0.1", req, func(*kmsg.JoinGroupResponse) {})
	}
	for _, id := range []string{"connect", "forming"} {
		if code := commitOne(s, now, id, "", -1, 9); code != 0 {
			t.Fatalf("commit to %s: %d", id, code)
		}
	}
	join("connect", "connect")
	join("forming", "consumer")
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "share", "s1", []string{"u"}
	s.ShareHeartbeat(now, "c", "/127.0.0.1", hb, newFakeTopics(), nil)

	del := func(group string) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		return s.OffsetDelete(req, newFakeTopics())
	}
	if resp := del("connect"); resp.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Errorf("connect group with a member: error %d, want NON_EMPTY_GROUP", resp.ErrorCode)
	}
	if resp := del("forming"); resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Errorf("consumer group choosing its protocol: %+v, want GROUP_SUBSCRIBED_TO_TOPIC", resp)
	}
	if resp := del("share"); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("share group: error %d, want GROUP_ID_NOT_FOUND", resp.ErrorCode)
	}
	for _, id := range []string{"connect", "forming"} {
		got, err := s.OffsetFetch(id, "", -1, []FetchTopic{{Topic: "t", Partitions: []int32{0}}})
		if err != nil || got[0].Partitions[0].Offset != 5 {
			t.Errorf("%s: offset %+v (%v) after the refused delete, want 5", id, got, err)
		}
	}
}

// Classic Heartbeat, SyncGroup and LeaveGroup sent to a consumer-protocol
// or share group answer as Kafka's coordinator does: the member is unknown
// to the classic protocol (UNKNOWN_MEMBER_ID), or its instance id is held
// by another member (FENCED_INSTANCE_ID); a LeaveGroup removes a consumer
// member only when it names a static one by instance id alone, which is how
// an admin client removes members of a consumer group. A client reading
// INCONSISTENT_GROUP_PROTOCOL there stops where Kafka's answer makes it
// rejoin.
func TestClassicRequestsToModernGroups(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	topics := newFakeTopics()
	topics.set("t", 2)
	joinConsumer := func(member string, instance *string) {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID = 1, "c", member, instance
		req.RebalanceTimeoutMillis, req.SubscribedTopicNames = 30000, []string{"t"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if resp := s.ConsumerHeartbeat(now, "c", "/127.0.0.1", req, topics); resp.ErrorCode != 0 {
			t.Fatalf("join of %s: %d %s", member, resp.ErrorCode, deref(resp.ErrorMessage))
		}
	}
	inst := "i2"
	joinConsumer("m1", nil)
	joinConsumer("m2", &inst)
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "s", "s1", []string{"t"}
	s.ShareHeartbeat(now, "c", "/127.0.0.1", hb, topics, nil)

	heartbeat := func(group, member string, instance *string) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation = 4, group, member, instance, 1
		return s.Heartbeat(now, req).ErrorCode
	}
	sync := func(group, member string, instance *string) int16 {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version, req.Group, req.MemberID, req.InstanceID, req.Generation = 5, group, member, instance, 1
		var code int16 = -2
		s.SyncGroup(now, req, func(r *kmsg.SyncGroupResponse) { code = r.ErrorCode })
		return code
	}
	other := "i9"
	unknown, fenced := kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code
	for _, tc := range []struct {
		name     string
		group    string
		member   string
		instance *string
		want     int16
	}{
		{"consumer member", "c", "m1", nil, unknown},
		{"static consumer member", "c", "m2", &inst, unknown},
		{"another member with a held instance id", "c", "x", &inst, fenced},
		{"an unknown instance id", "c", "m1", &other, unknown},
		{"share member", "s", "s1", nil, unknown},
	} {
		if code := heartbeat(tc.group, tc.member, tc.instance); code != tc.want {
			t.Errorf("heartbeat, %s: error %d, want %d", tc.name, code, tc.want)
		}
		if code := sync(tc.group, tc.member, tc.instance); code != tc.want {
			t.Errorf("sync, %s: error %d, want %d", tc.name, code, tc.want)
		}
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 3, "c"
	leave.Members = []kmsg.LeaveGroupRequestMember{
		{InstanceID: &inst},
		{MemberID: "nope"},
		{MemberID: "x", InstanceID: &inst},
		{MemberID: "m2", InstanceID: &inst},
		{MemberID: "m1"},
		{InstanceID: &other},
	}
	resp := s.LeaveGroup(now, leave, topics)
	want := []int16{0, unknown, fenced, unknown, unknown, unknown}
	if resp.ErrorCode != 0 || len(resp.Members) != len(want) {
		t.Fatalf("leave: %+v", resp)
	}
	for i, m := range resp.Members {
		if m.ErrorCode != want[i] {
			t.Errorf("leave of member %d: error %d, want %d", i, m.ErrorCode, want[i])
		}
	}
	members := func() []string {
		var ids []string
		for _, m := range s.ConsumerDescribe("c", topics, false).Members {
			ids = append(ids, m.MemberID)
		}
		return ids
	}
	if got := members(); len(got) != 1 || got[0] != "m1" {
		t.Fatalf("members after the static member was removed: %v, want [m1]", got)
	}
	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Group, v0.MemberID = "c", "m1"
	if resp := s.LeaveGroup(now, v0, topics); resp.ErrorCode != unknown {
		t.Errorf("v0 leave of consumer member m1: error %d, want UNKNOWN_MEMBER_ID", resp.ErrorCode)
	}
	if got := members(); len(got) != 1 || got[0] != "m1" {
		t.Errorf("members after the refused leave of m1: %v, want [m1]", got)
	}
	leave.Group = "s"
	if resp := s.LeaveGroup(now, leave, topics); resp.ErrorCode != unknown {
		t.Errorf("leave of a share group: error %d, want UNKNOWN_MEMBER_ID", resp.ErrorCode)
	}
}

// A JoinGroup naming a member of a group the coordinator does not have is
// UNKNOWN_MEMBER_ID and leaves no group behind, as in Kafka, which creates
// a classic group only for a join without a member id; an empty consumer
// group such a join names stays what it is.
func TestJoinGroupOfMissingGroupWithMemberID(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	topics := newFakeTopics()
	topics.set("t", 1)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID = 1, "left", "m1"
	hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames = 30000, []string{"t"}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	s.ConsumerHeartbeat(now, "c", "/127.0.0.1", hb, topics)
	hb.MemberEpoch = -1
	s.ConsumerHeartbeat(now, "c", "/127.0.0.1", hb, topics)
	for _, id := range []string{"missing", "left"} {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID, req.ProtocolType = 9, id, "ghost", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
		var code int16 = -2
		s.JoinGroup(now, "c", "/127.0.0.1", req, func(r *kmsg.JoinGroupResponse) { code = r.ErrorCode })
		if code != kerr.UnknownMemberID.Code {
			t.Errorf("join of %s by a named member: error %d, want UNKNOWN_MEMBER_ID", id, code)
		}
	}
	ls := s.ListGroups(nil, nil)
	if len(ls) != 1 || ls[0].Group != "left" || ls[0].GroupType != "consumer" {
		t.Errorf("groups after the refused joins: %+v, want the empty consumer group alone", ls)
	}
}

// DescribeGroups describes classic groups only, as Kafka's coordinator
// does: a consumer or share group, with members or not, and a missing id
// are Dead without members; from version 6 (KIP-1043) they also carry
// GROUP_ID_NOT_FOUND with Kafka's message, before it no error at all. An id
// known only by its committed offsets is the Empty classic group Kafka
// keeps for it.
func TestDescribeGroupTypes(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := DefaultConfig()
	s := NewShard(cfg)
	topics := newFakeTopics()
	topics.set("t", 1)
	for _, r := range []Record{
		{Key: groupKey(keyClassicGroup, "classic"), Value: NewClassicGroup("classic", cfg.Classic).Snapshot()},
		{Key: groupKey(keyConsumerGroup, "empty-consumer"), Value: NewConsumerGroup("empty-consumer", cfg.Consumer).encodeHeader()},
		{Key: groupKey(keyShareGroup, "empty-share"), Value: NewShareGroup("empty-share", cfg.Share).Snapshot()},
	} {
		if err := s.Replay(now, r); err != nil {
			t.Fatal(err)
		}
	}
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames = "consumer", "m1", 30000, []string{"t"}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if resp := s.ConsumerHeartbeat(now, "c", "/127.0.0.1", hb, topics); resp.ErrorCode != 0 {
		t.Fatalf("consumer join: %d %s", resp.ErrorCode, deref(resp.ErrorMessage))
	}
	shb := kmsg.NewPtrShareGroupHeartbeatRequest()
	shb.GroupID, shb.MemberID, shb.SubscribedTopicNames = "share", "s1", []string{"t"}
	if resp := s.ShareHeartbeat(now, "c", "/127.0.0.1", shb, topics, nil); resp.ErrorCode != 0 {
		t.Fatalf("share join: %d %s", resp.ErrorCode, deref(resp.ErrorMessage))
	}
	if code := commitOne(s, now, "simple", "", -1, 9); code != 0 {
		t.Fatalf("commit of a simple group: %d", code)
	}
	notFound := kerr.GroupIDNotFound.Code
	for _, tc := range []struct {
		group, state string
		v6Msg        string // "" for a classic group, described at every version
	}{
		{"classic", "Empty", ""},
		{"simple", "Empty", ""},
		{"consumer", "Dead", "Group consumer is not a classic group."},
		{"empty-consumer", "Dead", "Group empty-consumer is not a classic group."},
		{"share", "Dead", "Group share is not a classic group."},
		{"empty-share", "Dead", "Group empty-share is not a classic group."},
		{"missing", "Dead", "Group missing not found."},
	} {
		for _, version := range []int16{0, 5, 6} {
			d := s.DescribeGroup(tc.group, version)
			var wantCode int16
			var wantMsg string
			if version >= 6 && tc.v6Msg != "" {
				wantCode, wantMsg = notFound, tc.v6Msg
			}
			if d.Group != tc.group || d.State != tc.state || d.ErrorCode != wantCode || deref(d.ErrorMessage) != wantMsg {
				t.Errorf("%s at v%d: group %q state %q error %d %q; want state %q error %d %q",
					tc.group, version, d.Group, d.State, d.ErrorCode, deref(d.ErrorMessage), tc.state, wantCode, wantMsg)
			}
			if tc.state == "Dead" && (d.ProtocolType != "" || d.Protocol != "" || len(d.Members) != 0) {
				t.Errorf("%s at v%d: protocol type %q, protocol %q, %d members; want none", tc.group, version, d.ProtocolType, d.Protocol, len(d.Members))
			}
		}
	}
}

// An id known only by its committed offsets is the Empty classic group
// Kafka keeps for it, so the describe APIs of the other types call it a
// group of another type, and the share offset APIs neither take it for a
// share group nor make one of it (AlterShareGroupOffsets creates a share
// group only for an id nothing holds).
func TestOffsetsOnlyIDIsNoOtherType(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	if code := commitOne(s, now, "simple", "", -1, 9); code != 0 {
		t.Fatalf("commit of a simple group: %d", code)
	}
	if d := s.ConsumerDescribe("simple", nil, false); deref(d.ErrorMessage) != "Group simple is not a consumer group." {
		t.Errorf("ConsumerGroupDescribe: error %d %q", d.ErrorCode, deref(d.ErrorMessage))
	}
	if d := s.ShareDescribe("simple", nil, false); deref(d.ErrorMessage) != "Group simple is not a share group." {
		t.Errorf("ShareGroupDescribe: error %d %q", d.ErrorCode, deref(d.ErrorMessage))
	}
	if exists, _, other := s.ShareGroupInfo("simple"); exists || !other {
		t.Errorf("ShareGroupInfo: exists %v, other type %v; want another type", exists, other)
	}
	if _, other := s.EnsureShareGroup("simple"); !other {
		t.Error("EnsureShareGroup took the id for a share group")
	}
	if ls := s.ListGroups(nil, nil); len(ls) != 1 || ls[0].GroupType != "classic" {
		t.Errorf("listed %+v, want the one classic group", ls)
	}
}
