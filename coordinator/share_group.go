package coordinator

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ShareConfig holds the broker settings of share groups, with Kafka's names
// and defaults.
type ShareConfig struct {
	SessionTimeout    time.Duration // group.share.session.timeout.ms (45000)
	HeartbeatInterval time.Duration // group.share.heartbeat.interval.ms (5000)
	MaxSize           int           // group.share.max.size (200)
}

// DefaultShareConfig returns Kafka's defaults.
func DefaultShareConfig() ShareConfig {
	return ShareConfig{
		SessionTimeout:    45 * time.Second,
		HeartbeatInterval: 5 * time.Second,
		MaxSize:           200,
	}
}

func sgNormalizeConfig(cfg ShareConfig) ShareConfig {
	def := DefaultShareConfig()
	cfg.SessionTimeout = positiveOr(cfg.SessionTimeout, def.SessionTimeout)
	cfg.HeartbeatInterval = positiveOr(cfg.HeartbeatInterval, def.HeartbeatInterval)
	cfg.MaxSize = positiveOr(cfg.MaxSize, def.MaxSize)
	return cfg
}

// sgLeaveEpoch is the member epoch of a leave request.
const sgLeaveEpoch int32 = -1

// sgAssignorName is what ShareGroupDescribe reports.
const sgAssignorName = "simple"

type sgMember struct {
	id         string
	rackID     *string
	clientID   string
	clientHost string
	epoch      int32
	prevEpoch  int32
	names      []string     // subscription: sorted, deduplicated
	assigned   sgAssignment // what the member was last told it has
	lastSeen   time.Time    // last heartbeat (or restore); not durable
}

// ShareMember is a member as admin tools show it.
type ShareMember struct {
	ID, ClientID, ClientHost string
	Epoch                    int32
	Assignment               map[[16]byte][]int32
}

// ShareGroup is one share group's membership (KIP-932): a pure,
// single-threaded state machine. The caller serializes calls and passes the
// time in; the group reads no clock, starts no goroutines and does no I/O.
//
// Share groups have no revocation phase: the target assignment is recomputed
// (and the assignment epoch set to the group epoch) whenever the group epoch
// moves, and a member takes its target, with the assignment epoch as its own
// epoch, on its next heartbeat.
type ShareGroup struct {
	id  string
	cfg ShareConfig

	sessionOverride  time.Duration // share.session.timeout.ms; 0 = cfg
	intervalOverride time.Duration // share.heartbeat.interval.ms; 0 = cfg

	groupEpoch      int32
	assignmentEpoch int32
	members         map[string]*sgMember
	target          map[string]sgAssignment
	subs            map[string]int // topic name -> number of members subscribing
	metaHash        uint64         // fingerprint of the subscribed metadata last assigned from

	dirty bool
}

// NewShareGroup returns an empty group.
func NewShareGroup(id string, cfg ShareConfig) *ShareGroup {
	g := &ShareGroup{
		id:      id,
		cfg:     sgNormalizeConfig(cfg),
		members: make(map[string]*sgMember),
		target:  make(map[string]sgAssignment),
		subs:    make(map[string]int),
	}
	g.metaHash = g.sgMetaHash(nil)
	return g
}

// ID returns the group id.
func (g *ShareGroup) ID() string { return g.id }

// SetOverrides applies the group's share.session.timeout.ms and
// share.heartbeat.interval.ms; zero (or negative) means the broker default.
// A changed session timeout applies at once to every member's running
// session.
func (g *ShareGroup) SetOverrides(sessionTimeout, heartbeatInterval time.Duration) {
	if sessionTimeout < 0 {
		sessionTimeout = 0
	}
	if heartbeatInterval < 0 {
		heartbeatInterval = 0
	}
	g.sessionOverride = sessionTimeout
	g.intervalOverride = heartbeatInterval
}

func (g *ShareGroup) sessionTimeout() time.Duration {
	if g.sessionOverride > 0 {
		return g.sessionOverride
	}
	return g.cfg.SessionTimeout
}

func (g *ShareGroup) heartbeatInterval() time.Duration {
	if g.intervalOverride > 0 {
		return g.intervalOverride
	}
	return g.cfg.HeartbeatInterval
}

// State returns the group state as ShareGroupDescribe reports it.
func (g *ShareGroup) State() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// IsEmpty reports whether the group has no members.
func (g *ShareGroup) IsEmpty() bool { return len(g.members) == 0 }

// TakeDirty reports whether durable state changed since the last call, and
// clears the flag.
func (g *ShareGroup) TakeDirty() bool {
	d := g.dirty
	g.dirty = false
	return d
}

// ---- heartbeat ----

