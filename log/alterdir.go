package log

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoalmq/shoal/crashpoint"
)

// Moving a partition between log dirs (AlterReplicaLogDirs).
//
// As in Kafka, the move builds a future replica in the target dir, named
// "<topic>-<partition>.<id>-future", while the partition keeps serving
// produce and fetch from its current dir. The future replica is an ordinary
// Partition that no one else sees; one goroutine per move copies the
// current log's batches into it the way a follower copies its leader's
// (ReadForReplica, then AppendReplicated: the bytes, offsets and epochs are
// the same, the indexes and producer state are derived again), and follows
// new appends. A truncation or restart of the current log (a follower
// following its leader) starts the copy again from the log start. Once the
// copy is close behind, the move takes every lock of the partition
// (appends, fsyncs, retention and the cleaner wait), copies the rest, and
// swaps:
//
//  1. the future replica is closed cleanly (everything fsynced, indexes
//     written), and the partition's own state (log start, HW, epoch
//     history, producer state) is written over its checkpoints;
//  2. the marker file moveMarkerFile is written into the future dir
//     (naming the old dir), then the future dir is renamed to
//     "<topic>-<partition>" in the target dir and the target dir fsynced:
//     this rename is the commit point;
//  3. the partition switches, in memory, to the segments loaded from the
//     new dir (the Partition value stays: the runtimes hold it);
//  4. the old dir is renamed to a "-delete" name and removed;
//  5. the marker is removed.
//
// Crash safety comes from the names alone, checked by Open
// (resolveMoves): a "-future" dir is a move that never committed and is
// discarded (the partition is whole in its old dir, every acknowledged
// record included); a partition found in two dirs where one holds the
// marker is a committed move whose old dir was not yet removed, and the
// marked copy (which has every record the old one had when appends were
// paused for the swap, and every record appended since) wins; a marker
// alone is removed. A "-delete" dir is always removed. So after a crash at
// any step exactly one complete copy is loaded. A move interrupted by a
// crash or a shutdown is not resumed: the operator asks again.

// ErrLogDirNotFound reports a directory that is not one of log.dirs:
// LOG_DIR_NOT_FOUND (57).
var ErrLogDirNotFound = errors.New("log: not a log directory of this broker")

// ErrNoReplica reports a move of a partition this broker holds no log of:
// REPLICA_NOT_AVAILABLE (9).
var ErrNoReplica = errors.New("log: no replica of the partition on this broker")

const (
	futureDirSuffix = "-future"
	// moveMarkerFile, inside a partition dir, says that the dir is the
	// committed copy of a move and another copy may still exist.
	moveMarkerFile = "moved-from"
	// moveChunkBytes is how much one copy step reads.
	moveChunkBytes = 1 << 20
	// moveSwapLag is how many offsets behind the copy may be when appends
	// are paused for the swap, which then copies the rest unthrottled.
	moveSwapLag = 100
)

// Steps of a move where a crash test may kill the process (crashpoint).
const (
	CrashMoveCopying = "log.move.copying"  // future dir holds part of the log
	CrashMoveMarked  = "log.move.marked"   // future complete and marked, not yet renamed
	CrashMoveRenamed = "log.move.renamed"  // committed; the old dir still exists
	CrashMoveOldGone = "log.move.old-gone" // old dir renamed for deletion, marker still there
)

// move is one partition's move to another log dir.
type move struct {
	m      *Manager
	p      *Partition
	future *Partition
	to     *logDir
	cancel chan struct{} // closed to stop the move
	done   chan struct{} // closed when the goroutine has finished

	// Owned by the goroutine.
	gen    int64 // p.rewrites when the copy (re)started
	copied bool  // CrashMoveCopying was reached
}

