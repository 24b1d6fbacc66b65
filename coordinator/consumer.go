package coordinator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/timeheap"
)

// TopicsView is the metadata the group needs (from the broker's metadata image).
type TopicsView interface {
	TopicByName(name string) (id [16]byte, partitions int32, ok bool)
	TopicByID(id [16]byte) (name string, partitions int32, ok bool)
	TopicNames() []string // every topic, internal ones included, for regex subscriptions
}

// DescribeScope is a TopicsView a heartbeat passes under an authorizer:
// MayDescribe says whether the principal of the member sending it may
// describe a topic. A regex subscription resolves only to topics the
// principal may describe, as Kafka's regex resolution filters them, and
// the group keeps the check of the last heartbeat of each regex for the
// resolutions that topic changes bring between heartbeats.
type DescribeScope interface {
	TopicsView
	MayDescribe(topic string) bool
}

// ConsumerConfig holds the broker settings of consumer-protocol groups, with
// Kafka's names and defaults.
type ConsumerConfig struct {
	SessionTimeout    time.Duration // group.consumer.session.timeout.ms (45000)
	HeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms (5000)
	MaxSize           int           // group.consumer.max.size (2147483647)
	Assignors         []string      // group.consumer.assignors ("uniform,range"); the first is the default
}

// DefaultConsumerConfig returns Kafka's defaults.
func DefaultConsumerConfig() ConsumerConfig {
	return ConsumerConfig{
		SessionTimeout:    45 * time.Second,
		HeartbeatInterval: 5 * time.Second,
		MaxSize:           math.MaxInt32,
		Assignors:         []string{"uniform", "range"},
	}
}

// Member epochs with a special meaning on the wire.
const (
	consumerLeaveEpoch       int32 = -1
	consumerStaticLeaveEpoch int32 = -2
)

// consumerMemberState is the reconciliation state of a member.
type consumerMemberState int8

const (
	consumerStable     consumerMemberState = 0 // reconciled to its epoch
	consumerUnrevoked  consumerMemberState = 1 // must give up partitions first
	consumerUnreleased consumerMemberState = 2 // waits for partitions others still hold
)

func (s consumerMemberState) String() string {
	switch s {
	case consumerStable:
		return "STABLE"
	case consumerUnrevoked:
		return "UNREVOKED_PARTITIONS"
	case consumerUnreleased:
		return "UNRELEASED_PARTITIONS"
	}
	return "UNKNOWN"
}

// consumerAssignment maps a topic id to a sorted, duplicate-free partition
// list. Topics with no partitions are absent.
type consumerAssignment map[[16]byte][]int32

type consumerTP struct {
	topic [16]byte
	part  int32
}

type consumerMember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	rebalanceTimeout int32 // milliseconds
	epoch            int32
	prevEpoch        int32
	state            consumerMemberState
	names            []string // sorted, deduplicated; nil when never set
	regex            *string
	assignor         *string
	assigned         consumerAssignment // what the member may own now
	pending          consumerAssignment // revoked but not yet confirmed released

	sessionDeadline   time.Time
	rebalanceDeadline time.Time // meaningful in consumerUnrevoked only
}

// ConsumerGroup is one consumer-protocol (KIP-848) group: a pure,
// single-threaded state machine. The caller serializes calls and passes the
// time in; the group reads no clock, starts no goroutines and does no I/O.
type ConsumerGroup struct {
	id  string
	cfg ConsumerConfig

	groupEpoch      int32
	assignmentEpoch int32
	members         map[string]*consumerMember
	static          map[string]string // instance id -> member id
	target          map[string]consumerAssignment
	owners          map[consumerTP]string // partition -> member holding it (assigned or pending revocation)
	regexes         map[string][]string   // regex -> resolved topic names
	metaHash        uint64                // fingerprint of the subscribed metadata last assigned from
	timers          timeheap.Heap[string] // members' timers by member id (consumer_timers.go)

	// regexScope holds, per regex, the DescribeScope check of the last
	// heartbeat that subscribed with it (nil or missing: every topic). It
	// lives in memory only: after a coordinator move the next heartbeat
	// sets it again.
	regexScope map[string]func(topic string) bool

	// What changed since the last takeRecords: the group's own fields
	// (epochs, fingerprint, regexes) and the members whose record must be
	// rewritten, or deleted when they are gone. Durable state is one
	// record for the group and one per member, so a heartbeat that moves
	// one member writes that member alone, not the whole group: a
	// rebalance of n members writes O(n) bytes, not O(n^2).
	dirtyHeader  bool
	dirtyMembers map[string]bool

	idSeq uint64
}