// sgError is a Kafka error with the message Kafka sends with it.
type sgError struct {
	err *kerr.Error
	msg string
}

func sgErrf(err *kerr.Error, format string, args ...any) *sgError {
	return &sgError{err, fmt.Sprintf(format, args...)}
}

func sgBlank(s string) bool { return strings.TrimSpace(s) == "" }

// HeartbeatFrom handles one ShareGroupHeartbeat (v1). clientID and clientHost
// come from the request header and are what ShareGroupDescribe reports;
// empty values leave what the member had.
func (g *ShareGroup) HeartbeatFrom(now time.Time, clientID, clientHost string, req *kmsg.ShareGroupHeartbeatRequest, topics TopicsView) *kmsg.ShareGroupHeartbeatResponse {
	resp := kmsg.NewPtrShareGroupHeartbeatResponse()
	resp.Version = req.Version
	err := sgValidate(req)
	if err == nil {
		if req.MemberEpoch == sgLeaveEpoch {
			err = g.sgLeave(req, resp, topics)
		} else {
			err = g.sgHeartbeat(now, clientID, clientHost, req, resp, topics)
		}
	}
	if err != nil {
		*resp = kmsg.ShareGroupHeartbeatResponse{Version: req.Version, ErrorCode: err.err.Code}
		msg := err.msg
		resp.ErrorMessage = &msg
	}
	return resp
}

// ValidateShareGroupHeartbeat applies the request checks HeartbeatFrom
// starts with (Kafka's INVALID_REQUEST rules, in Kafka's order), so a caller
// can run them before looking the group up. It returns nil for a valid
// request, else the error response.
func ValidateShareGroupHeartbeat(req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	err := sgValidate(req)
	if err == nil {
		return nil
	}
	msg := err.msg
	return &kmsg.ShareGroupHeartbeatResponse{Version: req.Version, ErrorCode: err.err.Code, ErrorMessage: &msg}
}

