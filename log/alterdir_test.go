package log

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// moveFixture is a Manager over two log dirs, a and b, with one partition
// in a holding n records "v-0".."v-(n-1)" over several segments.
type moveFixture struct {
	root, a, b string
	m          *Manager
	p          *Partition
}

func newMoveFixture(t *testing.T, n int) *moveFixture {
	t.Helper()
	root := t.TempDir()
	f := &moveFixture{root: root, a: filepath.Join(root, "a"), b: filepath.Join(root, "b")}
	f.m = openManager(t, f.a, f.b)
	t.Cleanup(func() { f.m.Close() })
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes = 4096 // many segments
	p := mustCreate(t, f.m, "orders", 0, [16]byte{1}, cfg)
	if filepath.Dir(p.Dir()) != f.a {
		t.Fatalf("partition created in %s, want %s", p.Dir(), f.a)
	}
	f.p = p
	for i := range n {
		f.appendOne(t, i)
	}
	return f
}

func (f *moveFixture) appendOne(t testing.TB, i int) {
	t.Helper()
	recs := []testRec{{key: []byte(fmt.Sprint(i)), value: []byte(fmt.Sprintf("v-%d", i))}}
	mustAppend(t, f.p, buildBatch(t, batchSpec{recs: recs, baseTs: 1000 + int64(i)}), 3)
	f.p.SetHighWatermark(f.p.LogEndOffset())
}

// values reads every record of p in order.
func values(t testing.TB, p *Partition) []string {
	t.Helper()
	var out []string
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		res, err := p.Read(off, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			t.Fatalf("nothing read at %d below the end %d", off, p.LogEndOffset())
		}
		for _, b := range splitBatches(t, res.Data) {
			_, recs, err := DecodeRecords(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset != int64(len(out)) {
					t.Fatalf("record at offset %d, want %d", r.Offset, len(out))
				}
				out = append(out, string(r.Value))
				off = r.Offset + 1
			}
		}
	}
	return out
}

func wantValues(t testing.TB, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	for i, v := range got {
		if v != fmt.Sprintf("v-%d", i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// waitMoved waits for the partition's move to end and checks that it
// ended in dir.
func waitMoved(t testing.TB, m *Manager, p *Partition, dir string) {
	t.Helper()
	m.movesMu.Lock()
	mv := m.moves[partKey{p.topic, p.index}]
	m.movesMu.Unlock()
	if mv == nil {
		t.Fatal("no move in progress")
	}
	select {
	case <-mv.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("move still running after 30s")
	}
	if filepath.Dir(p.Dir()) != dir {
		t.Fatalf("partition in %s after the move, want it in %s", p.Dir(), dir)
	}
}

// leftovers lists what a move may leave in a log dir: future dirs,
// "-delete" dirs and markers.
func leftovers(t testing.TB, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasSuffix(name, futureDirSuffix) || strings.HasSuffix(name, deleteDirSuffix) {
				out = append(out, filepath.Join(d, name))
			}
			if _, err := os.Stat(filepath.Join(d, name, moveMarkerFile)); err == nil {
				out = append(out, filepath.Join(d, name, moveMarkerFile))
			}
		}
	}
	return out
}

// TestMovePartitionWhileAppending moves a partition to the other log dir
// while a writer keeps appending: the writer never fails, the partition
// ends in the new dir with every record in order, the old dir is gone, and
// a restart loads it from the new dir alone.
func TestMovePartitionWhileAppending(t *testing.T) {
	f := newMoveFixture(t, 300)
	var (
		mu      sync.Mutex
		written = 300
		stop    = make(chan struct{})
		done    = make(chan error)
	)
	go func() {
		defer close(done)
		// The writer is paced: a copy that runs slower than the partition's
		// writes never catches up (as in Kafka), and on a loaded machine
		// under the race detector an unpaced loop of one-record appends
		// can outrun it.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			i := written
			mu.Unlock()
			recs := []testRec{{value: []byte(fmt.Sprintf("v-%d", i))}}
			if _, err := appendCopy(f.p, buildBatch(t, batchSpec{recs: recs, baseTs: 1000}), 3); err != nil {
				done <- err
				return
			}
			mu.Lock()
			written++
			mu.Unlock()
		}
	}()
	var sawFuture bool
	f.m.onMoveStep = func(step string) {
		if step == CrashMoveCopying {
			fs := f.m.Futures()
			sawFuture = len(fs) == 1 && fs[0].Dir == f.b && fs[0].Topic == "orders" && fs[0].Size > 0
		}
	}
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	waitMoved(t, f.m, f.p, f.b)
	// Some appends land after the swap too.
	movedAt := f.p.LogEndOffset()
	deadline := time.Now().Add(30 * time.Second)
	for f.p.LogEndOffset() < movedAt+20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("append during the move: %v", err)
	}
	if !sawFuture {
		t.Error("Futures did not show the future replica in the target dir while copying")
	}
	wantValues(t, values(t, f.p), written)
	if _, err := os.Stat(filepath.Join(f.a, "orders-0")); !os.IsNotExist(err) {
		t.Errorf("old dir still there: %v", err)
	}
	if l := leftovers(t, f.a, f.b); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	if fs := f.m.Futures(); len(fs) != 0 {
		t.Errorf("futures after the move: %+v", fs)
	}
	for _, d := range f.m.Dirs() {
		want := 0
		if d.Path == f.b {
			want = 1
		}
		if len(d.Partitions) != want {
			t.Errorf("Dirs: %s holds %d partitions, want %d", d.Path, len(d.Partitions), want)
		}
	}

	if err := f.m.Close(); err != nil {
		t.Fatal(err)
	}
	f.m = openManager(t, f.a, f.b)
	f.p = f.m.Partition("orders", 0)
	if f.p == nil || filepath.Dir(f.p.Dir()) != f.b {
		t.Fatalf("after restart the partition is at %v, want it in %s", f.p, f.b)
	}
	wantValues(t, values(t, f.p), written)
	f.appendOne(t, written) // the moved log takes appends after a restart
	wantValues(t, values(t, f.p), written+1)
}

