package coordinator

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Join handles a JoinGroup request. The response may be delivered at once
// or later, from inside a later call, when the rebalance completes.
// Members joined this way have no client id or host; see JoinFrom.
func (g *ClassicGroup) Join(now time.Time, req *kmsg.JoinGroupRequest, reply func(*kmsg.JoinGroupResponse)) {
	g.JoinFrom(now, "", "", req, reply)
}

// JoinFrom is Join with the client id (from the request header) and the
// client's host, which name new members (clientID-uuid) and are shown by
// DescribeGroups.
func (g *ClassicGroup) JoinFrom(now time.Time, clientID, clientHost string, req *kmsg.JoinGroupRequest, reply func(*kmsg.JoinGroupResponse)) {
	defer g.flush()
	fail := func(err *kerr.Error, memberID string) {
		g.sendJoin(reply, classicJoinError(req.Version, err, memberID))
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	if session < g.cfg.MinSessionTimeout || session > g.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout, req.MemberID)
		return
	}
	if g.state == classicDead {
		fail(kerr.CoordinatorNotAvailable, req.MemberID)
		return
	}
	if !g.acceptJoiningMember(req.MemberID) {
		if m := g.members[req.MemberID]; m != nil {
			g.removeMemberAndUpdate(now, m)
		}
		delete(g.pending, req.MemberID)
		fail(kerr.GroupMaxSizeReached, "")
		g.maybeCompleteJoinPhase(now)
		return
	}
	j := classicJoin{now: now, clientID: clientID, clientHost: clientHost, req: req, reply: reply,
		session: session, rebalance: rebalance, instance: classicInstance(req.InstanceID)}
	if req.MemberID == "" {
		g.joinNewMember(j)
	} else {
		g.joinExistingMember(j)
	}
	g.maybeCompleteJoinPhase(now)
}

type classicJoin struct {
	now                  time.Time
	clientID, clientHost string
	req                  *kmsg.JoinGroupRequest
	reply                func(*kmsg.JoinGroupResponse)
	session, rebalance   time.Duration
	instance             string
}

// acceptJoiningMember applies group.max.size.
func (g *ClassicGroup) acceptJoiningMember(memberID string) bool {
	m := g.members[memberID]
	switch g.state {
	case classicPreparingRebalance:
		// Count members already waiting: the group may be above the
		// limit (it was lowered), and the last to rejoin are turned away.
		return (m != nil && m.awaitingJoin()) || g.numAwaitingJoin() < g.cfg.MaxSize
	case classicCompletingRebalance, classicStable:
		return m != nil || len(g.members) < g.cfg.MaxSize
	default:
		return true
	}
}

func (g *ClassicGroup) joinNewMember(j classicJoin) {
	if !g.supportsProtocols(j.req.ProtocolType, j.req.Protocols) {
		g.sendJoin(j.reply, classicJoinError(j.req.Version, kerr.InconsistentGroupProtocol, ""))
		return
	}
	// Kafka names a member after its group.instance.id, or its client id.
	prefix := j.clientID
	if j.instance != "" {
		prefix = j.instance
	}
	id := prefix + "-" + g.newUUID()
	if j.instance != "" {
		if old := g.static[j.instance]; old != "" {
			g.replaceStaticMember(j, g.members[old], id)
			return
		}
		g.addMemberAndRebalance(j, id)
		return
	}
	if j.req.Version >= 4 {
		// KIP-394: the member must come back with the id it is given, so
		// that a client retrying a timed-out join does not leave a
		// phantom member behind.
		g.pending[id] = j.now.Add(j.session)
		g.sendJoin(j.reply, classicJoinError(j.req.Version, kerr.MemberIDRequired, id))
		return
	}
	g.addMemberAndRebalance(j, id)
}