// sgValidate applies Kafka's request checks, in Kafka's order, before any
// state is touched.
func sgValidate(req *kmsg.ShareGroupHeartbeatRequest) *sgError {
	if !ValidShareMemberID(req.MemberID) {
		return sgErrf(kerr.InvalidRequest, "Invalid member id in the request.")
	}
	if sgBlank(req.MemberID) {
		return sgErrf(kerr.InvalidRequest, "MemberId can't be empty.")
	}
	if sgBlank(req.GroupID) {
		return sgErrf(kerr.InvalidRequest, "GroupId can't be empty.")
	}
	if req.RackID != nil && sgBlank(*req.RackID) {
		return sgErrf(kerr.InvalidRequest, "RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if len(req.SubscribedTopicNames) == 0 {
			return sgErrf(kerr.InvalidRequest, "SubscribedTopicNames must be set in first request.")
		}
	case req.MemberEpoch < sgLeaveEpoch:
		return sgErrf(kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	return nil
}

// ValidShareMemberID reports whether id is a member id Kafka accepts in
// ShareGroupHeartbeat, ShareFetch and ShareAcknowledge: 1 to 36 characters,
// counted as Java counts a string's length (UTF-16 code units). Clients send
// a UUID's string form.
func ValidShareMemberID(id string) bool {
	n := 0
	for _, r := range id {
		n++
		if r > 0xFFFF {
			n++ // a surrogate pair
		}
	}
	return n > 0 && n <= 36
}

// sgNeverCreated reports whether the group has never had a member, which is
// how a share group that does not exist looks from here.
func (g *ShareGroup) sgNeverCreated() bool {
	return g.groupEpoch == 0 && len(g.members) == 0
}

func (g *ShareGroup) sgLeave(req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse, topics TopicsView) *sgError {
	if g.sgNeverCreated() {
		return sgErrf(kerr.GroupIDNotFound, "Group %s not found.", g.id)
	}
	m, ok := g.members[req.MemberID]
	if !ok {
		return sgErrf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
	}
	g.sgRemove(m)
	g.sgBumpAndAssign(topics)
	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = sgLeaveEpoch
	return nil
}

func (g *ShareGroup) sgHeartbeat(now time.Time, clientID, clientHost string, req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse, topics TopicsView) *sgError {
	if req.MemberEpoch != 0 && g.sgNeverCreated() {
		return sgErrf(kerr.GroupIDNotFound, "Group %s not found.", g.id)
	}
	m, known := g.members[req.MemberID]
	changed := false // an input of the assignment changed: bump the group epoch
	behind := false  // the member retried with its previous epoch
	if req.MemberEpoch == 0 {
		// A known member id at epoch 0 is a rejoin (after a fence, an
		// error or a restart of the client's state) and is always
		// accepted: it gets its current assignment back.
		if !known {
			if len(g.members) >= g.cfg.MaxSize {
				return sgErrf(kerr.GroupMaxSizeReached, "The share group has reached its maximum capacity of %d members.", g.cfg.MaxSize)
			}
			m = &sgMember{id: req.MemberID}
			g.members[m.id] = m
			changed = true
			g.dirty = true
		}
	} else {
		if !known {
			return sgErrf(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
		switch {
		case req.MemberEpoch > m.epoch:
			return sgErrf(kerr.FencedMemberEpoch, "The share group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
		case req.MemberEpoch < m.epoch:
			// The reply that moved the member on may have been lost.
			if req.MemberEpoch != m.prevEpoch {
				return sgErrf(kerr.FencedMemberEpoch, "The share group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
			}
			behind = true
		}
	}

	// Apply the non-null fields.
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		r := *req.RackID
		m.rackID = &r
		g.dirty = true
	}
	if clientID != "" && clientID != m.clientID {
		m.clientID = clientID
		g.dirty = true
	}
	if clientHost != "" && clientHost != m.clientHost {
		m.clientHost = clientHost
		g.dirty = true
	}
	if req.SubscribedTopicNames != nil {
		names := sortedUniqueStrings(req.SubscribedTopicNames)
		if !slices.Equal(m.names, names) {
			g.sgSetNames(m, names)
			changed = true
		}
	}
	m.lastSeen = now

	// The metadata of the subscribed topics is rechecked on every
	// heartbeat (it costs a lookup per subscribed topic), so a change the
	// caller has not reported through OnMetadata yet is still noticed.
	if g.sgUpdateMetaHash(topics) {
		changed = true
	}
	if changed {
		g.sgBump()
		g.sgAssign(topics)
	}

	assignmentChanged := g.sgReconcile(m)

	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = sgMillis(g.heartbeatInterval())
	if req.MemberEpoch == 0 || req.SubscribedTopicNames != nil || assignmentChanged || behind {
		resp.Assignment = sgWireAssignment(m.assigned)
	}
	return nil
}

// sgReconcile moves the member to the current target and assignment epoch,
// reporting whether its assignment changed.
func (g *ShareGroup) sgReconcile(m *sgMember) bool {
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch = m.epoch
		m.epoch = g.assignmentEpoch
		g.dirty = true
	}
	t := g.target[m.id]
	if equalAssignment(m.assigned, t) {
		return false
	}
	m.assigned = sgCopyAssignment(t)
	g.dirty = true
	return true
}

func sgMillis(d time.Duration) int32 {
	ms := d / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(ms)
}

// ---- membership changes, target assignment ----

func (g *ShareGroup) sgSetNames(m *sgMember, names []string) {
	for _, n := range m.names {
		if g.subs[n]--; g.subs[n] <= 0 {
			delete(g.subs, n)
		}
	}
	m.names = names
	for _, n := range m.names {
		g.subs[n]++
	}
	g.dirty = true
}

// sgRemove drops a member.
func (g *ShareGroup) sgRemove(m *sgMember) {
	g.sgSetNames(m, nil)
	delete(g.members, m.id)
	delete(g.target, m.id)
	g.dirty = true
}

func (g *ShareGroup) sgBump() {
	g.groupEpoch++
	g.dirty = true
}

// sgBumpAndAssign moves the group epoch after a membership change and
// recomputes the target, taking any metadata change along.
func (g *ShareGroup) sgBumpAndAssign(topics TopicsView) {
	g.sgUpdateMetaHash(topics)
	g.sgBump()
	g.sgAssign(topics)
}

// sgAssign runs the simple assignor for the current group epoch.
func (g *ShareGroup) sgAssign(topics TopicsView) {
	parts := make(map[[16]byte]int32)
	ids := sortedKeys(g.members)
	in := make([]sgAssignMember, 0, len(ids))
	for _, id := range ids {
		m := g.members[id]
		am := sgAssignMember{id: id, current: g.target[id]}
		for _, name := range m.names {
			tid, n, ok := topics.TopicByName(name)
			if !ok || n <= 0 {
				continue
			}
			parts[tid] = n
			am.topics = append(am.topics, tid)
		}
		in = append(in, am)
	}
	res := sgSimpleAssign(in, parts)
	target := make(map[string]sgAssignment, len(ids))
	for _, id := range ids {
		target[id] = res[id]
	}
	g.target = target
	g.assignmentEpoch = g.groupEpoch
	g.dirty = true
}

func (g *ShareGroup) sgSubscribedNames() []string {
	return sortedKeys(g.subs)
}

func (g *ShareGroup) sgUpdateMetaHash(topics TopicsView) bool {
	return setMetaHash(&g.metaHash, &g.dirty, g.sgMetaHash(topics))
}

// sgMetaHash fingerprints what the assignment depends on besides membership:
// every subscribed topic's id and partition count, or its absence.
func (g *ShareGroup) sgMetaHash(topics TopicsView) uint64 {
	h := fnv.New64a()
	hashTopicMetadata(h, g.sgSubscribedNames(), topics)
	return h.Sum64()
}

// ---- timers, metadata ----

// Tick removes the members whose session ran out; the group epoch moves on
// and the target assignment is recomputed.
func (g *ShareGroup) Tick(now time.Time, topics TopicsView) {
	timeout := g.sessionTimeout()
	removed := false
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		if !now.Before(m.lastSeen.Add(timeout)) {
			g.sgRemove(m)
			removed = true
		}
	}
	if removed {
		g.sgBumpAndAssign(topics)
	}
}

// NextDeadline is when Tick next has work to do; zero when there is none.
func (g *ShareGroup) NextDeadline() time.Time {
	var next time.Time
	timeout := g.sessionTimeout()
	for _, m := range g.members {
		d := m.lastSeen.Add(timeout)
		if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next
}

// OnMetadata reacts to topic changes: if a subscribed topic was created,
// deleted or grew, the group epoch moves on and the target is recomputed.
func (g *ShareGroup) OnMetadata(now time.Time, topics TopicsView) {
	_ = now
	if g.sgUpdateMetaHash(topics) && len(g.members) > 0 {
		g.sgBump()
		g.sgAssign(topics)
	}
}

// Subscribed returns the names of the existing topics any member subscribes
// to, sorted.
func (g *ShareGroup) Subscribed(topics TopicsView) []string {
	out := []string{}
	for _, name := range g.sgSubscribedNames() {
		if _, _, ok := topics.TopicByName(name); ok {
			out = append(out, name)
		}
	}
	return out
}

// Members lists the members, sorted by id, each with the assignment it was
// last given.
func (g *ShareGroup) Members() []ShareMember {
	out := make([]ShareMember, 0, len(g.members))
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		out = append(out, ShareMember{
			ID:         m.id,
			ClientID:   m.clientID,
			ClientHost: m.clientHost,
			Epoch:      m.epoch,
			Assignment: map[[16]byte][]int32(sgCopyAssignment(m.assigned)),
		})
	}
	return out
}

// ---- describe ----

// Describe answers ShareGroupDescribe for this group. With
// includeAuthorizedOps it reports every group operation; a caller that
// enforces ACLs overwrites AuthorizedOperations. Assigned topics that no
// longer exist are left out.
func (g *ShareGroup) Describe(topics TopicsView, includeAuthorizedOps bool) kmsg.ShareGroupDescribeResponseGroup {
	out := kmsg.NewShareGroupDescribeResponseGroup()
	out.GroupID = g.id
	out.GroupState = g.State()
	out.GroupEpoch = g.groupEpoch
	out.AssignmentEpoch = g.assignmentEpoch
	out.Assignor = sgAssignorName
	if includeAuthorizedOps {
		out.AuthorizedOperations = groupDescribeOps
	} else {
		out.AuthorizedOperations = math.MinInt32
	}
	out.Members = []kmsg.ShareGroupDescribeResponseGroupMember{}
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		dm := kmsg.NewShareGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		if m.rackID != nil {
			r := *m.rackID
			dm.RackID = &r
		}
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopicNames = append([]string{}, m.names...)
		dm.Assignment.TopicPartitions = []kmsg.ShareGroupDescribeResponseGroupMemberAssignmentTopicPartition{}
		for _, t := range sortedTopicIDs(m.assigned) {
			name, _, ok := topics.TopicByID(t)
			if !ok {
				continue
			}
			tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
			tp.TopicID = t
			tp.Topic = name
			tp.Partitions = append([]int32(nil), m.assigned[t]...)
			dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, tp)
		}
		out.Members = append(out.Members, dm)
	}
	return out
}

// ---- small helpers ----

func sgWireAssignment(a sgAssignment) *kmsg.ShareGroupHeartbeatResponseAssignment {
	out := &kmsg.ShareGroupHeartbeatResponseAssignment{}
	out.TopicPartitions = []kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{}
	for _, t := range sortedTopicIDs(a) {
		tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
		tp.TopicID = t
		tp.Partitions = append([]int32(nil), a[t]...)
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

func sgCopyAssignment(a sgAssignment) sgAssignment {
	out := make(sgAssignment, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			out[t] = append([]int32(nil), ps...)
		}
	}
	return out
}
