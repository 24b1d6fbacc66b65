package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Follower-side replication, after Kafka's ISR model.
//
// A follower fetches from the leader (the leader serves it with
// ReadForReplica, which reads up to the LEO rather than the HW) and stores the
// batches with AppendReplicated, byte for byte as the leader stored them:
// offsets, partition leader epochs, timestamps and CRCs are the leader's.
// The follower derives everything else from those bytes the way the leader
// did: indexes, the leader epoch history (a batch with a higher partition
// leader epoch starts that epoch at its base offset) and the idempotent
// producer state, so a follower that becomes leader deduplicates retries of
// batches it only ever received by replication.
//
// Segments roll by the same rules as on the leader (segment.bytes, index
// size, relative offset range, segment.ms), decided batch by batch, so with
// the same topic config the segment files of the two replicas are identical
// whenever the leader's rolls were size-driven. segment.ms depends on each
// broker's clock, so a time-based roll may fall at different offsets; the
// sequence of batches is identical regardless.
//
// The follower's HW is the leader's: the broker passes it to
// SetHighWatermarkFollower, which, unlike SetHighWatermark, may move the HW
// backwards (a new leader's HW can lag its predecessor's).
//
// After a leader change a follower asks the new leader for the end offset of
// its own latest epoch (LatestEpoch, then OffsetForLeaderEpoch, which the
// leader answers with EndOffsetForEpoch) and truncates to it (TruncateTo)
// before fetching, so records the old leader never committed are dropped and
// the replicas agree again. A follower whose LEO fell below the leader's log
// start offset restarts its log there (TruncateFullyAndStartAt).

// ErrUnexpectedAppendOffset reports replicated batches that do not continue
// the log: the first does not start at the LEO, or offsets go backwards or
// skip. Nothing was appended. The broker treats it as a failed fetch: the
// fetch offset and the LEO disagree.
var ErrUnexpectedAppendOffset = errors.New("log: replicated batch does not continue the log")

// ReadForReplica serves a follower's fetch: whole batches from the one
// containing offset, up to maxBytes (at least one batch, KIP-74), up to the
// LEO rather than the HW.
func (p *Partition) ReadForReplica(offset int64, maxBytes int32) (ReadResult, error) {
	return p.Read(offset, maxBytes, math.MaxInt64, true)
}

// LatestEpoch returns the latest leader epoch in the history and the offset
// it started at, or (-1, -1) when the history is empty.
func (p *Partition) LatestEpoch() (epoch int32, startOffset int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if n := len(p.epochs); n > 0 {
		return p.epochs[n-1].Epoch, p.epochs[n-1].Start
	}
	return -1, -1
}

// SetHighWatermarkFollower sets a follower's HW to the leader's HW, clamped
// to [log start, LEO]. Unlike SetHighWatermark it may move the HW backwards:
// after a leader change the new leader's HW can be below the one the follower
// last learnt, and the follower follows it (as Kafka's followers do). Waiters
// are woken when it changes.
func (p *Partition) SetHighWatermarkFollower(hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	hw = min(max(hw, p.logStart), p.leo)
	if hw == p.hw {
		return
	}
	p.hw = hw
	p.pruneUnreplicatedLocked()
	p.hwMovedLocked()
}

// AppendReplicated stores record batches fetched from the leader exactly as
// the leader stored them (offsets and partition leader epochs already set).
//
// Every whole batch is checked first: length, magic 2, CRC-32C, offsets that
// start at the LEO and continue without a gap (the first batch's base offset
// must equal the LEO), and partition leader epochs that never decrease. Any
// failure returns an error and appends nothing.
//
// A follower that restarted its log at the leader's log start offset
// (TruncateFullyAndStartAt) may be sent a first batch that begins below it,
// when the leader's log start lies inside that batch. That append fails with
// ErrUnexpectedAppendOffset; as Kafka's followers do, the broker then
// restarts the log at the batch's base offset and appends again. Topics with a compact
// cleanup policy accept forward gaps, at the start and between batches,
// because the leader's cleaner drops whole batches; offsets must still
// increase. A partial batch at the end of batches (a fetch response may cut
// the last one) is ignored; input holding bytes but not one whole batch is
// reported as corrupt, since a leader always returns at least one whole
// batch.
//
// It maintains the indexes, the leader epoch history and the producer state,
// and moves the LEO; it does not move the HW (see SetHighWatermarkFollower).
// lastOffset is the offset of the last record now in the log (LEO-1), also
// when an error stopped it: a storage error after some batches were written
// leaves those batches appended.
func (p *Partition) AppendReplicated(batches []byte, now time.Time) (lastOffset int64, err error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.RLock()
	openErr, leo, latest := p.openErr(), p.leo, int32(-1)
	if n := len(p.epochs); n > 0 {
		latest = p.epochs[n-1].Epoch
	}
	p.mu.RUnlock()
	if openErr != nil {
		return leo - 1, openErr
	}
	cfg := p.cfg.Load()
	hs, err := checkReplicated(batches, leo, latest, cfg.compact())
	if err != nil {
		return leo - 1, err
	}
	for _, h := range hs {
		b := batches[:h.Size()]
		batches = batches[h.Size():]
		if err := p.appendReplicatedBatch(cfg, b, h, now); err != nil {
			return p.LogEndOffset() - 1, err
		}
	}
	return p.LogEndOffset() - 1, nil
}

