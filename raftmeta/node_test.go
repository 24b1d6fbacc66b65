package raftmeta

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startNode(t testing.TB, dir string, snapEvery uint64) *Node {
	t.Helper()
	n, err := Start(Config{
		NodeID:        1,
		Dir:           dir,
		Voters:        map[int32]string{1: "127.0.0.1:9093"},
		Logger:        testLogger(t),
		TickInterval:  10 * time.Millisecond,
		SnapshotEvery: snapEvery,
		ClusterID:     "test-cluster",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitLeader(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return n
}

// startController starts a single-node quorum, closed when the test ends,
// and its controller, which checks topic configs with validateConfig.
func startController(t *testing.T, validateConfig func(name string, value *string) error) (*Node, *Controller) {
	t.Helper()
	n := startNode(t, t.TempDir(), 0)
	t.Cleanup(func() { n.Close() })
	return n, NewController(n, validateConfig)
}

func mustRegister(t *testing.T, c *Controller, id int32) {
	t.Helper()
	err := c.RegisterBroker(testCtx(t), Broker{
		ID:            id,
		IncarnationID: [16]byte{byte(id), 1},
		Endpoints:     []Endpoint{{Listener: "PLAINTEXT", Host: "localhost", Port: 9092 + id, SecurityProtocol: "PLAINTEXT"}},
		Rack:          "r1",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNodeSingleVoterLeader(t *testing.T) {
	n := startNode(t, t.TempDir(), 0)
	defer n.Close()
	if !n.IsLeader() || n.LeaderID() != 1 {
		t.Fatalf("leader=%v id=%d", n.IsLeader(), n.LeaderID())
	}
	if n.Term() < 2 {
		t.Fatalf("term %d", n.Term())
	}
	img := n.Image()
	if img.ClusterID != "test-cluster" {
		t.Fatalf("cluster id %q", img.ClusterID)
	}
}

// exercise drives a node through every kind of change and returns the
// resulting image.
func exercise(t *testing.T, n *Node, topics int) *Image {
	t.Helper()
	ctx := testCtx(t)
	c := NewController(n, nil)
	mustRegister(t, c, 1)
	// Group overrides early on, so that snapshots taken later hold them.
	if err := c.AlterGroupConfigs(ctx, "g1", map[string]string{"consumer.session.timeout.ms": "45000", "consumer.heartbeat.interval.ms": "5000"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterGroupConfigs(ctx, "g1", nil, []string{"consumer.heartbeat.interval.ms"}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterGroupConfigs(ctx, "g2", map[string]string{"consumer.session.timeout.ms": "60000"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterGroupConfigs(ctx, "g2", nil, []string{"consumer.session.timeout.ms"}, false); err != nil {
		t.Fatal(err)
	}
	for i := range topics {
		name := "t" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		res := c.CreateTopics(ctx, []CreateTopicRequest{{Name: name, NumPartitions: 3, ReplicationFactor: 1,
			Configs: map[string]*string{"retention.ms": new("1000")}}}, Defaults{NumPartitions: 1, ReplicationFactor: 1}, false)
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		if err := c.AlterTopicConfigs(ctx, name, map[string]string{"cleanup.policy": "compact"}, []string{"retention.ms"}, false); err != nil {
			t.Fatal(err)
		}
	}
	if errs := c.CreatePartitions(ctx, []CreatePartitionsRequest{{Topic: "taa", Count: 5}}, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for range 3 {
		if _, err := c.AllocateProducerIDs(ctx, 1, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if r := c.DeleteTopics(ctx, []string{"tba"}, nil); topics > 1 && r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	return n.Image()
}

func TestNodeRestartRestoresImage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		snapEvery uint64
	}{{"log-only", 0}, {"snapshots", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := startNode(t, dir, tc.snapEvery)
			before := exercise(t, n, 30)
			if before.NextProducerID != 3000 {
				t.Fatalf("NextProducerID %d", before.NextProducerID)
			}
			if len(before.Topics) != 29 || len(before.Topics["taa"].Partitions) != 5 {
				t.Fatalf("unexpected image: %d topics", len(before.Topics))
			}
			wantGroups := map[string]map[string]string{"g1": {"consumer.session.timeout.ms": "45000"}}
			if !reflect.DeepEqual(before.GroupConfigs, wantGroups) {
				t.Fatalf("group configs %v", before.GroupConfigs)
			}
			first, _ := n.st.FirstIndex()
			if tc.snapEvery > 0 && first <= 2 {
				t.Fatalf("log not compacted: first index %d", first)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}

			n2 := startNode(t, dir, tc.snapEvery)
			defer n2.Close()
			// Start returns with everything committed before the restart
			// applied. A restarted leader then appends an empty entry of its
			// new term, so only Applied may move, by one.
			if got := n2.Image().Applied; got < before.Applied {
				t.Fatalf("applied %d after restart, want >= %d", got, before.Applied)
			}
			after, err := n2.WaitFor(testCtx(t), func(img *Image) bool { return img.Applied > before.Applied })
			if err != nil {
				t.Fatal(err)
			}
			if after.Applied != before.Applied+1 {
				t.Fatalf("applied %d after restart, want %d", after.Applied, before.Applied+1)
			}
			b, a := *before, *after
			b.Applied, a.Applied = 0, 0
			if !reflect.DeepEqual(b, a) {
				t.Fatalf("image differs after restart:\nbefore %+v\nafter  %+v", before, after)
			}
			if !reflect.DeepEqual(after.GroupConfig("g1"), wantGroups["g1"]) || after.GroupConfig("g2") != nil {
				t.Fatalf("group configs after restart %v", after.GroupConfigs)
			}
			// The restarted node keeps working and its epoch moves on.
			c := NewController(n2, nil)
			mustRegister(t, c, 1)
			if got := n2.Image().Brokers[1].Epoch; got <= before.Brokers[1].Epoch {
				t.Fatalf("epoch did not advance: %d -> %d", before.Brokers[1].Epoch, got)
			}
		})
	}
}

func TestProposeAfterClose(t *testing.T) {
	n := startNode(t, t.TempDir(), 0)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := n.Propose(testCtx(t), &RegisterBroker{ID: 1})
	if !errors.Is(err, ErrClosed) || !errors.Is(err, kerr.NotController) {
		t.Fatalf("got %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestChangedAndWatch(t *testing.T) {
	n := startNode(t, t.TempDir(), 0)
	defer n.Close()
	ctx := testCtx(t)
	img, changed := n.Watch()
	done := make(chan *Image)
	go func() {
		select {
		case <-changed:
			done <- n.Image()
		case <-ctx.Done():
			done <- nil
		}
	}()
	after, err := n.Propose(ctx, &RegisterBroker{ID: 4})
	if err != nil {
		t.Fatal(err)
	}
	seen := <-done
	if seen == nil || seen.Applied <= img.Applied {
		t.Fatal("Changed was not closed by the apply")
	}
	if n.Image().Applied < after.Applied || after.Brokers[4] == nil || img.Brokers[4] != nil {
		t.Fatal("image not replaced correctly")
	}
}

// An entry whose records do not apply is committed but changes nothing, and
// its proposer learns why.
func TestProposeRejectedEntry(t *testing.T) {
	n := startNode(t, t.TempDir(), 0)
	defer n.Close()
	ctx := testCtx(t)
	if _, err := n.Propose(ctx, &RegisterBroker{ID: 1}); err != nil {
		t.Fatal(err)
	}
	before := n.Image()
	img, err := n.Propose(ctx, &AllocateProducerIDs{BrokerID: 1, First: 0, Count: 5}, &DeleteTopic{ID: [16]byte{1}})
	if !errors.Is(err, kerr.UnknownTopicID) || img != nil {
		t.Fatalf("got %v, %v", img, err)
	}
	now := n.Image()
	if now.NextProducerID != 0 || now.Applied <= before.Applied {
		t.Fatalf("rejected entry applied partly: %+v", now)
	}
	if _, err := n.Propose(ctx); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("empty proposal: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Propose(cancelled, &RegisterBroker{ID: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// Close while proposals are in flight: every Propose returns, with success
// or ErrClosed, and none hangs.
func TestCloseWithProposalsInFlight(t *testing.T) {
	n := startNode(t, t.TempDir(), 0)
	ctx := testCtx(t)
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			for {
				if _, err := n.Propose(ctx, &RegisterBroker{ID: int32(i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Let some proposals through before closing.
	for range 3 {
		select {
		case <-n.Changed():
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("got %v", err)
			}
		case <-ctx.Done():
			t.Fatal("a proposal hung after Close")
		}
	}
	select {
	case <-n.Done():
	default:
		t.Fatal("Done not closed")
	}
}

// With a small SnapshotEvery, the log is compacted behind each snapshot and
// a restart rebuilds the image from the snapshot plus the entries after it.
func TestSnapshotCompactsLog(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, 5)
	ctx := testCtx(t)
	c := NewController(n, nil)
	mustRegister(t, c, 1)
	for range 12 {
		if _, err := c.AllocateProducerIDs(ctx, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	snap, _ := n.st.Snapshot()
	first, _ := n.st.FirstIndex()
	last, _ := n.st.LastIndex()
	img := n.Image()
	if si := snap.GetMetadata().GetIndex(); si < 10 || first != si+1 || last-si >= 5 || last != img.Applied {
		t.Fatalf("snapshot at %d, log [%d, %d], applied %d", si, first, last, img.Applied)
	}
	// The snapshot is the image at its index.
	snapImg, _, err := decodeSnapshot(snap.GetData())
	if err != nil || snapImg.Applied != snap.GetMetadata().GetIndex() || snapImg.NextProducerID > img.NextProducerID || snapImg.NextProducerID < 8 {
		t.Fatalf("snapshot image %+v, %v", snapImg, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, dir, 5)
	defer n2.Close()
	if got := n2.Image(); got.NextProducerID != 12 || got.Brokers[1] == nil || got.Applied < img.Applied {
		t.Fatalf("restored %+v", got)
	}
}

func BenchmarkPropose(b *testing.B) {
	n := startNode(b, b.TempDir(), 0)
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Propose(ctx, &RegisterBroker{ID: 1}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Propose(ctx, &RegisterBroker{ID: 1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
