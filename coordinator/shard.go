package coordinator

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config bounds the groups of a shard; Kafka's names and defaults.
type Config struct {
	Classic  ClassicConfig
	Consumer ConsumerConfig
	Share    ShareConfig
	// OffsetsRetention is offsets.retention.minutes (7 days): how long an
	// offset of a group without members is kept after its last commit.
	OffsetsRetention time.Duration
	// MaxMetadataSize is offset.metadata.max.bytes (4096).
	MaxMetadataSize int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Classic:          DefaultClassicConfig(),
		Consumer:         DefaultConsumerConfig(),
		Share:            DefaultShareConfig(),
		OffsetsRetention: 7 * 24 * time.Hour,
		MaxMetadataSize:  4096,
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

// group is one group id's state: exactly one of classic, consumer or share.
type group struct {
	classic  *ClassicGroup
	consumer *ConsumerGroup
	share    *ShareGroup
}

func (g *group) empty() bool {
	switch {
	case g.classic != nil:
		return g.classic.IsEmpty()
	case g.consumer != nil:
		return g.consumer.IsEmpty()
	}
	return g.share.IsEmpty()
}

func (g *group) nextDeadline() time.Time {
	switch {
	case g.classic != nil:
		return g.classic.NextDeadline()
	case g.consumer != nil:
		return g.consumer.NextDeadline()
	}
	return g.share.NextDeadline()
}

// Shard holds the groups and offsets of one __consumer_offsets partition.
//
// Invariant: every change to durable state is either already in out or is
// reported by a group's TakeDirty; Drain turns both into records, so
// replaying every drained record in order rebuilds an equivalent shard.
type Shard struct {
	cfg     Config
	groups  map[string]*group
	offsets map[string]map[topicPartition]OffsetValue
	// pending holds transactional offset commits awaiting their marker,
	// by producer id (txn_offsets.go).
	pending map[int64]pendingOffsets
	out     []Record
	touched map[string]bool
}

// NewShard returns an empty shard.
func NewShard(cfg Config) *Shard {
	return &Shard{
		cfg:     cfg,
		groups:  map[string]*group{},
		offsets: map[string]map[topicPartition]OffsetValue{},
		touched: map[string]bool{},
	}
}

// Replay applies one record read back from the shard's partition (or its
// materialized copy), in log order.
func (s *Shard) Replay(now time.Time, r Record) error {
	if len(r.Key) >= 2 && int16(binary.BigEndian.Uint16(r.Key)) == keyTxnOffset {
		return s.replayTxnOffset(r)
	}
	k, err := decodeKey(r.Key)
	if err != nil {
		return err
	}
	switch k.version {
	case keyOffsetCommit:
		tp := topicPartition{k.topic, k.partition}
		if r.Value == nil {
			s.deleteOffset(k.group, tp)
			return nil
		}
		v, err := decodeOffsetValue(r.Value)
		if err != nil {
			return err
		}
		s.setOffset(k.group, tp, v)
	case keyClassicGroup, keyConsumerGroup, keyShareGroup:
		if r.Value == nil {
			delete(s.groups, k.group)
			return nil
		}
		return s.replayGroup(k.version, k.group, r.Value, now)
	case keyConsumerMember:
		g := s.consumerFor(k.group)
		if g == nil {
			if r.Value == nil {
				return nil
			}
			if s.groups[k.group] != nil {
				return fmt.Errorf("%w: consumer member record for group %q of another type", errBadRecord, k.group)
			}
			g = NewConsumerGroup(k.group, s.cfg.Consumer)
			s.groups[k.group] = &group{consumer: g}
		}
		return g.restoreMemberRecord(k.member, r.Value, now)
	}
	return nil
}

// replayGroup puts in place the group that a group record of kind
// (keyClassicGroup, keyConsumerGroup or keyShareGroup) carries, replacing
// any group of that id.
func (s *Shard) replayGroup(kind int16, id string, value []byte, now time.Time) error {
	var g group
	var err error
	switch kind {
	case keyClassicGroup:
		g.classic, err = RestoreClassicGroup(id, s.cfg.Classic, value, now)
	case keyConsumerGroup:
		g.consumer, err = restoreConsumerGroupRecord(s.consumerFor(id), id, s.cfg.Consumer, value, now)
	default:
		g.share, err = RestoreShareGroup(id, s.cfg.Share, value, now)
	}
	if err != nil {
		return err
	}
	s.groups[id] = &g
	if g.consumer != nil && g.consumer.dirtyHeader {
		s.touched[id] = true // an old format to rewrite
	}
	return nil
}

// Drain returns the records for every durable change since the last Drain.
func (s *Shard) Drain() []Record {
	for _, id := range sortedKeys(s.touched) {
		g := s.groups[id]
		switch {
		case g == nil:
		case g.classic != nil && g.classic.TakeDirty():
			s.out = append(s.out, Record{Key: groupKey(keyClassicGroup, id), Value: g.classic.Snapshot()})
		case g.consumer != nil:
			s.out = g.consumer.takeRecords(s.out)
		case g.share != nil && g.share.TakeDirty():
			s.out = append(s.out, Record{Key: groupKey(keyShareGroup, id), Value: g.share.Snapshot()})
		}
	}
	clear(s.touched)
	out := s.out
	s.out = nil
	return out
}

// metadataTooLarge reports whether a commit's metadata is over
// offset.metadata.max.bytes; OffsetCommit and TxnOffsetCommit refuse such a
// partition with OFFSET_METADATA_TOO_LARGE.
func (s *Shard) metadataTooLarge(metadata *string) bool {
	return metadata != nil && len(*metadata) > s.cfg.MaxMetadataSize
}

// committedValue is what an OffsetCommit or TxnOffsetCommit of one
// partition stores, stamped with now.
func committedValue(now time.Time, offset int64, leaderEpoch int32, metadata *string) OffsetValue {
	v := OffsetValue{Offset: offset, LeaderEpoch: leaderEpoch, CommitTimestamp: now.UnixMilli()}
	if metadata != nil {
		v.Metadata = *metadata
	}
	return v
}

func (s *Shard) setOffset(group string, tp topicPartition, v OffsetValue) {
	m := s.offsets[group]
	if m == nil {
		m = map[topicPartition]OffsetValue{}
		s.offsets[group] = m
	}
	m[tp] = v
}

func (s *Shard) deleteOffset(group string, tp topicPartition) {
	if m := s.offsets[group]; m != nil {
		delete(m, tp)
		if len(m) == 0 {
			delete(s.offsets, group)
		}
	}
}

// consumerFor returns the consumer group id, nil if there is none.
func (s *Shard) consumerFor(id string) *ConsumerGroup {
	if g := s.groups[id]; g != nil {
		return g.consumer
	}
	return nil
}

// classicForJoin returns the classic group a JoinGroup from memberID
// addresses, creating it if needed. A consumer-protocol group that still
// has members answers INCONSISTENT_GROUP_PROTOCOL, as Kafka does without a
// migration policy, and so does a share group; an empty consumer group is
// replaced. As in Kafka, only a join without a member id creates a group:
// one naming a member of a group that is not there is UNKNOWN_MEMBER_ID.
func (s *Shard) classicForJoin(id, memberID string) (*ClassicGroup, *kerr.Error) {
	g := s.groups[id]
	if g != nil && g.classic == nil {
		if !g.empty() || g.share != nil {
			return nil, kerr.InconsistentGroupProtocol
		}
		g = nil
	}
	if g == nil {
		if memberID != "" {
			return nil, kerr.UnknownMemberID
		}
		g = &group{classic: NewClassicGroup(id, s.cfg.Classic)}
		s.groups[id] = g
	}
	s.touched[id] = true
	return g.classic, nil
}

// classicJoined returns the classic group a SyncGroup or Heartbeat names,
// or what Kafka's coordinator answers when there is none: the member is
// unknown to a missing group; a consumer or share group is searched for a
// member using the classic protocol, and no member here does (a classic
// member does not join a consumer group), so the member is unknown there
// too, unless another member holds its instance id, which fences it. Both
// make a classic client rejoin, where INCONSISTENT_GROUP_PROTOCOL would
// stop it.
func (s *Shard) classicJoined(id, memberID string, instanceID *string) (*ClassicGroup, *kerr.Error) {
	g := s.groups[id]
	switch {
	case g == nil:
		return nil, kerr.UnknownMemberID
	case g.classic == nil:
		if g.consumer != nil && instanceID != nil {
			if holder, ok := g.consumer.static[*instanceID]; ok && holder != memberID {
				return nil, kerr.FencedInstanceID
			}
		}
		return nil, kerr.UnknownMemberID
	}
	s.touched[id] = true
	return g.classic, nil
}

// JoinGroup handles a classic JoinGroup; the response comes through reply,
// possibly from a later call on the shard. clientID and clientHost are what
// DescribeGroups reports for the member.
func (s *Shard) JoinGroup(now time.Time, clientID, clientHost string, req *kmsg.JoinGroupRequest, reply func(*kmsg.JoinGroupResponse)) {
	if req.Group == "" {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.InvalidGroupID.Code
		resp.Generation = -1
		reply(resp)
		return
	}
	g, kerrv := s.classicForJoin(req.Group, req.MemberID)
	if kerrv != nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerrv.Code
		resp.Generation = -1
		resp.MemberID = req.MemberID
		reply(resp)
		return
	}
	g.JoinFrom(now, clientID, clientHost, req, reply)
}

