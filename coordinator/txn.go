package coordinator

import (
	"math"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transaction coordinator's state machine for one __transaction_state
// partition (Kafka's TransactionCoordinator and TransactionStateManager,
// without their I/O).
//
// A TxnShard is pure like Shard: callers serialize calls and pass the time;
// it never reads a clock, starts a goroutine or does I/O. Each call applies
// its transition at once and queues what must happen outside:
//   - records for __transaction_state (Drain). The caller appends them and
//     answers the request only once they are committed; if the append fails
//     the shard is dropped and reloaded from the log (Replay), so an answer
//     never reports a transition the log does not hold.
//   - marker jobs (Drain): WriteTxnMarkers to the leaders of a transaction's
//     partitions, sent once the PrepareCommit/PrepareAbort record that
//     queued them is committed. The caller reports written markers with
//     MarkersWritten; when every partition has its marker the transaction
//     completes (CompleteCommit/CompleteAbort, another record).
//
// Transaction versions: version 1 (EndTxn < v5) keeps the producer epoch
// across transactions. Version 2 (KIP-890 part 2, EndTxn v5+) bumps the epoch
// at every commit or abort, so a late produce of the old transaction is
// fenced at the partition, and partitions are added implicitly by the
// partition leader's AddPartitionsToTxn when the producer first writes there.

// TxnState is a transaction's state, numbered as Kafka's TransactionState
// (the numbers are what __transaction_state records hold).
type TxnState int8

// Kafka's transaction states.
const (
	TxnEmpty          TxnState = 0 // no transaction in progress
	TxnOngoing        TxnState = 1 // partitions added, not yet ended
	TxnPrepareCommit  TxnState = 2 // commit decided; markers being written
	TxnPrepareAbort   TxnState = 3 // abort decided; markers being written
	TxnCompleteCommit TxnState = 4 // markers written; a new transaction may start
	TxnCompleteAbort  TxnState = 5
	TxnDead           TxnState = 6 // the id expired (Kafka logs it before the tombstone; here it is only read back)
	// TxnPrepareEpochFence: the epoch was bumped to fence the producer of
	// an ongoing transaction (InitProducerId for its id, or its timeout);
	// the only way on is the abort the fence starts (see fence). As in
	// Kafka it is never logged: the PrepareAbort record with the bumped
	// epoch is what makes the fence durable. A record holding it (Kafka
	// never writes one) replays as PrepareAbort.
	TxnPrepareEpochFence TxnState = 7
)

// String is Kafka's name of the state (DescribeTransactions, ListTransactions).
func (s TxnState) String() string { return kmsg.TransactionState(s).String() }

// ParseTxnState maps a ListTransactions state filter to a state.
func ParseTxnState(name string) (TxnState, bool) {
	for s := TxnEmpty; s <= TxnPrepareEpochFence; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// TxnConfig holds the coordinator's settings, Kafka's names and defaults.
type TxnConfig struct {
	// MaxTimeout is transaction.max.timeout.ms (15 minutes).
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (7 days): an id with
	// no transaction in progress and no update for this long is removed.
	IDExpiration time.Duration
}

// DefaultTxnConfig returns Kafka's defaults.
func DefaultTxnConfig() TxnConfig {
	return TxnConfig{MaxTimeout: 15 * time.Minute, IDExpiration: 7 * 24 * time.Hour}
}

// ProducerIDs hands out producer ids: the broker's blocks of ids allocated by
// the controller (AllocateProducerIds). An error is answered as
// COORDINATOR_NOT_AVAILABLE, which clients retry.
type ProducerIDs interface {
	NextProducerID() (int64, error)
}

// TxnPartition is a partition of a transaction.
type TxnPartition struct {
	Topic     string
	Partition int32
}

// TxnMarkers is a marker job: write a commit or abort marker for the
// producer to each partition (WriteTxnMarkers to their leaders).
type TxnMarkers struct {
	TransactionalID  string
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       []TxnPartition
}

// txnMeta is one transactional id's state: Kafka's TransactionMetadata.
//
// Invariants: partitions is empty in Empty, CompleteCommit and CompleteAbort;
// pending (partitions still waiting for a marker) is non-empty only in
// PrepareCommit and PrepareAbort; startMs is -1 exactly when no transaction
// is in progress (Empty, Complete*).
type txnMeta struct {
	id            string
	producerID    int64
	prevProducer  int64 // the id before the last rotation, -1 if none
	nextProducer  int64 // the id after the rotation a v2 end in progress makes, -1 if none
	epoch         int16
	lastEpoch     int16 // the epoch before the last InitProducerId bump (KIP-360 retries), -1 if none
	timeout       time.Duration
	state         TxnState
	partitions    map[TxnPartition]bool
	pending       map[TxnPartition]bool
	startMs       int64
	lastUpdateMs  int64
	clientVersion int16 // transaction version the client uses: 0 or 1 for version 1, 2 for version 2
}

func (m *txnMeta) inProgress() bool {
	return m.state == TxnOngoing || m.state == TxnPrepareCommit || m.state == TxnPrepareAbort || m.state == TxnPrepareEpochFence
}

// epochExhausted: Kafka bumps to a new producer id before the epoch reaches
// MaxInt16, keeping one epoch in reserve for fencing.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

func (m *txnMeta) sortedPartitions(set map[TxnPartition]bool) []TxnPartition {
	out := make([]TxnPartition, 0, len(set))
	for tp := range set {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// TxnShard holds the transactional ids of one __transaction_state partition.
//
// Invariant: every change to a txnMeta is followed, in the same call, by its
// record in out, so replaying every drained record in order rebuilds an
// equivalent shard (marker jobs of Prepare* states are rebuilt by
// PendingMarkers).
type TxnShard struct {
	cfg              TxnConfig
	ids              ProducerIDs
	coordinatorEpoch int32
	txns             map[string]*txnMeta
	out              []Record
	markers          []TxnMarkers
	onTransition     func(TxnTransition)
}

// TxnTransition is one state change of a transactional id, logged to
// __transaction_state or not (PrepareEpochFence never is).
type TxnTransition struct {
	TransactionalID string
	From, To        TxnState
	ProducerID      int64
	ProducerEpoch   int16
}

// OnTransition sets fn to be called, synchronously, at every state change
// the shard makes (not at Replay): the coordinator logs them, as Kafka logs
// its "prepare transition" lines, and tests follow transitions that leave
// no record.
func (s *TxnShard) OnTransition(fn func(TxnTransition)) { s.onTransition = fn }

// moveTo changes m's state, telling the transition hook.
func (s *TxnShard) moveTo(m *txnMeta, to TxnState) {
	from := m.state
	m.state = to
	if s.onTransition != nil {
		s.onTransition(TxnTransition{TransactionalID: m.id, From: from, To: to, ProducerID: m.producerID, ProducerEpoch: m.epoch})
	}
}

// NewTxnShard returns an empty shard. coordinatorEpoch is the leader epoch of
// the __transaction_state partition; it goes into every marker so partitions
// fence markers from a deposed coordinator.
func NewTxnShard(cfg TxnConfig, ids ProducerIDs, coordinatorEpoch int32) *TxnShard {
	return &TxnShard{cfg: cfg, ids: ids, coordinatorEpoch: coordinatorEpoch, txns: map[string]*txnMeta{}}
}

// Drain returns the records and marker jobs queued since the last Drain.
func (s *TxnShard) Drain() ([]Record, []TxnMarkers) {
	out, markers := s.out, s.markers
	s.out, s.markers = nil, nil
	return out, markers
}

// transition logs m's new state: the record, and for a Prepare* state the
// marker job for its pending partitions.
func (s *TxnShard) transition(m *txnMeta, now time.Time) {
	m.lastUpdateMs = now.UnixMilli()
	s.out = append(s.out, Record{Key: txnKey(m.id), Value: encodeTxnValue(m)})
	if m.state == TxnPrepareCommit || m.state == TxnPrepareAbort {
		s.markers = append(s.markers, s.markerJob(m))
	}
}

func (s *TxnShard) markerJob(m *txnMeta) TxnMarkers {
	return TxnMarkers{
		TransactionalID: m.id, ProducerID: m.producerID, ProducerEpoch: m.epoch,
		Commit: m.state == TxnPrepareCommit, CoordinatorEpoch: s.coordinatorEpoch,
		Partitions: m.sortedPartitions(m.pending),
	}
}

// PendingMarkers returns the marker jobs of every transaction waiting for
// markers: after a load, the new coordinator resends them (partitions accept
// a repeated marker).
func (s *TxnShard) PendingMarkers() []TxnMarkers {
	var out []TxnMarkers
	for _, id := range sortedKeys(s.txns) {
		if m := s.txns[id]; len(m.pending) > 0 {
			out = append(out, s.markerJob(m))
		}
	}
	return out
}

// InitProducerIDRequest is InitProducerId with a transactional id.
// ExpectedProducerID/Epoch (KIP-360, -1 when absent) let a producer that lost
// an answer, or hit a fatal error, recover its id instead of being fenced.
type InitProducerIDRequest struct {
	TransactionalID    string
	Timeout            time.Duration
	ExpectedProducerID int64
	ExpectedEpoch      int16
}

// InitProducerID gives the transactional id a producer id and a new epoch,
// fencing every producer with an older epoch. An open transaction is aborted
// first (the producer that left it is a zombie): the answer is then
// CONCURRENT_TRANSACTIONS, and the client retries until the abort completes.
func (s *TxnShard) InitProducerID(now time.Time, req InitProducerIDRequest) (int64, int16, *kerr.Error) {
	if req.Timeout <= 0 || req.Timeout > s.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout
	}
	m := s.txns[req.TransactionalID]
	if m == nil || m.state == TxnDead {
		pid, err := s.ids.NextProducerID()
		if err != nil {
			return -1, -1, kerr.CoordinatorNotAvailable
		}
		m = &txnMeta{id: req.TransactionalID, producerID: pid, prevProducer: -1, nextProducer: -1, epoch: -1, lastEpoch: -1, state: TxnEmpty, startMs: -1}
		s.txns[req.TransactionalID] = m
	}
	if req.ExpectedProducerID >= 0 && !validExpectedProducer(m, req.ExpectedProducerID, req.ExpectedEpoch) {
		return -1, -1, kerr.ProducerFenced
	}
	switch m.state {
	case TxnPrepareCommit, TxnPrepareAbort, TxnPrepareEpochFence:
		return -1, -1, kerr.ConcurrentTransactions
	case TxnOngoing:
		// The producer that left the transaction open is a zombie:
		// fence it and abort its transaction. The new producer retries
		// and gets its epoch once the abort completes (a further bump,
		// which rotates the producer id if the fence used the last
		// epoch).
		if kerrv := s.fence(m, now); kerrv != nil {
			return -1, -1, kerrv
		}
		return -1, -1, kerr.ConcurrentTransactions
	}
	// Empty or Complete*: a new epoch, or a new producer id once the
	// epoch space is used up (Kafka's prepareProducerIdRotation and
	// prepareIncrementProducerEpoch). lastEpoch remembers the epoch a
	// KIP-360 request came from, so its retry gets the same answer.
	switch {
	case epochExhausted(m.epoch) && (req.ExpectedProducerID < 0 || req.ExpectedEpoch == m.epoch):
		pid, err := s.ids.NextProducerID()
		if err != nil {
			return -1, -1, kerr.CoordinatorNotAvailable
		}
		m.lastEpoch = -1
		if req.ExpectedProducerID >= 0 {
			m.lastEpoch = m.epoch
		}
		m.prevProducer, m.producerID, m.epoch = m.producerID, pid, 0
	case !epochExhausted(m.epoch) && (req.ExpectedProducerID < 0 || m.epoch == -1 || req.ExpectedEpoch == m.epoch):
		m.lastEpoch = m.epoch
		if req.ExpectedProducerID < 0 {
			m.lastEpoch = -1
		}
		m.epoch++
	case req.ExpectedEpoch == m.lastEpoch:
		return m.producerID, m.epoch, nil // a retry: the bump already happened
	default:
		return -1, -1, kerr.ProducerFenced
	}
	m.timeout, m.startMs = req.Timeout, -1
	m.partitions = nil
	s.moveTo(m, TxnEmpty)
	s.transition(m, now)
	return m.producerID, m.epoch, nil
}

// validExpectedProducer is Kafka's isValidProducerId: a KIP-360 request must
// name the current producer id, or the previous one when its epoch ran out
// (a retry after the rotation), unless the id is brand new.
func validExpectedProducer(m *txnMeta, pid int64, epoch int16) bool {
	return m.epoch == -1 || pid == m.producerID || (pid == m.prevProducer && epochExhausted(epoch))
}

// checkProducer answers a request from the producer (pid, epoch): the
// transactional id must exist and belong to pid, at exactly its epoch.
func (s *TxnShard) checkProducer(id string, pid int64, epoch int16) (*txnMeta, *kerr.Error) {
	m := s.txns[id]
	switch {
	case m == nil || m.state == TxnDead:
		return nil, kerr.InvalidProducerIDMapping
	case m.producerID != pid:
		return nil, kerr.InvalidProducerIDMapping
	case epoch != m.epoch:
		return nil, kerr.ProducerFenced
	}
	return m, nil
}

// AddPartitionsRequest is AddPartitionsToTxn for one transactional id (from
// the client, transactions version 1, or from a partition leader).
type AddPartitionsRequest struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      []TxnPartition
	// VerifyOnly (KIP-890 part 1, from a partition leader): check that the
	// partitions are in the ongoing transaction, changing nothing.
	VerifyOnly bool
	// V2 marks a transactions-version-2 client (the leader's implicit add).
	V2 bool
}

// AddPartitions adds partitions to the producer's transaction, starting one
// if none is open. The error applies to every partition. A verification
// answers per partition (see verify).
func (s *TxnShard) AddPartitions(now time.Time, req AddPartitionsRequest) (map[TxnPartition]*kerr.Error, *kerr.Error) {
	m, kerrv := s.checkProducer(req.TransactionalID, req.ProducerID, req.ProducerEpoch)
	if kerrv != nil {
		return nil, kerrv
	}
	if req.VerifyOnly {
		return verify(m, req.Partitions)
	}
	switch m.state {
	case TxnPrepareCommit, TxnPrepareAbort, TxnPrepareEpochFence:
		return nil, kerr.ConcurrentTransactions
	case TxnOngoing:
		added := false
		for _, tp := range req.Partitions {
			if !m.partitions[tp] {
				m.partitions[tp] = true
				added = true
			}
		}
		if added {
			s.transition(m, now)
		}
		return nil, nil
	}
	// Empty or Complete*: a new transaction starts.
	m.startMs = now.UnixMilli()
	m.partitions = make(map[TxnPartition]bool, len(req.Partitions))
	for _, tp := range req.Partitions {
		m.partitions[tp] = true
	}
	if req.V2 {
		m.clientVersion = 2
	} else {
		m.clientVersion = 1
	}
	s.moveTo(m, TxnOngoing)
	s.transition(m, now)
	return nil, nil
}

// verify answers a partition leader's verification as Kafka's coordinator
// does: a transaction writing its markers is CONCURRENT_TRANSACTIONS (the
// leader retries, then tells the producer to retry), and a partition not
// in the transaction TRANSACTION_ABORTABLE, which the leader passes on to
// producers that know it (Produce v11+, TxnOffsetCommit v4+) and turns into
// INVALID_TXN_STATE for older ones. A stale epoch was answered before as
// PRODUCER_FENCED, which the leader turns into the INVALID_PRODUCER_EPOCH
// producers expect from a produce.
func verify(m *txnMeta, partitions []TxnPartition) (map[TxnPartition]*kerr.Error, *kerr.Error) {
	switch m.state {
	case TxnPrepareCommit, TxnPrepareAbort, TxnPrepareEpochFence:
		return nil, kerr.ConcurrentTransactions
	}
	res := make(map[TxnPartition]*kerr.Error, len(partitions))
	for _, tp := range partitions {
		res[tp] = nil
		if !m.partitions[tp] {
			res[tp] = kerr.TransactionAbortable
		}
	}
	return res, nil
}

// AddOffsets is AddOffsetsToTxn: it adds the group's __consumer_offsets
// partition (GroupPartition, computed by the caller, which knows
// offsets.topic.num.partitions) to the transaction, so the group coordinator gets the marker that makes the
// transactional offset commits visible.
func (s *TxnShard) AddOffsets(now time.Time, id string, pid int64, epoch int16, offsetsPartition int32) *kerr.Error {
	_, kerrv := s.AddPartitions(now, AddPartitionsRequest{
		TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch,
		Partitions: []TxnPartition{{Topic: "__consumer_offsets", Partition: offsetsPartition}},
	})
	return kerrv
}

// EndTxnRequest is EndTxn.
type EndTxnRequest struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Commit          bool
	// V2: EndTxn v5+ (transactions version 2): the epoch is bumped, and the
	// answer carries the producer id and epoch to use next.
	V2 bool
}

// EndTxn commits or aborts the producer's transaction. The answer is due once
// the Prepare record is committed; the markers follow (see TxnShard). It
// returns the producer id and epoch the producer continues with (changed
// only in version 2).
func (s *TxnShard) EndTxn(now time.Time, req EndTxnRequest) (int64, int16, *kerr.Error) {
	if req.V2 {
		return s.endTxnV2(now, req)
	}
	m, kerrv := s.checkProducer(req.TransactionalID, req.ProducerID, req.ProducerEpoch)
	if kerrv != nil {
		return -1, -1, kerrv
	}
	if kerrv := endInProgress(m, req.Commit); kerrv != nil {
		return -1, -1, kerrv
	}
	switch m.state {
	case TxnCompleteCommit, TxnCompleteAbort:
		if sameOutcome(m.state, req.Commit) {
			return m.producerID, m.epoch, nil // a retry of a completed end
		}
		return -1, -1, kerr.InvalidTxnState
	case TxnEmpty:
		return -1, -1, kerr.InvalidTxnState
	}
	s.prepareEnd(m, req.Commit, false, -1, now)
	return m.producerID, m.epoch, nil
}

// endTxnV2 is EndTxn v5+ (transactions version 2), whose every end bumps the
// epoch. Kafka's table for it: a request from the epoch before the bump
// (or from the last epoch of the producer id before a rotation) is a retry
// of the end that made it; a retry of the same outcome is answered with the
// producer id and epoch to continue with once the transaction is complete,
// and CONCURRENT_TRANSACTIONS while its markers are written, as a retry of
// version 1 is; any other epoch is PRODUCER_FENCED. A producer may abort
// with no transaction open: the epoch still moves on.
func (s *TxnShard) endTxnV2(now time.Time, req EndTxnRequest) (int64, int16, *kerr.Error) {
	m := s.txns[req.TransactionalID]
	if m == nil || m.state == TxnDead {
		return -1, -1, kerr.InvalidProducerIDMapping
	}
	retryOnBump := req.ProducerID == m.producerID && req.ProducerEpoch+1 == m.epoch
	retryOnRotation := m.prevProducer >= 0 && req.ProducerID == m.prevProducer &&
		req.ProducerEpoch == math.MaxInt16-1 && m.epoch == 0
	if req.ProducerID != m.producerID && !retryOnRotation {
		return -1, -1, kerr.InvalidProducerIDMapping
	}
	current := req.ProducerID == m.producerID && req.ProducerEpoch == m.epoch
	retry := retryOnBump || retryOnRotation
	var validEpoch bool
	switch m.state {
	case TxnPrepareCommit, TxnPrepareAbort:
		validEpoch = retryOnBump
	case TxnCompleteCommit, TxnCompleteAbort:
		validEpoch = retry || current
	default:
		validEpoch = current
	}
	if !validEpoch {
		return -1, -1, kerr.ProducerFenced
	}
	if kerrv := endInProgress(m, req.Commit); kerrv != nil {
		return -1, -1, kerrv
	}
	switch m.state {
	case TxnCompleteCommit, TxnCompleteAbort:
		if retry {
			if sameOutcome(m.state, req.Commit) {
				return m.producerID, m.epoch, nil
			}
			return -1, -1, kerr.InvalidTxnState
		}
		if req.Commit {
			return -1, -1, kerr.InvalidTxnState
		}
	case TxnEmpty:
		if req.Commit {
			return -1, -1, kerr.InvalidTxnState
		}
	}
	next, kerrv := s.rotation(m.epoch)
	if kerrv != nil {
		return -1, -1, kerrv
	}
	m.clientVersion = 2
	s.prepareEnd(m, req.Commit, true, next, now)
	if m.nextProducer >= 0 {
		return m.nextProducer, 0, nil
	}
	return m.producerID, m.epoch, nil
}

// endInProgress is the answer to an EndTxn while m's end is under way, in
// either version: a retry of the same outcome waits for the markers
// (CONCURRENT_TRANSACTIONS), the other outcome is INVALID_TXN_STATE, and
// an end during a fence waits too; nil when no end is under way.
func endInProgress(m *txnMeta, commit bool) *kerr.Error {
	switch m.state {
	case TxnPrepareCommit, TxnPrepareAbort:
		if sameOutcome(m.state, commit) {
			return kerr.ConcurrentTransactions
		}
		return kerr.InvalidTxnState
	case TxnPrepareEpochFence:
		return kerr.ConcurrentTransactions
	}
	return nil
}

func sameOutcome(st TxnState, commit bool) bool {
	if commit {
		return st == TxnPrepareCommit || st == TxnCompleteCommit
	}
	return st == TxnPrepareAbort || st == TxnCompleteAbort
}

// rotation returns the producer id an end that bumps the epoch from epoch
// moves to: a new one once the epoch space is used up (Kafka rotates before
// the epoch reaches MaxInt16), else -1.
func (s *TxnShard) rotation(epoch int16) (int64, *kerr.Error) {
	if !epochExhausted(epoch) {
		return -1, nil
	}
	pid, err := s.ids.NextProducerID()
	if err != nil {
		return -1, kerr.CoordinatorNotAvailable
	}
	return pid, nil
}

// prepareEnd moves m to PrepareCommit/PrepareAbort and queues its markers;
// with no partitions the transaction completes at once. bump raises the
// epoch first (transactions version 2), remembering the epoch before it as
// Kafka does, so a KIP-360 InitProducerId from that epoch is a retry; next
// (from rotation, -1 for none) is the producer id the completion moves to:
// the markers then carry the old id at its last epoch.
func (s *TxnShard) prepareEnd(m *txnMeta, commit, bump bool, next int64, now time.Time) {
	if bump {
		m.nextProducer, m.lastEpoch = next, m.epoch
		if m.epoch < math.MaxInt16 {
			m.epoch++
		}
	}
	if commit {
		s.moveTo(m, TxnPrepareCommit)
	} else {
		s.moveTo(m, TxnPrepareAbort)
	}
	m.pending = make(map[TxnPartition]bool, len(m.partitions))
	for tp := range m.partitions {
		m.pending[tp] = true
	}
	if len(m.pending) == 0 {
		// Nothing to mark: the Prepare record is still written, as Kafka
		// does, and the completion follows in the same step.
		m.lastUpdateMs = now.UnixMilli()
		s.out = append(s.out, Record{Key: txnKey(m.id), Value: encodeTxnValue(m)})
		s.complete(m, now)
		return
	}
	s.transition(m, now)
}

// fence ends an ongoing transaction the producer abandoned (it timed out,
// or a new producer with its id arrived), as Kafka's
// prepareFenceProducerEpoch followed by the coordinator's own EndTxn: the
// epoch is bumped and the transaction enters PrepareEpochFence, so every
// request of the old producer is refused (PRODUCER_FENCED, or
// CONCURRENT_TRANSACTIONS for a new producer racing the fence); then the
// coordinator aborts it with the fenced epoch. A version-2 transaction's
// abort bumps the epoch once more, as every version-2 end does, so the
// producer's late EndTxn is not taken for a retry of that abort: it is
// fenced, as in Kafka. The abort markers carry the final epoch, so the
// zombie's late batches are fenced at the partitions.
//
// PrepareEpochFence is not logged: if the PrepareAbort record is not
// appended, the shard reloads from the log, where the transaction is still
// Ongoing at the old epoch, and the next InitProducerId or timeout fences it
// again (what Kafka's hasFailedEpochFence ensures). The error is that of
// the producer id a version-2 abort at the end of the epoch space needs;
// nothing has changed then.
func (s *TxnShard) fence(m *txnMeta, now time.Time) *kerr.Error {
	fenced := m.epoch
	// Version 1 needs no rotation here: the epoch epochExhausted keeps in
	// reserve is for exactly this fence, and the fenced producer's next
	// InitProducerId rotates.
	if fenced < math.MaxInt16 {
		fenced++
	}
	v2 := m.clientVersion == 2
	next := int64(-1)
	if v2 {
		var kerrv *kerr.Error
		if next, kerrv = s.rotation(fenced); kerrv != nil {
			return kerrv
		}
	}
	m.epoch, m.lastEpoch = fenced, -1
	s.moveTo(m, TxnPrepareEpochFence)
	s.prepareEnd(m, false, v2, next, now)
	return nil
}

// MarkersWritten reports partitions whose marker for (pid, epoch) is written
// (or whose partition no longer exists). Once every partition has its marker
// the transaction completes. Reports for another producer or epoch, or for a
// transaction not waiting for markers, are stale and ignored.
func (s *TxnShard) MarkersWritten(now time.Time, id string, pid int64, epoch int16, partitions []TxnPartition) {
	m := s.txns[id]
	if m == nil || m.producerID != pid || m.epoch != epoch || len(m.pending) == 0 {
		return
	}
	for _, tp := range partitions {
		delete(m.pending, tp)
	}
	if len(m.pending) == 0 {
		s.complete(m, now)
	}
}

// complete moves a transaction whose markers are all written to
// CompleteCommit/CompleteAbort.
func (s *TxnShard) complete(m *txnMeta, now time.Time) {
	if m.state == TxnPrepareCommit {
		s.moveTo(m, TxnCompleteCommit)
	} else {
		s.moveTo(m, TxnCompleteAbort)
	}
	if m.nextProducer >= 0 {
		m.prevProducer, m.producerID, m.nextProducer, m.epoch = m.producerID, m.nextProducer, -1, 0
	}
	m.partitions, m.pending, m.startMs = nil, nil, -1
	s.transition(m, now)
}

// Tick runs the periodic work of the coordinator: it aborts ongoing
// transactions past their timeout (transaction.abort.timed.out.transaction.
// cleanup.interval.ms) and removes transactional ids idle for longer than
// transactional.id.expiration.ms (transaction.remove.expired.transaction.
// cleanup.interval.ms), writing a tombstone for each.
func (s *TxnShard) Tick(now time.Time) {
	nowMs := now.UnixMilli()
	for _, id := range sortedKeys(s.txns) {
		m := s.txns[id]
		switch {
		case m.state == TxnOngoing && m.startMs+m.timeout.Milliseconds() < nowMs:
			// Should the fence fail (no producer id for a rotation),
			// the next tick tries again.
			_ = s.fence(m, now)
		case !m.inProgress() && m.lastUpdateMs+s.cfg.IDExpiration.Milliseconds() <= nowMs:
			delete(s.txns, id)
			s.out = append(s.out, Record{Key: txnKey(id), Value: nil})
		}
	}
}

// TxnDescription is one transaction as DescribeTransactions shows it.
type TxnDescription struct {
	TransactionalID string
	State           TxnState
	ProducerID      int64
	ProducerEpoch   int16
	Timeout         time.Duration
	StartMs         int64 // -1 when no transaction is in progress
	Partitions      []TxnPartition
}

// Describe answers DescribeTransactions for one id (TRANSACTIONAL_ID_NOT_FOUND
// when the shard does not hold it).
func (s *TxnShard) Describe(id string) (TxnDescription, *kerr.Error) {
	m := s.txns[id]
	if m == nil {
		return TxnDescription{}, kerr.TransactionalIDNotFound
	}
	return TxnDescription{
		TransactionalID: id, State: m.state, ProducerID: m.producerID, ProducerEpoch: m.epoch,
		Timeout: m.timeout, StartMs: m.startMs, Partitions: m.sortedPartitions(m.partitions),
	}, nil
}

// TxnListFilter is ListTransactions' filters; empty means all.
type TxnListFilter struct {
	// States are state names as the request carries them. A name Kafka
	// does not know matches nothing and is reported back.
	States      []string
	ProducerIDs []int64
	// MinDuration (KIP-994, -1 for none): only transactions running for
	// longer than this.
	MinDuration time.Duration
	// IDPattern (KIP-1152, nil for none): only transactional ids it
	// matches (CompileWholeMatch).
	IDPattern *regexp.Regexp
}

// TxnListing is one row of ListTransactions.
type TxnListing struct {
	TransactionalID string
	ProducerID      int64
	State           TxnState
}

// List answers ListTransactions, sorted by id, with the state names it did
// not know (UnknownStateFilters). Like Kafka, the duration filter compares
// now with the transaction's start, so an id with no transaction in progress
// (start -1) passes any duration.
func (s *TxnShard) List(now time.Time, f TxnListFilter) (out []TxnListing, unknownStates []string) {
	var states []TxnState
	for _, name := range f.States {
		if st, ok := ParseTxnState(name); ok {
			states = append(states, st)
		} else {
			unknownStates = append(unknownStates, name)
		}
	}
	for _, id := range sortedKeys(s.txns) {
		m := s.txns[id]
		if len(f.States) > 0 && !slices.Contains(states, m.state) {
			continue
		}
		if len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, m.producerID) {
			continue
		}
		if f.MinDuration >= 0 && now.UnixMilli()-m.startMs <= f.MinDuration.Milliseconds() {
			continue
		}
		if f.IDPattern != nil && !f.IDPattern.MatchString(id) {
			continue
		}
		out = append(out, TxnListing{TransactionalID: id, ProducerID: m.producerID, State: m.state})
	}
	return out, unknownStates
}
