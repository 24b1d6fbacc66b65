package coordinator

import (
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClassicConfig holds the broker settings that bound classic groups (Kafka
// names and defaults).
type ClassicConfig struct {
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms 6000
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms 1800000
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms 3000
	MaxSize               int           // group.max.size 2147483647
}

// DefaultClassicConfig returns Kafka's defaults.
func DefaultClassicConfig() ClassicConfig {
	return ClassicConfig{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		MaxSize:               2147483647,
	}
}

// classicNewMemberJoinTimeout bounds how long a member that has never
// completed a join may wait in a rebalance (Kafka's fixed 5 minutes for new
// members): a client whose JoinGroup timed out retries with a new request,
// and the abandoned member must not hold the rebalance open forever.
const classicNewMemberJoinTimeout = 5 * time.Minute

type classicState int8

const (
	classicEmpty classicState = iota
	classicPreparingRebalance
	classicCompletingRebalance
	classicStable
	classicDead
)

func (s classicState) String() string {
	switch s {
	case classicEmpty:
		return "Empty"
	case classicPreparingRebalance:
		return "PreparingRebalance"
	case classicCompletingRebalance:
		return "CompletingRebalance"
	case classicStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// classicProtocol is one (name, metadata) pair a member supports, in the
// member's order of preference.
type classicProtocol struct {
	name     string
	metadata []byte
}

type classicMember struct {
	id         string
	instanceID string // "" for a dynamic member
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []classicProtocol
	assignment       []byte

	// joinReply is set while the member waits in a rebalance for its
	// JoinGroup response; syncReply while it waits for the leader's
	// assignment. The version is the request's, for the response.
	joinReply   func(*kmsg.JoinGroupResponse)
	joinVersion int16
	syncReply   func(*kmsg.SyncGroupResponse)
	syncVersion int16

	// isNew marks a member that has not yet completed a join: its timer
	// is the new-member join timeout and waiting does not protect it.
	isNew bool
	// inGeneration marks a member that took part in the current
	// generation (the durable membership Snapshot encodes).
	inGeneration bool
	// deadline is when the member's session expires unless it is
	// waiting for a join or sync response.
	deadline time.Time
}

func (m *classicMember) awaitingJoin() bool { return m.joinReply != nil }
func (m *classicMember) awaitingSync() bool { return m.syncReply != nil }

// satisfied reports whether the member's session is kept alive without
// heartbeats: a member parked in JoinGroup or SyncGroup cannot heartbeat.
func (m *classicMember) satisfied() bool {
	return !m.isNew && (m.awaitingJoin() || m.awaitingSync())
}

func (m *classicMember) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.name == protocol {
			return p.metadata
		}
	}
	return nil
}

// vote is the member's most preferred protocol among the candidates.
func (m *classicMember) vote(candidates map[string]bool) string {
	for _, p := range m.protocols {
		if candidates[p.name] {
			return p.name
		}
	}
	return ""
}

// sameProtocols reports whether the request carries exactly the member's
// current protocols (names, order and metadata).
func (m *classicMember) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || string(p.Metadata) != string(m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func classicProtocols(ps []kmsg.JoinGroupRequestProtocol) []classicProtocol {
	out := make([]classicProtocol, 0, len(ps))
	for _, p := range ps {
		out = append(out, classicProtocol{name: p.Name, metadata: append([]byte(nil), p.Metadata...)})
	}
	return out
}

// ClassicGroup is one classic-protocol group (JoinGroup/SyncGroup/Heartbeat/
// LeaveGroup). It is a pure, single-threaded state machine: the caller
// serializes calls and passes the current time; it never reads a clock,
// starts goroutines or does I/O. Responses that Kafka delays (JoinGroup
// until the rebalance completes, SyncGroup until the leader sends the
// assignment) are delivered later through the reply callbacks, from inside
// a later call (Join/Sync/Leave/Heartbeat/Tick/MarkDead). Every parked
// reply is answered exactly once: with the response, or with an error when
// its member is removed, fenced or superseded, or the group dies.
type ClassicGroup struct {
	id  string
	cfg ClassicConfig

	state        classicState
	protocolType string
	protocol     string // selected protocol of the current generation
	generation   int32
	leader       string

	members map[string]*classicMember
	order   []string          // member ids in join order: deterministic iteration
	static  map[string]string // group.instance.id -> member id
	// pending holds member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
	// and the time they expire unless the member joins with them.
	pending map[string]time.Time
	// pendingSync holds members of the current generation that have not
	// yet sent SyncGroup; syncDeadline is when they are removed.
	pendingSync  map[string]bool
	syncDeadline time.Time

	// joinDeadline ends the PreparingRebalance phase: the rebalance
	// timeout, or during an initial rebalance the (extendable) delay.
	joinDeadline     time.Time
	initialPhase     bool
	initialDelay     time.Duration
	initialRemaining time.Duration
	newMemberAdded   bool

	dirty bool

	// replies queued during a call, delivered when the call returns so
	// that callbacks always see a consistent group.
	out []func()

	newUUID func() string
}

// NewClassicGroup returns an empty group.
func NewClassicGroup(id string, cfg ClassicConfig) *ClassicGroup {
	return &ClassicGroup{
		id:          id,
		cfg:         cfg,
		members:     map[string]*classicMember{},
		static:      map[string]string{},
		pending:     map[string]time.Time{},
		pendingSync: map[string]bool{},
		newUUID:     uuid.NewString,
	}
}

// ID returns the group id.
func (g *ClassicGroup) ID() string { return g.id }

// State returns Kafka's name of the group state.
func (g *ClassicGroup) State() string { return g.state.String() }

// IsEmpty reports whether the group has no members.
func (g *ClassicGroup) IsEmpty() bool { return len(g.members) == 0 }

// ProtocolType returns the protocol type of the group ("consumer" for
// consumers), kept while the group is Empty.
func (g *ClassicGroup) ProtocolType() string { return g.protocolType }

// TakeDirty reports whether durable state changed since the last call and
// clears the flag.
func (g *ClassicGroup) TakeDirty() bool {
	d := g.dirty
	g.dirty = false
	return d
}

// flush delivers the replies queued during a call.
func (g *ClassicGroup) flush() {
	for len(g.out) > 0 {
		out := g.out
		g.out = nil
		for _, f := range out {
			f()
		}
	}
}

func (g *ClassicGroup) each(fn func(m *classicMember)) {
	for _, id := range append([]string(nil), g.order...) {
		if m := g.members[id]; m != nil {
			fn(m)
		}
	}
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *ClassicGroup) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *ClassicGroup) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.awaitingJoin() {
			return false
		}
	}
	return true
}