// SyncGroup handles a classic SyncGroup.
func (s *Shard) SyncGroup(now time.Time, req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	g, kerrv := s.classicJoined(req.Group, req.MemberID, req.InstanceID)
	if kerrv != nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerrv.Code
		reply(resp)
		return
	}
	g.Sync(now, req, reply)
}

// Heartbeat handles a classic Heartbeat.
func (s *Shard) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	g, kerrv := s.classicJoined(req.Group, req.MemberID, req.InstanceID)
	if kerrv != nil {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerrv.Code
		return resp
	}
	return g.Heartbeat(now, req)
}

// LeaveGroup handles a classic LeaveGroup. Sent to a consumer-protocol
// group it removes only the static members an administrator names by
// instance id, as Kafka does (ConsumerGroup.LeaveClassic); topics is what
// the group reassigns their partitions from.
func (s *Shard) LeaveGroup(now time.Time, req *kmsg.LeaveGroupRequest, topics TopicsView) *kmsg.LeaveGroupResponse {
	if g := s.groups[req.Group]; g != nil && g.consumer != nil {
		s.touched[req.Group] = true
		return g.consumer.LeaveClassic(req, topics)
	}
	g, kerrv := s.classicJoined(req.Group, "", nil)
	if kerrv != nil {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerrv.Code
		return resp
	}
	return g.Leave(now, req)
}