// MovePartition starts moving the partition's log to dir, one of log.dirs
// (an absolute path, as Kafka's clients send it). It returns once the
// future replica exists; the copy and the swap run in the background.
// Moving to the dir the partition is in cancels a move in progress; moving
// to the target of the move in progress changes nothing, and to another
// dir restarts the move there.
func (m *Manager) MovePartition(topic string, index int32, dir string) error {
	if len(futureDirName(topic, index, strings.Repeat("0", 32))) > 255 {
		// As Kafka: the future dir's name would not fit a file name.
		return fmt.Errorf("%w: %q is too long to move between log directories", ErrInvalidTopic, topic)
	}
	to := m.dirByPath(dir)
	if to == nil {
		return fmt.Errorf("%w: %s", ErrLogDirNotFound, dir)
	}
	if err := to.offlineErr(); err != nil {
		return err
	}
	k := partKey{topic, index}
	m.mu.RLock()
	p, closed := m.parts[k], m.closed
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if p == nil {
		return fmt.Errorf("%w: %s-%d", ErrNoReplica, topic, index)
	}
	if p.Offline() {
		return fmt.Errorf("%w: partition %s-%d is offline", ErrStorage, topic, index)
	}

	// Lock order: movesMu, then m.mu (manager.go). The move goroutine
	// never takes movesMu, so stop may wait for it with movesMu held.
	m.movesMu.Lock()
	if mv := m.moves[k]; mv != nil && !mv.finished() {
		if mv.to == to {
			m.movesMu.Unlock()
			return nil
		}
		mv.stop()
	}
	delete(m.moves, k)
	if filepath.Dir(p.Dir()) == to.path {
		m.movesMu.Unlock()
		return nil
	}
	future, err := m.createFuture(p, to)
	if err != nil {
		m.movesMu.Unlock()
		if errors.Is(err, ErrStorage) {
			m.failDir(to, err)
		}
		return err
	}
	mv := &move{m: m, p: p, future: future, to: to, cancel: make(chan struct{}), done: make(chan struct{})}
	m.moves[k] = mv
	m.movesMu.Unlock()
	p.logger.Info("moving partition to another log directory", "from", filepath.Dir(p.Dir()), "to", to.path)
	go mv.run()
	return nil
}

// futureDirName is Kafka's name of a future replica's dir.
func futureDirName(topic string, index int32, id string) string {
	return partitionDirName(topic, index) + "." + id + futureDirSuffix
}

// dirByPath returns the log dir at path, or nil. m.dirs does not change
// after Open, so no lock is needed.
func (m *Manager) dirByPath(path string) *logDir {
	clean := filepath.Clean(path)
	for _, d := range m.dirs {
		if d.path == clean {
			return d
		}
	}
	return nil
}

// createFuture makes the empty future replica of p in to.
func (m *Manager) createFuture(p *Partition, to *logDir) (*Partition, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	path := filepath.Join(to.path, futureDirName(p.topic, p.index, hex.EncodeToString(id[:])))
	return createPartition(m, path, p.topic, p.index, p.topicID, p.Config())
}

// stop cancels the move and waits for its goroutine; the future dir is gone
// when it returns (unless the swap already committed). movesMu held.
func (mv *move) stop() {
	if !mv.finished() {
		close(mv.cancel)
	}
	<-mv.done
}

// finished reports whether the move's goroutine has ended. A finished move
// may stay in m.moves until the next MovePartition of its partition.
func (mv *move) finished() bool { return isClosed(mv.done) }

var errMoveCancelled = errors.New("log: move cancelled")

func (mv *move) cancelled() bool { return isClosed(mv.cancel) }

// isClosed reports whether ch, which is only ever closed, has been.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errRecopy: the log was truncated after the copy began, or retention
// moved its start past the copy; copy again before swapping. (The swap's
// unlock counts as a rewrite, so the next catchUp starts over.)
var errRecopy = errors.New("log: log rewritten during the copy")

// errFailedAfterCommit: the move's rename had committed it, so the
// partition did not stay where it was; it is offline until a restart loads
// the moved copy.
var errFailedAfterCommit = errors.New("log: failed after the move was committed")

// run copies and swaps; on failure it discards the future replica. A
// deleted or closed partition ends the copy with its error.
func (mv *move) run() {
	defer close(mv.done)
	mv.gen = mv.p.rewrites.Load()
	var err error
	for {
		if err = mv.catchUp(false); err == nil {
			err = mv.swap()
		}
		if !errors.Is(err, errRecopy) {
			break
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, errMoveCancelled), errors.Is(err, ErrClosed), errors.Is(err, ErrPartitionDeleted):
		case errors.Is(err, errFailedAfterCommit):
			mv.p.logger.Error("partition moved to another log directory but not reopened there; it is offline until the broker restarts and loads the moved copy", "to", mv.to.path, "error", err)
		default:
			mv.p.logger.Error("moving partition to another log directory failed; it stays where it was", "to", mv.to.path, "error", err)
		}
		mv.discard()
	}
}

