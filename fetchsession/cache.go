// Package fetchsession keeps the incremental fetch sessions of KIP-227: a
// fetcher (consumer or follower broker) names its partitions once, in a
// full fetch, and then sends only what changed (incremental fetches); the
// broker answers an incremental fetch with only the partitions that have
// something new. With many partitions and few of them busy, that is most
// of a fetch's request and response gone.
//
// The package is a pure state machine: the caller passes the clock, the
// request's session fields and partitions, and what it read; it holds no
// protocol types and does no I/O. The rules are Kafka's (FetchSession.scala):
//
//   - epoch 0 (INITIAL) asks for a new session, closing the one named;
//     epoch -1 (FINAL) closes the one named and fetches without a session;
//   - any other epoch must match the session's next epoch, or the fetch
//     fails with INVALID_FETCH_SESSION_EPOCH; an unknown session id fails
//     with FETCH_SESSION_ID_NOT_FOUND; a session created with topic ids
//     (Fetch v13+) cannot be used without them, nor the other way round
//     (FETCH_SESSION_TOPIC_ID_ERROR);
//   - an incremental fetch adds or updates the partitions it names and
//     removes the forgotten ones; the session then reads all of its
//     partitions, and the response leaves out those with no records, no
//     error and an unchanged high watermark and log start offset;
//   - the partitions a response carried move to the end of the session's
//     order, so under a response size limit the others are read first;
//   - the cache holds at most max.incremental.fetch.session.cache.slots
//     sessions; a new one takes a slot from another only by Kafka's
//     eviction rules (see tryEvict).
//
// Sessions belong to the broker, not to a connection: a client may
// reconnect and go on with its session id and epoch.
package fetchsession

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Epochs with a meaning of their own (Kafka's FetchMetadata).
const (
	// InitialEpoch asks for a new session.
	InitialEpoch int32 = 0
	// FinalEpoch fetches without a session (closing the one named).
	FinalEpoch int32 = -1
)

// EvictionAge is how long a session must be unused before any new session
// may take its slot, and how old a session must be before a larger one
// may take it: Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS, a
// constant there too.
const EvictionAge = 120 * time.Second

// MaxPartitions bounds the partitions all sessions hold together. Kafka
// has no such bound, but an incremental fetch may add partitions, named
// or made up, without end; past the bound a new session is not made and a
// session that would grow past it is dropped (FETCH_SESSION_ID_NOT_FOUND),
// which clients answer with full fetches. At about 150 bytes a partition
// it is some 150 MB.
const MaxPartitions = 1_000_000

// Key names a partition in a session: by topic id in a session made with
// topic ids (Fetch v13+), by topic name otherwise.
type Key struct {
	TopicID   [16]byte
	Topic     string
	Partition int32
}

// Params are what a fetcher asks of one partition.
type Params struct {
	FetchOffset        int64
	LogStartOffset     int64
	MaxBytes           int32
	CurrentLeaderEpoch int32
	LastFetchedEpoch   int32
}

// Partition is one partition a fetch reads.
type Partition struct {
	Key
	Params
}

// Request is what a fetch says about its session.
type Request struct {
	SessionID int32
	Epoch     int32
	// TopicIDs is set from Fetch v13 on: partitions are named by topic id.
	TopicIDs bool
	// Privileged is set for a follower broker's fetch: its sessions are
	// worth more than a consumer's (see tryEvict).
	Privileged bool
	// Partitions are the partitions the request names, in its order.
	Partitions []Partition
	// Forgotten are the partitions an incremental fetch drops.
	Forgotten []Key
	// Buf, if large enough, holds an incremental fetch's Partitions, so a
	// caller that reuses it allocates nothing per fetch.
	Buf []Partition
}

// Kind is the kind of fetch a request turned out to be.
type Kind uint8

const (
	// Sessionless: the request's partitions, no session made or used.
	Sessionless Kind = iota
	// Full: the request's partitions; a session is made at the end if
	// the cache has room for it.
	Full
	// Incremental: the session's partitions, updated by the request.
	Incremental
	// Failed: a session error; nothing is read.
	Failed
)

// Result is what reading one partition gave, as far as a session cares.
type Result struct {
	HighWatermark  int64
	LogStartOffset int64
	// Errored is set when the partition was answered with an error.
	Errored bool
	// News is set when the partition carries something a fetcher must
	// see whatever the offsets say: records, a diverging epoch, a
	// preferred read replica.
	News bool
}

// cached is a session's state of one partition.
type cached struct {
	Params
	// highWatermark and logStartOffset are what the last response that
	// carried the partition said (-1 after an error, so the partition is
	// sent again once the error is gone).
	highWatermark  int64
	logStartOffset int64
}

// session is one incremental fetch session.
type session struct {
	id         int32
	privileged bool
	topicIDs   bool
	created    time.Time
	// lastUsed and size (the partition count when last touched) are
	// guarded by Cache.mu: eviction reads them with only that lock.
	lastUsed time.Time
	size     int

	// mu guards epoch, parts and order.
	mu    sync.Mutex
	epoch int32
	parts map[Key]*cached
	// order is the session's partitions in the order they are read.
	order []Key
	// spare is order's previous backing array, reused when reordering.
	spare []Key
}

// Cache is the broker's fetch sessions.
//
// Lock order: Cache.mu, then a session's mu. A session's mu alone is
// enough to finish an incremental fetch.
type Cache struct {
	maxSlots int
	// maxPartitions is MaxPartitions (smaller in tests).
	maxPartitions int

	mu       sync.Mutex
	sessions map[int32]*session
	// partitions is the sum of the sessions' sizes.
	partitions int
	evictions  int64
}

// New returns a cache of at most slots sessions (0 disables sessions:
// every full fetch is answered without one).
func New(slots int) *Cache {
	return &Cache{maxSlots: max(slots, 0), maxPartitions: MaxPartitions, sessions: map[int32]*session{}}
}

// Stats are the cache's gauges, named after Kafka's metrics.
type Stats struct {
	// Sessions is NumIncrementalFetchSessions.
	Sessions int
	// Partitions is NumIncrementalFetchPartitionsCached.
	Partitions int
	// Evictions counts sessions evicted to make room for others
	// (IncrementalFetchSessionEvictionsPerSec, as a total).
	Evictions int64
}

// Stats returns the cache's gauges.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Sessions: len(c.sessions), Partitions: c.partitions, Evictions: c.evictions}
}