func (g *ClassicGroup) numAwaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.awaitingJoin() {
			n++
		}
	}
	return n
}

// supportsProtocols reports whether a joining member can be part of the
// group: the protocol type matches and at least one of its protocols is
// supported by every current member.
func (g *ClassicGroup) supportsProtocols(ptype string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return ptype != "" && len(ps) > 0
	}
	if ptype != g.protocolType {
		return false
	}
	counts := g.protocolCounts()
	for _, p := range ps {
		if counts[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// protocolCounts counts, per protocol name, the members supporting it.
func (g *ClassicGroup) protocolCounts() map[string]int {
	counts := map[string]int{}
	for _, m := range g.members {
		seen := map[string]bool{}
		for _, p := range m.protocols {
			if !seen[p.name] {
				seen[p.name] = true
				counts[p.name]++
			}
		}
	}
	return counts
}

// selectProtocol picks the protocol the group uses: among the protocols
// every member supports, each member votes for its most preferred one and
// the most votes win (ties go to the name first in byte order, so the
// choice is deterministic).
func (g *ClassicGroup) selectProtocol() string {
	candidates := map[string]bool{}
	for name, n := range g.protocolCounts() {
		if n == len(g.members) {
			candidates[name] = true
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		if v := m.vote(candidates); v != "" {
			votes[v]++
		}
	}
	best, bestVotes := "", 0
	for name, n := range votes {
		if n > bestVotes || (n == bestVotes && name < best) {
			best, bestVotes = name, n
		}
	}
	return best
}

// validateMember checks a request's member id and instance id against the
// membership, as Kafka does for every request of an existing member.
func (g *ClassicGroup) validateMember(memberID string, instanceID *string) *kerr.Error {
	if inst := classicInstance(instanceID); inst != "" {
		cur, ok := g.static[inst]
		if !ok {
			return kerr.UnknownMemberID
		}
		if cur != memberID {
			return kerr.FencedInstanceID
		}
		return nil
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID
	}
	return nil
}

func classicInstance(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func classicInstancePtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (g *ClassicGroup) renew(now time.Time, m *classicMember) {
	m.deadline = now.Add(m.sessionTimeout)
}

// ---- replies ----

func (g *ClassicGroup) sendJoin(reply func(*kmsg.JoinGroupResponse), resp *kmsg.JoinGroupResponse) {
	g.out = append(g.out, func() { reply(resp) })
}

func (g *ClassicGroup) sendSync(reply func(*kmsg.SyncGroupResponse), resp *kmsg.SyncGroupResponse) {
	g.out = append(g.out, func() { reply(resp) })
}

func classicJoinError(version int16, err *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.ErrorCode = err.Code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

func classicSyncError(version int16, err *kerr.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ErrorCode = err.Code
	resp.MemberAssignment = []byte{}
	return resp
}

// failJoin answers a member's parked JoinGroup with an error.
func (g *ClassicGroup) failJoin(m *classicMember, err *kerr.Error, memberID string) {
	if m.joinReply == nil {
		return
	}
	g.sendJoin(m.joinReply, classicJoinError(m.joinVersion, err, memberID))
	m.joinReply = nil
}

// failSync answers a member's parked SyncGroup with an error.
func (g *ClassicGroup) failSync(m *classicMember, err *kerr.Error) {
	if m.syncReply == nil {
		return
	}
	g.sendSync(m.syncReply, classicSyncError(m.syncVersion, err))
	m.syncReply = nil
}

// joinResponse is the successful JoinGroup response of the current
// generation for m; the leader gets every member's metadata.
func (g *ClassicGroup) joinResponse(version int16, m *classicMember, leader string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = leader
	resp.MemberID = m.id
	resp.Members = []kmsg.JoinGroupResponseMember{}
	if m.id == leader {
		resp.Members = g.joinMembers()
	}
	return resp
}

func (g *ClassicGroup) joinMembers() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	g.each(func(m *classicMember) {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = classicInstancePtr(m.instanceID)
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	})
	return out
}

// ---- membership changes ----

func (g *ClassicGroup) addMember(m *classicMember) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	delete(g.pending, m.id)
}

// removeMember drops a member, answering its parked requests with
// UNKNOWN_MEMBER_ID so the client rejoins if it is still alive.
func (g *ClassicGroup) removeMember(m *classicMember) {
	g.failJoin(m, kerr.UnknownMemberID, "")
	g.failSync(m, kerr.UnknownMemberID)
	delete(g.members, m.id)
	for i, id := range g.order {
		if id == m.id {
			g.order = append(g.order[:i], g.order[i+1:]...)
			break
		}
	}
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	g.removePendingSync(m.id)
	if m.inGeneration {
		g.dirty = true
	}
}

// removeMemberAndUpdate removes a member and moves the group on: a stable
// or completing group rebalances, a preparing one may now be complete.
func (g *ClassicGroup) removeMemberAndUpdate(now time.Time, m *classicMember) {
	g.removeMember(m)
	switch g.state {
	case classicStable, classicCompletingRebalance:
		g.maybePrepareRebalanceOrCompleteJoin(now)
	case classicPreparingRebalance:
		g.maybeCompleteJoinPhase(now)
	}
}

func (g *ClassicGroup) removePendingSync(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncDeadline = time.Time{}
	}
}

// ---- rebalance ----

func (g *ClassicGroup) maybePrepareRebalanceOrCompleteJoin(now time.Time) {
	switch g.state {
	case classicStable, classicCompletingRebalance, classicEmpty:
		g.prepareRebalance(now)
	default:
		g.maybeCompleteJoinPhase(now)
	}
}

// prepareRebalance starts a rebalance: members must rejoin before the
// join phase ends. A group starting from Empty waits the initial
// rebalance delay so that members starting together land in one
// generation.
func (g *ClassicGroup) prepareRebalance(now time.Time) {
	if g.state == classicCompletingRebalance {
		// Members waiting for an assignment must rejoin instead.
		g.each(func(m *classicMember) {
			m.assignment = nil
			g.failSync(m, kerr.RebalanceInProgress)
		})
	}
	g.pendingSync = map[string]bool{}
	g.syncDeadline = time.Time{}
	initial := g.state == classicEmpty
	g.state = classicPreparingRebalance
	if initial {
		g.initialPhase = true
		g.newMemberAdded = false
		g.initialDelay = g.cfg.InitialRebalanceDelay
		g.initialRemaining = max(g.rebalanceTimeout()-g.cfg.InitialRebalanceDelay, 0)
		g.joinDeadline = now.Add(g.initialDelay)
		return
	}
	g.initialPhase = false
	if g.allJoined() {
		g.completeJoin(now)
		return
	}
	g.joinDeadline = now.Add(g.rebalanceTimeout())
}

// maybeCompleteJoinPhase ends the join phase once every member (and every
// member id handed out by MEMBER_ID_REQUIRED) has joined, except during an
// initial rebalance, which always waits out its delay.
func (g *ClassicGroup) maybeCompleteJoinPhase(now time.Time) {
	if g.state == classicPreparingRebalance && !g.initialPhase && g.allJoined() {
		g.completeJoin(now)
	}
}

// initialDelayExpired fires the initial rebalance delay: a member that
// joined meanwhile extends it (up to the rebalance timeout in total).
func (g *ClassicGroup) initialDelayExpired(now time.Time) {
	if g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		delay := min(g.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-g.initialDelay, 0)
		g.initialDelay = delay
		g.joinDeadline = now.Add(delay)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed (static ones stay until their session times out), and the
// next generation starts.
func (g *ClassicGroup) completeJoin(now time.Time) {
	g.joinDeadline = time.Time{}
	g.initialPhase = false
	g.each(func(m *classicMember) {
		if !m.awaitingJoin() && m.instanceID == "" {
			g.removeMember(m)
		}
	})
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Nobody rejoined: wait another rebalance timeout, while session
		// timeouts remove the silent static members.
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	g.generation++
	g.dirty = true
	g.pendingSync = map[string]bool{}
	g.syncDeadline = time.Time{}
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.state = classicEmpty
		return
	}
	g.protocol = g.selectProtocol()
	g.state = classicCompletingRebalance
	g.each(func(m *classicMember) {
		if m.joinReply != nil {
			g.sendJoin(m.joinReply, g.joinResponse(m.joinVersion, m, g.leader))
			m.joinReply = nil
		}
		g.renew(now, m)
		m.isNew = false
		m.inGeneration = true
		g.pendingSync[m.id] = true
	})
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, else picks the first
// member that did; false if no member rejoined.
func (g *ClassicGroup) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin() {
		return true
	}
	for _, id := range g.order {
		if g.members[id].awaitingJoin() {
			g.leader = id
			return true
		}
	}
	return false
}

// syncExpired removes the members of the current generation that never
// sent SyncGroup and rebalances without them.
func (g *ClassicGroup) syncExpired(now time.Time) {
	g.syncDeadline = time.Time{}
	if len(g.pendingSync) == 0 {
		return
	}
	g.each(func(m *classicMember) {
		if g.pendingSync[m.id] {
			g.removeMember(m)
		}
	})
	g.pendingSync = map[string]bool{}
	g.prepareRebalance(now)
}