// discard closes and removes the future replica.
func (mv *move) discard() {
	_ = mv.future.close(false, true)
	if err := os.RemoveAll(mv.future.Dir()); err != nil {
		mv.p.logger.Warn("removing an abandoned future replica", "dir", mv.future.Dir(), "error", err)
	}
}

// catchUp copies batches from the partition into the future replica until
// the future has every batch (all) or is close behind (a read came back
// short of a chunk within moveSwapLag offsets of the end). With all the
// caller holds the partition's rewrite locks, so the end it reaches is the
// end.
//
// A truncation or restart of the partition's log (lockForRewrite bumps
// rewrites once the change is published) may have come between a read and
// its append, so when rewrites moved since the copy began the future is
// restarted at the log start and the copy begins again.
func (mv *move) catchUp(all bool) error {
	src, dst := mv.p, mv.future
	restart := func(at int64) error {
		mv.gen = src.rewrites.Load()
		return dst.TruncateFullyAndStartAt(at)
	}
	for {
		if mv.cancelled() {
			return errMoveCancelled
		}
		if src.rewrites.Load() != mv.gen {
			if all {
				return errRecopy
			}
			if err := restart(src.LogStartOffset()); err != nil {
				return err
			}
		}
		chunk := int32(moveChunkBytes)
		if !all {
			chunk = mv.m.moveThrottle.chunk(mv.m.moveRate())
		}
		next := dst.LogEndOffset()
		res, err := src.ReadForReplica(next, chunk)
		if errors.Is(err, ErrOffsetOutOfRange) {
			// Retention moved the log start past the copy.
			if all {
				return errRecopy
			}
			if err := restart(src.LogStartOffset()); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(res.Data) == 0 {
			return nil
		}
		_, err = dst.AppendReplicated(res.Data, time.Now())
		if errors.Is(err, ErrUnexpectedAppendOffset) && dst.Size() == 0 {
			// The first copy step: the log start lies inside (or past
			// a compacted gap before) the first batch. Start there.
			h, herr := ParseBatchHeader(res.Data)
			if herr != nil {
				return herr
			}
			if err := restart(h.BaseOffset); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		mv.copyingOnce()
		if !all {
			mv.m.moveThrottle.wait(len(res.Data), mv.m.moveRate(), mv.cancel)
		}
		if !all && len(res.Data) < int(chunk) && src.LogEndOffset()-dst.LogEndOffset() < moveSwapLag {
			return nil
		}
	}
}

// moveThrottle spaces the copy steps of every move so that together they
// copy at most replica.alter.log.dirs.io.max.bytes.per.second: a step of n
// bytes books n/rate seconds after the previous booking (or now, if that
// is over) and waits until its booking ends. A step reads at most a tenth
// of a second's worth (chunk), so a booking is short and a new rate (the
// key is dynamic) applies within about that. The swap's final copy, with
// appends paused, is not throttled.
type moveThrottle struct {
	mu   sync.Mutex
	next time.Time
}

// chunk is how much one throttled copy step reads at rate; a read returns
// at least one whole batch whatever its size.
func (t *moveThrottle) chunk(rate int64) int32 {
	return int32(min(moveChunkBytes, max(rate/10, 1)))
}

func (t *moveThrottle) wait(n int, rate int64, cancel <-chan struct{}) {
	if rate <= 0 || rate == math.MaxInt64 {
		return
	}
	d := time.Duration(float64(n) / float64(rate) * float64(time.Second))
	t.mu.Lock()
	if now := time.Now(); t.next.Before(now) {
		t.next = now
	}
	t.next = t.next.Add(d)
	until := t.next
	t.mu.Unlock()
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-cancel:
	}
}

// copyingOnce marks the copying step the first time a batch was copied.
func (mv *move) copyingOnce() {
	if !mv.copied {
		mv.copied = true
		mv.m.moveStep(CrashMoveCopying)
	}
}

// swap finishes the copy with the partition's appends paused and commits
// the move (steps 1-5 above).
func (mv *move) swap() error {
	p, f := mv.p, mv.future
	// Most of the copy goes to disk before appends pause, so that the
	// fsync under the locks covers only the tail.
	if err := f.flush(); err != nil {
		return err
	}
	unlock := p.lockForRewrite()
	defer unlock()
	if err := mv.catchUp(true); err != nil {
		return err
	}
	p.mu.RLock()
	openErr, leo, logStart, hw := p.openErr(), p.leo, p.logStart, p.hw
	epochs := append([]EpochEntry(nil), p.epochs...)
	p.mu.RUnlock()
	if openErr != nil {
		return openErr
	}
	if fl := f.LogEndOffset(); fl != leo {
		return fmt.Errorf("%w: the copy ends at %d, the log at %d", ErrStorage, fl, leo)
	}
	if mv.cancelled() {
		return errMoveCancelled
	}

	// 1. The future replica, durable, with the partition's own state.
	if err := f.close(true, false); err != nil {
		return err
	}
	fdir := f.Dir()
	ck := offsetsCheckpoint{LogStartOffset: logStart, RecoveryPoint: leo, HighWatermark: hw}
	if err := writeFileAtomic(filepath.Join(fdir, offsetsCheckpointFile), ck.encode()); err != nil {
		return mv.storageError(err)
	}
	if err := writeFileAtomic(filepath.Join(fdir, leaderEpochFile), encodeEpochs(epochs)); err != nil {
		return mv.storageError(err)
	}
	if err := p.producers.writeSnapshot(fdir, leo); err != nil {
		return mv.storageError(err)
	}
	// 2. Mark, then commit by renaming.
	old := p.Dir()
	if err := writeFileAtomic(filepath.Join(fdir, moveMarkerFile), []byte(old+"\n")); err != nil {
		return mv.storageError(err)
	}
	mv.m.moveStep(CrashMoveMarked)
	dest := filepath.Join(mv.to.path, partitionDirName(p.topic, p.index))
	if err := os.Rename(fdir, dest); err != nil {
		return mv.storageError(err)
	}
	syncErr := syncDir(mv.to.path)
	if mv.m.onMoveSyncDir != nil {
		syncErr = mv.m.onMoveSyncDir()
	}
	if err := syncErr; err != nil {
		// Not committed: the old copy stays in use and takes appends, so
		// the renamed copy must not outlive this failure, or with its
		// marker the next start would load it over those appends. The
		// marker goes first (without it recovery never prefers the copy:
		// two unmarked copies stop the start with ErrDuplicatePartition
		// rather than lose either), then the copy.
		if rmErr := os.Remove(filepath.Join(dest, moveMarkerFile)); rmErr == nil {
			_ = os.RemoveAll(dest)
		}
		return mv.storageError(err)
	}
	mv.m.moveStep(CrashMoveRenamed)
	// Committed: p's files are in the target dir now, so its failure must
	// take p offline.
	if err := mv.to.place(p); err != nil {
		p.markOffline(err)
		return fmt.Errorf("%w: %w", errFailedAfterCommit, p.failLocked(err))
	}

	// 3. Switch to the new files. Past the commit a failure takes the
	// partition offline: the next Open loads the new copy.
	np, err := loadPartition(mv.m, dest, p.topic, p.index, true)
	if err == nil && np.leo != leo {
		closeAll(np.segs)
		err = fmt.Errorf("the moved log ends at %d, not %d", np.leo, leo)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errFailedAfterCommit, p.failLocked(fmt.Errorf("loading the moved log: %w", err)))
	}
	p.mu.Lock()
	oldSegs := p.segs
	p.segs = np.segs
	p.dir.Store(&dest)
	p.recoveryPoint = leo
	p.unflushedMsgs = 0
	p.mu.Unlock()
	mv.m.dirOf(old).leave(p)
	p.cleaner = nil // the cleaner checkpoint is re-read from the new dir
	p.lastCkpt, p.lastCkptAt = np.lastCkpt, time.Now()
	closeAll(oldSegs)

	// 4. and 5. Remove the old copy, then the marker.
	if err := mv.m.removeDir(old); err != nil {
		p.logger.Warn("removing the old copy of a moved partition; the next start removes it", "dir", old, "error", err)
		return nil
	}
	mv.m.moveStep(CrashMoveOldGone)
	if err := os.Remove(filepath.Join(dest, moveMarkerFile)); err == nil {
		_ = syncDir(dest)
	}
	p.logger.Info("moved partition to another log directory", "from", filepath.Dir(old), "to", mv.to.path, "logEndOffset", leo)
	return nil
}