// ConsumerHeartbeat handles a KIP-848 ConsumerGroupHeartbeat. Only a join
// (member epoch 0) creates a group; a classic group with members is not
// converted (GROUP_ID_NOT_FOUND, as Kafka answers without migration).
// clientID and clientHost are what DescribeGroups reports for the member.
func (s *Shard) ConsumerHeartbeat(now time.Time, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest, topics TopicsView) *kmsg.ConsumerGroupHeartbeatResponse {
	fail := func(e *kerr.Error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidRequest, "GroupId can't be empty.")
	}
	g, notFound := s.heartbeatGroup(req.Group, req.MemberEpoch, consumerKind)
	if g == nil {
		return fail(kerr.GroupIDNotFound, notFound)
	}
	return g.consumer.HeartbeatFrom(now, clientID, clientHost, req, topics)
}

// heartbeatKind is the kind of group a heartbeat is for.
type heartbeatKind uint8

const (
	consumerKind heartbeatKind = iota // ConsumerGroupHeartbeat
	shareKind                         // ShareGroupHeartbeat
)

// heartbeatGroup returns the group a consumer or share heartbeat names, as
// Kafka's group coordinator finds it: a group of the heartbeat's kind is
// used; only a join (member epoch 0) creates one. A consumer join takes
// over an empty classic group, which holds nothing a consumer group needs
// (offsets are kept apart), including the "simple" one Kafka keeps for an
// id known only by its committed offsets; Kafka converts no group of
// another kind into a share group, empty or not. A nil group comes with
// the message of the GROUP_ID_NOT_FOUND to answer, Kafka's to the letter
// (its consumer type message has no full stop). Heartbeats run often: the
// messages are made only for a refusal.
func (s *Shard) heartbeatGroup(id string, memberEpoch int32, kind heartbeatKind) (*group, string) {
	g := s.groups[id]
	var ofKind, takesOver bool
	if g != nil {
		if kind == consumerKind {
			ofKind, takesOver = g.consumer != nil, g.classic != nil && g.empty()
		} else {
			ofKind = g.share != nil
		}
	} else {
		takesOver = kind == consumerKind // an id known only by its offsets
	}
	held := s.held(id)
	switch {
	case ofKind:
	case held && (memberEpoch != 0 || !takesOver):
		if kind == consumerKind {
			return nil, "Group " + id + " is not a consumer group"
		}
		return nil, "Group " + id + " is not a share group."
	case memberEpoch != 0:
		if kind == consumerKind {
			return nil, "Consumer group " + id + " not found."
		}
		return nil, "Share group " + id + " not found."
	case kind == consumerKind:
		g = &group{consumer: NewConsumerGroup(id, s.cfg.Consumer)}
		s.groups[id] = g
	default:
		g = &group{share: NewShareGroup(id, s.cfg.Share)}
		s.groups[id] = g
	}
	s.touched[id] = true
	return g, ""
}