// checkReplicated validates the whole batches at the start of b against the
// log's end offset and latest epoch and returns their headers.
func checkReplicated(b []byte, leo int64, latestEpoch int32, gapsAllowed bool) ([]BatchHeader, error) {
	var hs []BatchHeader
	next, epoch := leo, latestEpoch
	total := len(b)
	for len(b) >= BatchHeaderSize {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return nil, err
		}
		if h.Size() > len(b) {
			break // partial trailing batch
		}
		at := total - len(b)
		if h.Magic != 2 {
			return nil, fmt.Errorf("%w: magic %d in replicated batch at byte %d", ErrUnsupportedMagic, h.Magic, at)
		}
		if h.LastOffsetDelta < 0 || h.BaseOffset < 0 || h.LastOffset() < h.BaseOffset || h.LastOffset() == math.MaxInt64 {
			return nil, fmt.Errorf("%w: replicated batch at byte %d has offsets %d..%d", ErrCorruptMessage, at, h.BaseOffset, h.LastOffset())
		}
		if !VerifyBatchCRC(b[:h.Size()]) {
			return nil, fmt.Errorf("%w: replicated batch %d (byte %d) fails its CRC", ErrCorruptMessage, h.BaseOffset, at)
		}
		switch {
		case h.BaseOffset < next && len(hs) == 0:
			return nil, fmt.Errorf("%w: first batch starts at %d, below the log end offset %d", ErrUnexpectedAppendOffset, h.BaseOffset, next)
		case h.BaseOffset < next:
			return nil, fmt.Errorf("%w: batch %d..%d goes back after offset %d", ErrUnexpectedAppendOffset, h.BaseOffset, h.LastOffset(), next-1)
		case h.BaseOffset > next && !gapsAllowed && len(hs) == 0:
			return nil, fmt.Errorf("%w: first batch starts at %d, log end offset is %d", ErrUnexpectedAppendOffset, h.BaseOffset, next)
		case h.BaseOffset > next && !gapsAllowed:
			return nil, fmt.Errorf("%w: batch %d..%d leaves a gap after offset %d", ErrUnexpectedAppendOffset, h.BaseOffset, h.LastOffset(), next-1)
		}
		if h.PartitionLeaderEpoch >= 0 {
			if h.PartitionLeaderEpoch < epoch {
				return nil, fmt.Errorf("%w: batch %d has leader epoch %d after epoch %d", ErrCorruptMessage, h.BaseOffset, h.PartitionLeaderEpoch, epoch)
			}
			epoch = h.PartitionLeaderEpoch
		}
		hs = append(hs, h)
		next = h.LastOffset() + 1
		b = b[h.Size():]
	}
	if len(hs) == 0 && len(b) > 0 {
		return nil, fmt.Errorf("%w: %d bytes of replicated data hold no whole batch", ErrCorruptMessage, len(b))
	}
	return hs, nil
}

// appendReplicatedBatch writes one checked batch. appendMu held.
func (p *Partition) appendReplicatedBatch(cfg *PartitionConfig, b []byte, h BatchHeader, now time.Time) error {
	marker, err := markerOf(b, h)
	if err != nil {
		return err
	}
	return p.writeBatch(cfg, b, h, marker, now)
}

// lockForRewrite takes every lock that a rewrite of the log's tail
// (TruncateTo, TruncateFullyAndStartAt, a move's swap) holds, in the lock
// order: cleanMu, appendMu, flushMu. A cleaner pass in progress is told to
// give up first, so the rewrite waits for it to stop rather than to finish.
// It returns the function that releases them, which first counts the
// rewrite in rewrites (a move's copy starts again when it moved).
func (p *Partition) lockForRewrite() (unlock func()) {
	p.cleanAbort.Add(1)
	p.cleanMu.Lock()
	p.cleanAbort.Add(-1)
	p.appendMu.Lock()
	p.flushMu.Lock()
	return func() {
		p.rewrites.Add(1)
		p.flushMu.Unlock()
		p.appendMu.Unlock()
		p.cleanMu.Unlock()
	}
}