// Fetch is one fetch request's view of its session (Kafka's FetchContext):
// Open makes it, the caller reads Partitions, and Finish decides what the
// response carries.
type Fetch struct {
	Kind Kind
	// Err is the session error of a Failed fetch.
	Err int16
	// Partitions are the partitions to read, in order.
	Partitions []Partition

	cache      *Cache
	privileged bool
	topicIDs   bool
	session    *session
	// epoch is the session epoch this fetch moved the session to.
	epoch int32
}

// Open applies a request's session fields at time now.
func (c *Cache) Open(now time.Time, r Request) *Fetch {
	f := &Fetch{cache: c, privileged: r.Privileged, topicIDs: r.TopicIDs}
	if r.Epoch == InitialEpoch || r.Epoch == FinalEpoch {
		if r.SessionID != 0 {
			c.remove(r.SessionID)
		}
		f.Kind, f.Partitions = Full, dedupe(r.Partitions)
		if r.Epoch == FinalEpoch {
			f.Kind = Sessionless
		}
		return f
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[r.SessionID]
	if s == nil {
		f.Kind, f.Err = Failed, kerr.FetchSessionIDNotFound.Code
		return f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.topicIDs != r.TopicIDs:
		f.Kind, f.Err = Failed, kerr.FetchSessionTopicIDError.Code
		return f
	case s.epoch != r.Epoch:
		f.Kind, f.Err = Failed, kerr.InvalidFetchSessionEpoch.Code
		return f
	}
	if added := s.added(r.Partitions); added > 0 && c.partitions+added > c.maxPartitions {
		c.removeLocked(s)
		f.Kind, f.Err = Failed, kerr.FetchSessionIDNotFound.Code
		return f
	}
	s.update(r.Partitions, r.Forgotten)
	if len(s.parts) == 0 {
		// Nothing left to fetch: the session ends, and this fetch reads
		// what it named (nothing but forgotten partitions, in practice).
		c.removeLocked(s)
		f.Kind, f.Partitions = Sessionless, dedupe(r.Partitions)
		return f
	}
	c.touchLocked(s, now)
	s.epoch = nextEpoch(s.epoch)
	f.Kind, f.session, f.epoch = Incremental, s, s.epoch
	f.Partitions = r.Buf[:0]
	if cap(f.Partitions) < len(s.order) {
		f.Partitions = make([]Partition, len(s.order))
	}
	f.Partitions = f.Partitions[:len(s.order)]
	for i, k := range s.order {
		f.Partitions[i] = Partition{Key: k, Params: s.parts[k].Params}
	}
	return f
}

// Finish records what reading f.Partitions gave (results[i] is
// f.Partitions[i]) and sets keep[i] for each partition the response
// carries. It returns the session id and the error code the response
// carries.
func (f *Fetch) Finish(now time.Time, results []Result, keep []bool) (sessionID int32, errCode int16) {
	switch f.Kind {
	case Failed:
		return 0, f.Err
	case Sessionless:
		fill(keep, true)
		return 0, 0
	case Full:
		fill(keep, true)
		return f.cache.create(now, f, results), 0
	}
	s := f.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != f.epoch {
		// Another fetch with this session's epoch came in meanwhile: a
		// duplicate request. Kafka answers the later response so.
		fill(keep, false)
		return s.id, kerr.InvalidFetchSessionEpoch.Code
	}
	// The partitions carried move to the end of the order, in order.
	next := s.spare[:0]
	for i, p := range f.Partitions {
		keep[i] = s.parts[p.Key].respond(results[i])
		if !keep[i] {
			next = append(next, p.Key)
		}
	}
	for i, p := range f.Partitions {
		if keep[i] {
			next = append(next, p.Key)
		}
	}
	s.spare, s.order = s.order, next
	return s.id, 0
}

// respond updates a partition from a read and reports whether the
// response must carry it.
func (cp *cached) respond(r Result) bool {
	must := r.News || r.Errored
	if cp.highWatermark != r.HighWatermark {
		must = true
		cp.highWatermark = r.HighWatermark
	}
	if cp.logStartOffset != r.LogStartOffset {
		must = true
		cp.logStartOffset = r.LogStartOffset
	}
	if r.Errored {
		cp.highWatermark = -1
	}
	return must
}

// added counts the partitions of parts the session does not hold yet.
// Called with s.mu held.
func (s *session) added(parts []Partition) int {
	n := 0
	for _, p := range parts {
		if s.parts[p.Key] == nil {
			n++
		}
	}
	return n
}

// update applies an incremental request's partitions and forgotten
// partitions. Called with s.mu held.
func (s *session) update(parts []Partition, forgotten []Key) {
	for _, p := range parts {
		if cp := s.parts[p.Key]; cp != nil {
			cp.Params = p.Params
			continue
		}
		s.parts[p.Key] = &cached{Params: p.Params, highWatermark: -1, logStartOffset: -1}
		s.order = append(s.order, p.Key)
	}
	removed := false
	for _, k := range forgotten {
		if _, ok := s.parts[k]; ok {
			delete(s.parts, k)
			removed = true
		}
	}
	if removed {
		s.order = slices.DeleteFunc(s.order, func(k Key) bool { return s.parts[k] == nil })
	}
}

// create makes a session of a full fetch's partitions, if the cache has or
// can make room, and returns its id (0 for none).
func (c *Cache) create(now time.Time, f *Fetch, results []Result) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxSlots == 0 || c.partitions+len(f.Partitions) > c.maxPartitions ||
		(len(c.sessions) >= c.maxSlots && !c.tryEvict(now, f.privileged, len(f.Partitions))) {
		return 0
	}
	s := &session{id: c.newID(), privileged: f.privileged, topicIDs: f.topicIDs, created: now,
		epoch: nextEpoch(InitialEpoch), parts: make(map[Key]*cached, len(f.Partitions)),
		order: make([]Key, 0, len(f.Partitions))}
	for i, p := range f.Partitions {
		cp := &cached{Params: p.Params, highWatermark: results[i].HighWatermark, logStartOffset: results[i].LogStartOffset}
		if results[i].Errored {
			cp.highWatermark = -1
		}
		s.parts[p.Key] = cp
		s.order = append(s.order, p.Key)
	}
	c.sessions[s.id] = s
	s.size = -1
	c.touchLocked(s, now)
	return s.id
}