func (g *ClassicGroup) joinExistingMember(j classicJoin) {
	id := j.req.MemberID
	if !g.supportsProtocols(j.req.ProtocolType, j.req.Protocols) {
		g.sendJoin(j.reply, classicJoinError(j.req.Version, kerr.InconsistentGroupProtocol, id))
		return
	}
	if _, ok := g.pending[id]; ok && g.members[id] == nil && j.instance == "" {
		g.addMemberAndRebalance(j, id)
		return
	}
	if err := g.validateMember(id, j.req.InstanceID); err != nil {
		g.sendJoin(j.reply, classicJoinError(j.req.Version, err, id))
		return
	}
	m := g.members[id]
	switch g.state {
	case classicPreparingRebalance:
		g.updateMemberAndRebalance(j, m)
	case classicCompletingRebalance:
		if m.sameProtocols(j.req.Protocols) {
			// The member lost its JoinGroup response: repeat it.
			g.renew(j.now, m)
			g.sendJoin(j.reply, g.joinResponse(j.req.Version, m, g.leader))
			return
		}
		g.updateMemberAndRebalance(j, m)
	case classicStable:
		if id == g.leader || !m.sameProtocols(j.req.Protocols) {
			// A leader's join forces a rebalance (it may have seen
			// metadata change that the member metadata does not show).
			g.updateMemberAndRebalance(j, m)
			return
		}
		g.renew(j.now, m)
		g.sendJoin(j.reply, g.joinResponse(j.req.Version, m, g.leader))
	default:
		g.sendJoin(j.reply, classicJoinError(j.req.Version, kerr.UnknownMemberID, id))
	}
}

func (g *ClassicGroup) addMemberAndRebalance(j classicJoin, id string) {
	m := &classicMember{
		id:               id,
		instanceID:       j.instance,
		clientID:         j.clientID,
		clientHost:       j.clientHost,
		sessionTimeout:   j.session,
		rebalanceTimeout: j.rebalance,
		protocolType:     j.req.ProtocolType,
		protocols:        classicProtocols(j.req.Protocols),
		joinReply:        j.reply,
		joinVersion:      j.req.Version,
		isNew:            true,
		deadline:         j.now.Add(classicNewMemberJoinTimeout),
	}
	if g.state == classicPreparingRebalance && g.initialPhase {
		g.newMemberAdded = true
	}
	g.addMember(m)
	g.maybePrepareRebalanceOrCompleteJoin(j.now)
}

// setJoinReply parks a member's JoinGroup; a request it supersedes is
// answered so that no reply is dropped.
func (g *ClassicGroup) setJoinReply(m *classicMember, reply func(*kmsg.JoinGroupResponse), version int16) {
	g.failJoin(m, kerr.RebalanceInProgress, m.id)
	m.joinReply, m.joinVersion = reply, version
}

func (g *ClassicGroup) updateMember(j classicJoin, m *classicMember) {
	m.protocols = classicProtocols(j.req.Protocols)
	m.sessionTimeout = j.session
	m.rebalanceTimeout = j.rebalance
	g.setJoinReply(m, j.reply, j.req.Version)
}

func (g *ClassicGroup) updateMemberAndRebalance(j classicJoin, m *classicMember) {
	g.updateMember(j, m)
	g.maybePrepareRebalanceOrCompleteJoin(j.now)
}

