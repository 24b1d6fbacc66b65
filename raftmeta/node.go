package raftmeta

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Config configures a Node.
type Config struct {
	// NodeID is this node's Kafka node.id (>= 0).
	NodeID int32
	// Dir is the metadata directory; the raft store lives in Dir/raft.
	Dir string
	// Voters is controller.quorum.voters: node id -> host:port. The ids form
	// the initial voter set of a brand-new log (the addresses are the
	// transport's business). Empty means a quorum of this node alone.
	Voters map[int32]string
	// Learners are the ids of nodes that follow the log without voting:
	// brokers with process.roles=broker. They are part of the initial
	// membership of a brand-new log, like Voters, so every node must be
	// formatted with the same Voters and Learners; a learner is never
	// elected. A node whose id is in neither set may still start: it never
	// campaigns, and follows the log once the leader adds it with
	// AddLearner.
	Learners []int32
	Logger   *slog.Logger
	// TickInterval is the raft tick; elections take 10 ticks, heartbeats 1.
	// Default 100ms.
	TickInterval time.Duration
	// SnapshotEvery is how many applied entries trigger a snapshot of the
	// image and compaction of the raft log. Default 10000.
	SnapshotEvery uint64
	// ClusterID names the cluster in a brand-new log (a random id is made up
	// when empty). An existing log keeps the id it was created with.
	ClusterID string
	// Transport carries raft messages to peers. nil is only valid for a
	// quorum of one voter.
	Transport Transport
	// Bootstrap holds records applied to the image of a brand-new log
	// before anything else, as Kafka's bootstrap metadata carries the SCRAM
	// credentials of "kafka-storage format --add-scram". Every voter must
	// be given the same records. An existing log ignores them.
	Bootstrap []Record
}

// Election timing. A follower campaigns after 10-20 ticks (1-2 s at the
// default tick) without hearing from its leader; the leader heartbeats
// every tick. The timeout is deliberately not shorter: the Ready loop that
// sends heartbeats also fsyncs the raft log, and on a loaded two-core
// machine an fsync or a scheduling stall can take a few hundred
// milliseconds, so a 300-500 ms timeout would start elections against a
// healthy leader. Pre-vote and check-quorum keep such an election from
// deposing the leader when only one follower lost touch, but not when the
// stall is the leader's own. A leader whose process died is replaced
// without waiting for the timeout at all (leader_gone.go); the timeout only
// matters for a host that vanishes, where brokers are fenced after
// broker.session.timeout.ms anyway.
const (
	defaultTickInterval  = 100 * time.Millisecond
	defaultSnapshotEvery = 10000
	electionTicks        = 10
	heartbeatTicks       = 1
)

// raftID maps a Kafka node id to a raft id. raft reserves 0 for "none" while
// Kafka node ids start at 0, hence the offset.
func raftID(nodeID int32) uint64 { return uint64(nodeID) + 1 }

// nodeID is the inverse of raftID; raft.None maps to -1.
func nodeID(id uint64) int32 { return int32(id) - 1 }

// Node is one member of the metadata quorum. A single goroutine, the Ready
// loop (run), owns the raft RawNode, the storage writes and the state
// machine; other goroutines talk to it through channels and read published
// state through atomics.
type Node struct {
	cfg       Config
	log       *slog.Logger
	st        *storage
	transport Transport

	// proposer identifies this Node instance in the entries it proposes, so
	// that on apply it recognises its own proposals (and not those of a
	// previous incarnation with the same node id).
	proposer uint64

	proposeC chan *proposal
	stepC    chan *pb.Message
	reportC  chan func(*raft.RawNode)
	queryC   chan func(*raft.RawNode)
	stopC    chan struct{}
	doneC    chan struct{} // closed when the Ready loop has exited
	loopErr  error         // why the loop exited, if it failed; read after doneC

	closeOnce sync.Once
	closeErr  error

	pub    atomic.Pointer[published]
	status atomic.Pointer[status]
	// members is the applied membership, for readers outside the loop.
	members atomic.Pointer[pb.ConfState]
	// addrsPub is a copy of addrs for readers outside the loop.
	addrsPub atomic.Pointer[map[int32]string]
	// snapshotsReceived counts snapshots installed from the leader.
	snapshotsReceived atomic.Int64

	// Owned by the Ready loop.
	rn        *raft.RawNode
	seq       uint64
	pending   map[uint64]*proposal
	confState *pb.ConfState
	// addrs are the addresses of learners added with one (membership.go).
	addrs map[int32]string
	// contact is when a message from each peer (raft id) last arrived.
	contact map[uint64]time.Time
	// gone is the leader this node found gone and campaigns to replace
	// (leader_gone.go).
	gone goneLeader
}