// tryEvict makes room for a new session of size partitions, privileged or
// not, by Kafka's rules. A new session B may take the slot of A when
//
//  1. A has been unused for longer than EvictionAge (the stalest goes
//     first), or else
//  2. A is older than EvictionAge, or A is a consumer's and B a
//     follower's, and A is worth less than B: ordered by (privileged,
//     partition count), a consumer's below a follower's, fewer partitions
//     below more; on a tie A stays.
//
// The candidates of rule 2 are taken in that order (then by id), the
// least valuable first. Called with c.mu held.
func (c *Cache) tryEvict(now time.Time, privileged bool, size int) bool {
	var stalest, cheapest *session
	for _, s := range c.sessions {
		if stalest == nil || s.lastUsed.Before(stalest.lastUsed) || (s.lastUsed.Equal(stalest.lastUsed) && s.id < stalest.id) {
			stalest = s
		}
		old := now.Sub(s.created) > EvictionAge
		if !old && (!privileged || s.privileged) {
			continue
		}
		if cheapest == nil || s.lessValuable(cheapest) {
			cheapest = s
		}
	}
	switch {
	case stalest == nil:
		return false
	case now.Sub(stalest.lastUsed) > EvictionAge:
		c.removeLocked(stalest)
	case cheapest == nil:
		return false
	case privileged == cheapest.privileged && size <= cheapest.size,
		!privileged && cheapest.privileged:
		return false
	default:
		c.removeLocked(cheapest)
	}
	c.evictions++
	return true
}