// replaceStaticMember handles a known group.instance.id joining with an
// unknown member id (KIP-345): the instance gets a new member id, and the
// old one is fenced. In a stable group whose selected protocol would not
// change, the member takes over the old member's assignment without a
// rebalance.
func (g *ClassicGroup) replaceStaticMember(j classicJoin, old *classicMember, newID string) {
	prevLeader := g.leader
	g.failJoin(old, kerr.FencedInstanceID, old.id)
	g.failSync(old, kerr.FencedInstanceID)
	m := &classicMember{
		id:               newID,
		instanceID:       old.instanceID,
		clientID:         j.clientID,
		clientHost:       j.clientHost,
		sessionTimeout:   old.sessionTimeout,
		rebalanceTimeout: old.rebalanceTimeout,
		protocolType:     old.protocolType,
		protocols:        old.protocols,
		assignment:       old.assignment,
		inGeneration:     old.inGeneration,
	}
	delete(g.members, old.id)
	g.members[newID] = m
	for i, id := range g.order {
		if id == old.id {
			g.order[i] = newID
		}
	}
	g.static[m.instanceID] = newID
	if g.leader == old.id {
		g.leader = newID
	}
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[newID] = true
	}
	g.updateMember(j, m)
	g.renew(j.now, m)
	g.dirty = true
	switch g.state {
	case classicStable:
		if g.selectProtocol() == g.protocol {
			// Answer with the current generation; the previous leader id
			// keeps a restarted leader from computing a new assignment.
			g.sendJoin(m.joinReply, g.joinResponse(m.joinVersion, m, prevLeader))
			m.joinReply = nil
			return
		}
		g.prepareRebalance(j.now)
	case classicCompletingRebalance:
		// The leader may be assigning to the old member id: start over.
		g.prepareRebalance(j.now)
	default:
		g.maybeCompleteJoinPhase(j.now)
	}
}

// Sync handles a SyncGroup request. Followers in CompletingRebalance wait
// (reply is called later) until the leader sends the assignment.
func (g *ClassicGroup) Sync(now time.Time, req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	defer g.flush()
	fail := func(err *kerr.Error) { g.sendSync(reply, classicSyncError(req.Version, err)) }
	if g.state == classicDead {
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		fail(err)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration)
		return
	}
	if classicInconsistent(req.ProtocolType, g.protocolType) || classicInconsistent(req.Protocol, g.protocol) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case classicPreparingRebalance:
		fail(kerr.RebalanceInProgress)
	case classicCompletingRebalance:
		g.failSync(m, kerr.RebalanceInProgress)
		m.syncReply, m.syncVersion = reply, req.Version
		g.removePendingSync(m.id)
		if m.id != g.leader {
			return
		}
		assignments := map[string][]byte{}
		for _, a := range req.GroupAssignment {
			assignments[a.MemberID] = a.MemberAssignment
		}
		g.each(func(m *classicMember) {
			a := assignments[m.id]
			if a == nil {
				a = []byte{}
			}
			m.assignment = append([]byte(nil), a...)
			if m.syncReply != nil {
				g.sendSync(m.syncReply, g.syncResponse(m.syncVersion, m))
				m.syncReply = nil
				g.renew(now, m)
			}
		})
		g.state = classicStable
		g.dirty = true
	case classicStable:
		g.removePendingSync(m.id)
		g.renew(now, m)
		g.sendSync(reply, g.syncResponse(req.Version, m))
	default:
		fail(kerr.UnknownMemberID)
	}
}

func classicInconsistent(p *string, group string) bool {
	return p != nil && group != "" && *p != group
}

