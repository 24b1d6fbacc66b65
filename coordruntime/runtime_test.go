package coordruntime

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/internal/testwait"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// node is one coordinator runtime over real partition logs and stores in
// temporary directories, with a metadata image the test sets by hand: the
// parts of a broker the runtime sees through Env, and nothing else.
type node struct {
	t    *testing.T
	logs *log.Manager
	rt   *Runtime

	mu  sync.Mutex
	img *raftmeta.Image

	// replayed counts the records loads replayed from the log.
	replayed atomic.Int64
	// hold, when set, blocks the next append until it is closed; entered
	// is signalled when that append has begun.
	hold    chan struct{}
	entered chan struct{}

	// nextPID hands out producer ids; markers records the marker jobs the
	// transaction coordinator sent, and failMarkers makes writing them fail.
	nextPID     atomic.Int64
	markersMu   sync.Mutex
	markers     []coordinator.TxnMarkers
	failMarkers atomic.Bool

	// created records the topics the runtime asked to create.
	created []raftmeta.CreateTopicRequest
}

const self = 1

func newNode(t *testing.T) *node {
	t.Helper()
	logs, logger := testLogs(t)
	n := &node{t: t, logs: logs, img: &raftmeta.Image{
		Brokers: map[int32]*raftmeta.Broker{self: {ID: self}, 2: {ID: 2}},
		Topics:  map[string]*raftmeta.Topic{}, TopicIDs: map[[16]byte]string{},
	}}
	n.addTopic("orders", 1, 50)
	cfg := Config{Dir: t.TempDir(), Groups: coordinator.DefaultConfig(), OffsetsRetentionCheck: time.Hour,
		OffsetsTopic:    TopicSpec{Partitions: 1, ReplicationFactor: 1, SegmentBytes: 1 << 20},
		ShareStateTopic: TopicSpec{Partitions: 1, ReplicationFactor: 1, SegmentBytes: 1 << 20},
		Txns: TxnConfig{State: coordinator.DefaultTxnConfig(), AbortInterval: time.Hour,
			Topic: TopicSpec{Partitions: 1, ReplicationFactor: 1, SegmentBytes: 1 << 20}}}
	var err error
	n.rt, err = New(context.Background(), cfg, Env{NodeID: self, Image: n.image, Now: time.Now, Logger: logger,
		Appender: n, Replicas: n, Topics: n, Loaded: func(_ string, k int) { n.replayed.Add(int64(k)) }}, n, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// shareStateReady creates the share-state topic and returns the share
// coordinator.
func (n *node) shareStateReady() *ShareCoordinator {
	n.t.Helper()
	if err := n.rt.ShareState.EnsureTopic(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	return n.rt.ShareState
}

func (n *node) image() *raftmeta.Image {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.img
}

// addTopic adds a topic whose partitions this node leads.
func (n *node) addTopic(name string, partitions int, id byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := &raftmeta.Topic{Name: name, ID: [16]byte{id}, Configs: map[string]string{}}
	for range partitions {
		t.Partitions = append(t.Partitions, raftmeta.PartitionState{Replicas: []int32{self, 2}, ISR: []int32{self, 2}, Leader: self})
	}
	n.img.Topics[name], n.img.TopicIDs[t.ID] = t, name
}

// setLeader moves the leadership of a partition, with a new leader epoch,
// and hands the runtime the new image.
func (n *node) setLeader(topic string, part int32, leader int32) {
	n.mu.Lock()
	img := *n.img
	img.Topics = map[string]*raftmeta.Topic{}
	for k, v := range n.img.Topics {
		img.Topics[k] = v
	}
	t := *img.Topics[topic]
	t.Partitions = append([]raftmeta.PartitionState(nil), t.Partitions...)
	t.Partitions[part].Leader = leader
	t.Partitions[part].LeaderEpoch++
	img.Topics[topic] = &t
	n.img = &img
	n.mu.Unlock()
	n.rt.Reconcile(&img)
}

// AppendCommitted appends as the only replica in sync: the HW follows. As
// the replica runtime does, it refuses a batch unless the image names this
// node leader at ps's leader epoch, holding the image while it appends.
func (n *node) AppendCommitted(_ context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) (log.AppendResult, error) {
	if n.hold != nil {
		hold := n.hold
		n.hold = nil
		n.entered <- struct{}{}
		<-hold
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.img.Topics[p.Topic()]; !t.HasPartition(p.Index()) || t.Partitions[p.Index()].Leader != self ||
		t.Partitions[p.Index()].LeaderEpoch != ps.LeaderEpoch {
		return log.AppendResult{}, kerr.NotLeaderForPartition
	}
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return log.AppendResult{}, err
	}
	res, err := p.Append(batch, h, ps.LeaderEpoch, now)
	if err != nil {
		return res, err
	}
	p.SetHighWatermark(p.LogEndOffset())
	return res, nil
}

func (n *node) LeaderReady(t *raftmeta.Topic, idx int32) *log.Partition {
	if t.Partitions[idx].Leader != self {
		return nil
	}
	p := n.Replica(t.Name, idx)
	if p.HighWatermark() < p.LogEndOffset() {
		return nil
	}
	return p
}

// Replica returns the local replica, creating it: this node is a replica
// of every partition.
func (n *node) Replica(topic string, idx int32) *log.Partition {
	t := n.image().Topics[topic]
	if p := n.logs.Partition(topic, idx); p != nil {
		return p
	}
	return createCompacted(n.t, n.logs, topic, idx, t.ID)
}

func (n *node) CreateTopic(_ context.Context, req raftmeta.CreateTopicRequest) error {
	n.mu.Lock()
	n.created = append(n.created, req)
	n.mu.Unlock()
	n.addTopic(req.Name, int(req.NumPartitions), byte(len(n.image().Topics)+1))
	n.rt.Reconcile(n.image())
	return nil
}

func (n *node) commit(group string, offset int64) *kerr.Error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = group, -1
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{rp}}}
	var resp *kmsg.OffsetCommitResponse
	if kerrv := n.rt.Groups.Do(group, func(s *coordinator.Shard) { resp = s.OffsetCommit(time.Now(), req, ImageTopics(n.image())) }); kerrv != nil {
		return kerrv
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		n.t.Fatalf("commit answered error %d", code)
	}
	return nil
}