// published is an image together with the channel closed when it is
// replaced, swapped as one value so a reader never pairs an image with the
// wrong notification.
type published struct {
	img     *Image
	changed chan struct{}
}

// status is the raft state visible outside the loop, replaced as a whole.
type status struct {
	leader   uint64 // raft id, raft.None if unknown
	isLeader bool
	term     uint64
	commit   uint64
	changed  chan struct{}
}

type proposal struct {
	records []Record
	seq     uint64
	done    chan proposalResult // buffered: the loop never blocks on it
}

type proposalResult struct {
	img *Image
	err error
}

// Start opens (or creates) the metadata store in cfg.Dir, restores the
// image from the latest snapshot plus the committed entries after it, and
// starts the Ready loop. It returns once the image reflects everything
// committed before the restart. With a single voter the node campaigns at
// once and becomes leader within the first Ready cycle.
func Start(cfg Config) (*Node, error) {
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("raftmeta: invalid node id %d", cfg.NodeID)
	}
	if cfg.Dir == "" {
		return nil, errors.New("raftmeta: no metadata directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = defaultTickInterval
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = defaultSnapshotEvery
	}
	if len(cfg.Voters) == 0 {
		cfg.Voters = map[int32]string{cfg.NodeID: ""}
	}
	for id := range cfg.Voters {
		if id < 0 {
			return nil, fmt.Errorf("raftmeta: invalid voter id %d", id)
		}
	}
	for _, id := range cfg.Learners {
		if id < 0 {
			return nil, fmt.Errorf("raftmeta: invalid learner id %d", id)
		}
		if _, ok := cfg.Voters[id]; ok {
			return nil, fmt.Errorf("raftmeta: node %d is both a voter and a learner", id)
		}
	}
	if cfg.Transport == nil {
		if len(cfg.Voters) > 1 || len(cfg.Learners) > 0 {
			return nil, errors.New("raftmeta: a quorum of several members needs a Transport")
		}
		cfg.Transport = noopTransport{}
	}
	log := cfg.Logger.With("component", "raftmeta", "node", cfg.NodeID)

	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftmeta: %w", err)
	}
	st, err := openStorage(filepath.Join(cfg.Dir, "raft"), log)
	if err != nil {
		return nil, err
	}
	n, err := start(cfg, log, st)
	if err != nil {
		st.close()
		return nil, err
	}
	return n, nil
}