// TruncateTo removes every batch that holds an offset at or above offset,
// for a follower that must drop records its old leader never committed. A
// batch containing offset is removed whole: the log ends at the batch
// boundary at or below offset, and that new LEO is returned. offset must lie
// in [log start, LEO]; offset == LEO changes nothing.
//
// Besides the segment files and their indexes (later segments are deleted),
// it trims the leader epoch history (entries starting at or above the new
// LEO), rebuilds the producer state for the remaining log (newest producer
// snapshot at or below the new LEO plus a replay of the batch headers after
// it), lowers the cleaner checkpoint and the recovery point, and lowers the
// HW when it was above the new LEO: records below the HW were committed, so
// that only happens in an unclean leader election, where Kafka truncates them
// too. If the new LEO falls below the log start offset (offset was the log
// start and it lies inside a batch) the log start comes down with it.
//
// A cleaning pass in progress is abandoned first. Appends, flushes and
// retention wait for the truncation; readers wait only while the new end is
// published, and never see a segment being removed.
//
// Crash safety: the offsets checkpoint is lowered first, then segments are
// removed from the last one backwards (each removal made durable before the
// next), then the segment holding the new end is truncated and fsynced, then
// the epoch history is rewritten. Each intermediate state on disk is a prefix
// of the old log, and recovery (which verifies the tail and drops epoch
// entries and producer snapshots beyond the recovered end) turns any of them
// into a consistent log. If a file operation fails the partition is taken
// offline (ErrStorage now, ErrClosed afterwards) and a restart recovers it.
func (p *Partition) TruncateTo(offset int64) (int64, error) {
	defer p.lockForRewrite()()

	// Segments and their fields change only under appendMu or flushMu, both
	// held, so they are read here without mu.
	p.mu.RLock()
	openErr, leo, logStart := p.openErr(), p.leo, p.logStart
	p.mu.RUnlock()
	if openErr != nil {
		return -1, openErr
	}
	if offset < logStart || offset > leo {
		return leo, fmt.Errorf("%w: truncate to %d outside [%d, %d]", ErrOffsetOutOfRange, offset, logStart, leo)
	}
	if offset == leo {
		return leo, nil
	}
	k := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset }) - 1
	k = max(k, 0)
	seg := p.segs[k]
	cut, err := seg.planTruncate(offset)
	if err != nil {
		return leo, fmt.Errorf("%w: truncate: %v", ErrStorage, err)
	}
	newLEO := cut.next

	// Lowering the cleaner checkpoint and the offsets checkpoint is safe
	// whatever happens next, so both go first.
	if st := p.cleanerState(); st.firstDirty > newLEO {
		next := cleanerCheckpoint{firstDirty: newLEO, horizon: st.horizon}
		if err := writeFileAtomic(filepath.Join(p.Dir(), cleanerCheckpointFile), next.encode()); err != nil {
			return leo, fmt.Errorf("%w: cleaner checkpoint: %v", ErrStorage, err)
		}
		*st = next
	}
	p.mu.RLock()
	ck := offsetsCheckpoint{
		LogStartOffset: min(p.logStart, newLEO),
		RecoveryPoint:  min(p.recoveryPoint, newLEO),
		HighWatermark:  min(p.hw, newLEO),
	}
	p.mu.RUnlock()
	if err := writeFileAtomic(filepath.Join(p.Dir(), offsetsCheckpointFile), ck.encode()); err != nil {
		return leo, fmt.Errorf("%w: checkpoint: %v", ErrStorage, err)
	}
	p.lastCkpt, p.lastCkptAt = ck, time.Now()
	removeSnapshotsAbove(p.Dir(), newLEO)

	// Publish the new end: readers stop at it, removed segments leave the
	// list before their files are touched.
	p.mu.Lock()
	gone := append([]*segment(nil), p.segs[k+1:]...)
	p.segs = p.segs[:k+1]
	oldSize := seg.size
	seg.applyTruncate(cut)
	p.leo = newLEO
	p.logStart = ck.LogStartOffset
	p.recoveryPoint = ck.RecoveryPoint
	if p.hw != ck.HighWatermark {
		p.hw = ck.HighWatermark
		p.hwMovedLocked()
	}
	i := len(p.epochs)
	for i > 0 && p.epochs[i-1].Start >= newLEO {
		i--
	}
	if i < len(p.epochs) {
		p.epochs = append([]EpochEntry(nil), p.epochs[:i]...)
	}
	p.mu.Unlock()

	for j := len(gone) - 1; j >= 0; j-- {
		if err := gone[j].remove(); err != nil {
			return newLEO, p.failLocked(fmt.Errorf("removing segment %d: %w", gone[j].base, err))
		}
		if err := syncDir(p.Dir()); err != nil {
			return newLEO, p.failLocked(err)
		}
	}
	if cut.pos < oldSize {
		if err := seg.log.Truncate(cut.pos); err != nil {
			return newLEO, p.failLocked(err)
		}
		if err := seg.log.Sync(); err != nil {
			return newLEO, p.failLocked(err)
		}
		seg.flushedSize = min(seg.flushedSize, cut.pos)
	}
	if err := p.writeCheckpointLocked(true); err != nil {
		return newLEO, p.failLocked(err)
	}
	if err := p.rebuildProducerState(); err != nil {
		return newLEO, p.failLocked(err)
	}
	p.logger.Info("truncated log", "partition", p.Dir(), "requested", offset, "logEndOffset", newLEO,
		"previousLogEndOffset", leo, "segmentsRemoved", len(gone))
	return newLEO, nil
}