// TestMoveCrashAtEachStep takes a copy of both log dirs at each step of a
// move, as kill -9 would leave them (the page cache survives a process
// crash), and opens it: exactly one complete copy of the partition must
// load, in the old dir before the commit and the new one after, with every
// record and nothing of the move left over.
func TestMoveCrashAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		step    string
		movedTo string // "a" or "b"
	}{
		{CrashMoveCopying, "a"},
		{CrashMoveMarked, "a"},
		{CrashMoveRenamed, "b"},
		{CrashMoveOldGone, "b"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			const n = 400
			f := newMoveFixture(t, n)
			snap := filepath.Join(t.TempDir(), "snap")
			var snapped bool
			f.m.onMoveStep = func(step string) {
				if step != tc.step {
					return
				}
				if err := os.Mkdir(snap, 0o755); err != nil {
					t.Error(err)
					return
				}
				if out, err := exec.Command("cp", "-a", f.a, f.b, snap).CombinedOutput(); err != nil {
					t.Errorf("copying the log dirs: %v: %s", err, out)
					return
				}
				snapped = true
			}
			if err := f.m.MovePartition("orders", 0, f.b); err != nil {
				t.Fatal(err)
			}
			waitMoved(t, f.m, f.p, f.b)
			if !snapped {
				t.Fatalf("the move never reached %s", tc.step)
			}
			wantValues(t, values(t, f.p), n)

			sa, sb := filepath.Join(snap, "a"), filepath.Join(snap, "b")
			p := reopenedPartition(t, filepath.Join(snap, tc.movedTo), sa, sb)
			wantValues(t, values(t, p), n)
			var copies int
			for _, d := range []string{sa, sb} {
				if _, err := os.Stat(filepath.Join(d, "orders-0")); err == nil {
					copies++
				}
			}
			if copies != 1 {
				t.Errorf("%d copies of the partition on disk, want 1", copies)
			}
			if l := leftovers(t, sa, sb); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

// TestMoveRecopiesAfterTruncation truncates the log (a follower following
// a new leader) while the move is copying and appends other records: the
// moved log must hold the log as it is after the truncation.
func TestMoveRecopiesAfterTruncation(t *testing.T) {
	f := newMoveFixture(t, 300)
	truncated := false
	f.m.onMoveStep = func(step string) {
		if step != CrashMoveCopying || truncated {
			return
		}
		truncated = true
		if _, err := f.p.TruncateTo(250); err != nil {
			t.Error(err)
		}
		for i := 250; i < 280; i++ {
			f.appendOne(t, i)
		}
	}
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	waitMoved(t, f.m, f.p, f.b)
	if !truncated {
		t.Fatal("the move never copied")
	}
	wantValues(t, values(t, f.p), 280)
}

// TestMovePartitionErrors checks the answers Kafka gives: an unknown dir,
// an offline one, a partition this broker has no log of, and a move to the
// dir the partition is in (nothing to do).
func TestMovePartitionErrors(t *testing.T) {
	f := newMoveFixture(t, 1)
	if err := f.m.MovePartition("orders", 0, filepath.Join(f.root, "c")); !errors.Is(err, ErrLogDirNotFound) {
		t.Errorf("unknown dir: %v, want ErrLogDirNotFound", err)
	}
	if err := f.m.MovePartition("nope", 0, f.b); !errors.Is(err, ErrNoReplica) {
		t.Errorf("unknown partition: %v, want ErrNoReplica", err)
	}
	if err := f.m.MovePartition("orders", 0, f.a+"/"); err != nil {
		t.Errorf("move to its own dir: %v", err)
	}
	if fs := f.m.Futures(); len(fs) != 0 {
		t.Errorf("a move to its own dir made a future: %+v", fs)
	}
	f.m.failDir(f.m.dirByPath(f.b), fmt.Errorf("%w: disk gone", ErrStorage))
	if err := f.m.MovePartition("orders", 0, f.b); !errors.Is(err, ErrStorage) {
		t.Errorf("offline dir: %v, want ErrStorage", err)
	}
}

// TestMoveCancelledByClose closes the Manager while a move is copying: the
// future replica is removed and the partition stays whole where it was.
func TestMoveCancelledByClose(t *testing.T) {
	f := newMoveFixture(t, 300)
	reached := make(chan struct{})
	release := make(chan struct{})
	f.m.onMoveStep = func(step string) {
		if step == CrashMoveCopying {
			close(reached)
			<-release
		}
	}
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	<-reached
	f.m.movesMu.Lock()
	mv := f.m.moves[partKey{"orders", 0}]
	f.m.movesMu.Unlock()
	closed := make(chan error)
	go func() { closed <- f.m.Close() }()
	<-mv.cancel // Close asked the move to stop
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, f.a, f.b); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	f.m = openManager(t, f.a, f.b)
	p := f.m.Partition("orders", 0)
	if p == nil || filepath.Dir(p.Dir()) != f.a {
		t.Fatalf("partition at %v, want it in %s", p, f.a)
	}
	wantValues(t, values(t, p), 300)
}

// TestMoveTargetFailureWhileDeletingDoesNotDeadlock fails the commit of a
// move (the target dir's rename) while the partition is being deleted: the
// swap holds every lock of the partition as it takes the target dir
// offline, and DeletePartition holds the Manager's lock while closing the
// partition waits for them. Both must finish: the move is abandoned, the
// partition deleted, the target dir offline.
func TestMoveTargetFailureWhileDeletingDoesNotDeadlock(t *testing.T) {
	f := newMoveFixture(t, 50)
	deleted := make(chan error, 1)
	f.m.onMoveStep = func(step string) {
		if step != CrashMoveMarked {
			return
		}
		// The commit's rename fails: its source is gone.
		futures, _ := filepath.Glob(filepath.Join(f.b, "*"+futureDirSuffix))
		for _, d := range futures {
			os.RemoveAll(d)
		}
		go func() { deleted <- f.m.DeletePartition("orders", 0) }()
		waitManagerLocked(t, f.m)
	}
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	f.m.movesMu.Lock()
	mv := f.m.moves[partKey{"orders", 0}]
	f.m.movesMu.Unlock()
	moved := make(chan error, 1)
	go func() {
		<-mv.done
		moved <- nil
	}()
	errs, ok := waitAll(moved, deleted)
	if !ok {
		// Deadlocked: the Manager's locks are held forever, so the
		// cleanup must not close it.
		f.m = &Manager{closed: true}
		t.Fatal("a failed move commit during DeletePartition deadlocked")
	}
	if errs[1] != nil {
		t.Errorf("DeletePartition: %v", errs[1])
	}
	if f.m.Partition("orders", 0) != nil {
		t.Fatal("the deleted partition is still in the Manager")
	}
	for _, d := range f.m.Dirs() {
		if offline := errors.Is(d.Err, ErrStorage); offline != (d.Path == f.b) {
			t.Errorf("log dir %s: %v; want only %s offline", d.Path, d.Err, f.b)
		}
	}
	if l := leftovers(t, f.a); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestMoveThrottled copies a log of about 2.4 MB at 1 MB/s
// (replica.alter.log.dirs.io.max.bytes.per.second): the move must take
// at least about the time the rate allows. The bound is generous (half)
// and there is no upper one, so a loaded machine cannot fail it.
func TestMoveThrottled(t *testing.T) {
	f := newMoveFixture(t, 0)
	cfg := f.p.Config()
	cfg.SegmentBytes = 1 << 20
	f.p.SetConfig(cfg)
	big := strings.Repeat("x", 3000)
	for i := range 800 {
		recs := []testRec{{value: []byte(fmt.Sprintf("v-%d", i))}, {value: []byte(big)}}
		mustAppend(t, f.p, buildBatch(t, batchSpec{recs: recs, baseTs: 1000}), 3)
	}
	size := f.p.Size()
	const rate = 1 << 20
	f.m.moveRate = func() int64 { return rate }
	start := time.Now()
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	waitMoved(t, f.m, f.p, f.b)
	took := time.Since(start)
	want := time.Duration(float64(size) / rate * float64(time.Second))
	t.Logf("moved %d bytes in %v at %d bytes/s (%.0f bytes/s)", size, took, rate, float64(size)/took.Seconds())
	if took < want/2 {
		t.Fatalf("moved %d bytes in %v; the throttle allows no less than about %v", size, took, want)
	}
}

// A move whose commit rename succeeded but whose fsync of the target dir
// failed is not committed: the old copy stays in use and takes appends, so
// the renamed copy must be gone, or the next start would load it (it holds
// the marker) over those appends.
func TestMoveSyncFailureAfterRenameKeepsTheOldCopy(t *testing.T) {
	const n = 200
	f := newMoveFixture(t, n)
	f.m.onMoveSyncDir = func() error { return syscall.EIO }
	if err := f.m.MovePartition("orders", 0, f.b); err != nil {
		t.Fatal(err)
	}
	f.m.movesMu.Lock()
	mv := f.m.moves[partKey{"orders", 0}]
	f.m.movesMu.Unlock()
	select {
	case <-mv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("move still running after 30s")
	}
	if got := filepath.Dir(f.p.Dir()); got != f.a {
		t.Fatalf("partition in %s after the failed commit, want it in %s", got, f.a)
	}
	for i := n; i < n+5; i++ {
		f.appendOne(t, i)
	}
	if err := f.m.Close(); err != nil {
		t.Fatal(err)
	}
	p := reopenedPartition(t, f.a, f.a, f.b)
	wantValues(t, values(t, p), n+5)
}

// reopenedPartition opens a Manager on dirs, closed when the test ends, and
// returns its partition orders-0, checking that it loaded from the dir want.
func reopenedPartition(t *testing.T, want string, dirs ...string) *Partition {
	t.Helper()
	m, err := Open(ManagerConfig{Dirs: dirs, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("reopening %v: %v", dirs, err)
	}
	t.Cleanup(func() { m.Close() })
	p := m.Partition("orders", 0)
	if p == nil {
		t.Fatal("partition lost")
	}
	if got := filepath.Dir(p.Dir()); got != want {
		t.Errorf("partition loaded from %s, want %s", got, want)
	}
	return p
}