func (g *ClassicGroup) syncResponse(version int16, m *classicMember) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat handles a Heartbeat request.
func (g *ClassicGroup) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	defer g.flush()
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	if g.state == classicDead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.members[req.MemberID]
	switch g.state {
	case classicPreparingRebalance:
		g.renew(now, m)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case classicCompletingRebalance, classicStable:
		// Members heartbeat between their JoinGroup and SyncGroup too.
		g.renew(now, m)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// Leave handles a LeaveGroup request: the single MemberID of v0-2 or the
// batch of v3+, where an entry naming only a group.instance.id removes that
// static member (administrative removal).
func (g *ClassicGroup) Leave(now time.Time, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	defer g.flush()
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	if g.state == classicDead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	removed := false
	for _, l := range leaveGroupMembers(req) {
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID = l.MemberID
		r.InstanceID = l.InstanceID
		switch inst := classicInstance(l.InstanceID); {
		case l.MemberID == "":
			if id, ok := g.static[inst]; inst != "" && ok {
				g.removeMember(g.members[id])
				removed = true
			} else {
				r.ErrorCode = kerr.UnknownMemberID.Code
			}
		case g.members[l.MemberID] == nil && classicHasKey(g.pending, l.MemberID):
			delete(g.pending, l.MemberID)
		default:
			if err := g.validateMember(l.MemberID, l.InstanceID); err != nil {
				r.ErrorCode = err.Code
			} else {
				g.removeMember(g.members[l.MemberID])
				removed = true
			}
		}
		resp.Members = append(resp.Members, r)
	}
	switch g.state {
	case classicStable, classicCompletingRebalance:
		if removed {
			g.maybePrepareRebalanceOrCompleteJoin(now)
		}
	case classicPreparingRebalance:
		g.maybeCompleteJoinPhase(now)
	}
	leaveGroupCollapse(resp)
	return resp
}

// leaveGroupMembers lists the members a LeaveGroup names: before v3 the
// request names one, by member id.
func leaveGroupMembers(req *kmsg.LeaveGroupRequest) []kmsg.LeaveGroupRequestMember {
	if req.Version <= 2 {
		return []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	return req.Members
}

// leaveGroupCollapse turns the per-member answers of a LeaveGroup before v3
// into the one error that version carries.
func leaveGroupCollapse(resp *kmsg.LeaveGroupResponse) {
	if resp.Version <= 2 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
}

func classicHasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// Tick fires every expired timer: session timeouts (and the join timeout
// of new members and of ids handed out by MEMBER_ID_REQUIRED), the end of
// the join phase (rebalance timeout or initial delay), and the deadline
// for members to sync. Timers fire in deadline order.
func (g *ClassicGroup) Tick(now time.Time) {
	defer g.flush()
	// Each firing removes a member or moves the group to another phase;
	// the bound only guards against a zero-length timer re-arming itself.
	for i := 0; i < 2*len(g.members)+len(g.pending)+8; i++ {
		kind, id, at := g.nextTimer()
		if at.IsZero() || at.After(now) {
			return
		}
		switch kind {
		case classicTimerPending:
			delete(g.pending, id)
			g.maybeCompleteJoinPhase(now)
		case classicTimerSession:
			g.removeMemberAndUpdate(now, g.members[id])
		case classicTimerJoin:
			if g.initialPhase {
				g.initialDelayExpired(now)
			} else {
				g.completeJoin(now)
			}
		case classicTimerSync:
			g.syncExpired(now)
		}
	}
}

type classicTimer int8

const (
	classicTimerPending classicTimer = iota
	classicTimerSession
	classicTimerJoin
	classicTimerSync
)

// nextTimer is the earliest armed timer; ties go to pending ids, then
// members (in join order), then the join phase, then the sync deadline.
func (g *ClassicGroup) nextTimer() (classicTimer, string, time.Time) {
	var (
		kind classicTimer
		id   string
		at   time.Time
	)
	consider := func(k classicTimer, i string, t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			kind, id, at = k, i, t
		}
	}
	if g.state == classicDead {
		return kind, id, at
	}
	for _, p := range sortedKeys(g.pending) {
		consider(classicTimerPending, p, g.pending[p])
	}
	for _, mid := range g.order {
		if m := g.members[mid]; !m.satisfied() {
			consider(classicTimerSession, mid, m.deadline)
		}
	}
	if g.state == classicPreparingRebalance {
		consider(classicTimerJoin, "", g.joinDeadline)
	}
	if len(g.pendingSync) > 0 {
		consider(classicTimerSync, "", g.syncDeadline)
	}
	return kind, id, at
}

// NextDeadline is the earliest pending timer; zero if none.
func (g *ClassicGroup) NextDeadline() time.Time {
	_, _, at := g.nextTimer()
	return at
}

// ValidateOffsetCommit checks an OffsetCommit's generation, member and
// instance as Kafka does for classic groups. A commit with generation -1,
// no member id and no instance id (the admin client, or a consumer that
// assigns partitions itself) is accepted only while the group is Empty. A
// commit from the current generation during CompletingRebalance gets
// REBALANCE_IN_PROGRESS: the member has its JoinGroup response but not yet
// its assignment. A transactional commit (TxnOffsetCommit) is checked only
// for the group metadata it names (clients before KIP-447 name none), and
// is accepted during CompletingRebalance, as Kafka does: the group's state
// is not enforced for those, and clients treat REBALANCE_IN_PROGRESS there
// as fatal. Returns nil or a *kerr.Error.
func (g *ClassicGroup) ValidateOffsetCommit(now time.Time, generation int32, memberID string, instanceID *string, transactional bool) error {
	if g.state == classicDead {
		return kerr.CoordinatorNotAvailable
	}
	if generation < 0 && g.state == classicEmpty {
		return nil
	}
	if generation >= 0 || memberID != "" || classicInstance(instanceID) != "" {
		if err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if !transactional && g.state != classicEmpty {
		return kerr.UnknownMemberID
	}
	if g.state == classicCompletingRebalance && !transactional {
		return kerr.RebalanceInProgress
	}
	return nil
}

// ValidateOffsetFetch checks a member-aware OffsetFetch (v9+). Kafka does
// not check the member of a classic group (the member epoch belongs to the
// consumer protocol); it only refuses a Dead group.
func (g *ClassicGroup) ValidateOffsetFetch(memberID string, generation int32) error {
	if g.state == classicDead {
		return kerr.GroupIDNotFound
	}
	return nil
}

// Describe returns the group as DescribeGroups shows it: member metadata
// and assignments only while the group is Stable, as Kafka does.
func (g *ClassicGroup) Describe() kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.AuthorizedOperations = math.MinInt32
	d.Group = g.id
	d.State = g.state.String()
	d.ProtocolType = g.protocolType
	d.Members = []kmsg.DescribeGroupsResponseGroupMember{}
	if g.state == classicDead {
		return d
	}
	stable := g.state == classicStable
	if stable {
		d.Protocol = g.protocol
	}
	g.each(func(m *classicMember) {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = classicInstancePtr(m.instanceID)
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata = []byte{}
		dm.MemberAssignment = []byte{}
		if stable {
			if md := m.metadata(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		d.Members = append(d.Members, dm)
	})
	return d
}

// Subscribed returns the topics the members subscribe to, decoded from
// their consumer-protocol metadata for the selected protocol, sorted. It is
// nil when the group is not a consumer group, has no selected protocol, or
// a member's metadata does not decode (the subscription is then unknown).
func (g *ClassicGroup) Subscribed() []string {
	names, _ := g.subscriptions()
	return names
}

// subscriptions is Subscribed with whether the subscriptions are known.
func (g *ClassicGroup) subscriptions() ([]string, bool) {
	if g.protocolType != "consumer" || g.protocol == "" || len(g.members) == 0 {
		return nil, false
	}
	set := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			set[t] = true
		}
	}
	return sortedKeys(set), true
}

// OffsetDeleteSubscriptions is Kafka's check of an OffsetDelete on a group
// with members: one that does not use the consumer protocol refuses it
// (NON_EMPTY_GROUP); otherwise it returns the topics the members subscribe
// to, or all when those are not known (no protocol chosen yet, metadata
// that does not decode), which protects every topic, as Kafka does.
func (g *ClassicGroup) OffsetDeleteSubscriptions() (names []string, all bool, err *kerr.Error) {
	if g.protocolType != "consumer" {
		return nil, false, kerr.NonEmptyGroup
	}
	names, known := g.subscriptions()
	return names, !known, nil
}

// MarkDead makes the group Dead (DeleteGroups, coordinator unload): parked
// replies are answered with err (NOT_COORDINATOR when err is nil) and
// every timer stops. A Dead group answers COORDINATOR_NOT_AVAILABLE.
func (g *ClassicGroup) MarkDead(err *kerr.Error) {
	defer g.flush()
	if err == nil {
		err = kerr.NotCoordinator
	}
	g.each(func(m *classicMember) {
		g.failJoin(m, err, m.id)
		g.failSync(m, err)
	})
	g.state = classicDead
	g.pending = map[string]time.Time{}
	g.pendingSync = map[string]bool{}
	g.joinDeadline, g.syncDeadline = time.Time{}, time.Time{}
}