func start(cfg Config, log *slog.Logger, st *storage) (*Node, error) {
	if st.empty() {
		clusterID := cfg.ClusterID
		if clusterID == "" {
			clusterID = newClusterID()
		}
		img, err := newImage(clusterID).apply(1, cfg.Bootstrap)
		if err != nil {
			return nil, fmt.Errorf("raftmeta: bootstrap records: %w", err)
		}
		cs := &pb.ConfState{AutoLeave: new(false)}
		for _, id := range slices.Sorted(maps.Keys(cfg.Voters)) {
			cs.Voters = append(cs.Voters, raftID(id))
		}
		for _, id := range slices.Sorted(slices.Values(cfg.Learners)) {
			if r := raftID(id); !slices.Contains(cs.Learners, r) {
				cs.Learners = append(cs.Learners, r)
			}
		}
		if err := st.bootstrap(cs, encodeImage(img)); err != nil {
			return nil, fmt.Errorf("raftmeta: bootstrap: %w", err)
		}
		log.Info("created metadata log", "cluster_id", clusterID, "voters", slices.Sorted(maps.Keys(cfg.Voters)), "learners", cfg.Learners)
	}

	snap, _ := st.Snapshot()
	img, addrs, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return nil, fmt.Errorf("raftmeta: restore snapshot: %w", err)
	}
	img.Applied = snap.GetMetadata().GetIndex()
	if cfg.ClusterID != "" && cfg.ClusterID != img.ClusterID {
		log.Warn("configured cluster id differs from the one in the metadata log; keeping the log's", "configured", cfg.ClusterID, "log", img.ClusterID)
	}

	_, cs, _ := st.InitialState()
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              raftID(cfg.NodeID),
		ElectionTick:    electionTicks,
		HeartbeatTick:   heartbeatTicks,
		Storage:         st,
		Applied:         img.Applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// Committed-but-unapplied entries are replayed through the normal
		// apply path after a restart, in Ready batches of this size.
		MaxCommittedSizePerReady:  16 << 20,
		MaxUncommittedEntriesSize: 64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		// Only the leader proposes: the controller decides against the
		// leader's image, so a follower's decision would be stale.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{log},
	})
	if err != nil {
		return nil, fmt.Errorf("raftmeta: %w", err)
	}

	n := &Node{
		cfg:       cfg,
		log:       log,
		st:        st,
		transport: cfg.Transport,
		proposer:  randomUint64(),
		proposeC:  make(chan *proposal),
		stepC:     make(chan *pb.Message, 256),
		reportC:   make(chan func(*raft.RawNode), 256),
		queryC:    make(chan func(*raft.RawNode)),
		contact:   map[uint64]time.Time{},
		stopC:     make(chan struct{}),
		doneC:     make(chan struct{}),
		rn:        rn,
		pending:   map[uint64]*proposal{},
		confState: cs,
	}
	hs := st.hardState()
	n.members.Store(cs)
	n.pub.Store(&published{img: img, changed: make(chan struct{})})
	n.status.Store(&status{term: hs.GetTerm(), commit: hs.GetCommit(), changed: make(chan struct{})})

	// A transport that delivers inbound messages needs to know where to.
	if s, ok := cfg.Transport.(interface{ SetNode(MessageHandler) }); ok {
		s.SetNode(n)
	}
	// The transport learns the learners' addresses the snapshot knows;
	// the entries re-applied below teach it later changes.
	n.setAddrs(addrs)

	// A sole voter needs no election timeout: nobody else can win.
	if len(cs.GetVoters()) == 1 && cs.GetVoters()[0] == raftID(cfg.NodeID) && len(cs.GetVotersOutgoing()) == 0 {
		if err := rn.Campaign(); err != nil {
			return nil, fmt.Errorf("raftmeta: campaign: %w", err)
		}
	}

	go n.run()

	// Wait until the loop has re-applied what was committed before the
	// restart, so callers start from the complete image.
	ctx := context.Background()
	if err := n.waitApplied(ctx, hs.GetCommit()); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func newClusterID() string {
	id := uuid.New()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func randomUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// Close stops the Ready loop, fails pending proposals with ErrClosed and
// closes the store. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stopC)
		<-n.doneC
		n.closeErr = errors.Join(n.loopErr, n.st.close())
	})
	return n.closeErr
}

// Image returns the current image. It is immutable; see Image.
func (n *Node) Image() *Image { return n.pub.Load().img }

// Changed returns a channel closed the next time the image changes. To
// react to changes without missing one, take Changed before Image, or use
// Watch.
func (n *Node) Changed() <-chan struct{} { return n.pub.Load().changed }