// lessValuable orders sessions for eviction: consumers' before followers',
// then fewer partitions first, then by id.
func (s *session) lessValuable(o *session) bool {
	if s.privileged != o.privileged {
		return !s.privileged
	}
	if s.size != o.size {
		return s.size < o.size
	}
	return s.id < o.id
}

// touchLocked marks a session used at now and refreshes its size. Called
// with c.mu and s.mu held (or s not yet shared).
func (c *Cache) touchLocked(s *session, now time.Time) {
	s.lastUsed = now
	if s.size >= 0 {
		c.partitions -= s.size
	}
	s.size = len(s.parts)
	c.partitions += s.size
}

func (c *Cache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.removeLocked(s)
	}
}

// removeLocked drops a session from the cache. Called with c.mu held.
func (c *Cache) removeLocked(s *session) {
	delete(c.sessions, s.id)
	c.partitions -= s.size
}

// newID picks an unused positive session id. Called with c.mu held.
func (c *Cache) newID() int32 {
	for {
		id := rand.Int32N(math.MaxInt32-1) + 1
		if c.sessions[id] == nil {
			return id
		}
	}
}

// nextEpoch is the epoch after e: 1 after 0, wrapping to 1 past the
// largest int32.
func nextEpoch(e int32) int32 {
	switch {
	case e < 0:
		return FinalEpoch
	case e == math.MaxInt32:
		return 1
	}
	return e + 1
}

// dedupe keeps one entry per partition, the last one a request names, as
// Kafka keeps a request's partitions in a map.
func dedupe(parts []Partition) []Partition {
	if len(parts) < 2 {
		return parts
	}
	seen := make(map[Key]int, len(parts))
	out := parts[:0:0]
	for _, p := range parts {
		if i, ok := seen[p.Key]; ok {
			out[i] = p
			continue
		}
		seen[p.Key] = len(out)
		out = append(out, p)
	}
	return out
}

func fill(b []bool, v bool) {
	for i := range b {
		b[i] = v
	}
}
