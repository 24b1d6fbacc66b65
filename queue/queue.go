// Package queue is the share-partition state machine of share groups
// (KIP-932): which records of one (share group, topic-partition) are in
// flight, in which state, held by which member and until when.
//
// A SharePartition is a pure, single-threaded state machine in the style of
// etcd raft: the caller serializes calls and passes the current time; the
// package reads no clock, starts no goroutine and does no I/O. After each
// call the runtime takes the outputs from Ready: the state to persist through
// the share coordinator, the next deadline for its one deadline heap, and the
// records to dead-letter. It reads the log itself.
//
// The in-flight records [SPSO, SPEO] are always covered, without holes, by
// entries of a btree keyed by first offset. An entry is a run of records
// sharing state, delivery count, owner and deadline; entries are split where
// records diverge and merged again when neighbours become equal.
package queue

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/btree"
	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a record's delivery state; the values are the DeliveryState ids the
// share coordinator persists.
type State int8

const (
	Available    State = 0
	Acquired     State = 1
	Acknowledged State = 2
	Archived     State = 4
	// DeadLettering is a record given up on (rejected, or at the delivery
	// limit) whose dead letter is not written yet: delivered to no one
	// again, but not past SPSO until its dead letter is durable and it is
	// archived (see NextDeadLetters). Not a Kafka state: it exists only
	// when the group has a dead-letter topic, and only shoal's share
	// coordinator stores it, as one of the four persisted states
	// persistedDeadLettering+flags.
	DeadLettering State = 8
)

// The persisted DeadLettering states: 8 plus deadLetterLimitBit when the
// record reached the delivery limit (else it was rejected), plus
// deadLetterWritingBit when it is part of the dead-letter write in
// progress.
const (
	persistedDeadLettering = 8
	deadLetterLimitBit     = 1
	deadLetterWritingBit   = 2
)

// isDeadLettering reports whether a persisted state is one of DeadLettering's.
func isDeadLettering(s State) bool {
	return s >= persistedDeadLettering && s <= persistedDeadLettering|deadLetterLimitBit|deadLetterWritingBit
}