// Watch returns the current image and the channel closed when it is
// replaced, as one consistent pair.
func (n *Node) Watch() (*Image, <-chan struct{}) {
	p := n.pub.Load()
	return p.img, p.changed
}

// Done returns a channel closed when the Ready loop has stopped, after
// Close or a storage failure.
func (n *Node) Done() <-chan struct{} { return n.doneC }

// IsLeader reports whether this node is the raft leader, i.e. the active
// controller.
func (n *Node) IsLeader() bool { return n.status.Load().isLeader }

// LeaderID returns the node id of the current leader, or -1 if unknown.
func (n *Node) LeaderID() int32 { return nodeID(n.status.Load().leader) }

// SnapshotsReceived returns how many snapshots this node has installed
// from a leader since it started (a follower too far behind the compacted
// log catches up that way).
func (n *Node) SnapshotsReceived() int64 { return n.snapshotsReceived.Load() }

// Term returns the current raft term.
func (n *Node) Term() uint64 { return n.status.Load().term }

// CommitIndex returns the highest raft index known to be committed.
func (n *Node) CommitIndex() uint64 { return n.status.Load().commit }

// WaitLeader blocks until some node is known to be leader.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		s := n.status.Load()
		if s.leader != raft.None {
			return nil
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.doneC:
			return ErrClosed
		}
	}
}

// WaitFor blocks until cond holds for the current image and returns that
// image.
func (n *Node) WaitFor(ctx context.Context, cond func(*Image) bool) (*Image, error) {
	for {
		img, changed := n.Watch()
		if cond(img) {
			return img, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.doneC:
			return nil, ErrClosed
		}
	}
}

func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	_, err := n.WaitFor(ctx, func(img *Image) bool { return img.Applied >= index })
	if errors.Is(err, ErrClosed) && n.loopErr != nil {
		return n.loopErr
	}
	return err
}

// Propose appends one raft entry holding recs, which apply atomically, and
// waits until this node has applied it. It returns the image right after
// the entry. Only the leader proposes; elsewhere it fails with
// ErrNotController. If the records are invalid against the image when the
// entry is applied, none of them takes effect and the error says why.
//
// If ctx ends first the entry may still commit and apply later.
func (n *Node) Propose(ctx context.Context, recs ...Record) (*Image, error) {
	if len(recs) == 0 {
		return nil, errorf(kerr.InvalidRequest, "empty proposal")
	}
	select {
	case <-n.doneC:
		return nil, ErrClosed
	default:
	}
	if !n.IsLeader() {
		return nil, ErrNotController
	}
	p := &proposal{records: recs, done: make(chan proposalResult, 1)}
	select {
	case n.proposeC <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.doneC:
		return nil, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.img, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.doneC:
		// The loop fails pending proposals on its way out; prefer that
		// answer if it is there.
		select {
		case r := <-p.done:
			return r.img, r.err
		default:
			return nil, ErrClosed
		}
	}
}

// Step hands a raft message received from a peer to the Ready loop.
func (n *Node) Step(ctx context.Context, m *pb.Message) error {
	select {
	case n.stepC <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrClosed
	}
}

// ReportUnreachable tells raft that a peer could not be reached, so it
// stops optimistic replication to it. It never blocks; reports that do not
// fit the queue are dropped (raft recovers without them).
func (n *Node) ReportUnreachable(nodeID int32) {
	n.report(func(rn *raft.RawNode) { rn.ReportUnreachable(raftID(nodeID)) })
}

// ReportSnapshot tells raft whether a snapshot sent to a peer arrived.
func (n *Node) ReportSnapshot(nodeID int32, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	n.report(func(rn *raft.RawNode) { rn.ReportSnapshot(raftID(nodeID), st) })
}

func (n *Node) report(f func(*raft.RawNode)) {
	select {
	case n.reportC <- f:
	default:
	}
}