// TruncateFullyAndStartAt discards the whole log and restarts it empty at
// offset: log start, LEO, HW and recovery point all become offset, and the
// leader epoch history and producer state are cleared. A follower uses it
// when its log no longer overlaps the leader's (its LEO fell below the
// leader's log start offset).
//
// Crash safety: the offsets checkpoint naming the new start is written first;
// recovery treats segments below a log start beyond their end as gone, so a
// crash at any later step loads either an empty log at offset or, when
// offset was inside the old log, the old log from offset on.
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: restart at %d", ErrOffsetOutOfRange, offset)
	}
	defer p.lockForRewrite()()
	p.mu.RLock()
	openErr := p.openErr()
	p.mu.RUnlock()
	if openErr != nil {
		return openErr
	}

	ck := offsetsCheckpoint{LogStartOffset: offset, RecoveryPoint: offset, HighWatermark: offset}
	if err := writeFileAtomic(filepath.Join(p.Dir(), offsetsCheckpointFile), ck.encode()); err != nil {
		return fmt.Errorf("%w: checkpoint: %v", ErrStorage, err)
	}
	p.lastCkpt, p.lastCkptAt = ck, time.Now()
	removeSnapshotsAbove(p.Dir(), -1)
	st := p.cleanerState()
	next := cleanerCheckpoint{firstDirty: offset, horizon: math.MaxInt64}
	if err := writeFileAtomic(filepath.Join(p.Dir(), cleanerCheckpointFile), next.encode()); err != nil {
		return p.failLocked(err)
	}
	*st = next

	// The new segment may reuse an old segment's name, so the old ones go
	// first; readers are held off meanwhile (a rare, short operation). On a
	// failure the list keeps the old segments (some with closed files) for
	// the offline partition, so it is never empty.
	p.mu.Lock()
	old := p.segs
	for j := len(old) - 1; j >= 0; j-- {
		if err := old[j].remove(); err != nil {
			p.mu.Unlock()
			return p.failLocked(fmt.Errorf("removing segment %d: %w", old[j].base, err))
		}
		if err := syncDir(p.Dir()); err != nil {
			p.mu.Unlock()
			return p.failLocked(err)
		}
	}
	seg, err := createSegment(p.Dir(), offset)
	if err == nil {
		err = syncDir(p.Dir())
	}
	if err != nil {
		p.mu.Unlock()
		return p.failLocked(err)
	}
	p.segs = []*segment{seg}
	p.leo, p.logStart, p.hw, p.recoveryPoint = offset, offset, offset, offset
	p.epochs = nil
	p.unflushedMsgs = 0
	p.hwMovedLocked()
	p.firstUnstable, p.unreplicated = noUnstable, nil
	p.mu.Unlock()
	p.producers = newProducerState()
	if err := p.writeCheckpointLocked(true); err != nil {
		return p.failLocked(err)
	}
	p.logger.Info("restarted log", "partition", p.Dir(), "offset", offset)
	return nil
}

// closeFailedLocked closes a failed partition (every later call fails) and
// its files, without the clean shutdown state (snapshot, checkpoint) being
// written, and wakes its waiters. appendMu and flushMu held.
func (p *Partition) closeFailedLocked() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.closedLocked()
	}
	p.filesClosed, p.failed = true, true
	segs := p.segs
	p.mu.Unlock()
	for _, s := range segs {
		_ = s.closeFiles()
	}
}