func (s State) String() string {
	switch s {
	case Available:
		return "available"
	case Acquired:
		return "acquired"
	case Acknowledged:
		return "acknowledged"
	case Archived:
		return "archived"
	case DeadLettering:
		return "dead-lettering"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

func (s State) terminal() bool { return s == Acknowledged || s == Archived }

// settled reports whether a record will never be delivered again: terminal,
// or waiting only for its dead letter. A settled record no longer holds back
// later records of its key.
func (s State) settled() bool { return s.terminal() || s == DeadLettering }

// Config holds the share-group settings the state machine applies.
type Config struct {
	// LockDuration is share.record.lock.duration.ms (default 30s).
	LockDuration time.Duration
	// DeliveryLimit is the delivery count at which a record whose attempt
	// ends (release, lock expiry) is archived instead of made available
	// (share.delivery.count.limit, default 5).
	DeliveryLimit int
	// MaxInFlight bounds SPEO-SPSO+1 when new records are brought in
	// (group.share.partition.max.record.locks, default 2000).
	MaxInFlight int
	// ReleaseBackoff keeps a RELEASEd record unavailable this long before
	// it can be acquired again (0: immediately). Lock expiry and
	// ReleaseMember do not apply it.
	ReleaseBackoff time.Duration
	// Ordering is share.delivery.ordering: with OrderKey a record is held
	// back while an earlier record with its key is in flight.
	Ordering Ordering
	// DeadLetter is set when the group has a dead-letter topic: records
	// rejected or at the delivery limit become DeadLettering, not Archived,
	// until the runtime reports their dead letter written.
	DeadLetter bool
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{LockDuration: 30 * time.Second, DeliveryLimit: 5, MaxInFlight: 2000}
}

func (c Config) sanitized() Config {
	d := DefaultConfig()
	if c.LockDuration <= 0 {
		c.LockDuration = d.LockDuration
	}
	if c.DeliveryLimit <= 0 {
		c.DeliveryLimit = d.DeliveryLimit
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.ReleaseBackoff < 0 {
		c.ReleaseBackoff = 0
	}
	return c
}

// Span is one stored record batch as read from the log: its first and last
// offset. Offsets between consecutive spans have no record (compaction).
// Keys holds the key hash of each offset First+i; the runtime fills it only
// when ordering by key (missing entries count as null keys).
//
// Skip marks a span whose records are never delivered: a control batch
// (transaction markers), or, when the group reads committed records only,
// a batch of an aborted transaction. Acquire archives them like a
// compaction gap, without a dead-letter report: they were never records a
// consumer could process.
type Span struct {
	First, Last int64
	Keys        []KeyHash
	Skip        bool
}

// AcquiredRange is a run of offsets handed to a member, with the delivery
// count after this acquisition.
type AcquiredRange struct {
	First, Last   int64
	DeliveryCount int16
}

// AckType is an acknowledgement type of ShareFetch/ShareAcknowledge.
type AckType int8

const (
	AckGap     AckType = 0
	AckAccept  AckType = 1
	AckRelease AckType = 2
	AckReject  AckType = 3
	AckRenew   AckType = 4
)

func (t AckType) String() string {
	switch t {
	case AckGap:
		return "gap"
	case AckAccept:
		return "accept"
	case AckRelease:
		return "release"
	case AckReject:
		return "reject"
	case AckRenew:
		return "renew"
	}
	return "ack(" + strconv.Itoa(int(t)) + ")"
}

// AckBatch is one acknowledgement batch: one type for the whole range or one
// per offset.
type AckBatch struct {
	First, Last int64
	Types       []AckType
}

// Reasons reported in ArchivedRange.
const (
	ReasonRejected      = "rejected"
	ReasonDeliveryLimit = "delivery limit"
)

// ArchivedRange reports records that just became ARCHIVED because they were
// rejected or reached the delivery limit, so the runtime can dead-letter
// them. GAP acks, compaction gaps and log-start truncation are not reported.
type ArchivedRange struct {
	First, Last   int64
	DeliveryCount int16
	Reason        string
}

// PersistedState is what the share coordinator stores: SPSO (-1: never
// initialized), the state epoch and the in-flight records that are not
// AVAILABLE or were delivered before. ACQUIRED is stored as AVAILABLE with
// its delivery count (locks are not durable).
type PersistedState struct {
	StartOffset int64
	StateEpoch  int32
	Batches     []StateBatch
	// Producer is the idempotent producer the share partition writes its
	// dead letters with.
	Producer DeadLetterProducer
}

// DeadLetterProducer is the idempotent producer id a share partition owns
// for its dead letters, persisted with its state so that a new leader
// after a crash or failover resends the write in progress with the same
// id, epoch and sequence, and the dead-letter partition's leader answers it
// as a duplicate if the first attempt landed. ID is -1 until one is
// allocated.
type DeadLetterProducer struct {
	ID    int64
	Epoch int16
	// Sequence is the sequence of the next dead letter: that of the first
	// record of the write in progress, if there is one.
	Sequence int32
}

// DeadLetterWrite is one write of dead letters: the records, in offset
// order, and the producer id, epoch and sequence of the first record. The
// runtime writes them as one batch with those producer fields.
type DeadLetterWrite struct {
	Records  []ArchivedRange
	Producer DeadLetterProducer
}

// Len is the number of records in the write.
func (w DeadLetterWrite) Len() int64 {
	var n int64
	for _, r := range w.Records {
		n += r.Last - r.First + 1
	}
	return n
}

// DeliveryComplete counts the records at or past the start offset whose
// delivery is complete (acknowledged or archived), capped at MaxInt32 as
// ReadShareGroupStateSummary reports it.
func (st PersistedState) DeliveryComplete() int32 {
	var n int64
	for _, b := range st.Batches {
		if b.State != Acknowledged && b.State != Archived {
			continue
		}
		if first := max(b.First, st.StartOffset); b.Last >= first {
			n += b.Last - first + 1
		}
	}
	return int32(min(n, math.MaxInt32))
}

// StateBatch is a persisted run of records with one state and count.
type StateBatch struct {
	First, Last   int64
	State         State
	DeliveryCount int16
}

// Counts are the in-flight records by state.
type Counts struct {
	Available, Acquired, Acknowledged, Archived int64
	// DeadLettering counts the records waiting for their dead letter.
	DeadLettering int64
	// OverLimit counts the archived records that were archived because
	// they reached the delivery limit.
	OverLimit int64
}

// entry is a run [first, last] of records that share everything else.
type entry struct {
	first, last int64
	state       State
	count       int16
	overLimit   bool   // archived (or dead-lettering) because of the delivery limit
	writing     bool   // DeadLettering and part of the dead-letter write in progress
	owner       string // holder while Acquired
	// deadline is the lock deadline while Acquired, or the end of the
	// release backoff while Available, in Unix nanoseconds; 0 if none.
	deadline int64
}

func (e *entry) size() int64 { return e.last - e.first + 1 }

func (e *entry) sameAs(o *entry) bool {
	return e.state == o.state && e.count == o.count && e.overLimit == o.overLimit &&
		e.writing == o.writing && e.owner == o.owner && e.deadline == o.deadline
}

// acquirable reports whether e may be handed out at now.
func (e *entry) acquirable(now int64) bool {
	return e.state == Available && (e.deadline == 0 || e.deadline <= now)
}

type deadlineKey struct{ at, first int64 }

// SharePartition is the delivery state of one share-partition.
type SharePartition struct {
	cfg        Config
	start, end int64 // SPSO, SPEO; end = start-1 when nothing is in flight
	logStart   int64 // highest log start offset seen
	epoch      int32
	producer   DeadLetterProducer
	dirty      bool
	// archived and available accumulate what Ready reports until it is
	// called: records to dead-letter, and whether Tick made records
	// acquirable.
	archived  archivedList
	available bool

	entries   *btree.BTreeG[*entry]
	deadlines *btree.BTreeG[deadlineKey]
	counts    Counts
	// held counts the ACQUIRED records of each member (owners with none
	// are deleted), so that a member's holdings are known without a walk.
	held map[string]int64
	keys keyOrder // key mode only
	// members is how many members ask for the records, and fetchKeyed
	// how many records with a key the current fetch took (StartFetch).
	members    int
	fetchKeyed int64
	// changes counts the changes of entries (add, remove, modify), for
	// the memo of nextFetchByKey.
	changes uint64
	memo    readyMemo

	// persistedLen is how many batches the last Persisted returned; the
	// next is made room for as many at once. Why: ordering by key the
	// in-flight window is a patchwork of records delivered, acknowledged
	// and held back, hundreds of batches rewritten on every
	// acknowledgement, and growing the slice to them one append at a time
	// was most of Persisted's cost.
	persistedLen int

	pivot   entry
	scratch []*entry // isolate's result
	cands   []entry  // Acquire's candidates
}

const btreeDegree = 16

// New returns a share-partition whose SPSO is startOffset, nothing in flight.
func New(cfg Config, startOffset int64) *SharePartition {
	if startOffset < 0 {
		startOffset = 0
	}
	return &SharePartition{
		cfg:      cfg.sanitized(),
		start:    startOffset,
		end:      startOffset - 1,
		logStart: -1,
		producer: DeadLetterProducer{ID: -1},
		held:     map[string]int64{},
		keys:     keyOrder{known: startOffset - 1},
		entries: btree.NewG(btreeDegree, func(a, b *entry) bool {
			return a.first < b.first
		}),
		deadlines: btree.NewG(btreeDegree, func(a, b deadlineKey) bool {
			return a.at < b.at || a.at == b.at && a.first < b.first
		}),
	}
}

// Restore rebuilds a share-partition from its persisted state. Every record
// comes back AVAILABLE (with its count) or terminal; records whose count
// already reached the delivery limit are archived (they could only have been
// acquired when the state was written, and their attempt ended with the
// leader); Ready then reports the state to persist, so it is written back. Offsets
// between persisted batches are AVAILABLE and never
// delivered. A StartOffset of -1 is taken as 0: the runtime should compute the
// first SPSO from share.auto.offset.reset and call New instead.
func Restore(cfg Config, st PersistedState) *SharePartition {
	sp := New(cfg, st.StartOffset)
	sp.epoch = st.StateEpoch
	if st.Producer.ID >= 0 {
		sp.producer = st.Producer
	}
	batches := slices.Clone(st.Batches)
	slices.SortStableFunc(batches, func(a, b StateBatch) int { return cmp.Compare(a.First, b.First) })
	next := sp.start
	archivedAtLoad := false
	for _, b := range batches {
		if b.Last < next || b.Last < b.First {
			continue
		}
		first := max(b.First, next)
		if first > next {
			sp.add(&entry{first: next, last: first - 1, state: Available})
		}
		e := &entry{first: first, last: b.Last, state: b.State, count: max(b.DeliveryCount, 0)}
		switch {
		case b.State == Available || b.State == Acquired:
			e.state = Available
			if int(e.count) >= sp.cfg.DeliveryLimit {
				e.state, e.overLimit = sp.givenUp(), true
				archivedAtLoad = true
				if e.state == DeadLettering {
					sp.archived.add(e.first, e.last, e.count, ReasonDeliveryLimit)
				}
			}
		case b.State == Acknowledged:
		case isDeadLettering(b.State):
			e.overLimit = b.State&deadLetterLimitBit != 0
			e.writing = b.State&deadLetterWritingBit != 0
			e.state = DeadLettering
			if !sp.cfg.DeadLetter {
				e.state, e.writing = Archived, false
				archivedAtLoad = true
			}
		default:
			e.state = Archived
		}
		sp.add(e)
		next = b.Last + 1
	}
	sp.end = next - 1
	sp.keys.known = sp.start - 1 // keys are not persisted: learned again on reading
	if sp.entries.Len() > 0 {
		sp.coalesce(sp.start, sp.end)
		sp.advanceStart()
	}
	// dirty (set by advanceStart or archivedAtLoad) when the loaded state
	// differs from what was persisted and should be written back.
	sp.dirty = sp.dirty || archivedAtLoad
	return sp
}

// SetConfig changes the settings; they apply to locks and attempts from now on.
// Switching the ordering forgets what is known of keys; they are learned
// again from the next reads.
// A group that no longer has a dead-letter topic archives the records that
// waited for their dead letter.
func (sp *SharePartition) SetConfig(cfg Config) {
	cfg = cfg.sanitized()
	if cfg.Ordering != sp.cfg.Ordering {
		sp.keys.reset(sp.start - 1)
	}
	sp.cfg = cfg
	if !cfg.DeadLetter && sp.counts.DeadLettering > 0 {
		sp.archiveDeadLettering(sp.start, sp.end)
		sp.dirty = true
		sp.advanceStart()
	}
}

// givenUp is the state of a record given up on: DeadLettering when the
// group has a dead-letter topic, else Archived.
func (sp *SharePartition) givenUp() State {
	if sp.cfg.DeadLetter {
		return DeadLettering
	}
	return Archived
}

// Config returns the settings in force.
func (sp *SharePartition) Config() Config { return sp.cfg }

// StartOffset is the SPSO.
func (sp *SharePartition) StartOffset() int64 { return sp.start }

// EndOffset is the SPEO: the last offset brought in flight, SPSO-1 if none.
func (sp *SharePartition) EndOffset() int64 { return sp.end }

// StateEpoch is the epoch of the persisted state, bumped by Reset.
func (sp *SharePartition) StateEpoch() int32 { return sp.epoch }

// Ready is everything a SharePartition asks of its runtime after a change,
// in one value (as etcd raft's Ready): the runtime calls Ready after each
// operation instead of polling for each output, so no output is forgotten.
type Ready struct {
	// MustPersist reports that the durable state changed since the last
	// Ready; Persist is then the state to write to the share coordinator
	// (a value, so taking it costs no allocation beyond its batches).
	MustPersist bool
	Persist     PersistedState
	// Deadline is when Tick next has work to do (the earliest lock
	// deadline or release-backoff end); zero if there is none.
	Deadline time.Time
	// DeadLetter are the records archived since the last Ready because they
	// were rejected or reached the delivery limit, for the dead-letter
	// writer. GAP acks, compaction gaps and log-start truncation are not
	// reported.
	DeadLetter []ArchivedRange
	// Available reports that Tick made records acquirable again (an expired
	// lock or the end of a release backoff) since the last Ready.
	Available bool
}

// Ready returns the outputs accumulated since the last call and clears
// them. Deadline is the current one, not an accumulation.
func (sp *SharePartition) Ready() Ready {
	rd := Ready{Deadline: sp.nextDeadline(), DeadLetter: []ArchivedRange(sp.archived), Available: sp.available}
	if sp.dirty {
		rd.MustPersist, rd.Persist = true, sp.Persisted()
	}
	sp.dirty, sp.archived, sp.available = false, nil, false
	return rd
}

// Counts returns the in-flight records by state.
func (sp *SharePartition) Counts() Counts { return sp.counts }

// Owner returns the member holding offset and its lock deadline; ok is false
// if the record is not ACQUIRED.
func (sp *SharePartition) Owner(offset int64) (member string, deadline time.Time, ok bool) {
	e := sp.find(offset)
	if e == nil || e.state != Acquired {
		return "", time.Time{}, false
	}
	return e.owner, time.Unix(0, e.deadline), true
}

// Held returns how many records member holds ACQUIRED.
func (sp *SharePartition) Held(member string) int64 { return sp.held[member] }

// StartFetch begins the acquisitions of one fetch, members (the runtime's
// share sessions that include the partition) asking for its records:
// ordering by key, the fetch's acquisitions together take at most a fair
// share of the keys in flight (keyLimit). Acquisitions without it have no
// such limit.
func (sp *SharePartition) StartFetch(members int) {
	sp.members, sp.fetchKeyed = members, 0
}

// keyLimit is how many more records with a key the fetch begun by
// StartFetch may acquire: its share of the keys in flight, ceil(keys /
// members), less what it took. No limit with one member or none.
//
// Why: ordering by key, the records a member holds block their keys until
// it acknowledges them, and the request carrying its acknowledgements
// acquires next: it would take the successors of the very keys it freed
// before any other member could, and keep them. With more workers than
// keys in flight a few members would hold every key for good while the
// others polled in vain; with processing time per record, throughput
// would be that of those few. Taking a share per fetch, a member leaves
// the rest of the freed keys to the members fetching after it.
func (sp *SharePartition) keyLimit() int64 {
	if sp.members <= 1 {
		return math.MaxInt64
	}
	members := int64(sp.members)
	share := (int64(len(sp.keys.byKey)) + members - 1) / members
	return max(share-sp.fetchKeyed, 0)
}

// Unsettled is a run of records not yet delivered to the end: AVAILABLE
// after at least one delivery, ACQUIRED, or DeadLettering (given up on,
// its dead letter not yet written, so SPSO waits for it). It is what an
// operator asks about when a queue is stuck: who holds what until when,
// how close each record is to the delivery limit, and what waits for the
// dead-letter topic.
type Unsettled struct {
	First, Last   int64
	State         State
	DeliveryCount int16
	// Owner is the member holding the records while ACQUIRED.
	Owner string
	// Deadline is the lock deadline while ACQUIRED, or the end of the
	// release backoff while AVAILABLE; zero if none.
	Deadline time.Time
}

// Unsettled returns, in offset order, at most max runs of records that
// were delivered at least once and are neither acknowledged nor archived.
func (sp *SharePartition) Unsettled(max int) []Unsettled {
	var out []Unsettled
	sp.entries.Ascend(func(e *entry) bool {
		if len(out) >= max {
			return false
		}
		if e.state == DeadLettering {
			out = append(out, Unsettled{First: e.first, Last: e.last, State: e.state, DeliveryCount: e.count})
			return true
		}
		if e.state == Acquired || e.state == Available && e.count > 0 {
			u := Unsettled{First: e.first, Last: e.last, State: e.state, DeliveryCount: e.count, Owner: e.owner}
			if e.deadline != 0 {
				u.Deadline = time.Unix(0, e.deadline)
			}
			out = append(out, u)
		}
		return true
	})
	return out
}

// NextFetchOffset is where the runtime should read the log from: the first
// AVAILABLE in-flight record past its release backoff, else SPEO+1 if the
// window admits new records, else -1 (nothing to read). Ordering by key, an
// AVAILABLE record held back by its key does not count, and records whose key
// is not known yet (after Restore) are read first.
func (sp *SharePartition) NextFetchOffset(now time.Time) int64 {
	if sp.cfg.Ordering == OrderKey {
		return sp.nextFetchByKey(now)
	}
	if sp.counts.Available > 0 {
		t := now.UnixNano()
		found := int64(-1)
		sp.entries.Ascend(func(e *entry) bool {
			if e.acquirable(t) {
				found = e.first
				return false
			}
			return true
		})
		if found >= 0 {
			return found
		}
	}
	if sp.windowRoom() > 0 {
		return sp.end + 1
	}
	return -1
}

func (sp *SharePartition) nextFetchByKey(now time.Time) int64 {
	found := int64(-1)
	if sp.counts.Available > 0 {
		found = sp.firstReadyInFlight(now.UnixNano())
	}
	switch {
	case found >= 0:
		return found
	case sp.keys.known < sp.end:
		return sp.keys.known + 1
	case sp.windowRoom() > 0:
		return sp.end + 1
	}
	return -1
}

// windowRoom is how many new records the in-flight window still admits.
func (sp *SharePartition) windowRoom() int64 {
	return int64(sp.cfg.MaxInFlight) - (sp.end - sp.start + 1)
}

// nextDeadline is the earliest lock deadline or release-backoff end; zero if
// there is none.
func (sp *SharePartition) nextDeadline() time.Time {
	k, ok := sp.deadlines.Min()
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, k.at)
}

// Acquire hands records to member from the spans the runtime read (starting
// at NextFetchOffset, whole batches, sorted). Only AVAILABLE in-flight records
// past their backoff and new records beyond SPEO (while the window has room)
// are acquired. maxRecords is the budget: with recordLimitMode false whole
// batches are taken and the budget is checked at batch boundaries; with
// recordLimitMode true it is a hard limit and batches are split. Ranges are
// cut after about batchSize records (at batch boundaries unless
// recordLimitMode). Offsets missing between spans are compaction gaps: they
// are never handed out, and are archived (without a report) when AVAILABLE
// in flight or when they precede new records.
func (sp *SharePartition) Acquire(now time.Time, member string, spans []Span, maxRecords, batchSize int, recordLimitMode bool) []AcquiredRange {
	if maxRecords <= 0 || len(spans) == 0 {
		return nil
	}
	t := now.UnixNano()
	lockEnd := t + int64(sp.cfg.LockDuration)
	rb := rangeBuilder{batchSize: int64(batchSize), strict: recordLimitMode}
	budget := int64(maxRecords)
	var taken int64
	touchedLo, touchedHi := int64(-1), int64(-2)
	touch := func(a, z int64) {
		if touchedLo > touchedHi || a < touchedLo {
			touchedLo = a
		}
		if z > touchedHi {
			touchedHi = z
		}
	}
	prevLast, havePrev := int64(0), false
	// Ordering by key, keyLimit counts down the records with a key this
	// fetch may still take (sp.keyLimit, worked out again for each span
	// once its keys are known).
	keyLimit := int64(math.MaxInt64)

spans:
	for _, s := range spans {
		if havePrev && s.First <= prevLast {
			// Tolerate overlap; the keys stay aligned with the offsets.
			s.Keys = s.Keys[min(prevLast+1-s.First, int64(len(s.Keys))):]
			s.First = prevLast + 1
		}
		if s.Last < s.First {
			continue
		}
		if taken >= budget {
			break
		}
		if havePrev && s.First > prevLast+1 {
			sp.archiveGap(prevLast+1, min(s.First-1, sp.end))
		}
		havePrev, prevLast = true, s.Last

		lo := max(s.First, sp.start)
		if lo > s.Last {
			continue
		}
		if s.Skip {
			sp.skipSpan(lo, s.Last)
			continue
		}
		if sp.cfg.Ordering == OrderKey {
			sp.learnKeys(&s)
			sp.bringInHeld(lo, &s)
			keyLimit = sp.keyLimit()
		}
		keyLimitBefore := keyLimit
		// Records already in flight.
		if lo <= sp.end {
			hi := min(s.Last, sp.end)
			cands := sp.cands[:0]
			sp.eachIn(lo, hi, func(e *entry) bool {
				if e.acquirable(t) {
					cands = append(cands, *e)
				}
				return true
			})
			sp.cands = cands[:0]
			full := false
			for _, c := range cands {
				count := c.count
				if count < 1<<15-1 {
					count++
				}
				sp.readyRuns(max(c.first, lo), min(c.last, hi), &keyLimit, func(a, z int64) bool {
					if recordLimitMode {
						z = min(z, a+budget-taken-1)
					}
					for _, e := range sp.isolate(a, z) {
						sp.modify(e, func(e *entry) {
							e.state, e.count, e.owner, e.deadline, e.overLimit = Acquired, count, member, lockEnd, false
						})
					}
					rb.add(a, z, count)
					touch(a, z)
					taken += z - a + 1
					full = recordLimitMode && taken >= budget
					return !full
				})
				if full {
					break spans
				}
			}
		}
		if keyLimitBefore < math.MaxInt64 {
			sp.fetchKeyed += keyLimitBefore - keyLimit
		}
		// New records beyond SPEO (ordering by key, bringInHeld did it).
		if s.Last > sp.end && sp.cfg.Ordering != OrderKey {
			a := max(lo, sp.end+1)
			if sp.windowRoom() <= 0 {
				break
			}
			if a > sp.end+1 {
				sp.appendEntry(&entry{first: sp.end + 1, last: a - 1, state: Archived})
				sp.dirty = true
				sp.advanceStart()
				if sp.windowRoom() <= 0 {
					break
				}
			}
			z := s.Last
			if recordLimitMode {
				z = min(z, a+min(sp.windowRoom(), budget-taken)-1)
			}
			sp.appendEntry(&entry{first: a, last: z, state: Acquired, count: 1, owner: member, deadline: lockEnd})
			rb.add(a, z, 1)
			touch(a, z)
			taken += z - a + 1
			if z < s.Last {
				break
			}
		}
		rb.batchEnd()
	}
	if touchedLo <= touchedHi {
		sp.coalesce(touchedLo, touchedHi)
	}
	sp.advanceStart()
	return rb.out
}

// bringInHeld brings the records of s beyond SPEO (from lo, while the window
// has room) in flight AVAILABLE and never delivered, registering their keys,
// so that the in-flight pass of Acquire takes those their keys allow and the
// rest wait their turn. Nothing is brought in while earlier keys are unknown.
func (sp *SharePartition) bringInHeld(lo int64, s *Span) {
	if s.Last <= sp.end || sp.keys.known < sp.end || sp.windowRoom() <= 0 {
		return
	}
	a := max(lo, sp.end+1)
	if a > sp.end+1 {
		sp.appendEntry(&entry{first: sp.end + 1, last: a - 1, state: Archived})
		sp.dirty = true
		sp.advanceStart()
		if sp.windowRoom() <= 0 {
			return
		}
	}
	z := min(s.Last, a+sp.windowRoom()-1)
	sp.appendEntry(&entry{first: a, last: z, state: Available})
	sp.coalesce(a, z)
	for o := a; o <= z; o++ {
		sp.keys.register(o, keyOf(s, o))
	}
}

// skipSpan archives the records in [lo, hi] that must never be delivered
// (see Span.Skip): AVAILABLE ones in flight, and new ones beyond SPEO while
// the window has room (with any gap before lo, as new records are).
func (sp *SharePartition) skipSpan(lo, hi int64) {
	sp.archiveGap(lo, min(hi, sp.end))
	if hi <= sp.end || sp.windowRoom() <= 0 {
		return
	}
	a := sp.end + 1
	z := min(hi, a+sp.windowRoom()-1)
	sp.appendEntry(&entry{first: a, last: z, state: Archived})
	sp.coalesce(a, z)
	sp.dirty = true
	sp.advanceStart()
}

// appendEntry adds e right after SPEO and moves SPEO to its end; keys are
// known through the new SPEO if they were through the old one (the caller
// registers the new records' keys).
func (sp *SharePartition) appendEntry(e *entry) {
	if sp.entries.Len() == 0 {
		sp.start = e.first
	}
	if sp.keys.known == sp.end {
		sp.keys.known = e.last
	}
	sp.add(e)
	sp.end = e.last
}

// archiveGap archives the AVAILABLE in-flight records in [a, z], which the log
// no longer has.
func (sp *SharePartition) archiveGap(a, z int64) {
	a = max(a, sp.start)
	if a > z {
		return
	}
	var runs [][2]int64
	sp.eachIn(a, z, func(e *entry) bool {
		if e.state == Available {
			runs = append(runs, [2]int64{max(e.first, a), min(e.last, z)})
		}
		return true
	})
	for _, r := range runs {
		for _, e := range sp.isolate(r[0], r[1]) {
			sp.modify(e, func(e *entry) { e.state, e.deadline = Archived, 0 })
		}
		sp.coalesce(r[0], r[1])
		sp.dirty = true
	}
}

// rangeBuilder assembles AcquiredRanges from acquired pieces in offset order.
type rangeBuilder struct {
	out       []AcquiredRange
	open      bool // the last range may still grow
	batchSize int64
	strict    bool // cut exactly at batchSize (record-limit mode)
}

func (rb *rangeBuilder) add(first, last int64, count int16) {
	for first <= last {
		if rb.open {
			cur := &rb.out[len(rb.out)-1]
			if cur.Last+1 == first && cur.DeliveryCount == count {
				if !rb.strict || rb.batchSize <= 0 {
					cur.Last = last
					return
				}
				room := rb.batchSize - (cur.Last - cur.First + 1)
				if room > 0 {
					take := min(room, last-first+1)
					cur.Last += take
					first += take
					continue
				}
			}
		}
		z := last
		if rb.strict && rb.batchSize > 0 {
			z = min(last, first+rb.batchSize-1)
		}
		rb.out = append(rb.out, AcquiredRange{First: first, Last: z, DeliveryCount: count})
		rb.open = true
		first = z + 1
	}
}

// batchEnd marks a producer-batch boundary: in batch mode the current range
// is closed once it holds batchSize records.
func (rb *rangeBuilder) batchEnd() {
	if rb.strict || rb.batchSize <= 0 || !rb.open {
		return
	}
	cur := rb.out[len(rb.out)-1]
	if cur.Last-cur.First+1 >= rb.batchSize {
		rb.open = false
	}
}

// archivedList accumulates Archived reports, merging contiguous equal ones.
type archivedList []ArchivedRange

func (l *archivedList) add(first, last int64, count int16, reason string) {
	if n := len(*l); n > 0 {
		p := &(*l)[n-1]
		if p.Last+1 == first && p.DeliveryCount == count && p.Reason == reason {
			p.Last = last
			return
		}
	}
	*l = append(*l, ArchivedRange{First: first, Last: last, DeliveryCount: count, Reason: reason})
}

// ValidateAcks applies the request checks of one partition's
// acknowledgement batches (A.10.2), which need no state: kerr.InvalidRequest
// for a malformed batch, batches out of order or overlapping by more than an
// offset, or an unknown type (RENEW only when renew is set). Kafka makes
// them before it looks the share partition up.
func ValidateAcks(batches []AckBatch, renew bool) error {
	for i, b := range batches {
		if b.First < 0 || b.First > b.Last || len(b.Types) == 0 ||
			len(b.Types) > 1 && int64(len(b.Types)) != b.Last-b.First+1 {
			return kerr.InvalidRequest
		}
		if i > 0 && b.First < batches[i-1].Last {
			return kerr.InvalidRequest
		}
		for _, ty := range b.Types {
			if ty < AckGap || ty > AckRenew || ty == AckRenew && !renew {
				return kerr.InvalidRequest
			}
		}
	}
	return nil
}

// Acknowledge applies one partition's acknowledgement batches for member,
// all or nothing. Malformed batches (A.10.2) and offsets beyond SPEO give
// kerr.InvalidRequest; records not ACQUIRED by member with a live lock give
// kerr.InvalidRecordState. Parts below SPSO are ignored. RENEW is accepted
// only when renew is set. The records archived by REJECT or by a RELEASE at
// the delivery limit are reported by Ready.
func (sp *SharePartition) Acknowledge(now time.Time, member string, batches []AckBatch, renew bool) error {
	if err := ValidateAcks(batches, renew); err != nil {
		return err
	}
	t := now.UnixNano()
	for i, b := range batches {
		if b.Last < sp.start {
			continue
		}
		if b.Last > sp.end {
			return kerr.InvalidRequest
		}
		// A batch may start on the offset the previous one ended on
		// (Kafka's request checks allow it), but that record would be
		// acknowledged twice: the first batch has already moved it on.
		if i > 0 && b.First == batches[i-1].Last && b.First >= sp.start {
			return kerr.InvalidRecordState
		}
		var err error
		sp.eachIn(max(b.First, sp.start), b.Last, func(e *entry) bool {
			if e.state != Acquired || e.owner != member || e.deadline <= t {
				err = kerr.InvalidRecordState
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
	}

	arch := &sp.archived
	durable := false
	for _, b := range batches {
		if b.Last < sp.start {
			continue
		}
		a := max(b.First, sp.start)
		if len(b.Types) == 1 {
			durable = sp.applyAck(t, a, b.Last, b.Types[0], arch) || durable
			continue
		}
		for a <= b.Last {
			ty := b.Types[a-b.First]
			z := a
			for z < b.Last && b.Types[z+1-b.First] == ty {
				z++
			}
			durable = sp.applyAck(t, a, z, ty, arch) || durable
			a = z + 1
		}
	}
	if durable {
		sp.dirty = true
	}
	sp.advanceStart()
	return nil
}

// applyAck applies one validated ack type to [a, z] and reports whether the
// change is durable (everything but RENEW).
func (sp *SharePartition) applyAck(t, a, z int64, ty AckType, arch *archivedList) bool {
	switch ty {
	case AckRelease:
		backoff := int64(0)
		if sp.cfg.ReleaseBackoff > 0 {
			backoff = t + int64(sp.cfg.ReleaseBackoff)
		}
		sp.endAttempt(a, z, backoff, arch)
		return true
	case AckRenew:
		lockEnd := t + int64(sp.cfg.LockDuration)
		for _, e := range sp.isolate(a, z) {
			sp.modify(e, func(e *entry) { e.deadline = lockEnd })
		}
		sp.coalesce(a, z)
		return false
	}
	for _, e := range sp.isolate(a, z) {
		sp.modify(e, func(e *entry) {
			e.owner, e.deadline = "", 0
			switch ty {
			case AckAccept:
				e.state = Acknowledged
			case AckReject:
				e.state = sp.givenUp()
				arch.add(e.first, e.last, e.count, ReasonRejected)
			default: // GAP
				e.state = Archived
			}
		})
	}
	sp.coalesce(a, z)
	return true
}

// endAttempt ends the delivery attempt of the ACQUIRED records in [a, z]
// (release, lock expiry, member gone): AVAILABLE again (until backoff, in
// Unix nanoseconds, when non-zero), or ARCHIVED at the delivery limit or
// below the log start.
func (sp *SharePartition) endAttempt(a, z, backoff int64, arch *archivedList) {
	if a < sp.logStart && sp.logStart <= z {
		sp.splitAt(sp.logStart)
	}
	for _, e := range sp.isolate(a, z) {
		if e.state != Acquired {
			continue
		}
		sp.modify(e, func(e *entry) {
			e.owner, e.deadline = "", 0
			switch {
			case e.last < sp.logStart:
				e.state = Archived
			case int(e.count) >= sp.cfg.DeliveryLimit:
				e.state, e.overLimit = sp.givenUp(), true
				arch.add(e.first, e.last, e.count, ReasonDeliveryLimit)
			default:
				e.state, e.deadline = Available, backoff
			}
		})
	}
	sp.coalesce(a, z)
}

// ReleaseMember releases every record member holds (its share session closed
// or its connection dropped) like a RELEASE without backoff: the delivery
// count is kept and records at the limit are archived (reported by Ready).
func (sp *SharePartition) ReleaseMember(now time.Time, member string) {
	var runs [][2]int64
	sp.entries.Ascend(func(e *entry) bool {
		if e.state == Acquired && e.owner == member {
			if n := len(runs); n > 0 && runs[n-1][1]+1 == e.first {
				runs[n-1][1] = e.last
			} else {
				runs = append(runs, [2]int64{e.first, e.last})
			}
		}
		return true
	})
	if len(runs) == 0 {
		return
	}
	for _, r := range runs {
		sp.endAttempt(r[0], r[1], 0, &sp.archived)
	}
	sp.dirty = true
	sp.advanceStart()
}

// Tick expires the locks whose deadline is at or before now (AVAILABLE again,
// or ARCHIVED at the delivery limit) and ends the release backoffs that are
// over. Ready reports the records archived and whether any record became
// AVAILABLE.
func (sp *SharePartition) Tick(now time.Time) {
	t := now.UnixNano()
	var due []int64
	sp.deadlines.Ascend(func(k deadlineKey) bool {
		if k.at > t {
			return false
		}
		due = append(due, k.first)
		return true
	})
	if len(due) == 0 {
		return
	}
	available := false
	for _, first := range due {
		e := sp.find(first)
		if e == nil || e.first != first || e.deadline == 0 || e.deadline > t {
			continue // merged away by an earlier step
		}
		if e.state == Acquired {
			before := sp.counts.Available
			sp.endAttempt(e.first, e.last, 0, &sp.archived)
			available = available || sp.counts.Available > before
			sp.dirty = true
			continue
		}
		a, z := e.first, e.last
		sp.modify(e, func(e *entry) { e.deadline = 0 })
		sp.coalesce(a, z)
		available = true
	}
	sp.advanceStart()
	sp.available = sp.available || available
}

// OnLogStart tells the share-partition that the log now starts at logStart.
// AVAILABLE records below it are archived and SPSO moves up to the first
// record that is neither terminal nor ACQUIRED; ACQUIRED records below it stay
// until acknowledged, and are archived if their attempt ends otherwise.
func (sp *SharePartition) OnLogStart(logStart int64) {
	if logStart <= sp.logStart {
		return
	}
	sp.logStart = logStart
	if logStart <= sp.start {
		return
	}
	if sp.entries.Len() == 0 {
		sp.start, sp.end = logStart, logStart-1
		sp.keys.known = sp.end
		sp.dirty = true
		return
	}
	sp.archiveGap(sp.start, min(logStart-1, sp.end))
	if logStart > sp.end+1 {
		sp.appendEntry(&entry{first: sp.end + 1, last: logStart - 1, state: Archived})
		sp.coalesce(sp.end, sp.end)
	}
	sp.dirty = true
	sp.advanceStart()
}

// Reset moves SPSO to offset and forgets everything in flight
// (AlterShareGroupOffsets); the state epoch is bumped.
func (sp *SharePartition) Reset(offset int64) {
	if offset < 0 {
		offset = 0
	}
	sp.entries.Clear(false)
	sp.deadlines.Clear(false)
	sp.counts = Counts{}
	clear(sp.held)
	sp.start, sp.end = offset, offset-1
	sp.keys.reset(offset - 1)
	sp.epoch++
	sp.dirty = true
}

// Persisted returns the durable state: SPSO, state epoch and the in-flight
// records that are terminal or were delivered before (ACQUIRED as AVAILABLE).
func (sp *SharePartition) Persisted() PersistedState {
	st := PersistedState{StartOffset: sp.start, StateEpoch: sp.epoch, Producer: sp.producer}
	if sp.persistedLen > 0 {
		st.Batches = make([]StateBatch, 0, sp.persistedLen+sp.persistedLen/4)
	}
	sp.entries.Ascend(func(e *entry) bool {
		s := e.state
		switch s {
		case Acquired:
			s = Available
		case DeadLettering:
			s = persistedDeadLettering
			if e.overLimit {
				s |= deadLetterLimitBit
			}
			if e.writing {
				s |= deadLetterWritingBit
			}
		}
		if s == Available && e.count == 0 {
			return true
		}
		if n := len(st.Batches); n > 0 {
			p := &st.Batches[n-1]
			if p.Last+1 == e.first && p.State == s && p.DeliveryCount == e.count {
				p.Last = e.last
				return true
			}
		}
		st.Batches = append(st.Batches, StateBatch{First: e.first, Last: e.last, State: s, DeliveryCount: e.count})
		return true
	})
	sp.persistedLen = len(st.Batches)
	if sp.persistedLen == 0 {
		st.Batches = nil
	}
	return st
}

// advanceStart moves SPSO over the terminal entries at the front.
func (sp *SharePartition) advanceStart() {
	for {
		e, ok := sp.entries.Min()
		if !ok || !e.state.terminal() {
			return
		}
		sp.remove(e)
		sp.start = e.last + 1
		sp.keys.known = max(sp.keys.known, sp.start-1)
		sp.dirty = true
	}
}

// add inserts e into the tree and the deadline index and counts it.
func (sp *SharePartition) add(e *entry) {
	sp.changes++
	sp.entries.ReplaceOrInsert(e)
	if e.deadline != 0 {
		sp.deadlines.ReplaceOrInsert(deadlineKey{e.deadline, e.first})
	}
	sp.tally(e, 1)
}

// remove takes e out of the tree and the deadline index and uncounts it.
func (sp *SharePartition) remove(e *entry) {
	sp.changes++
	sp.entries.Delete(e)
	if e.deadline != 0 {
		sp.deadlines.Delete(deadlineKey{e.deadline, e.first})
	}
	sp.tally(e, -1)
}

// modify changes e in place (never its first offset) keeping the indexes right.
func (sp *SharePartition) modify(e *entry, f func(*entry)) {
	sp.changes++
	if e.deadline != 0 {
		sp.deadlines.Delete(deadlineKey{e.deadline, e.first})
	}
	sp.tally(e, -1)
	wasLive := !e.state.settled()
	f(e)
	if wasLive && e.state.settled() {
		sp.keys.forget(e.first, e.last)
	}
	if e.deadline != 0 {
		sp.deadlines.ReplaceOrInsert(deadlineKey{e.deadline, e.first})
	}
	sp.tally(e, 1)
}

func (sp *SharePartition) tally(e *entry, sign int64) {
	n := sign * e.size()
	switch e.state {
	case Available:
		sp.counts.Available += n
	case Acquired:
		sp.counts.Acquired += n
		if h := sp.held[e.owner] + n; h != 0 {
			sp.held[e.owner] = h
		} else {
			delete(sp.held, e.owner)
		}
	case Acknowledged:
		sp.counts.Acknowledged += n
	case Archived:
		sp.counts.Archived += n
		if e.overLimit {
			sp.counts.OverLimit += n
		}
	case DeadLettering:
		sp.counts.DeadLettering += n
	}
}

// find returns the entry holding offset, or nil.
func (sp *SharePartition) find(offset int64) *entry {
	var found *entry
	sp.pivot.first = offset
	sp.entries.DescendLessOrEqual(&sp.pivot, func(e *entry) bool {
		found = e
		return false
	})
	if found == nil || found.last < offset {
		return nil
	}
	return found
}

// eachIn visits the entries holding offsets of [a, z] (the one holding a,
// or the first after it, and those after it that start by z) in offset
// order until f returns false.
//
// Why not one walk from a: the entry holding a is found with one descent of
// the tree, and a second walk is needed only when [a, z] reaches past it.
// Ordering by key, records are acquired and acknowledged one by one, and
// most of the ranges asked about lie within one entry.
func (sp *SharePartition) eachIn(a, z int64, f func(*entry) bool) {
	from := a
	if e := sp.find(a); e != nil {
		if e.first > z || !f(e) || e.last >= z {
			return
		}
		from = e.last + 1
	}
	sp.entries.AscendGreaterOrEqual(&entry{first: from}, func(e *entry) bool {
		return e.first <= z && f(e)
	})
}

// splitAt makes an entry start at offset if offset is inside one.
func (sp *SharePartition) splitAt(offset int64) {
	if e := sp.find(offset); e != nil && e.first < offset {
		sp.split(e, offset)
	}
}

// split cuts e, which holds offset past its first, in two and returns the
// entry that starts at offset.
func (sp *SharePartition) split(e *entry, offset int64) *entry {
	right := *e
	right.first = offset
	sp.modify(e, func(e *entry) { e.last = offset - 1 })
	sp.add(&right)
	return &right
}

// isolate splits entries so that [a, z] is covered by whole entries and
// returns them in order. The slice is only valid until the next call.
//
// When one entry holds all of [a, z] (ordering by key, a record acquired or
// acknowledged alone) it is found with one descent of the tree and cut
// where needed, rather than looked up again for each cut and once more for
// the result.
func (sp *SharePartition) isolate(a, z int64) []*entry {
	out := sp.scratch[:0]
	e := sp.find(a)
	if e != nil && e.first < a {
		e = sp.split(e, a)
	}
	if e != nil && e.last >= z {
		if e.last > z {
			sp.split(e, z+1)
		}
		out = append(out, e)
	} else {
		sp.splitAt(z + 1)
		sp.entries.AscendGreaterOrEqual(&entry{first: a}, func(e *entry) bool {
			if e.first > z {
				return false
			}
			out = append(out, e)
			return true
		})
	}
	sp.scratch = out[:0]
	return out
}

// coalesce merges equal neighbours among the entries touching [a-1, z+1].
func (sp *SharePartition) coalesce(a, z int64) {
	var prev *entry
	var drop []*entry
	sp.eachIn(a-1, z+1, func(e *entry) bool {
		if prev != nil && prev.last+1 == e.first && prev.sameAs(e) {
			drop = append(drop, e)
			prev.last = e.last // counts unchanged: same records, same state
			return true
		}
		prev = e
		return true
	})
	for _, e := range drop {
		sp.entries.Delete(e)
		if e.deadline != 0 {
			sp.deadlines.Delete(deadlineKey{e.deadline, e.first})
		}
	}
}

// SetDeadLetterProducer gives the share partition the idempotent producer
// id (and epoch) to write its dead letters with, starting at sequence 0.
// The runtime calls it before the first write, and again if the dead-letter
// partition refused the current one; it is persisted with the next write's
// intent.
func (sp *SharePartition) SetDeadLetterProducer(id int64, epoch int16) {
	sp.producer = DeadLetterProducer{ID: id, Epoch: epoch}
	sp.dirty = true
}

// DeadLetterProducer is the producer dead letters are written with (ID -1:
// none yet).
func (sp *SharePartition) DeadLetterProducer() DeadLetterProducer { return sp.producer }

// NextDeadLetters is the dead-letter write to make: the write in progress
// if there is one (restored after a crash or failover: assigned is false,
// and it must be sent again exactly as it was), else a new one of at most
// max records, the lowest DeadLettering offsets first, which it marks as in
// progress (assigned is true). A new write changes the durable state: the
// runtime persists it and waits until that is durable before sending, so
// that whoever resends it after a crash sends the same records with the
// same sequence. ok is false when nothing waits for a dead letter.
func (sp *SharePartition) NextDeadLetters(max int64) (w DeadLetterWrite, assigned, ok bool) {
	w.Producer = sp.producer
	var arch archivedList
	sp.entries.Ascend(func(e *entry) bool {
		if e.state == DeadLettering && e.writing {
			arch.add(e.first, e.last, e.count, reasonOf(e))
		}
		return true
	})
	if len(arch) > 0 {
		w.Records = arch
		return w, false, true
	}
	if sp.counts.DeadLettering == 0 || max <= 0 {
		return w, false, false
	}
	var pick [][2]int64
	left := max
	sp.entries.Ascend(func(e *entry) bool {
		if e.state != DeadLettering {
			return true
		}
		last := min(e.last, e.first+left-1)
		pick = append(pick, [2]int64{e.first, last})
		left -= last - e.first + 1
		return left > 0
	})
	for _, r := range pick {
		for _, e := range sp.isolate(r[0], r[1]) {
			sp.modify(e, func(e *entry) { e.writing = true })
			arch.add(e.first, e.last, e.count, reasonOf(e))
		}
		sp.coalesce(r[0], r[1])
	}
	sp.dirty = true
	w.Records = arch
	return w, true, true
}

// DeadLettersWritten reports the outcome of a write from NextDeadLetters:
// its records' dead letters are durable (written is the number of records
// the batch held: fewer than the write's when some were gone from the log;
// 0 when the dead-letter topic could not take them and they are given up
// on), so they are archived and the sequence moves past the records
// written. Records no longer in the write (the group lost its dead-letter
// topic meanwhile) are left as they are.
func (sp *SharePartition) DeadLettersWritten(w DeadLetterWrite, written int64) {
	if written > 0 && w.Producer == sp.producer {
		sp.producer.Sequence = int32((int64(sp.producer.Sequence) + written) % (math.MaxInt32 + 1))
	}
	for _, r := range w.Records {
		lo, hi := max(r.First, sp.start), min(r.Last, sp.end)
		if lo > hi {
			continue
		}
		sp.archiveDeadLettering(lo, hi)
	}
	sp.dirty = true
	sp.advanceStart()
}

// archiveDeadLettering archives the DeadLettering records in [a, z].
func (sp *SharePartition) archiveDeadLettering(a, z int64) {
	for _, e := range sp.isolate(a, z) {
		if e.state == DeadLettering {
			sp.modify(e, func(e *entry) { e.state, e.writing = Archived, false })
		}
	}
	sp.coalesce(a, z)
}

// reasonOf is why a DeadLettering record was given up on.
func reasonOf(e *entry) string {
	if e.overLimit {
		return ReasonDeliveryLimit
	}
	return ReasonRejected
}