// committed returns a group's committed offset of orders-0 (-1: none).
func (n *node) committed(group string) (int64, *kerr.Error) {
	off := int64(-1)
	kerrv := n.rt.Groups.Do(group, func(s *coordinator.Shard) {
		s.EachOffset(func(g, topic string, partition int32, o int64) {
			if g == group && topic == "orders" && partition == 0 {
				off = o
			}
		})
	})
	return off, kerrv
}

// A group shard follows the leadership of its __consumer_offsets
// partition: loaded where it is led, unloaded when leadership moves away
// (its store then follows the replica), and reloaded with everything the
// other leader wrote meanwhile when leadership comes back, from the store
// rather than from the log.
func TestGroupShardFailover(t *testing.T) {
	n := newNode(t)
	if _, kerrv := n.committed("g"); kerrv != kerr.CoordinatorNotAvailable {
		t.Fatalf("before %s exists: %v, want COORDINATOR_NOT_AVAILABLE", OffsetsTopic, kerrv)
	}
	if err := n.rt.Groups.EnsureTopic(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kerrv := n.commit("g", 42); kerrv != nil {
		t.Fatal(kerrv)
	}
	p := n.logs.Partition(OffsetsTopic, 0)
	st := n.rt.Groups.topic.store.store
	// The leader's store catches up with its commits in the background.
	testwait.For(t, "the leader's store to reach the log end", func() bool {
		applied, err := st.Applied(0)
		return err == nil && applied == p.LogEndOffset()-1
	})

	// Node 2 takes over: this node answers NOT_COORDINATOR and follows.
	n.setLeader(OffsetsTopic, 0, 2)
	if _, kerrv := n.committed("g"); kerrv != kerr.NotCoordinator {
		t.Fatalf("after losing leadership: %v, want NOT_COORDINATOR", kerrv)
	}
	// What node 2 writes reaches this replica: a commit of 43 by its shard.
	other := coordinator.NewShard(coordinator.DefaultConfig())
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = "g", -1
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 43
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{rp}}}
	other.OffsetCommit(time.Now(), req, ImageTopics(n.image()))
	var brs []log.Record
	for _, r := range other.Drain() {
		brs = append(brs, log.Record{Key: r.Key, Value: r.Value})
	}
	b := log.EncodeBatch(brs, time.Now())
	h, err := log.ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(b, h, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	p.SetHighWatermarkFollower(p.LogEndOffset())
	n.rt.FollowerAdvanced(OffsetsTopic)
	testwait.For(t, "the follower store to reach the log end", func() bool {
		applied, err := st.Applied(0)
		n.rt.FollowerAdvanced(OffsetsTopic)
		return err == nil && applied == p.LogEndOffset()-1
	})

	// Leadership comes back: the shard reloads with node 2's commit, all
	// of it from the store.
	n.replayed.Store(0)
	n.setLeader(OffsetsTopic, 0, self)
	off, kerrv := n.committed("g")
	if kerrv != nil || off != 43 {
		t.Fatalf("after reloading: offset %d (%v), want 43", off, kerrv)
	}
	if r := n.replayed.Load(); r != 0 {
		t.Fatalf("the reload replayed %d records from the log; the follower store had them all", r)
	}
}