// storageError takes the target dir offline for a failed write of the
// future replica and returns the error.
func (mv *move) storageError(err error) error {
	err = fmt.Errorf("%w: %v", ErrStorage, err)
	mv.m.failDir(mv.to, err)
	return err
}

// removeDir renames a partition dir to a "-delete" name, so that a crash
// midway never leaves a half-removed dir that loads as a log, and removes
// it.
func (m *Manager) removeDir(dir string) error {
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	gone := dir + "." + hex.EncodeToString(suffix[:]) + deleteDirSuffix
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("%w: deleting %s: %v", ErrStorage, dir, err)
	}
	_ = syncDir(filepath.Dir(dir))
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("%w: deleting %s: %v", ErrStorage, gone, err)
	}
	return nil
}

// moveStep marks a step of a move: a crash test may kill the process here,
// and a unit test may look at the files.
func (m *Manager) moveStep(name string) {
	crashpoint.Hit(name)
	if m.onMoveStep != nil {
		m.onMoveStep(name)
	}
}

// FutureInfo describes a future replica, for DescribeLogDirs (IsFuture).
type FutureInfo struct {
	Topic     string
	Partition int32
	Dir       string // the log dir it is being built in
	Size      int64
	// OffsetLag is how far its end is behind the partition's.
	OffsetLag int64
}

