package coordruntime

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// storeHarness is one internal partition's log and the store that
// materializes it, without a server around them.
type storeHarness struct {
	t     *testing.T
	p     *log.Partition
	is    *internalStore
	env   *Env
	epoch int32
	// replayed counts the records loads replayed from the log.
	replayed atomic.Int64
}

// testLogs opens a log manager in a temporary directory, closed when the
// test ends (after what the test registers later).
func testLogs(t *testing.T) (*log.Manager, *slog.Logger) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	logs, err := log.Open(log.ManagerConfig{Dirs: []string{t.TempDir()}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	return logs, logger
}

// createCompacted creates a compacted partition, as internal topics are.
func createCompacted(t *testing.T, logs *log.Manager, topic string, idx int32, id [16]byte) *log.Partition {
	t.Helper()
	cfg := log.DefaultPartitionConfig()
	cfg.CleanupPolicy = "compact"
	p, err := logs.CreatePartition(topic, idx, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newStoreHarness(t *testing.T) *storeHarness {
	t.Helper()
	logs, logger := testLogs(t)
	p := createCompacted(t, logs, OffsetsTopic, 0, [16]byte{1})
	// This node leads the partition at leader epoch 0, which a load checks.
	img := &raftmeta.Image{Topics: map[string]*raftmeta.Topic{OffsetsTopic: {Name: OffsetsTopic, ID: [16]byte{1},
		Partitions: []raftmeta.PartitionState{{Replicas: []int32{self}, ISR: []int32{self}, Leader: self}}}}}
	h := &storeHarness{t: t, p: p, env: &Env{NodeID: self, Image: func() *raftmeta.Image { return img }, Now: time.Now, Logger: logger}}
	var err error
	h.is, err = openInternalStore(OffsetsTopic, t.TempDir(), logger, func(_ string, n int) { h.replayed.Add(int64(n)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.is.close() })
	return h
}

// appendKV appends one batch setting each key to value and returns its
// last offset.
func (h *storeHarness) appendKV(value string, keys ...string) int64 {
	h.t.Helper()
	brs := make([]log.Record, len(keys))
	for i, k := range keys {
		brs[i] = log.Record{Key: []byte(k), Value: []byte(value)}
	}
	b := log.EncodeBatch(brs, time.Now())
	hd, err := log.ParseBatchHeader(b)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.p.Append(b, hd, h.epoch, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return res.LastOffset
}

// stored returns the store's records and applied offset.
func (h *storeHarness) stored() (map[string]string, int64) {
	h.t.Helper()
	out := map[string]string{}
	applied, err := h.is.store.Load(0, func(r coordinator.Record) error {
		out[string(r.Key)] = string(r.Value)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out, applied
}

// waitApplied waits until the store's applied offset is want.
func (h *storeHarness) waitApplied(want int64) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, applied := h.stored()
		if applied == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("store applied offset %d, want %d", applied, want)
		}
		h.is.wake()
		time.Sleep(5 * time.Millisecond)
	}
}

// A follower's store materializes replicated records up to the HW and
// never above it, and a coordinator loading the partition afterwards
// replays only the records above what the store had.
func TestInternalStoreFollowerMaterializesBelowHW(t *testing.T) {
	h := newStoreHarness(t)
	first := h.appendKV("1", "a", "b")
	second := h.appendKV("2", "b", "c")
	h.appendKV("3", "a", "d") // above the HW
	h.p.SetHighWatermark(second + 1)
	h.is.follow(map[int32]*log.Partition{0: h.p})
	h.waitApplied(second)
	got, _ := h.stored()
	if want := map[string]string{"a": "1", "b": "2", "c": "2"}; !maps.Equal(got, want) {
		t.Fatalf("stored %v, want %v (first batch ends at %d)", got, want, first)
	}

	// The HW moves: the rest follows.
	h.p.SetHighWatermark(h.p.LogEndOffset())
	h.is.wake()
	h.waitApplied(h.p.LogEndOffset() - 1)
	got, _ = h.stored()
	if want := map[string]string{"a": "3", "b": "2", "c": "2", "d": "3"}; !maps.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}

	// More records while following, then this node becomes leader: the load
	// replays only what the store had not reached.
	for i := range 20 {
		h.appendKV(fmt.Sprint(10+i), fmt.Sprintf("k%d", i))
	}
	h.p.SetHighWatermark(h.p.LogEndOffset())
	h.is.wake()
	h.waitApplied(h.p.LogEndOffset() - 1)
	tail := h.appendKV("tail", "a", "z")
	h.p.SetHighWatermark(tail + 1)

	ip := &internalPartition{env: h.env, topic: OffsetsTopic, part: 0, p: h.p, st: h.is}
	state := map[string]string{}
	err := ip.load(func() { clear(state) }, func(r coordinator.Record) error {
		state[string(r.Key)] = string(r.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.replayed.Load(); got != 2 {
		t.Fatalf("load replayed %v records, want the 2 of the tail", got)
	}
	if len(state) != 25 || state["a"] != "tail" || state["z"] != "tail" || state["k19"] != "29" || state["d"] != "3" {
		t.Fatalf("loaded state %v", state)
	}
	if _, applied := h.stored(); applied != tail {
		t.Fatalf("applied %d after the load, want %d", applied, tail)
	}

	// While the coordinator owns the partition, its appends are
	// materialized from its log in the background, never above the HW.
	x := h.appendKV("x", "x")
	if _, err := h.is.materialize(0, h.is.part(0)); err != nil {
		t.Fatal(err)
	}
	if _, applied := h.stored(); applied != tail {
		t.Fatalf("an owned partition was materialized above its HW: applied %d, want %d", applied, tail)
	}
	h.p.SetHighWatermark(h.p.LogEndOffset())
	h.is.wake()
	h.waitApplied(x)

	// Leadership moves away: the old owner's log is no longer read, and the
	// follower path takes over once the partition is followed.
	h.is.release(ip)
	y := h.appendKV("y", "y")
	h.p.SetHighWatermark(h.p.LogEndOffset())
	if _, err := h.is.materialize(0, h.is.part(0)); err != nil {
		t.Fatal(err)
	}
	if _, applied := h.stored(); applied != x {
		t.Fatalf("a released partition was materialized: applied %d, want %d", applied, x)
	}
	h.is.follow(map[int32]*log.Partition{0: h.p})
	h.waitApplied(y)
	got, _ = h.stored()
	if got["x"] != "x" || got["y"] != "y" {
		t.Fatalf("stored %v after the release", got)
	}
}

// A truncation below the materialized records (which materializing only
// below the HW rules out unless an election was unclean) makes the store
// rebuild from the log, so it never keeps records the log lost.
func TestInternalStoreRebuildsAfterTruncationBelowApplied(t *testing.T) {
	h := newStoreHarness(t)
	keep := h.appendKV("old", "a", "b")
	h.appendKV("lost", "b", "c")
	h.p.SetHighWatermark(h.p.LogEndOffset())
	h.is.follow(map[int32]*log.Partition{0: h.p})
	h.waitApplied(h.p.LogEndOffset() - 1)

	// A truncation that stays at or above the applied offset keeps the
	// store as it is.
	h.is.truncated(h.p)
	if _, applied := h.stored(); applied != h.p.LogEndOffset()-1 {
		t.Fatalf("a truncation at the log end dropped the store")
	}

	if _, err := h.p.TruncateTo(keep + 1); err != nil {
		t.Fatal(err)
	}
	h.is.truncated(h.p)
	// The new leader's records take the truncated offsets.
	h.epoch = 1
	h.appendKV("new", "c", "d")
	h.p.SetHighWatermarkFollower(h.p.LogEndOffset())
	h.waitApplied(h.p.LogEndOffset() - 1)
	got, _ := h.stored()
	if want := map[string]string{"a": "old", "b": "old", "c": "new", "d": "new"}; !maps.Equal(got, want) {
		t.Fatalf("stored %v after the truncation, want %v", got, want)
	}
}

// A store ahead of its log (the log lost an unflushed tail in a crash) is
// rebuilt from the log when the follower path first looks at it.
func TestInternalStoreAheadOfLogIsRebuilt(t *testing.T) {
	h := newStoreHarness(t)
	h.appendKV("1", "a")
	h.p.SetHighWatermark(h.p.LogEndOffset())
	if err := h.is.store.Apply(0, 50, []coordinator.Record{{Key: []byte("ghost"), Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	h.is.follow(map[int32]*log.Partition{0: h.p})
	h.waitApplied(0)
	got, _ := h.stored()
	if want := map[string]string{"a": "1"}; !maps.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

// A shard whose append failed replays its partition on its next call,
// which may already be under way when the leadership moves and the shard
// is released. That replay must not claim the partition again: a claim
// made after the release would never be released, and every later pass
// would read the unloaded coordinator's log instead of the replica this
// node follows.
func TestInternalStoreReplayAfterReleaseDoesNotClaim(t *testing.T) {
	h := newStoreHarness(t)
	h.appendKV("1", "a")
	h.p.SetHighWatermark(h.p.LogEndOffset())
	ip := &internalPartition{env: h.env, topic: OffsetsTopic, part: 0, p: h.p, st: h.is}
	replay := func() error {
		return ip.load(func() {}, func(coordinator.Record) error { return nil })
	}
	if err := replay(); err != nil {
		t.Fatal(err)
	}
	h.is.release(ip)
	if err := replay(); err == nil {
		t.Fatal("a released partition's coordinator loaded it again")
	}
	sp := h.is.part(0)
	sp.mu.Lock()
	owner := sp.owner
	sp.mu.Unlock()
	if owner != nil {
		t.Fatal("the replay after the release claimed the partition")
	}
}
