package replica

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/internal/testclock"
	"github.com/shoalmq/shoal/internal/testwait"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// testMeta is a metadata log held in memory: an image the test (or
// testController) replaces, with Changed and WaitFor as raftmeta.Node has
// them.
type testMeta struct {
	mu      sync.Mutex
	img     *raftmeta.Image
	changed chan struct{}
}

func newTestMeta(img *raftmeta.Image) *testMeta {
	return &testMeta{img: img, changed: make(chan struct{})}
}

func (m *testMeta) Image() *raftmeta.Image {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.img
}

func (m *testMeta) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *testMeta) WaitFor(ctx context.Context, cond func(*raftmeta.Image) bool) (*raftmeta.Image, error) {
	for {
		ch := m.Changed()
		if img := m.Image(); cond(img) {
			return img, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// publish replaces the image with a copy that edit changed.
func (m *testMeta) publish(edit func(img *raftmeta.Image)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	img := cloneImage(m.img)
	edit(img)
	m.img = img
	close(m.changed)
	m.changed = make(chan struct{})
}

// cloneImage copies what tests change: topics and their partitions.
func cloneImage(img *raftmeta.Image) *raftmeta.Image {
	c := *img
	c.Topics = map[string]*raftmeta.Topic{}
	c.TopicIDs = map[[16]byte]string{}
	for name, t := range img.Topics {
		tc := *t
		tc.Partitions = append([]raftmeta.PartitionState(nil), t.Partitions...)
		c.Topics[name] = &tc
		c.TopicIDs[t.ID] = name
	}
	return &c
}

// testController applies every AlterPartition to the metadata at once, as
// the active controller would, and reports it on altered.
type testController struct {
	meta    *testMeta
	altered chan raftmeta.AlterPartitionItem
	// hold, if set, keeps every AlterPartition waiting until it is closed.
	hold chan struct{}
}

func (c *testController) AlterPartition(ctx context.Context, items []raftmeta.AlterPartitionItem) ([]raftmeta.AlterPartitionResult, error) {
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var out []raftmeta.AlterPartitionResult
	for _, it := range items {
		c.meta.publish(func(img *raftmeta.Image) {
			ps := &img.Topics[it.Topic].Partitions[it.Partition]
			ps.ISR, ps.PartitionEpoch = it.NewISR, ps.PartitionEpoch+1
		})
		out = append(out, raftmeta.AlterPartitionResult{TopicID: it.TopicID, Partition: it.Partition})
		c.altered <- it
	}
	return out, nil
}

func (c *testController) BrokerEpoch() int64 { return 1 }

// testNode is a Manager on node 1 over real logs in a temporary directory.
type testNode struct {
	m     *Manager
	meta  *testMeta
	ctrl  *testController
	clock *testclock.Clock
}

// newTestNode starts node 1 of a cluster of brokers 1-3 with one topic
// "t" of one partition led by node 1 with the given replicas, ISR and
// topic configs.
func newTestNode(t testing.TB, replicas, isr []int32, topicConfigs map[string]string) *testNode {
	t.Helper()
	if topicConfigs == nil {
		topicConfigs = map[string]string{}
	}
	id := [16]byte{1}
	img := &raftmeta.Image{
		Brokers:  map[int32]*raftmeta.Broker{1: {ID: 1}, 2: {ID: 2}, 3: {ID: 3}},
		Topics:   map[string]*raftmeta.Topic{"t": {Name: "t", ID: id, Configs: topicConfigs, Partitions: []raftmeta.PartitionState{{Replicas: replicas, ISR: isr, Leader: 1, LeaderEpoch: 1}}}},
		TopicIDs: map[[16]byte]string{id: "t"},
	}
	return startTestNode(t, 1, newTestMeta(img), nil)
}

// startTestNode starts node id over its own logs in a temporary directory,
// reading meta; peers reaches the other nodes (nil: none reachable).
func startTestNode(t testing.TB, id int32, meta *testMeta, peers Peers) *testNode {
	t.Helper()
	dir := t.TempDir()
	if strings.Contains(dir, ",") {
		t.Fatalf("log dir %q would be read as a list: name the test without commas", dir)
	}
	cfg, err := config.NewBroker(map[string]string{"node.id": strconv.Itoa(int(id)), "process.roles": "broker", "controller.quorum.voters": "9@127.0.0.1:1", "log.dirs": dir})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := log.Open(log.ManagerConfig{Dirs: cfg.LogDirs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	ctrl := &testController{meta: meta, altered: make(chan raftmeta.AlterPartitionItem, 8)}
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	m := New(context.Background(), Config{Broker: cfg, Logs: logs, Meta: meta, Controller: ctrl, Peers: peers, Now: clock.Now})
	t.Cleanup(m.Close)
	m.Reconcile()
	return &testNode{m: m, meta: meta, ctrl: ctrl, clock: clock}
}

// leader returns the partition node 1 leads and its state.
func (n *testNode) leader(t testing.TB) (*log.Partition, raftmeta.PartitionState) {
	t.Helper()
	p, ps, kerrv := n.m.LeaderPartition(n.meta.Image().Topics["t"], 0)
	if kerrv != nil {
		t.Fatal(kerrv)
	}
	return p, ps
}

// followerFetch is replica 2 fetching the partition from offset.
func (n *testNode) followerFetch(t *testing.T, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	p, ps := n.leader(t)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	pr := kmsg.NewFetchResponseTopicPartition()
	if _, err := n.m.ReadForFollower(2, n.meta.Image().Topics["t"], rp, &pr, nil, p, ps, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	return pr
}

// waitAltered returns the next ISR change sent to the controller.
func (n *testNode) waitAltered(t *testing.T) raftmeta.AlterPartitionItem {
	t.Helper()
	return testwait.Recv(t, "an AlterPartition to be sent", n.ctrl.altered)
}

// altering reports whether an ISR change of the partition is in flight.
func (n *testNode) altering(t *testing.T) bool {
	p, _ := n.leader(t)
	v, ok := n.m.leaders.Load(p)
	if !ok {
		return false
	}
	st := v.(*leaderState)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.altering
}

// noISRChange fails if an ISR change was decided. A change is marked in
// flight before it is sent and the test controller reports it before the
// mark is cleared, so one or the other shows.
func (n *testNode) noISRChange(t *testing.T, why string) {
	t.Helper()
	select {
	case it := <-n.ctrl.altered:
		t.Fatalf("%s: ISR change to %v", why, it.NewISR)
	default:
	}
	if n.altering(t) {
		t.Fatalf("%s: ISR change in flight", why)
	}
}

// waitISRSettled waits until no ISR change of the partition is in flight.
func (n *testNode) waitISRSettled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.altering(t) {
		if time.Now().After(deadline) {
			t.Fatal("ISR change still in flight")
		}
		time.Sleep(time.Millisecond)
	}
}

// testBatch is a valid v2 record batch of n records, as a producer sends it.
func testBatch(t testing.TB, n int) ([]byte, log.BatchHeader) {
	t.Helper()
	raw := replicatedBatch(0, 0, n, 0)
	h, err := log.ValidateProduceBatch(raw, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return raw, h
}

// replicatedBatch is a batch of n records at base offset base, written by
// the leader of epoch, every record stamped ts: a batch as a follower
// fetches it.
func replicatedBatch(base int64, epoch int32, n int, ts int64) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // less the 1-byte varint of 0
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{FirstOffset: base, PartitionLeaderEpoch: epoch, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