// Futures lists the future replicas of the moves in progress.
func (m *Manager) Futures() []FutureInfo {
	m.movesMu.Lock()
	mvs := make([]*move, 0, len(m.moves))
	for _, mv := range m.moves {
		if !mv.finished() {
			mvs = append(mvs, mv)
		}
	}
	m.movesMu.Unlock()
	out := make([]FutureInfo, 0, len(mvs))
	for _, mv := range mvs {
		out = append(out, FutureInfo{
			Topic: mv.p.topic, Partition: mv.p.index, Dir: mv.to.path,
			Size:      mv.future.Size(),
			OffsetLag: max(0, mv.p.LogEndOffset()-mv.future.LogEndOffset()),
		})
	}
	return out
}

// stopMoves cancels every move in progress and waits for them. m.mu not
// held.
func (m *Manager) stopMoves() {
	m.movesMu.Lock()
	defer m.movesMu.Unlock()
	for k, mv := range m.moves {
		mv.stop()
		delete(m.moves, k)
	}
}

// partitionDirs is what Open found of one partition: the dirs holding it,
// and which of them carries a move's marker.
type partitionDirs struct {
	paths  []string
	marked string
}

// resolveMoves finishes or discards the moves a crash interrupted (see the
// top of this file), given every partition dir found, and returns the one
// dir to load per partition; a partition in two dirs without a marker is
// ErrDuplicatePartition.
func (m *Manager) resolveMoves(found map[partKey]*partitionDirs) (map[partKey]string, error) {
	out := make(map[partKey]string, len(found))
	var errs []error
	for k, pd := range found {
		if pd.marked == "" {
			if len(pd.paths) > 1 {
				errs = append(errs, fmt.Errorf("%w: %s", ErrDuplicatePartition, strings.Join(pd.paths, " and ")))
				continue
			}
			out[k] = pd.paths[0]
			continue
		}
		for _, path := range pd.paths {
			if path == pd.marked {
				continue
			}
			m.logger.Info("removing the old copy of a partition whose move to another log directory committed before a crash", "old", path, "new", pd.marked)
			if err := m.removeDir(path); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(filepath.Join(pd.marked, moveMarkerFile)); err == nil {
			_ = syncDir(pd.marked)
		}
		out[k] = pd.marked
	}
	return out, errors.Join(errs...)
}