// A failed append leaves the shard's memory ahead of its log: the call
// fails with NOT_COORDINATOR, and the next call finds the shard reloaded
// from the log, without the change that was not written, while this node
// still leads the partition (as the transaction shard does).
func TestGroupShardFailedAppendReloads(t *testing.T) {
	n := newNode(t)
	if err := n.rt.Groups.EnsureTopic(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kerrv := n.commit("g", 1); kerrv != nil {
		t.Fatal(kerrv)
	}
	// The image briefly names another topic id, so the append is refused
	// (any append error does the same).
	n.mu.Lock()
	orig := n.img.Topics[OffsetsTopic]
	replaced := *orig
	replaced.ID = [16]byte{99}
	n.img.Topics[OffsetsTopic] = &replaced
	n.mu.Unlock()
	if kerrv := n.commit("g", 2); kerrv != kerr.NotCoordinator {
		t.Fatalf("commit that could not be appended: %v, want NOT_COORDINATOR", kerrv)
	}
	n.mu.Lock()
	n.img.Topics[OffsetsTopic] = orig
	n.mu.Unlock()
	if off, kerrv := n.committed("g"); kerrv != nil || off != 1 {
		t.Fatalf("after the failed append: offset %d (%v), want 1, the last commit the log holds", off, kerrv)
	}
	if kerrv := n.commit("g", 3); kerrv != nil {
		t.Fatalf("commit on the reloaded shard: %v", kerrv)
	}
	if off, kerrv := n.committed("g"); kerrv != nil || off != 3 {
		t.Fatalf("after a commit on the reloaded shard: offset %d (%v), want 3", off, kerrv)
	}
}

func shareKey(part int32) coordinator.ShareKey {
	return coordinator.ShareKey{Group: "sg", TopicID: [16]byte{50}, Partition: part}
}

func shareState(start int64, leaderEpoch int32) *coordinator.ShareState {
	st := &coordinator.ShareState{LeaderEpoch: leaderEpoch}
	st.StartOffset, st.StateEpoch = start, 1
	st.Batches = []queue.StateBatch{{First: start, Last: start + 1, State: queue.Acknowledged, DeliveryCount: 1}}
	return st
}

// The share state writer reports every queued change once its batch is
// durable, and changes queued while a batch is written go out together in
// the next one with only the newest state of each key, in the order they
// were queued: what the log and a reload hold is the newest state.
func TestShareStateWriteLoopKeepsNewest(t *testing.T) {
	n := newNode(t)
	sc := n.shareStateReady()
	a, b := shareKey(0), shareKey(1)
	if _, _, kerrv := sc.Read(a); kerrv != nil {
		t.Fatalf("read after the topic was created: %v", kerrv)
	}

	// The first write is held in its append while more queue up behind it.
	hold := make(chan struct{})
	n.hold, n.entered = hold, make(chan struct{}, 1)
	first := sc.Enqueue(a, shareState(10, 0))
	<-n.entered
	var queued []<-chan error
	for _, start := range []int64{11, 12, 13} {
		queued = append(queued, sc.Enqueue(a, shareState(start, 0)))
	}
	queued = append(queued, sc.Enqueue(b, shareState(100, 0)))
	close(hold)
	for i, ch := range append([]<-chan error{first}, queued...) {
		if err := <-ch; err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if st, ok, kerrv := sc.Read(a); kerrv != nil || !ok || st.StartOffset != 13 {
		t.Fatalf("read a: %+v %v %v, want start offset 13", st, ok, kerrv)
	}

	// The log holds a's first state, then one batch with a's newest and b.
	p := n.logs.Partition(ShareStateTopic, 0)
	var got []string
	if _, _, err := readLog(p, 0, p.HighWatermark(), 0, func(r log.Record) {
		k, err := coordinator.DecodeShareKey(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		st, err := coordinator.DecodeShareState(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.String()+"@"+strconv.FormatInt(st.StartOffset, 10))
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{a.String() + "@10", a.String() + "@13", b.String() + "@100"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("log holds %v, want %v", got, want)
	}

	// An older leader epoch is fenced.
	if err := <-sc.Enqueue(a, shareState(5, -1)); err != kerr.FencedLeaderEpoch {
		t.Fatalf("write from an older leader epoch: %v, want FENCED_LEADER_EPOCH", err)
	}

	// Leadership away and back: the reload has the newest states.
	n.setLeader(ShareStateTopic, 0, 2)
	if _, _, kerrv := sc.Read(a); kerrv != kerr.NotCoordinator {
		t.Fatalf("read after losing leadership: %v, want NOT_COORDINATOR", kerrv)
	}
	n.setLeader(ShareStateTopic, 0, self)
	sum, ok, kerrv := sc.Summary(b)
	if kerrv != nil || !ok || sum.StartOffset != 100 || sum.DeliveryComplete != 2 {
		t.Fatalf("summary of b after the reload: %+v %v %v", sum, ok, kerrv)
	}
}

// Initialize refuses an older state epoch; Delete removes the state.
func TestShareStateInitializeAndDelete(t *testing.T) {
	n := newNode(t)
	sc := n.shareStateReady()
	ctx := context.Background()
	k := shareKey(3)
	if err := sc.Initialize(ctx, k, 2, 7); err != nil {
		t.Fatal(err)
	}
	if err := sc.Initialize(ctx, k, 1, 0); err != kerr.FencedStateEpoch {
		t.Fatalf("initialize with an older state epoch: %v, want FENCED_STATE_EPOCH", err)
	}
	if st, ok, _ := sc.Read(k); !ok || st.StartOffset != 7 || st.StateEpoch != 2 || len(st.Batches) != 0 {
		t.Fatalf("after initialize: %+v %v", st, ok)
	}
	if err := sc.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, ok, kerrv := sc.Read(k); ok || kerrv != nil {
		t.Fatalf("after delete: found %v, %v", ok, kerrv)
	}
}

// A share-state write with an older state epoch than the stored one (a
// share-partition leader that has not yet seen an AlterShareGroupOffsets,
// or one that lost a failover) is refused with FENCED_STATE_EPOCH, also
// when it is queued in the same group commit right behind the newer state:
// the newer state is what stays.
func TestShareStateWriteFencesOlderStateEpoch(t *testing.T) {
	n := newNode(t)
	sc := n.shareStateReady()
	ctx := context.Background()
	k := shareKey(4)
	if err := sc.Initialize(ctx, k, 2, 7); err != nil {
		t.Fatal(err)
	}
	stale := shareState(3, 0) // state epoch 1
	if err := <-sc.Enqueue(k, stale); err != kerr.FencedStateEpoch {
		t.Fatalf("write with an older state epoch: %v, want FENCED_STATE_EPOCH", err)
	}
	if st, _, _ := sc.Read(k); st.StateEpoch != 2 || st.StartOffset != 7 {
		t.Fatalf("a refused write was stored: %+v, want state epoch 2 at 7", st)
	}

	// The same race within one batch: a newer epoch queued, then a stale one.
	hold := make(chan struct{})
	n.hold, n.entered = hold, make(chan struct{}, 1)
	first := sc.Enqueue(shareKey(5), shareState(0, 0))
	<-n.entered
	newer := shareState(20, 0)
	newer.StateEpoch = 3
	newerDone := sc.Enqueue(k, newer)
	staleDone := sc.Enqueue(k, stale)
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-newerDone; err != nil {
		t.Fatalf("write with the newer state epoch: %v", err)
	}
	if err := <-staleDone; err != kerr.FencedStateEpoch {
		t.Fatalf("stale write queued behind a newer one: %v, want FENCED_STATE_EPOCH", err)
	}
	if st, ok, _ := sc.Read(k); !ok || st.StateEpoch != 3 || st.StartOffset != 20 {
		t.Fatalf("after the race: %+v %v, want state epoch 3 at 20", st, ok)
	}
}

// An image can reach Reconcile after a newer one (two goroutines apply
// images: the metadata watcher and a coordinator that just created its
// topic). The older image must not unload the shards the newer one
// loaded: no newer image may follow to load them again, and the
// coordinator would answer COORDINATOR_LOAD_IN_PROGRESS for good.
func TestReconcileIgnoresAnOlderImage(t *testing.T) {
	n := newNode(t)
	n.mu.Lock()
	n.img.Applied = 7
	older := *n.img
	older.Topics = maps.Clone(n.img.Topics)
	n.img.Applied = 8
	n.mu.Unlock()
	if err := n.rt.ShareState.EnsureTopic(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := coordinator.ShareKey{Group: "g", TopicID: [16]byte{50}, Partition: 0}
	if _, _, kerrv := n.rt.ShareState.Read(key); kerrv != nil {
		t.Fatalf("after creating %s: %v", ShareStateTopic, kerrv)
	}
	n.rt.Reconcile(&older)
	if _, _, kerrv := n.rt.ShareState.Read(key); kerrv != nil {
		t.Fatalf("after reconciling an older image without %s: %v, want the shard still loaded", ShareStateTopic, kerrv)
	}
}

// A new leader of a share partition reads its state with its leader epoch
// (ReadShareGroupState's LeaderEpoch): from then on the previous leader's
// writes are fenced, so nothing it acknowledges after the new leader read
// the state can be silently overwritten. The claim reads in write order:
// a write queued before it is in the state it returns.
func TestShareStateLeaderClaimFencesThePreviousLeader(t *testing.T) {
	n := newNode(t)
	sc := n.shareStateReady()
	ctx := context.Background()
	k := shareKey(6)
	if _, found, err := sc.ReadAsLeader(ctx, k, 3); err != nil || found {
		t.Fatalf("claim of a key with no state: found %v, %v", found, err)
	}
	if err := sc.Write(ctx, k, shareState(10, 1)); err != nil {
		t.Fatal(err)
	}

	// The previous leader (epoch 1) writes; the new one (epoch 2) claims
	// behind it in the same batch, then the previous leader writes again.
	hold := make(chan struct{})
	n.hold, n.entered = hold, make(chan struct{}, 1)
	first := sc.Enqueue(shareKey(7), shareState(0, 0))
	<-n.entered
	before := sc.Enqueue(k, shareState(11, 1))
	type claimed struct {
		st    coordinator.ShareState
		found bool
		err   error
	}
	claimDone := make(chan claimed, 1)
	go func() {
		st, found, err := sc.ReadAsLeader(ctx, k, 2)
		claimDone <- claimed{st, found, err}
	}()
	testwait.For(t, "the claim to be queued", func() bool {
		sp, _ := sc.partFor(k)
		sp.qmu.Lock()
		defer sp.qmu.Unlock()
		return len(sp.queue) == 2
	})
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-before; err != nil {
		t.Fatalf("previous leader's write queued before the claim: %v", err)
	}
	c := <-claimDone
	if c.err != nil || !c.found || c.st.StartOffset != 11 || c.st.LeaderEpoch != 2 {
		t.Fatalf("claim at epoch 2: %+v found %v err %v, want the state at 11 with leader epoch 2", c.st, c.found, c.err)
	}
	if err := sc.Write(ctx, k, shareState(12, 1)); err != kerr.FencedLeaderEpoch {
		t.Fatalf("previous leader's write after the claim: %v, want FENCED_LEADER_EPOCH", err)
	}
	if _, _, err := sc.ReadAsLeader(ctx, k, 1); err != kerr.FencedLeaderEpoch {
		t.Fatalf("claim with an older epoch: %v, want FENCED_LEADER_EPOCH", err)
	}
	if st, _, _ := sc.Read(k); st.StartOffset != 11 || st.LeaderEpoch != 2 {
		t.Fatalf("stored state %+v, want start 11 at leader epoch 2", st)
	}
}

// An internal topic is created with its min.insync.replicas capped at the
// replication factor it gets, so that a small cluster can still write its
// state; the share-state topic asks for two in-sync replicas by default,
// as Kafka's share.coordinator.state.topic.min.isr does.
func TestInternalTopicMinISR(t *testing.T) {
	if got := ConfigFrom(mustBroker(t)).ShareStateTopic.MinISR; got != 2 {
		t.Fatalf("default share-state min ISR %d, want 2", got)
	}
	for _, tc := range []struct {
		rf       int16
		minISR   int
		wantRF   int16
		wantConf string
	}{
		{rf: 3, minISR: 2, wantRF: 2, wantConf: "2"}, // two brokers: RF 2 keeps min ISR 2
		{rf: 3, minISR: 3, wantRF: 2, wantConf: "2"}, // capped at the RF it gets
		{rf: 1, minISR: 2, wantRF: 1, wantConf: "1"},
	} {
		n := newNode(t)
		n.rt.ShareState.topic.spec.ReplicationFactor, n.rt.ShareState.topic.spec.MinISR = tc.rf, tc.minISR
		n.shareStateReady()
		n.mu.Lock()
		created := n.created
		n.mu.Unlock()
		if len(created) != 1 || created[0].Name != ShareStateTopic {
			t.Fatalf("created %+v, want %s once", created, ShareStateTopic)
		}
		got := created[0].Configs["min.insync.replicas"]
		if created[0].ReplicationFactor != tc.wantRF || got == nil || *got != tc.wantConf {
			t.Fatalf("rf %d min ISR %d: created with RF %d and min.insync.replicas %v, want %d and %s",
				tc.rf, tc.minISR, created[0].ReplicationFactor, got, tc.wantRF, tc.wantConf)
		}
	}
}

func mustBroker(t *testing.T) *config.Broker {
	t.Helper()
	b, err := config.NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