// failLocked takes the partition offline after a file operation left the
// in-memory state and the files out of step: every later call fails and the
// files are closed without the clean shutdown state (snapshot, checkpoint)
// being written, and Manager.Close leaves the dir without its clean shutdown
// marker, so the next Open recovers the partition from its files. appendMu
// and flushMu held.
func (p *Partition) failLocked(cause error) error {
	p.logger.Error("partition offline: rewriting its log files failed; a restart recovers it from them", "partition", p.Dir(), "error", cause)
	p.closeFailedLocked()
	return fmt.Errorf("%w: %v", ErrStorage, cause)
}

// removeSnapshotsAbove deletes producer snapshots at offsets above limit:
// they describe records that are gone.
func removeSnapshotsAbove(dir string, limit int64) {
	offs, err := listSnapshots(dir)
	if err != nil {
		return
	}
	for _, o := range offs {
		if o > limit {
			_ = os.Remove(segmentPath(dir, o, snapshotSuffix))
		}
	}
}

// segTruncation is a segment's state after a truncation.
type segTruncation struct {
	pos             int64 // bytes kept
	next            int64
	lastBatchBase   int64
	maxTs           int64
	maxTsBase       int64
	bytesSinceIndex int64
	index           []offsetEntry
	tindex          []timeEntry
}

// planTruncate computes the segment's state once every batch holding an
// offset >= offset is removed. It reads only the headers from the batch
// carrying the largest kept timestamp (or the last kept index entry, if
// later) to the cut. The segment's fields must be stable (appendMu or
// flushMu held).
//
// Why that suffices: a time index entry (ts, rel) whose batch is kept says
// that every batch up to that batch has a timestamp <= ts, and every batch
// before the last kept offset index entry was covered by the time entry
// written with it (or had no timestamp), so only batches after both can hold
// a larger timestamp.
func (s *segment) planTruncate(offset int64) (segTruncation, error) {
	t := segTruncation{pos: s.size, next: s.next, lastBatchBase: s.lastBatchBase, maxTs: s.maxTs, maxTsBase: s.maxTsBase,
		bytesSinceIndex: s.bytesSinceIndex, index: s.index, tindex: s.tindex}
	sc := newHeaderScanner(s.log, lookupOffset(s.index, s.base, offset), s.size, lookupWindow)
	cutBase := int64(-1)
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			sc.release()
			return t, fmt.Errorf("segment %d at %d: %v", s.base, pos, err)
		}
		if h.LastOffset() >= offset {
			t.pos, cutBase = pos, h.BaseOffset
			break
		}
	}
	sc.release()
	if cutBase < 0 {
		return t, nil // every batch lies below offset
	}
	n := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].pos) >= t.pos })
	t.index = s.index[:n:n]
	m := sort.Search(len(s.tindex), func(i int) bool { return s.base+int64(s.tindex[i].rel) >= cutBase })
	t.tindex = s.tindex[:m:m]
	var lastIdx int64
	if n > 0 {
		lastIdx = int64(t.index[n-1].pos)
	}
	start := lastIdx
	t.maxTs, t.maxTsBase = -1, -1
	if m > 0 {
		e := t.tindex[m-1]
		t.maxTs, t.maxTsBase = e.ts, s.base+int64(e.rel)
		start = min(start, lookupOffset(t.index, s.base, t.maxTsBase))
	}
	t.next, t.lastBatchBase = s.base, -1
	t.bytesSinceIndex = t.pos - lastIdx
	sc = newHeaderScanner(s.log, start, t.pos, scanWindow)
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return t, fmt.Errorf("segment %d at %d: %v", s.base, pos, err)
		}
		if h.MaxTimestamp > t.maxTs {
			t.maxTs, t.maxTsBase = h.MaxTimestamp, h.BaseOffset
		}
		t.next, t.lastBatchBase = h.LastOffset()+1, h.BaseOffset
	}
	return t, nil
}

// applyTruncate installs a planned truncation in memory. The index files are
// cut to the kept entries on the next flush. Partition.mu held (write).
func (s *segment) applyTruncate(t segTruncation) {
	if t.pos == s.size {
		return
	}
	s.size, s.next, s.lastBatchBase = t.pos, t.next, t.lastBatchBase
	s.maxTs, s.maxTsBase = t.maxTs, t.maxTsBase
	s.bytesSinceIndex = t.bytesSinceIndex
	s.index, s.tindex = t.index, t.tindex
	s.idxDone, s.tidxDone = min(s.idxDone, len(s.index)), min(s.tidxDone, len(s.tindex))
	s.indexFilesTruncated = true
	if s.size == 0 {
		s.rollAt = -1
	}
}