// NewConsumerGroup returns an empty group.
func NewConsumerGroup(id string, cfg ConsumerConfig) *ConsumerGroup {
	return &ConsumerGroup{
		id:      id,
		cfg:     consumerNormalizeConfig(cfg),
		members: make(map[string]*consumerMember),
		static:  make(map[string]string),
		target:  make(map[string]consumerAssignment),
		owners:  make(map[consumerTP]string),
		regexes: make(map[string][]string),

		dirtyMembers: make(map[string]bool),
	}
}

func consumerNormalizeConfig(cfg ConsumerConfig) ConsumerConfig {
	def := DefaultConsumerConfig()
	cfg.SessionTimeout = positiveOr(cfg.SessionTimeout, def.SessionTimeout)
	cfg.HeartbeatInterval = positiveOr(cfg.HeartbeatInterval, def.HeartbeatInterval)
	cfg.MaxSize = positiveOr(cfg.MaxSize, def.MaxSize)
	var names []string
	for _, n := range cfg.Assignors {
		n = strings.TrimSpace(n)
		if assignByName(n) != nil && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		names = def.Assignors
	}
	cfg.Assignors = names
	return cfg
}

// ID returns the group id.
func (g *ConsumerGroup) ID() string { return g.id }

// IsEmpty reports whether the group has no members.
func (g *ConsumerGroup) IsEmpty() bool { return len(g.members) == 0 }

// State returns the group state as ConsumerGroupDescribe reports it. A
// group whose only members are statically left (epoch -2) counts those as
// reconciled.
func (g *ConsumerGroup) State() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	if g.groupEpoch > g.assignmentEpoch {
		return "Assigning"
	}
	for _, m := range g.members {
		if m.epoch == consumerStaticLeaveEpoch {
			continue
		}
		if m.state != consumerStable || m.epoch != g.assignmentEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

// markMember records that member id's durable state changed (or that it
// was removed).
func (g *ConsumerGroup) markMember(id string) { g.dirtyMembers[id] = true }

// ---- heartbeat ----

// Heartbeat handles one ConsumerGroupHeartbeat (v0-1).
func (g *ConsumerGroup) Heartbeat(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, topics TopicsView) *kmsg.ConsumerGroupHeartbeatResponse {
	return g.HeartbeatFrom(now, "", "", req, topics)
}

// HeartbeatFrom is Heartbeat with the client id and host from the request
// header, which ConsumerGroupDescribe reports. Empty values leave what the
// member had.
func (g *ConsumerGroup) HeartbeatFrom(now time.Time, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest, topics TopicsView) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	err := g.consumerValidate(req)
	if err == nil {
		if req.MemberEpoch < 0 {
			err = g.consumerLeave(now, req, resp, topics)
		} else {
			err = g.consumerHeartbeat(now, clientID, clientHost, req, resp, topics)
		}
	}
	id := req.MemberID
	if resp.MemberID != nil {
		id = *resp.MemberID
	}
	if m, ok := g.members[id]; ok {
		g.armTimer(m)
	}
	if err != nil {
		ke, ok := err.(*consumerError)
		if !ok {
			ke = &consumerError{kerr.UnknownServerError, err.Error()}
		}
		*resp = kmsg.ConsumerGroupHeartbeatResponse{Version: req.Version, ErrorCode: ke.err.Code}
		msg := ke.msg
		resp.ErrorMessage = &msg
	}
	return resp
}

// consumerError is a Kafka error with the message Kafka sends with it.
type consumerError struct {
	err *kerr.Error
	msg string
}

func (e *consumerError) Error() string { return e.err.Message + ": " + e.msg }
func (e *consumerError) Unwrap() error { return e.err }

func consumerErrf(err *kerr.Error, format string, args ...any) error {
	return &consumerError{err, fmt.Sprintf(format, args...)}
}

func consumerBlank(s string) bool { return strings.TrimSpace(s) == "" }

