package share

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/internal/testclock"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// The share runtime without a socket: real partition logs in a temp dir,
// the metadata image, clock, share coordinator, peers and replica runtime
// played by the test.

const self = int32(1)

type harness struct {
	t        testing.TB
	clock    *testclock.Clock
	logs     *log.Manager
	img      atomic.Pointer[raftmeta.Image]
	replicas *fakeReplicas
	coord    *fakeCoordinator
	peers    *fakePeers
	m        *Manager
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	logs, err := log.Open(log.ManagerConfig{Dirs: []string{t.TempDir()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	cfg, err := config.NewBroker(map[string]string{"node.id": "1", "process.roles": "broker,controller"})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: testclock.New(time.Unix(1_700_000_000, 0)), logs: logs}
	h.img.Store(&raftmeta.Image{Topics: map[string]*raftmeta.Topic{}, TopicIDs: map[[16]byte]string{}, GroupConfigs: map[string]map[string]string{}})
	h.replicas = &fakeReplicas{h: h}
	h.coord = &fakeCoordinator{states: map[coordinator.ShareKey]coordinator.ShareState{}}
	h.peers = &fakePeers{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var producerIDs atomic.Int64
	h.m = New(Deps{
		Ctx: ctx, Config: cfg, Image: h.img.Load, Now: h.clock.Now,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Replicas: h.replicas, Coordinator: h.coord, Peers: h.peers, Metrics: nopMetrics{},
		NextProducerID: func(context.Context) (int64, error) { return 1000 + producerIDs.Add(1), nil },
	})
	// The test drives lock expiry itself (tick), on its clock.
	h.m.timers.close()
	h.m.timers = newDeadlineHeap(h.clock.Now, h.m.fire)
	return h
}

// addTopic adds a topic to the image, led by leader with leader epoch 5.
func (h *harness) addTopic(name string, id byte, partitions int, leader int32, configs map[string]string) *raftmeta.Topic {
	old := h.img.Load()
	img := *old
	img.Topics = map[string]*raftmeta.Topic{}
	img.TopicIDs = map[[16]byte]string{}
	for k, v := range old.Topics {
		img.Topics[k] = v
	}
	for k, v := range old.TopicIDs {
		img.TopicIDs[k] = v
	}
	if configs == nil {
		configs = map[string]string{}
	}
	t := &raftmeta.Topic{Name: name, ID: [16]byte{id}, Configs: configs}
	for range partitions {
		t.Partitions = append(t.Partitions, raftmeta.PartitionState{Replicas: []int32{leader}, ISR: []int32{leader}, Leader: leader, LeaderEpoch: 5})
	}
	img.Topics[name], img.TopicIDs[t.ID] = t, name
	h.img.Store(&img)
	return t
}

func (h *harness) setGroupConfig(group string, cfg map[string]string) {
	img := *h.img.Load()
	img.GroupConfigs = map[string]map[string]string{group: cfg}
	h.img.Store(&img)
}

// produce appends records with the given values to a partition and makes
// them visible (high watermark at the end).
func (h *harness) produce(t *raftmeta.Topic, partition int32, values ...string) {
	h.t.Helper()
	recs := make([]log.Record, len(values))
	for i, v := range values {
		recs[i] = log.Record{Value: []byte(v)}
	}
	h.appendBatch(t, partition, recs)
}

// appendBatch appends recs as one batch to a partition and makes them
// visible (high watermark at the end).
func (h *harness) appendBatch(t *raftmeta.Topic, partition int32, recs []log.Record) {
	h.t.Helper()
	p, _, kerrv := h.replicas.LeaderPartition(t, partition)
	if kerrv != nil {
		h.t.Fatal(kerrv)
	}
	b := log.EncodeBatch(recs, h.clock.Now())
	hdr, err := log.ParseBatchHeader(b)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := p.Append(b, hdr, 5, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	p.SetHighWatermark(p.LogEndOffset())
}

// tick fires the share partitions whose deadline passed on the clock, as
// the deadline loop does.
func (h *harness) tick() {
	due, _ := h.m.timers.popDue(h.clock.Now(), nil)
	for _, sp := range due {
		h.m.fire(sp)
	}
}

// collect is a Sink that keeps what it is given.
type collect struct {
	failed   map[TopicPart]int16
	acquired map[TopicPart][][2]int64
	counts   map[int64]int16
	batches  map[TopicPart][]byte // the record batches sent
}

func newCollect() *collect {
	return &collect{failed: map[TopicPart]int16{}, acquired: map[TopicPart][][2]int64{}, counts: map[int64]int16{},
		batches: map[TopicPart][]byte{}}
}

func (c *collect) Failed(tp TopicPart, code int16) { c.failed[tp] = code }
func (c *collect) Acquired(tp TopicPart, records []byte, ranges []queue.AcquiredRange) {
	c.batches[tp] = append(c.batches[tp], records...)
	for _, r := range ranges {
		c.acquired[tp] = append(c.acquired[tp], [2]int64{r.First, r.Last})
		for o := r.First; o <= r.Last; o++ {
			c.counts[o] = r.DeliveryCount
		}
	}
}

// fakeReplicas leads every partition the image says this node leads, on
// real logs. It reports a leader lookup made while a share partition's lock
// is held: a lookup may create a partition on disk.
type fakeReplicas struct {
	h *harness

	mu       sync.Mutex
	appended map[string][][]byte // batches appended, by topic
}

func (r *fakeReplicas) LeaderPartition(t *raftmeta.Topic, partition int32) (*log.Partition, raftmeta.PartitionState, *kerr.Error) {
	// A lock another goroutine holds is released soon; one this goroutine
	// holds never is. So a lock still held after the deadline is the
	// caller's (or a deadlock, as bad).
	for _, sp := range r.h.m.loaded() {
		deadline := time.Now().Add(2 * time.Second)
		locked := sp.mu.TryLock()
		for ; !locked && time.Now().Before(deadline); locked = sp.mu.TryLock() {
			time.Sleep(time.Millisecond)
		}
		if !locked {
			r.h.t.Errorf("leader partition %s-%d looked up while share partition %s/%d of group %s is locked", t.Name, partition, sp.topic, sp.key.Partition, sp.key.Group)
			continue
		}
		sp.mu.Unlock()
	}
	if t == nil || int(partition) >= len(t.Partitions) {
		return nil, raftmeta.PartitionState{}, kerr.UnknownTopicOrPartition
	}
	ps := t.Partitions[partition]
	if ps.Leader != self {
		return nil, ps, kerr.NotLeaderForPartition
	}
	if p := r.h.logs.Partition(t.Name, partition); p != nil {
		return p, ps, nil
	}
	p, err := r.h.logs.CreatePartition(t.Name, partition, t.ID, log.DefaultPartitionConfig())
	if err != nil {
		return nil, ps, kerr.KafkaStorageError
	}
	return p, ps, nil
}

func (r *fakeReplicas) AppendCommitted(_ context.Context, p *log.Partition, ps raftmeta.PartitionState, batch []byte, now time.Time) (log.AppendResult, error) {
	hdr, err := log.ParseBatchHeader(batch)
	if err != nil {
		return log.AppendResult{}, err
	}
	res, err := p.Append(batch, hdr, ps.LeaderEpoch, now)
	if err != nil {
		return res, err
	}
	p.SetHighWatermark(p.LogEndOffset())
	r.mu.Lock()
	if r.appended == nil {
		r.appended = map[string][][]byte{}
	}
	r.appended[p.Topic()] = append(r.appended[p.Topic()], batch)
	r.mu.Unlock()
	return res, nil
}

// fakeCoordinator is this node's share coordinator, in memory: every write
// is durable at once.
type fakeCoordinator struct {
	mu     sync.Mutex
	states map[coordinator.ShareKey]coordinator.ShareState
	writes []coordinator.ShareState
	reads  int
}

func (c *fakeCoordinator) EnsureTopic(context.Context) error { return nil }

func (c *fakeCoordinator) Read(key coordinator.ShareKey) (coordinator.ShareState, bool, *kerr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	st, ok := c.states[key]
	return st, ok, nil
}

// ReadAsLeader fences and claims as the share coordinator does.
func (c *fakeCoordinator) ReadAsLeader(_ context.Context, key coordinator.ShareKey, leaderEpoch int32) (coordinator.ShareState, bool, error) {
	st, ok, _ := c.Read(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !ok:
	case leaderEpoch < st.LeaderEpoch:
		return coordinator.ShareState{}, false, kerr.FencedLeaderEpoch
	case leaderEpoch > st.LeaderEpoch:
		st.LeaderEpoch = leaderEpoch
		c.states[key] = st
	}
	return st, ok, nil
}

func (c *fakeCoordinator) Enqueue(key coordinator.ShareKey, st *coordinator.ShareState) <-chan error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == nil {
		delete(c.states, key)
	} else {
		c.states[key] = *st
		c.writes = append(c.writes, *st)
	}
	return failed(nil)
}

func (c *fakeCoordinator) Write(_ context.Context, key coordinator.ShareKey, st *coordinator.ShareState) error {
	return <-c.Enqueue(key, st)
}

func (c *fakeCoordinator) last() coordinator.ShareState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes[len(c.writes)-1]
}

// fakePeers answers share-state RPCs as another node's share coordinator
// would, from its own map, and records who was asked what.
type fakePeers struct {
	mu     sync.Mutex
	states map[coordinator.ShareKey]coordinator.ShareState
	asked  []int32
	// gate, when set, holds every request but Produce until it is closed;
	// produceGate holds Produce requests.
	gate, produceGate chan struct{}
	// produced are the batches of the Produce requests answered.
	produced [][]byte
}

func (p *fakePeers) Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	p.mu.Lock()
	p.asked = append(p.asked, node)
	gate := p.gate
	if _, ok := req.(*kmsg.ProduceRequest); ok {
		gate = p.produceGate
	}
	if p.states == nil {
		p.states = map[coordinator.ShareKey]coordinator.ShareState{}
	}
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			ot := kmsg.NewProduceResponseTopic()
			ot.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p.produced = append(p.produced, rp.Records)
				op := kmsg.NewProduceResponseTopicPartition()
				op.Partition = rp.Partition
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	case *kmsg.WriteShareGroupStateRequest:
		resp := r.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
		for _, rt := range r.Topics {
			ot := kmsg.NewWriteShareGroupStateResponseTopic()
			ot.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				st := coordinator.ShareState{LeaderEpoch: rp.LeaderEpoch}
				st.StartOffset, st.StateEpoch = rp.StartOffset, rp.StateEpoch
				p.states[coordinator.ShareKey{Group: r.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}] = st
				op := kmsg.NewWriteShareGroupStateResponseTopicPartition()
				op.Partition = rp.Partition
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	case *kmsg.ReadShareGroupStateRequest:
		resp := r.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
		for _, rt := range r.Topics {
			ot := kmsg.NewReadShareGroupStateResponseTopic()
			ot.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				op := kmsg.NewReadShareGroupStateResponseTopicPartition()
				op.Partition, op.StartOffset = rp.Partition, -1
				if st, ok := p.states[coordinator.ShareKey{Group: r.GroupID, TopicID: rt.TopicID, Partition: rp.Partition}]; ok {
					op.StartOffset, op.StateEpoch = st.StartOffset, st.StateEpoch
				}
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	case *kmsg.ReadShareGroupStateSummaryRequest:
		resp := r.ResponseKind().(*kmsg.ReadShareGroupStateSummaryResponse)
		for _, rt := range r.Topics {
			ot := kmsg.NewReadShareGroupStateSummaryResponseTopic()
			ot.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				op := kmsg.NewReadShareGroupStateSummaryResponseTopicPartition()
				op.Partition, op.StartOffset, op.LeaderEpoch = rp.Partition, -1, -1
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return resp, nil
	}
	return nil, kerr.UnsupportedVersion
}

func (p *fakePeers) state(key coordinator.ShareKey) (coordinator.ShareState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.states[key]
	return st, ok
}

type nopMetrics struct{}

func (nopMetrics) ExpiredLocks(int64)       {}
func (nopMetrics) DeadLettered(string, int) {}
