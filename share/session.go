package share

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
)

// SessionKey identifies a share session: (group, member) on this broker.
type SessionKey struct{ Group, Member string }

// TopicPart is a partition of a session, by topic id.
type TopicPart struct {
	ID        [16]byte
	Partition int32
}

// Session is a member's share session on this broker (KIP-932): the
// partitions it fetches from and the epoch its next request must carry. It
// lives as long as the connection (its owner) that opened it. Its fields are
// guarded by Manager.mu.
type Session struct {
	key   SessionKey
	epoch int32
	owner any
	parts map[TopicPart]bool
	// heldPolls counts the member's consecutive long polls cut short
	// because it held records of a key-ordered share partition and
	// acknowledged none in between (see longPollWait). Atomic rather than
	// under Manager.mu: only the session's own requests touch it.
	heldPolls atomic.Int32
}

// sessions are the share sessions of one broker, keyed by member, and the
// share-session rules (reference A.7). Not safe for concurrent use: the
// Manager calls it under its mu.
type sessions struct {
	m map[SessionKey]*Session
	// fetching counts, per share partition, the sessions whose partitions
	// include it: the members asking for its records, among which
	// key-ordered acquisition shares the keys (queue.SharePartition.StartFetch).
	fetching map[coordinator.ShareKey]int
}

// count adds delta to the fetching count of each partition of sess.
func (s *sessions) count(sess *Session, delta int) {
	if s.fetching == nil {
		s.fetching = map[coordinator.ShareKey]int{}
	}
	for tp := range sess.parts {
		k := coordinator.ShareKey{Group: sess.key.Group, TopicID: tp.ID, Partition: tp.Partition}
		if s.fetching[k] += delta; s.fetching[k] <= 0 {
			delete(s.fetching, k)
		}
	}
}

// drop removes key's session from the table.
func (s *sessions) drop(key SessionKey) {
	if sess := s.m[key]; sess != nil {
		s.count(sess, -1)
		delete(s.m, key)
	}
}

// open applies the share session rules to a request of key carrying epoch,
// from owner (its connection); fetch tells ShareFetch (which may open a
// session) from ShareAcknowledge (which may not). It returns the session the
// request runs in and whether the request closes it (epoch -1; the session
// is gone from the table then). limit is group.share.max.share.sessions.
//
//   - epoch 0 opens a session (ShareFetch only), replacing the member's old
//     one; a new member is refused past the limit (SHARE_SESSION_LIMIT_REACHED).
//   - any other epoch needs a session (SHARE_SESSION_NOT_FOUND);
//   - -1 closes it;
//   - else the epoch must be the session's (INVALID_SHARE_SESSION_EPOCH).
func (s *sessions) open(key SessionKey, epoch int32, fetch bool, owner any, limit int) (*Session, bool, *kerr.Error) {
	sess := s.m[key]
	switch {
	case epoch == 0 && !fetch:
		return nil, false, kerr.InvalidShareSessionEpoch
	case epoch == 0:
		if sess == nil && len(s.m) >= limit {
			return nil, false, kerr.ShareSessionLimitReached
		}
		// A fresh session replaces any old one of the member. Its records
		// stay acquired: clients reopen sessions after transient errors
		// while still processing what they hold.
		s.drop(key)
		sess = &Session{key: key, epoch: 0, owner: owner, parts: map[TopicPart]bool{}}
		s.m[key] = sess
		return sess, false, nil
	case sess == nil:
		return nil, false, kerr.ShareSessionNotFound
	case epoch == -1:
		s.drop(key)
		return sess, true, nil
	case epoch != sess.epoch:
		return nil, false, kerr.InvalidShareSessionEpoch
	}
	return sess, false, nil
}

// nextSessionEpoch is the share session epoch after n (Int32Max wraps to 1).
func nextSessionEpoch(n int32) int32 {
	if n == 1<<31-1 {
		return 1
	}
	return n + 1
}

// OpenSession applies the share session rules (see sessions.open) to a
// ShareFetch (fetch) or ShareAcknowledge of group's member carrying epoch,
// from owner, the connection it came on. closing reports epoch -1: the
// caller releases what the member holds with ReleaseSession once the
// request's acknowledgements are applied.
func (m *Manager) OpenSession(group, member string, epoch int32, fetch bool, owner any) (sess *Session, closing bool, kerrv *kerr.Error) {
	limit := int(m.d.Config.Int("group.share.max.share.sessions"))
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions.open(SessionKey{group, member}, epoch, fetch, owner, limit)
}

// EditSession changes the partitions of a session: edit runs under the
// manager's lock with the session's partition set.
func (m *Manager) EditSession(sess *Session, edit func(parts map[TopicPart]bool)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions.m[sess.key] != sess {
		// Replaced or closed meanwhile: only its own request uses it.
		edit(sess.parts)
		return
	}
	m.sessions.count(sess, -1)
	edit(sess.parts)
	m.sessions.count(sess, 1)
}

// EndRequest moves a session to the epoch after the one its request
// carried, once the request was applied.
func (m *Manager) EndRequest(sess *Session, epoch int32) {
	m.mu.Lock()
	sess.epoch = nextSessionEpoch(epoch)
	m.mu.Unlock()
}

// ReleaseSession releases what a closed session's member holds on its
// partitions (session close, connection drop) and waits until the new
// states are persisted.
func (m *Manager) ReleaseSession(group, member string, sess *Session) {
	now := m.d.Now()
	m.mu.Lock()
	parts := make([]*Part, 0, len(sess.parts))
	for tp := range sess.parts {
		if sp := m.parts[coordinator.ShareKey{Group: group, TopicID: tp.ID, Partition: tp.Partition}]; sp != nil {
			parts = append(parts, sp)
		}
	}
	m.mu.Unlock()
	var waits []<-chan error
	for _, sp := range parts {
		sp.mu.Lock()
		sp.q.ReleaseMember(now, member)
		done := m.applyLocked(sp, true)
		sp.mu.Unlock()
		if done != nil {
			waits = append(waits, done)
		}
	}
	for _, w := range waits {
		<-w
	}
}

// OnConnClose drops the share sessions opened on a closed connection and
// releases what their members hold.
func (m *Manager) OnConnClose(owner any) {
	type gone struct {
		key  SessionKey
		sess *Session
	}
	var closed []gone
	m.mu.Lock()
	for k, sess := range m.sessions.m {
		if sess.owner == owner {
			closed = append(closed, gone{k, sess})
			m.sessions.drop(k)
		}
	}
	m.mu.Unlock()
	for _, g := range closed {
		m.ReleaseSession(g.key.Group, g.key.Member, g.sess)
	}
}