// consumerFencedInstance is the FENCED_INSTANCE_ID of a request from member
// whose instance id holder holds.
func consumerFencedInstance(member, instance, holder string) error {
	return consumerErrf(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", member, instance, holder)
}

// consumerValidate applies Kafka's request checks, in Kafka's order, before
// any state is touched.
func (g *ConsumerGroup) consumerValidate(req *kmsg.ConsumerGroupHeartbeatRequest) error {
	if (req.Version >= 1 || req.MemberEpoch > 0 || req.MemberEpoch == consumerLeaveEpoch) && consumerBlank(req.MemberID) {
		return consumerErrf(kerr.InvalidRequest, "MemberId can't be empty.")
	}
	if consumerBlank(req.Group) {
		return consumerErrf(kerr.InvalidRequest, "GroupId can't be empty.")
	}
	if req.InstanceID != nil && consumerBlank(*req.InstanceID) {
		return consumerErrf(kerr.InvalidRequest, "InstanceId can't be empty.")
	}
	if req.RackID != nil && consumerBlank(*req.RackID) {
		return consumerErrf(kerr.InvalidRequest, "RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeoutMillis == -1 {
			return consumerErrf(kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) != 0 {
			return consumerErrf(kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return consumerErrf(kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == consumerStaticLeaveEpoch:
		// Kafka insists on the instance id here. Some clients leave it
		// out of a static leave, so a member already known to be static
		// is resolved from its own record instead.
		if req.InstanceID == nil {
			if m, ok := g.members[req.MemberID]; !ok || m.instanceID == nil {
				return consumerErrf(kerr.InvalidRequest, "InstanceId can't be null.")
			}
		}
	case req.MemberEpoch < consumerStaticLeaveEpoch:
		return consumerErrf(kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !slices.Contains(g.cfg.Assignors, *req.ServerAssignor) {
		return consumerErrf(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.",
			*req.ServerAssignor, strings.Join(g.cfg.Assignors, ", "))
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := consumerCompileRegex(*req.SubscribedTopicRegex); err != nil {
			return consumerErrf(kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.",
				*req.SubscribedTopicRegex, err)
		}
	}
	return nil
}

// consumerCompileRegex compiles a subscription regex so that it must match a
// whole topic name. An empty regex matches nothing.
func consumerCompileRegex(re string) (*regexp.Regexp, error) {
	if re == "" {
		return nil, nil
	}
	return CompileWholeMatch(re)
}

// CompileWholeMatch compiles an RE2 expression a client sent (a topic
// subscription, a transactional id filter) so that it must match a whole
// name, as Kafka's re2j matches() does. The error is the expression's own,
// not the anchored one's.
func CompileWholeMatch(re string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(re); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + re + `)$`)
}

func (g *ConsumerGroup) consumerLeave(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, topics TopicsView) error {
	if g.groupEpoch == 0 && len(g.members) == 0 {
		return consumerErrf(kerr.GroupIDNotFound, "Group %s not found.", g.id)
	}
	var m *consumerMember
	if req.MemberEpoch == consumerStaticLeaveEpoch {
		inst := ""
		if req.InstanceID != nil {
			inst = *req.InstanceID
		} else if mm, ok := g.members[req.MemberID]; ok && mm.instanceID != nil {
			inst = *mm.instanceID
		}
		holder, ok := g.static[inst]
		if !ok {
			return consumerErrf(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		}
		if holder != req.MemberID {
			return consumerFencedInstance(req.MemberID, inst, holder)
		}
		m = g.members[holder]
	} else {
		var ok bool
		if m, ok = g.members[req.MemberID]; !ok {
			return consumerErrf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
		if req.InstanceID != nil {
			if holder, ok := g.static[*req.InstanceID]; ok && holder != m.id {
				return consumerFencedInstance(m.id, *req.InstanceID, holder)
			}
		}
	}

	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == consumerStaticLeaveEpoch && m.instanceID != nil {
		// Temporary leave: the member keeps its assignment (which stays
		// reserved) until it is replaced or its session expires.
		g.consumerSetHoldings(m, m.assigned, nil)
		if m.epoch != consumerStaticLeaveEpoch {
			m.prevEpoch = m.epoch
		}
		m.epoch = consumerStaticLeaveEpoch
		m.state = consumerStable
		m.rebalanceDeadline = time.Time{}
		m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
		g.markMember(m.id)
		return nil
	}
	g.consumerFence([]*consumerMember{m}, topics)
	return nil
}

// LeaveClassic handles a classic LeaveGroup sent to the group, as Kafka's
// coordinator does. Its members all use the consumer protocol, which a
// classic leave cannot end: a member named by its member id answers
// UNKNOWN_MEMBER_ID. The one removal it allows is an administrator's of a
// static member, named by instance id with no member id (as an admin
// client's member removal sends it); an instance id no member holds is
// UNKNOWN_MEMBER_ID, one another member holds FENCED_INSTANCE_ID. A static
// member so removed goes for good, not for a temporary leave.
func (g *ConsumerGroup) LeaveClassic(req *kmsg.LeaveGroupRequest, topics TopicsView) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	var leaving []*consumerMember
	for _, l := range leaveGroupMembers(req) {
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID, r.InstanceID = l.MemberID, l.InstanceID
		r.ErrorCode = kerr.UnknownMemberID.Code
		if l.InstanceID != nil {
			holder, ok := g.static[*l.InstanceID]
			m := g.members[holder]
			switch {
			case !ok || m == nil:
			case l.MemberID != "" && l.MemberID != holder:
				r.ErrorCode = kerr.FencedInstanceID.Code
			case l.MemberID == "":
				r.ErrorCode = 0
				leaving = append(leaving, m)
			}
		}
		resp.Members = append(resp.Members, r)
	}
	g.consumerFence(leaving, topics)
	leaveGroupCollapse(resp)
	return resp
}

// consumerFence removes members (a leave, an expired session, an admin's
// removal) and reassigns what they held under a new group epoch.
func (g *ConsumerGroup) consumerFence(ms []*consumerMember, topics TopicsView) {
	if len(ms) == 0 {
		return
	}
	for _, m := range ms {
		if g.members[m.id] == m { // a member named twice goes once
			g.consumerRemove(m)
		}
	}
	g.consumerBump()
	g.consumerRefresh(topics)
	g.consumerComputeTarget(topics)
}

func (g *ConsumerGroup) consumerHeartbeat(now time.Time, clientID, clientHost string, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, topics TopicsView) error {
	if req.MemberEpoch != 0 && g.groupEpoch == 0 && len(g.members) == 0 {
		return consumerErrf(kerr.GroupIDNotFound, "Group %s not found.", g.id)
	}
	var (
		m       *consumerMember
		isNew   bool
		changed bool // inputs of the assignment changed: bump the group epoch
		owned   map[consumerTP]bool
	)
	if req.Topics != nil {
		owned = make(map[consumerTP]bool)
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				owned[consumerTP{t.TopicID, p}] = true
			}
		}
	}

	if req.MemberEpoch == 0 {
		memberID := req.MemberID
		if memberID == "" { // v0: the coordinator names the member
			memberID = g.consumerNewMemberID(now)
		}
		var err error
		if m, isNew, err = g.consumerJoin(memberID, req); err != nil {
			return err
		}
	} else {
		var ok bool
		m, ok = g.members[req.MemberID]
		if !ok {
			if req.InstanceID != nil {
				if holder, ok := g.static[*req.InstanceID]; ok {
					return consumerFencedInstance(req.MemberID, *req.InstanceID, holder)
				}
			}
			return consumerErrf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
		if req.InstanceID != nil {
			if holder, ok := g.static[*req.InstanceID]; ok && holder != m.id {
				return consumerFencedInstance(m.id, *req.InstanceID, holder)
			}
		}
		switch {
		case req.MemberEpoch > m.epoch:
			return consumerErrf(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
		case req.MemberEpoch < m.epoch:
			// Accept the previous epoch when the member's reply to the bump
			// may have been lost, as long as it owns nothing it should not.
			if req.MemberEpoch != m.prevEpoch || owned == nil || !consumerSubset(owned, m.assigned) {
				return consumerErrf(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
			}
		}
	}

	// Apply the non-null fields.
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		r := *req.RackID
		m.rackID = &r
		g.markMember(m.id)
	}
	if clientID != "" && clientID != m.clientID {
		m.clientID = clientID
		g.markMember(m.id)
	}
	if clientHost != "" && clientHost != m.clientHost {
		m.clientHost = clientHost
		g.markMember(m.id)
	}
	if req.RebalanceTimeoutMillis != -1 && req.RebalanceTimeoutMillis != m.rebalanceTimeout {
		m.rebalanceTimeout = req.RebalanceTimeoutMillis
		g.markMember(m.id)
	}
	if req.ServerAssignor != nil && (m.assignor == nil || *m.assignor != *req.ServerAssignor) {
		a := *req.ServerAssignor
		m.assignor = &a
		changed = true
	}
	if req.SubscribedTopicNames != nil {
		names := sortedUniqueStrings(req.SubscribedTopicNames)
		if m.names == nil || !slices.Equal(m.names, names) {
			m.names = names
			changed = true
		}
	}
	if req.SubscribedTopicRegex != nil && (m.regex == nil || *m.regex != *req.SubscribedTopicRegex) {
		re := *req.SubscribedTopicRegex
		m.regex = &re
		changed = true
	}
	if scope, ok := topics.(DescribeScope); ok && m.regex != nil {
		if g.regexScope == nil {
			g.regexScope = map[string]func(string) bool{}
		}
		g.regexScope[*m.regex] = scope.MayDescribe
	}
	if isNew {
		changed = true
	}
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)

	// Resolve regexes seen for the first time. The metadata fingerprint is
	// rechecked when the subscription changed or on a full request; plain
	// keepalives rely on OnMetadata, which the caller invokes whenever
	// topics change, so they stay O(1) in the group size.
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if g.consumerResolveNew(m, topics) || changed || full || req.MemberEpoch == 0 {
		if g.consumerUpdateMetaHash(topics) {
			changed = true
		}
	}
	if changed {
		g.markMember(m.id)
		g.consumerBump()
	}
	if g.groupEpoch > g.assignmentEpoch {
		g.consumerComputeTarget(topics)
	}

	before := m.assigned
	if req.MemberEpoch == 0 && owned == nil {
		owned = map[consumerTP]bool{}
	}
	g.consumerReconcile(now, m, owned, topics)

	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.cfg.HeartbeatInterval / time.Millisecond)
	if req.MemberEpoch == 0 || full || !equalAssignment(before, m.assigned) {
		resp.Assignment = consumerWireAssignment(m.assigned)
	}
	return nil
}

// consumerJoin finds or creates the member for an epoch-0 request, applying
// static membership rules.
func (g *ConsumerGroup) consumerJoin(memberID string, req *kmsg.ConsumerGroupHeartbeatRequest) (*consumerMember, bool, error) {
	if req.InstanceID != nil {
		inst := *req.InstanceID
		if holder, ok := g.static[inst]; ok && holder != memberID {
			old := g.members[holder]
			if old.epoch != consumerStaticLeaveEpoch {
				return nil, false, consumerErrf(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", memberID, inst, holder)
			}
			if _, clash := g.members[memberID]; clash {
				return nil, false, consumerErrf(kerr.UnreleasedInstanceID, "Member %s cannot take over instance id %s because it is already a member of group %s.", memberID, inst, g.id)
			}
			// Replace the temporarily departed static member: the new
			// member inherits its subscription and assignment, the old
			// member id is gone, and the group epoch does not move.
			m := &consumerMember{
				id:               memberID,
				instanceID:       old.instanceID,
				rackID:           old.rackID,
				clientID:         old.clientID,
				clientHost:       old.clientHost,
				rebalanceTimeout: old.rebalanceTimeout,
				epoch:            0,
				prevEpoch:        0,
				state:            consumerStable,
				names:            old.names,
				regex:            old.regex,
				assignor:         old.assignor,
			}
			assigned := old.assigned
			g.consumerSetHoldings(old, nil, nil)
			delete(g.members, old.id)
			if t, ok := g.target[old.id]; ok {
				g.target[memberID] = t
				delete(g.target, old.id)
			}
			g.members[memberID] = m
			g.static[inst] = memberID
			g.consumerSetHoldings(m, assigned, nil)
			g.markMember(old.id)
			g.markMember(memberID)
			return m, false, nil
		}
		if m, ok := g.members[memberID]; ok {
			if m.instanceID == nil {
				i := inst
				m.instanceID = &i
				g.static[inst] = memberID
				g.markMember(memberID)
			} else if *m.instanceID != inst {
				return nil, false, consumerErrf(kerr.FencedInstanceID, "Member %s already has instance id %s.", memberID, *m.instanceID)
			}
			return m, false, nil
		}
	} else if m, ok := g.members[memberID]; ok {
		return m, false, nil
	}

	// A brand new member.
	if len(g.members) >= g.cfg.MaxSize {
		return nil, false, consumerErrf(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", g.cfg.MaxSize)
	}
	m := &consumerMember{id: memberID, state: consumerStable}
	if req.InstanceID != nil {
		i := *req.InstanceID
		m.instanceID = &i
		g.static[i] = memberID
	}
	g.members[memberID] = m
	g.markMember(memberID)
	return m, true, nil
}

func (g *ConsumerGroup) consumerNewMemberID(now time.Time) string {
	for {
		g.idSeq++
		var buf [8]byte
		h := sha256.New()
		h.Write([]byte(g.id))
		binary.BigEndian.PutUint64(buf[:], uint64(now.UnixNano()))
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], g.idSeq)
		h.Write(buf[:])
		binary.BigEndian.PutUint64(buf[:], uint64(len(g.members)))
		h.Write(buf[:])
		id := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
		if _, ok := g.members[id]; !ok {
			return id
		}
	}
}

// ---- reconciliation ----

// consumerReconcile moves a member toward its target assignment: revoke
// before assign, and never hand out a partition another member still holds.
// owned is what the member reported owning; nil means "unchanged", which
// counts as still owning everything pending revocation.
func (g *ConsumerGroup) consumerReconcile(now time.Time, m *consumerMember, owned map[consumerTP]bool, topics TopicsView) {
	switch m.state {
	case consumerStable:
		if m.epoch == g.assignmentEpoch {
			return
		}
	case consumerUnrevoked:
		if g.consumerOwnsAny(m.pending, owned, topics) {
			return
		}
	}
	g.consumerNextAssignment(now, m, owned, topics)
}

// consumerOwnsAny reports whether the member may still own any of revoke.
// Partitions of topics that no longer exist do not count.
func (g *ConsumerGroup) consumerOwnsAny(revoke consumerAssignment, owned map[consumerTP]bool, topics TopicsView) bool {
	for t, ps := range revoke {
		if _, _, ok := topics.TopicByID(t); !ok {
			continue
		}
		if owned == nil && len(ps) > 0 {
			return true
		}
		for _, p := range ps {
			if owned[consumerTP{t, p}] {
				return true
			}
		}
	}
	return false
}

func (g *ConsumerGroup) consumerNextAssignment(now time.Time, m *consumerMember, owned map[consumerTP]bool, topics TopicsView) {
	target := g.target[m.id]
	keep := make(consumerAssignment)
	add := make(consumerAssignment)
	revoke := make(consumerAssignment)
	unreleased := false

	seen := make(map[[16]byte]bool)
	var all [][16]byte
	for t := range target {
		seen[t] = true
		all = append(all, t)
	}
	for t := range m.assigned {
		if !seen[t] {
			all = append(all, t)
		}
	}
	for _, t := range all {
		_, count, exists := topics.TopicByID(t)
		want := make(map[int32]bool, len(target[t]))
		for _, p := range target[t] {
			want[p] = true
		}
		have := make(map[int32]bool, len(m.assigned[t]))
		for _, p := range m.assigned[t] {
			have[p] = true
			switch {
			case !exists || p >= count:
				// The partition is gone: nothing to wait for.
			case want[p]:
				keep[t] = append(keep[t], p)
			default:
				revoke[t] = append(revoke[t], p)
			}
		}
		for _, p := range target[t] {
			if have[p] {
				continue
			}
			if holder, ok := g.owners[consumerTP{t, p}]; ok && holder != m.id {
				unreleased = true
				continue
			}
			add[t] = append(add[t], p)
		}
	}

	if len(revoke) > 0 && g.consumerOwnsAny(revoke, owned, topics) {
		// Revoke first: the member keeps its epoch and only the partitions
		// that stay; the revoked ones remain held until it confirms.
		if m.state != consumerUnrevoked || !equalAssignment(m.pending, revoke) {
			m.rebalanceDeadline = now.Add(time.Duration(m.rebalanceTimeout) * time.Millisecond)
		}
		m.state = consumerUnrevoked
		g.consumerSetHoldings(m, consumerNormalize(keep), consumerNormalize(revoke))
		g.markMember(m.id)
		return
	}
	for t, ps := range add {
		keep[t] = append(keep[t], ps...)
	}
	newState := consumerStable
	if unreleased {
		newState = consumerUnreleased
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch = m.epoch
		m.epoch = g.assignmentEpoch
		g.markMember(m.id)
	}
	if m.state != newState {
		m.state = newState
		g.markMember(m.id)
	}
	m.rebalanceDeadline = time.Time{}
	g.consumerSetHoldings(m, consumerNormalize(keep), nil)
}

// consumerSetHoldings replaces a member's assigned and pending partitions and
// keeps the partition owner index in step.
func (g *ConsumerGroup) consumerSetHoldings(m *consumerMember, assigned, pending consumerAssignment) {
	if !equalAssignment(m.assigned, assigned) || !equalAssignment(m.pending, pending) {
		g.markMember(m.id)
	}
	for _, a := range []consumerAssignment{m.assigned, m.pending} {
		for t, ps := range a {
			for _, p := range ps {
				tp := consumerTP{t, p}
				if g.owners[tp] == m.id {
					delete(g.owners, tp)
				}
			}
		}
	}
	m.assigned, m.pending = assigned, pending
	for _, a := range []consumerAssignment{m.assigned, m.pending} {
		for t, ps := range a {
			for _, p := range ps {
				g.owners[consumerTP{t, p}] = m.id
			}
		}
	}
}

// ---- membership changes, target assignment ----

func (g *ConsumerGroup) consumerBump() {
	g.groupEpoch++
	g.dirtyHeader = true
}

// consumerRemove drops a member and frees everything it held.
func (g *ConsumerGroup) consumerRemove(m *consumerMember) {
	g.consumerSetHoldings(m, nil, nil)
	delete(g.members, m.id)
	delete(g.target, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	g.markMember(m.id)
}

// consumerGroupAssignor is the assignor most members ask for (ties go to the
// one listed first in the configuration), or the configured default.
func (g *ConsumerGroup) consumerGroupAssignor() string {
	counts := make(map[string]int)
	for _, m := range g.members {
		if m.assignor != nil {
			counts[*m.assignor]++
		}
	}
	best, bestN := g.cfg.Assignors[0], 0
	for _, name := range g.cfg.Assignors {
		if counts[name] > bestN {
			best, bestN = name, counts[name]
		}
	}
	return best
}

// consumerMemberTopics is the member's subscription: names plus whatever its
// regex resolved to, sorted and deduplicated.
func (g *ConsumerGroup) consumerMemberTopics(m *consumerMember) []string {
	names := append([]string(nil), m.names...)
	if m.regex != nil {
		names = append(names, g.regexes[*m.regex]...)
	}
	return sortedUniqueStrings(names)
}

// consumerComputeTarget runs the group's assignor for the current group epoch.
func (g *ConsumerGroup) consumerComputeTarget(topics TopicsView) {
	spec := AssignmentSpec{Topics: make(map[[16]byte]int32)}
	ids := sortedKeys(g.members)
	for _, id := range ids {
		m := g.members[id]
		am := AssignMember{ID: id, Current: g.target[id]}
		if m.instanceID != nil {
			am.InstanceID = *m.instanceID
		}
		if m.rackID != nil {
			am.Rack = *m.rackID
		}
		for _, name := range g.consumerMemberTopics(m) {
			tid, n, ok := topics.TopicByName(name)
			if !ok || n <= 0 {
				continue
			}
			spec.Topics[tid] = n
			am.Topics = append(am.Topics, tid)
		}
		spec.Members = append(spec.Members, am)
	}
	result := assignByName(g.consumerGroupAssignor()).Assign(spec)
	target := make(map[string]consumerAssignment, len(ids))
	for _, id := range ids {
		target[id] = consumerNormalize(consumerAssignment(result[id]))
		if !equalAssignment(target[id], g.target[id]) {
			g.markMember(id)
		}
	}
	g.target = target
	g.assignmentEpoch = g.groupEpoch
	g.dirtyHeader = true
}

// consumerRegexesInUse lists the distinct regexes members subscribe with and
// forgets cached resolutions nobody uses any more.
func (g *ConsumerGroup) consumerRegexesInUse() []string {
	use := make(map[string]bool)
	for _, m := range g.members {
		if m.regex != nil {
			use[*m.regex] = true
		}
	}
	for re := range g.regexes {
		if !use[re] {
			delete(g.regexes, re)
			delete(g.regexScope, re)
			g.dirtyHeader = true
		}
	}
	return sortedKeys(use)
}

// consumerResolve lists the topics re matches that mayDescribe allows (nil:
// every topic).
func consumerResolve(re string, topics TopicsView, mayDescribe func(string) bool) []string {
	r, err := consumerCompileRegex(re)
	if err != nil || r == nil {
		return []string{}
	}
	out := []string{}
	for _, name := range topics.TopicNames() {
		if r.MatchString(name) && (mayDescribe == nil || mayDescribe(name)) {
			out = append(out, name)
		}
	}
	return sortedUniqueStrings(out)
}

// consumerResolveNew resolves the member's regex if no resolution of it is
// cached and reports whether it did.
func (g *ConsumerGroup) consumerResolveNew(m *consumerMember, topics TopicsView) bool {
	if m.regex == nil {
		return false
	}
	if _, ok := g.regexes[*m.regex]; ok {
		return false
	}
	g.regexes[*m.regex] = consumerResolve(*m.regex, topics, g.regexScope[*m.regex])
	g.dirtyHeader = true
	return true
}

// consumerRefresh re-resolves every regex and reports whether the subscribed
// metadata changed.
func (g *ConsumerGroup) consumerRefresh(topics TopicsView) bool {
	for _, re := range g.consumerRegexesInUse() {
		res := consumerResolve(re, topics, g.regexScope[re])
		if old, ok := g.regexes[re]; !ok || !slices.Equal(old, res) {
			g.regexes[re] = res
			g.dirtyHeader = true
		}
	}
	return g.consumerUpdateMetaHash(topics)
}

func (g *ConsumerGroup) consumerUpdateMetaHash(topics TopicsView) bool {
	return setMetaHash(&g.metaHash, &g.dirtyHeader, g.consumerMetaHash(topics))
}

// consumerMetaHash fingerprints what the assignment depends on besides
// membership: every subscribed topic's id and partition count (or absence),
// and every regex's resolution.
func (g *ConsumerGroup) consumerMetaHash(topics TopicsView) uint64 {
	h := fnv.New64a()
	var names []string
	for _, m := range g.members {
		names = append(names, m.names...)
	}
	res := g.consumerRegexesInUse()
	for _, re := range res {
		names = append(names, g.regexes[re]...)
		fmt.Fprintf(h, "re %q %q\n", re, g.regexes[re])
	}
	hashTopicMetadata(h, sortedUniqueStrings(names), topics)
	return h.Sum64()
}

// ---- timers, metadata ----

// Tick expires sessions and rebalance timeouts. A member whose session ran
// out, or that did not revoke within its rebalance timeout, is removed; its
// partitions are freed and the group epoch moves on.
func (g *ConsumerGroup) Tick(now time.Time, topics TopicsView) {
	var expired []*consumerMember
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		if !now.Before(m.sessionDeadline) || (m.state == consumerUnrevoked && !m.rebalanceDeadline.IsZero() && !now.Before(m.rebalanceDeadline)) {
			expired = append(expired, m)
		}
	}
	g.consumerFence(expired, topics)
}

// OnMetadata re-resolves regex subscriptions against changed topic metadata
// and, if anything the group subscribes to changed, bumps the group epoch and
// recomputes the target assignment.
func (g *ConsumerGroup) OnMetadata(now time.Time, topics TopicsView) {
	_ = now
	if g.consumerRefresh(topics) && len(g.members) > 0 {
		g.consumerBump()
		g.consumerComputeTarget(topics)
	}
}

// Subscribed returns the names of the topics any member subscribes to, with
// regexes resolved against topics.
func (g *ConsumerGroup) Subscribed(topics TopicsView) []string {
	var names []string
	resolved := make(map[string]bool)
	for _, m := range g.members {
		names = append(names, m.names...)
		if m.regex != nil && !resolved[*m.regex] {
			resolved[*m.regex] = true
			names = append(names, consumerResolve(*m.regex, topics, g.regexScope[*m.regex])...)
		}
	}
	return sortedUniqueStrings(names)
}

// ---- describe ----

// Describe answers ConsumerGroupDescribe for this group. With
// includeAuthorizedOps it reports every group operation; a caller that
// enforces ACLs overwrites AuthorizedOperations.
func (g *ConsumerGroup) Describe(topics TopicsView, includeAuthorizedOps bool) kmsg.ConsumerGroupDescribeResponseGroup {
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = g.id
	out.State = g.State()
	out.Epoch = g.groupEpoch
	out.AssignmentEpoch = g.assignmentEpoch
	out.AssignorName = g.consumerGroupAssignor()
	if includeAuthorizedOps {
		out.AuthorizedOperations = groupDescribeOps
	}
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = consumerCopyPtr(m.instanceID)
		dm.RackID = consumerCopyPtr(m.rackID)
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = append([]string{}, m.names...)
		dm.SubscribedTopicRegex = consumerCopyPtr(m.regex)
		dm.Assignment = consumerDescribeAssignment(m.assigned, topics)
		dm.TargetAssignment = consumerDescribeAssignment(g.target[m.id], topics)
		dm.MemberType = 1
		out.Members = append(out.Members, dm)
	}
	return out
}

func consumerDescribeAssignment(a consumerAssignment, topics TopicsView) kmsg.Assignment {
	var out kmsg.Assignment
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range sortedTopicIDs(a) {
		tp := kmsg.AssignmentTopicPartition{TopicID: t, Partitions: append([]int32(nil), a[t]...)}
		if name, _, ok := topics.TopicByID(t); ok {
			tp.Topic = name
		}
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

// ---- offsets ----

// ValidateOffsetCommit checks an OffsetCommit against the group (Kafka 4.1/4.2
// rules): an admin or standalone commit (negative epoch) needs an empty group;
// otherwise the member must exist and the epoch must equal its current one.
// It returns nil or a *kerr.Error.
func (g *ConsumerGroup) ValidateOffsetCommit(memberID string, memberEpoch int32) error {
	if memberEpoch < 0 && len(g.members) == 0 {
		return nil
	}
	return g.checkMemberEpoch(memberID, memberEpoch)
}

// ValidateOffsetFetch checks an OffsetFetch (v9+) that names a member. An
// empty member id with a negative epoch is an admin fetch and is not checked.
func (g *ConsumerGroup) ValidateOffsetFetch(memberID string, memberEpoch int32) error {
	if memberID == "" && memberEpoch < 0 {
		return nil
	}
	return g.checkMemberEpoch(memberID, memberEpoch)
}

// checkMemberEpoch answers UNKNOWN_MEMBER_ID for a member the group does not
// have and STALE_MEMBER_EPOCH for an epoch other than the member's current
// one; offset requests accept no other epoch.
func (g *ConsumerGroup) checkMemberEpoch(memberID string, memberEpoch int32) error {
	m, ok := g.members[memberID]
	if !ok {
		return kerr.UnknownMemberID
	}
	if memberEpoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// ---- small helpers ----

func consumerCopyPtr(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// consumerNormalize sorts and deduplicates partitions and drops empty topics.
func consumerNormalize(a consumerAssignment) consumerAssignment {
	out := make(consumerAssignment, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			out[t] = sortedUniquePartitions(ps)
		}
	}
	return out
}

// consumerSubset reports whether every owned partition is in a.
func consumerSubset(owned map[consumerTP]bool, a consumerAssignment) bool {
	for tp := range owned {
		found := false
		for _, p := range a[tp.topic] {
			if p == tp.part {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func consumerWireAssignment(a consumerAssignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range sortedTopicIDs(a) {
		wt := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		wt.TopicID = t
		wt.Partitions = append([]int32(nil), a[t]...)
		out.Topics = append(out.Topics, wt)
	}
	return &out
}