// OffsetCommit handles an OffsetCommit for one group. Topic ids (v10+) are
// resolved through topics.
func (s *Shard) OffsetCommit(now time.Time, req *kmsg.OffsetCommitRequest, topics TopicsView) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var groupErr error
	g := s.groups[req.Group]
	switch {
	case req.Group == "":
		groupErr = kerr.InvalidGroupID
	case g == nil:
		groupErr = s.commitWithoutGroup(req.Group, req.Generation, req.Version >= 9)
	case g.classic != nil:
		groupErr = g.classic.ValidateOffsetCommit(now, req.Generation, req.MemberID, req.InstanceID, false)
	case g.consumer != nil:
		groupErr = g.consumer.ValidateOffsetCommit(req.MemberID, req.Generation)
	default:
		groupErr = kerr.GroupIDNotFound // share groups keep no committed offsets
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetCommitResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		known := true
		if req.Version >= 10 {
			name, _, known = topics.TopicByID(rt.TopicID)
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetCommitResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case groupErr != nil:
				op.ErrorCode = kerrCode(groupErr)
			case !known:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case s.metadataTooLarge(rp.Metadata):
				op.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				v := committedValue(now, rp.Offset, rp.LeaderEpoch, rp.Metadata)
				s.setOffset(req.Group, topicPartition{name, rp.Partition}, v)
				s.out = append(s.out, Record{Key: offsetKey(req.Group, name, rp.Partition), Value: v.encode()})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// commitWithoutGroup checks a commit, transactional or not, to an id that
// has no group. Kafka keeps offsets of a group no member ever joined
// ("simple" consumers, admin tools) only when the commit claims no
// generation. An id known by its committed offsets is an Empty classic
// group to Kafka, which knows no member of it; an id it does not know
// answers GROUP_ID_NOT_FOUND where the request version has it (OffsetCommit
// v9+, which clients of both protocols understand), ILLEGAL_GENERATION
// before.
func (s *Shard) commitWithoutGroup(id string, generation int32, groupNotFound bool) error {
	switch {
	case generation < 0:
		return nil
	case s.offsets[id] != nil:
		return kerr.UnknownMemberID
	case groupNotFound:
		return kerr.GroupIDNotFound
	}
	return kerr.IllegalGeneration
}

// FetchTopic names the partitions an OffsetFetch asks for.
type FetchTopic struct {
	Topic      string
	Partitions []int32
}

// OffsetFetch returns a group's committed offsets for the given topics (nil:
// every committed offset). memberID/memberEpoch are checked when set (v9+).
// A partition without a commit answers offset -1, as Kafka does.
func (s *Shard) OffsetFetch(groupID, memberID string, memberEpoch int32, topics []FetchTopic) ([]kmsg.OffsetFetchResponseGroupTopic, error) {
	if g := s.groups[groupID]; g != nil && (memberID != "" || memberEpoch >= 0) {
		var err error
		switch {
		case g.classic != nil:
			err = g.classic.ValidateOffsetFetch(memberID, memberEpoch)
		case g.consumer != nil:
			err = g.consumer.ValidateOffsetFetch(memberID, memberEpoch)
		}
		if err != nil {
			return nil, err
		}
	}
	committed := s.offsets[groupID]
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range committed {
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		for t, ps := range byTopic {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			topics = append(topics, FetchTopic{Topic: t, Partitions: ps})
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Topic < topics[j].Topic })
	}
	out := make([]kmsg.OffsetFetchResponseGroupTopic, 0, len(topics))
	for _, t := range topics {
		ot := kmsg.NewOffsetFetchResponseGroupTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			op.Partition = p
			op.Offset, op.LeaderEpoch = -1, -1
			if v, ok := committed[topicPartition{t.Topic, p}]; ok {
				op.Offset, op.LeaderEpoch = v.Offset, v.LeaderEpoch
				md := v.Metadata
				op.Metadata = &md
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		out = append(out, ot)
	}
	return out, nil
}

// OffsetDelete deletes committed offsets of a group. Partitions of a topic
// the group's members still consume answer GROUP_SUBSCRIBED_TO_TOPIC; a
// classic group whose subscriptions are not known yet counts as subscribed
// to every topic, as in Kafka. A share group keeps no committed offsets
// (GROUP_ID_NOT_FOUND), and a classic group with members that does not use
// the consumer protocol keeps them all (NON_EMPTY_GROUP): the coordinator
// cannot tell which topics it reads.
func (s *Shard) OffsetDelete(req *kmsg.OffsetDeleteRequest, topics TopicsView) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := s.groups[req.Group]
	if (g == nil && s.offsets[req.Group] == nil) || (g != nil && g.share != nil) {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	subscribed := map[string]bool{}
	all := false
	if g != nil && !g.empty() {
		var names []string
		if g.classic != nil {
			var err *kerr.Error
			if names, all, err = g.classic.OffsetDeleteSubscriptions(); err != nil {
				resp.ErrorCode = err.Code
				return resp
			}
		} else {
			names = g.consumer.Subscribed(topics)
		}
		for _, n := range names {
			subscribed[n] = true
		}
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetDeleteResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetDeleteResponseTopicPartition()
			op.Partition = rp.Partition
			if all || subscribed[rt.Topic] {
				op.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := s.offsets[req.Group][topicPartition{rt.Topic, rp.Partition}]; ok {
				s.deleteOffset(req.Group, topicPartition{rt.Topic, rp.Partition})
				s.out = append(s.out, Record{Key: offsetKey(req.Group, rt.Topic, rp.Partition)})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// DescribeGroup describes a group for a DescribeGroups of the given
// version. DescribeGroups is the classic protocol's: as in Kafka, a
// consumer or share group is described like a missing one, Dead without
// members (their own Describe APIs show them), and from version 6
// (KIP-1043) with GROUP_ID_NOT_FOUND and a message telling the two apart;
// older clients know no error there.
func (s *Shard) DescribeGroup(id string, version int16) kmsg.DescribeGroupsResponseGroup {
	g := s.groups[id]
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = id
	switch {
	case g != nil && g.classic != nil:
		return g.classic.Describe()
	case g == nil && s.offsets[id] != nil:
		d.State = "Empty"
		return d
	}
	d.State = "Dead"
	if version >= 6 {
		msg := "Group " + id + " not found."
		if g != nil {
			msg = "Group " + id + " is not a classic group."
		}
		d.ErrorCode, d.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
	}
	return d
}

// ConsumerDescribe describes a consumer-protocol group.
func (s *Shard) ConsumerDescribe(id string, topics TopicsView, authorizedOps bool) kmsg.ConsumerGroupDescribeResponseGroup {
	g := s.groups[id]
	if g == nil || g.consumer == nil {
		d := kmsg.NewConsumerGroupDescribeResponseGroup()
		d.Group = id
		d.ErrorCode, d.ErrorMessage = describeNotFound(id, s.held(id), "consumer")
		return d
	}
	return g.consumer.Describe(topics, authorizedOps)
}

// ListGroups lists the shard's groups, filtered by state and type names
// (case-insensitive; empty filters match everything).
func (s *Shard) ListGroups(states, types []string) []kmsg.ListGroupsResponseGroup {
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	var out []kmsg.ListGroupsResponseGroup
	// A group known only by its committed offsets (a "simple" consumer
	// or an admin commit) is an Empty classic group, as Kafka lists it.
	for id := range s.offsets {
		if s.groups[id] == nil && match(states, "Empty") && match(types, "classic") {
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.GroupState, lg.GroupType = id, "Empty", "classic"
			out = append(out, lg)
		}
	}
	for id, g := range s.groups {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		switch {
		case g.classic != nil:
			lg.ProtocolType, lg.GroupState, lg.GroupType = g.classic.ProtocolType(), g.classic.State(), "classic"
		case g.consumer != nil:
			lg.ProtocolType, lg.GroupState, lg.GroupType = "consumer", g.consumer.State(), "consumer"
		default:
			lg.ProtocolType, lg.GroupState, lg.GroupType = "share", g.share.State(), "share"
		}
		if match(states, lg.GroupState) && match(types, lg.GroupType) {
			out = append(out, lg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// DeleteGroup deletes an empty group and its offsets.
func (s *Shard) DeleteGroup(id string) error {
	g := s.groups[id]
	if g == nil && s.offsets[id] == nil {
		return kerr.GroupIDNotFound
	}
	if g != nil && !g.empty() {
		return kerr.NonEmptyGroup
	}
	if g != nil {
		version := keyConsumerGroup
		switch {
		case g.classic != nil:
			version = keyClassicGroup
			g.classic.MarkDead(kerr.GroupIDNotFound)
		case g.share != nil:
			version = keyShareGroup
		}
		delete(s.groups, id)
		s.out = append(s.out, Record{Key: groupKey(version, id)})
	}
	for tp := range s.offsets[id] {
		s.out = append(s.out, Record{Key: offsetKey(id, tp.topic, tp.partition)})
	}
	delete(s.offsets, id)
	return nil
}

// Tick fires the groups' expired timers.
func (s *Shard) Tick(now time.Time, topics TopicsView) {
	for id, g := range s.groups {
		d := g.nextDeadline()
		if d.IsZero() || d.After(now) {
			continue
		}
		switch {
		case g.classic != nil:
			g.classic.Tick(now)
		case g.consumer != nil:
			g.consumer.Tick(now, topics)
		default:
			g.share.Tick(now, topics)
		}
		s.touched[id] = true
	}
}

// NextDeadline is the earliest group timer; zero if none.
func (s *Shard) NextDeadline() time.Time {
	var next time.Time
	for _, g := range s.groups {
		if d := g.nextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

// OnMetadata tells consumer groups that topics changed.
func (s *Shard) OnMetadata(now time.Time, topics TopicsView) {
	for id, g := range s.groups {
		switch {
		case g.consumer != nil:
			g.consumer.OnMetadata(now, topics)
		case g.share != nil:
			g.share.OnMetadata(now, topics)
		default:
			continue
		}
		s.touched[id] = true
	}
}

// ExpireOffsets drops offsets of groups without members once they are
// older than the retention (offsets.retention.minutes). The runtime calls it
// every offsets.retention.check.interval.ms.
func (s *Shard) ExpireOffsets(now time.Time) {
	cutoff := now.Add(-s.cfg.OffsetsRetention).UnixMilli()
	for id, m := range s.offsets {
		if g := s.groups[id]; g != nil && !g.empty() {
			continue
		}
		for tp, v := range m {
			if v.CommitTimestamp < cutoff {
				s.deleteOffset(id, tp)
				s.out = append(s.out, Record{Key: offsetKey(id, tp.topic, tp.partition)})
			}
		}
	}
}

// Unload ends the shard's groups when this node stops coordinating them:
// pending joins and syncs answer NOT_COORDINATOR so clients look again.
func (s *Shard) Unload() {
	for _, g := range s.groups {
		if g.classic != nil {
			g.classic.MarkDead(kerr.NotCoordinator)
		}
	}
}

func kerrCode(err error) int16 {
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// ShareHeartbeat handles a ShareGroupHeartbeat. Only a join (epoch 0)
// creates a group; an id held by another group type is GROUP_ID_NOT_FOUND.
func (s *Shard) ShareHeartbeat(now time.Time, clientID, clientHost string, req *kmsg.ShareGroupHeartbeatRequest, topics TopicsView, overrides func(*ShareGroup)) *kmsg.ShareGroupHeartbeatResponse {
	fail := func(e *kerr.Error, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = e.Code
		resp.ErrorMessage = &msg
		return resp
	}
	if resp := ValidateShareGroupHeartbeat(req); resp != nil {
		return resp
	}
	g, notFound := s.heartbeatGroup(req.GroupID, req.MemberEpoch, shareKind)
	if g == nil {
		return fail(kerr.GroupIDNotFound, notFound)
	}
	if overrides != nil {
		overrides(g.share)
	}
	return g.share.HeartbeatFrom(now, clientID, clientHost, req, topics)
}

// ShareDescribe describes a share group.
func (s *Shard) ShareDescribe(id string, topics TopicsView, authorizedOps bool) kmsg.ShareGroupDescribeResponseGroup {
	g := s.groups[id]
	if g == nil || g.share == nil {
		d := kmsg.NewShareGroupDescribeResponseGroup()
		d.GroupID = id
		d.ErrorCode, d.ErrorMessage = describeNotFound(id, s.held(id), "share")
		return d
	}
	return g.share.Describe(topics, authorizedOps)
}

// describeNotFound is the error a ConsumerGroupDescribe or
// ShareGroupDescribe answers for group id when it is absent, or, if
// otherType, a group of a type other than kind. Kafka answers both with
// GROUP_ID_NOT_FOUND and tells them apart only in the message.
func describeNotFound(id string, otherType bool, kind string) (int16, *string) {
	msg := "Group " + id + " not found."
	if otherType {
		msg = "Group " + id + " is not a " + kind + " group."
	}
	return kerr.GroupIDNotFound.Code, &msg
}

// held reports whether id names a group of any type, counting an id known
// only by its committed offsets: Kafka keeps an Empty classic group for it.
func (s *Shard) held(id string) bool {
	return s.groups[id] != nil || s.offsets[id] != nil
}

// ShareGroupInfo reports whether id is a share group and whether it has
// members (share offset admin APIs need both); otherType is an id held by
// a group of another type.
func (s *Shard) ShareGroupInfo(id string) (exists, empty bool, otherType bool) {
	g := s.groups[id]
	if g == nil {
		return false, true, s.offsets[id] != nil
	}
	if g.share == nil {
		return false, g.empty(), true
	}
	return true, g.share.IsEmpty(), false
}

// EnsureShareGroup is ShareGroupInfo for a request that may create the
// group: when nothing holds id, an empty share group is created (and
// persisted with the next Drain). Kafka (4.2) lets AlterShareGroupOffsets
// position a share group this way before its first member joins.
func (s *Shard) EnsureShareGroup(id string) (empty, otherType bool) {
	if !s.held(id) {
		g := NewShareGroup(id, s.cfg.Share)
		g.dirty = true
		s.groups[id] = &group{share: g}
		s.touched[id] = true
	}
	_, empty, otherType = s.ShareGroupInfo(id)
	return empty, otherType
}

// ShareMembers lists a share group's members.
func (s *Shard) ShareMembers(id string) []ShareMember {
	if g := s.groups[id]; g != nil && g.share != nil {
		return g.share.Members()
	}
	return nil
}

// EachOffset calls fn for every committed offset of the shard (metrics).
func (s *Shard) EachOffset(fn func(group, topic string, partition int32, offset int64)) {
	for g, m := range s.offsets {
		for tp, v := range m {
			fn(g, tp.topic, tp.partition, v.Offset)
		}
	}
}
