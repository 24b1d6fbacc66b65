package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testwait"
)

// mountTmpfs mounts a tmpfs of size bytes under a fresh temp dir and
// unmounts it when the test ends. A real small file system is the only
// honest way to hit ENOSPC; the test is skipped where mounting is refused
// (not root, or no CAP_SYS_ADMIN in a container).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("needs a tmpfs to fill, and mounting one was refused (root with CAP_SYS_ADMIN required): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// Files a failed test left open: detach it anyway.
			if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
				t.Errorf("umount %s: %v: %s; %v: %s", dir, err, out, err2, out2)
			}
		}
	})
	return dir
}

// remountTmpfs grows a mounted tmpfs: the "space was freed" step.
func remountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// bigBatch is one record of n bytes, so a few fill a small file system.
func bigBatch(t testing.TB, i, n int) []byte {
	v := bytes.Repeat([]byte{byte('a' + i%26)}, n)
	return buildBatch(t, batchSpec{recs: []testRec{{key: []byte(fmt.Sprint(i)), value: v}}, baseTs: 1000 + int64(i)})
}

// TestFullDiskNeverCorruptsLog fills a real tmpfs log dir until ENOSPC,
// across segment rolls and fsyncs, and checks what a producer relies on:
// the failing append is KAFKA_STORAGE_ERROR, never a success; the dir goes
// offline so nothing later reads or writes it; and after space is freed
// and the log reopened, exactly the acknowledged batches are there, byte
// for byte, with nothing after them.
func TestFullDiskNeverCorruptsLog(t *testing.T) {
	mnt := mountTmpfs(t, 256<<10)
	other := t.TempDir()
	reported := make(chan DirFailure, 1)
	m, err := Open(ManagerConfig{Dirs: []string{mnt, other}, Logger: testLogger(t), OnDirOffline: func(f DirFailure) { reported <- f }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes = 40 << 10
	cfg.IndexIntervalBytes = 1 // an index entry per batch: index writes fill the disk too
	full := mustCreate(t, m, "full", 0, testTopicID, cfg)
	if filepath.Dir(full.Dir()) != mnt {
		t.Fatalf("partition placed in %s, want the tmpfs %s", full.Dir(), mnt)
	}
	spare := mustCreate(t, m, "spare", 0, testTopicID, cfg)
	if filepath.Dir(spare.Dir()) != other {
		t.Fatalf("second partition placed in %s, want %s", spare.Dir(), other)
	}

	var acked [][]byte
	var failure error
	for i := 0; i < 200 && failure == nil; i++ {
		b := bigBatch(t, i, 13<<10+i*501)
		res, err := appendCopy(full, b, 0)
		if err == nil && i%3 == 0 {
			err = full.Sync(res.LastOffset)
		}
		if err != nil {
			failure = err
			break
		}
		if res.BaseOffset != int64(len(acked)) {
			t.Fatalf("batch %d stored at %d", len(acked), res.BaseOffset)
		}
		stored := bytes.Clone(b)
		patchBatch(stored, res.BaseOffset, 0)
		acked = append(acked, stored)
	}
	if failure == nil {
		t.Fatal("a 256 KiB file system never filled")
	}
	if !errors.Is(failure, ErrStorage) {
		t.Fatalf("append on a full disk: %v, want ErrStorage", failure)
	}
	t.Logf("%d batches acknowledged before: %v", len(acked), failure)

	if f := testwait.Recv(t, "the offline dir to be reported", reported); f.Path != mnt || len(f.Partitions) != 1 || f.Partitions[0] != full || !errors.Is(f.Cause, ErrStorage) {
		t.Fatalf("reported failure %+v, want %s with partition full-0", f, mnt)
	}

	// Nothing in the failed dir answers any more, including a batch small
	// enough to fit in what is left; the other dir keeps serving.
	small := simpleBatch(t, 1, 5000, "tiny")
	if _, err := appendCopy(full, small, 0); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after the dir failed: %v, want ErrStorage", err)
	}
	if _, err := full.Read(0, math.MaxInt32, math.MaxInt64, true); !errors.Is(err, ErrStorage) {
		t.Fatalf("read after the dir failed: %v, want ErrStorage", err)
	}
	mustAppend(t, spare, small, 0)
	if res, err := spare.Read(0, math.MaxInt32, math.MaxInt64, true); err != nil || len(res.Data) == 0 {
		t.Fatalf("read from the healthy dir: %d bytes, %v", len(res.Data), err)
	}
	var sawOffline bool
	for _, d := range m.Dirs() {
		if d.Path == mnt {
			sawOffline = errors.Is(d.Err, ErrStorage)
		} else if d.Err != nil {
			t.Fatalf("healthy dir %s reported %v", d.Path, d.Err)
		}
	}
	if !sawOffline {
		t.Fatalf("Dirs does not report %s offline: %+v", mnt, m.Dirs())
	}
	if got := m.Partition("full", 0); got != full {
		t.Fatal("the offline partition left the Manager: the broker would recreate it elsewhere")
	}
	mustCreate(t, m, "fresh", 0, testTopicID, cfg)
	if p := m.Partition("fresh", 0); filepath.Dir(p.Dir()) != other {
		t.Fatalf("new partition placed in the offline dir: %s", p.Dir())
	}
	if err := m.Close(); err == nil {
		t.Fatal("Close reported a clean shutdown of an offline dir")
	}

	// The failed write left no partial bytes behind.
	var onDisk, want int64
	segs, _ := filepath.Glob(filepath.Join(full.Dir(), "*"+logSuffix))
	for _, f := range segs {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += st.Size()
	}
	for _, b := range acked {
		want += int64(len(b))
	}
	if onDisk != want {
		t.Fatalf("segments hold %d bytes, the acknowledged batches %d", onDisk, want)
	}

	// Space freed: every acknowledged batch is back, nothing more.
	remountTmpfs(t, mnt, 4<<20)
	m2, err := Open(ManagerConfig{Dirs: []string{mnt, other}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	p := m2.Partition("full", 0)
	if p.LogEndOffset() != int64(len(acked)) {
		t.Fatalf("LEO after recovery %d, want %d acknowledged", p.LogEndOffset(), len(acked))
	}
	got := readAll(t, p, 0)
	for i := range acked {
		if !bytes.Equal(got[i], acked[i]) {
			t.Fatalf("batch %d differs after recovery", i)
		}
	}
	res := mustAppend(t, p, small, 1)
	if res.BaseOffset != int64(len(acked)) {
		t.Fatalf("append after recovery at %d, want %d", res.BaseOffset, len(acked))
	}
}

// TestDirFailureWhileDeletingDoesNotDeadlock fails a write to a partition
// while the same partition is being deleted: the failing append holds the
// partition's appendMu as it takes the dir offline, and DeletePartition
// holds the Manager's lock while closing the partition waits for that
// appendMu. Both must finish; the append answers KAFKA_STORAGE_ERROR, the
// partition is gone, and the other partition in the dir went offline.
func TestDirFailureWhileDeletingDoesNotDeadlock(t *testing.T) {
	dir := t.TempDir()
	reported := make(chan DirFailure, 1)
	m, err := Open(ManagerConfig{Dirs: []string{dir}, Logger: testLogger(t), OnDirOffline: func(f DirFailure) { reported <- f }})
	if err != nil {
		t.Fatal(err)
	}
	doomed := mustCreate(t, m, "doomed", 0, testTopicID, DefaultPartitionConfig())
	bystander := mustCreate(t, m, "bystander", 0, testTopicID, DefaultPartitionConfig())
	batch := simpleBatch(t, 3, 1000, "v")
	mustAppend(t, doomed, batch, 0)
	// The next write fails: its segment file is closed under it.
	doomed.mu.RLock()
	_ = doomed.active().log.Close()
	doomed.mu.RUnlock()

	deleted := make(chan error, 1)
	m.onDirFailing = func() {
		// The failing append holds doomed's appendMu: start the deletion
		// and let it take the Manager's lock before going on.
		go func() { deleted <- m.DeletePartition("doomed", 0) }()
		waitManagerLocked(t, m)
	}
	appended := make(chan error, 1)
	go func() {
		_, err := appendCopy(doomed, batch, 0)
		appended <- err
	}()
	errs, ok := waitAll(appended, deleted)
	if !ok {
		// Deadlocked: leave the Manager, its locks are held forever.
		t.Fatal("a write failure during DeletePartition deadlocked")
	}
	defer m.Close()
	if !errors.Is(errs[0], ErrStorage) {
		t.Errorf("failed append: %v, want ErrStorage", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("DeletePartition: %v", errs[1])
	}
	if m.Partition("doomed", 0) != nil {
		t.Fatal("the deleted partition is still in the Manager")
	}
	if _, err := os.Stat(filepath.Join(dir, "doomed-0")); !os.IsNotExist(err) {
		t.Fatalf("the deleted partition's dir: %v, want it gone", err)
	}
	if _, err := appendCopy(bystander, batch, 0); !errors.Is(err, ErrStorage) {
		t.Fatalf("append to the other partition of the failed dir: %v, want ErrStorage", err)
	}
	if f := testwait.Recv(t, "the offline dir to be reported", reported); !slices.Contains(f.Partitions, bystander) {
		t.Fatalf("reported failure %+v does not name bystander-0", f)
	}
}

// waitManagerLocked waits until a writer holds (or waits for) m.mu, as
// DeletePartition does while it closes a partition.
func waitManagerLocked(t *testing.T, m *Manager) {
	deadline := time.Now().Add(10 * time.Second)
	for m.mu.TryRLock() {
		m.mu.RUnlock()
		if time.Now().After(deadline) {
			t.Error("DeletePartition never took the Manager's lock")
			return
		}
		runtime.Gosched()
	}
}

// waitAll waits for one result from each channel, in order; false means
// they did not all come within 20 seconds (a deadlock).
func waitAll(chans ...<-chan error) ([]error, bool) {
	timeout := time.After(20 * time.Second)
	errs := make([]error, len(chans))
	for i, ch := range chans {
		select {
		case errs[i] = <-ch:
		case <-timeout:
			return nil, false
		}
	}
	return errs, true
}
