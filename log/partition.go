package log

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Partition is one partition's log.
//
// Concurrency: one writer at a time, many readers.
//   - appendMu serializes writers (Append, rolls) and guards the producer
//     state and leader epoch history writes.
//   - flushMu serializes fsync rounds, segment deletion and checkpoint writes,
//     so a segment is never closed under a running fsync.
//   - mu guards the segment list, offsets and in-memory indexes. Writers hold
//     it only to publish an append (after the bytes are in the file), so
//     readers wait at most for that publish, never for disk writes.
//   - cleanMu serializes log cleaner passes and guards the cleaner checkpoint
//     (see compact.go).
//
// Lock order: cleanMu, then appendMu, then flushMu, then mu. These come
// after the Manager's locks (movesMu, Manager.mu: DeletePartition closes a
// partition under Manager.mu) and before logDir.mu, a leaf; a write that
// fails under appendMu or flushMu takes its dir offline through logDir.mu
// alone (storageFailed, failDir), never Manager.mu.
//
// Transactions (txn.go, txnindex.go) add no lock: producer state and the
// .txnindex files are written under appendMu (appends, and the rebuild in
// TruncateTo, which also holds cleanMu and flushMu) or by the cleaner's swap
// (cleanMu and flushMu, for segments no append touches); what readers use
// (firstUnstable, unreplicated, each segment's aborted list) is published
// under mu.
//
// Readers access segment files only while holding mu (read), and a segment
// leaves the list only under mu (write) before its files are closed, so a
// reader never touches a closed or replaced file. A FileSlice (slice.go) is
// read after mu is released: it pins its segment's log file, which closing
// the segment then leaves open until the slice is released.
//
// Invariants (under mu): len(segs) >= 1; segments are ordered by base and
// each base >= the previous segment's next offset; leo == last segment's next;
// logStart <= hw <= leo; recoveryPoint <= leo and every byte of every batch
// below recoveryPoint has been fsynced; firstUnstable equals the producer
// state's firstUnstable() (it is copied there on every publish, so readers
// get the LSO without appendMu); every abort marker below leo has an entry
// in the aborted list of the segment holding it (see txn.go; a crash inside
// a cleaner swap may leave it twice, which readers tolerate).
type Partition struct {
	topic   string
	index   int32
	topicID [16]byte
	dir     atomic.Pointer[string] // written only with every lock held (alterdir.go)
	m       *Manager
	logger  *slog.Logger
	cfg     atomic.Pointer[PartitionConfig]

	appendMu  sync.Mutex
	producers *producerState // appendMu

	cleanMu    sync.Mutex
	cleaner    *cleanerCheckpoint // cleanMu; nil until the first pass loads it
	cleanAbort atomic.Int32       // > 0 while a truncation waits for cleanMu; a pass gives up
	rewrites   atomic.Int64       // rewrites of the log's tail so far (lockForRewrite)

	flushMu     sync.Mutex
	lastCkpt    offsetsCheckpoint // flushMu: what the checkpoint file holds
	lastCkptAt  time.Time         // flushMu
	filesClosed bool              // flushMu and mu
	failed      bool              // flushMu: taken offline by a failed rewrite of its files (truncation, move; see replica.go)

	mu            sync.RWMutex
	segs          []*segment
	leo           int64
	hw            int64
	firstUnstable int64          // first offset of the earliest open transaction, noUnstable if none; written with appendMu and mu held
	unreplicated  []completedTxn // transactions whose marker may still be at or above hw, in marker order (txn.go)
	logStart      int64
	recoveryPoint int64
	epochs        []EpochEntry // written with appendMu and mu held
	unflushedMsgs int64
	lastFlush     time.Time
	// waitCh is closed (and replaced) when the HW moves or the partition
	// closes; hwWaiters are woken at the same points. Both are signalled
	// after the change is published, with mu held (hwWaiters' lock is a
	// leaf under mu).
	waitCh    chan struct{}
	hwWaiters WaitSet
	closed    bool
	deleted   bool
	offline   error // set once, when the log dir went offline (logdir.go); wraps ErrStorage
}

// Topic returns the topic name.
func (p *Partition) Topic() string { return p.topic }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.index }

// TopicID returns the topic id stored in partition.metadata.
func (p *Partition) TopicID() [16]byte { return p.topicID }

// Dir returns the partition's directory. It changes when a move to
// another log dir completes (alterdir.go).
func (p *Partition) Dir() string { return *p.dir.Load() }

// Config returns the partition's current config.
func (p *Partition) Config() PartitionConfig { return *p.cfg.Load() }

// SetConfig replaces the partition's config; it applies to the next append,
// roll and retention pass.
func (p *Partition) SetConfig(cfg PartitionConfig) {
	c := cfg.sanitized()
	p.cfg.Store(&c)
}

func (p *Partition) active() *segment { return p.segs[len(p.segs)-1] }

// closedErr is the error for a partition that is no longer open. mu held.
func (p *Partition) closedErr() error {
	if p.offline != nil {
		return p.offline
	}
	if p.deleted {
		return ErrPartitionDeleted
	}
	return ErrClosed
}

// openErr is nil while the partition is open and its dir online,
// otherwise closedErr. mu held.
func (p *Partition) openErr() error {
	if !p.closed && p.offline == nil {
		return nil
	}
	return p.closedErr()
}

// AppendResult describes a stored (or deduplicated) batch.
type AppendResult struct {
	BaseOffset     int64
	LastOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Duplicate      bool // a retry of a batch already stored; nothing was appended
}

// Append stores one batch that passed ValidateProduceBatch. It assigns offsets
// by writing baseOffset = LEO and partitionLeaderEpoch = leaderEpoch into b in
// place (both outside the CRC), so the stored bytes are the producer's. With
// message.timestamp.type=LogAppendTime it also stamps maxTimestamp and the
// timestamp-type attribute, which are inside the CRC, and recomputes the CRC.
//
// Append takes ownership of b. It returns once the bytes are written to the
// segment file (page cache), not fsynced: see Sync.
func (p *Partition) Append(b []byte, h BatchHeader, leaderEpoch int32, now time.Time) (AppendResult, error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.RLock()
	openErr, logStart, base := p.openErr(), p.logStart, p.leo
	p.mu.RUnlock()
	if openErr != nil {
		return AppendResult{}, openErr
	}
	if len(b) != h.Size() || len(b) < BatchHeaderSize {
		return AppendResult{}, fmt.Errorf("%w: batch of %d bytes, header says %d", ErrCorruptMessage, len(b), h.Size())
	}
	cfg := p.cfg.Load()
	if err := checkRecordRules(cfg, b, h, now, fmt.Sprintf("%s-%d", p.topic, p.index)); err != nil {
		return AppendResult{}, err
	}
	marker, err := markerOf(b, h)
	if err != nil {
		return AppendResult{}, err
	}
	if dup, err := p.producers.check(h, marker); err != nil {
		return AppendResult{}, err
	} else if dup != nil {
		return AppendResult{BaseOffset: dup.BaseOffset, LastOffset: dup.LastOffset, LogAppendTime: dup.Timestamp, LogStartOffset: logStart, Duplicate: true}, nil
	}
	if base+int64(h.LastOffsetDelta) < base || base+int64(h.LastOffsetDelta) == math.MaxInt64 {
		return AppendResult{}, fmt.Errorf("%w: offset overflow", ErrInvalidRecord)
	}

	patchBatch(b, base, leaderEpoch)
	h.BaseOffset, h.PartitionLeaderEpoch = base, leaderEpoch
	res := AppendResult{BaseOffset: base, LastOffset: h.LastOffset(), LogAppendTime: -1, LogStartOffset: logStart}
	if cfg.MessageTimestampType == TimestampLogAppendTime {
		res.LogAppendTime = now.UnixMilli()
		setLogAppendTime(b, &h, res.LogAppendTime)
	}

	if err := p.writeBatch(cfg, b, h, marker, now); err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// writeBatch adds one batch whose offsets and leader epoch are final (a
// produced batch Append has stamped, or a replicated one) at the end of the
// log: it rolls the active segment when due, writes the bytes, records a
// new leader epoch, applies the batch to the producer state, and publishes
// the new LEO to readers. On a failed write or epoch record it cuts the
// segment back to where the batch began, so the next append starts at a
// batch boundary. appendMu held.
func (p *Partition) writeBatch(cfg *PartitionConfig, b []byte, h BatchHeader, marker *EndTxnMarker, now time.Time) error {
	if p.shouldRoll(cfg, len(b), h, now) {
		if err := p.roll(); err != nil {
			return err
		}
	}
	// Retention may drop old segments concurrently, so the list is read
	// under mu; the active segment and the epoch history only change under
	// appendMu.
	p.mu.RLock()
	seg := p.active()
	newEpoch := h.PartitionLeaderEpoch >= 0 && (len(p.epochs) == 0 || h.PartitionLeaderEpoch > p.epochs[len(p.epochs)-1].Epoch)
	p.mu.RUnlock()
	pos := seg.size
	if _, err := seg.log.WriteAt(b, pos); err != nil {
		// Cut back any partial bytes; should that fail too, the dir is
		// offline from here on and recovery cuts the torn batch by its CRC.
		_ = seg.log.Truncate(pos)
		p.logger.Error("segment write failed", "partition", p.Dir(), "error", err)
		return p.storageFailed(fmt.Errorf("%w: %v", ErrStorage, err))
	}
	if newEpoch {
		if err := p.recordEpoch(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
			_ = seg.log.Truncate(pos)
			return p.storageFailed(err)
		}
	}
	txn := p.applyProducerBatch(seg, h, marker)

	p.mu.Lock()
	seg.trackBatch(h, pos, int64(cfg.IndexIntervalBytes), now.UnixMilli())
	p.publishTxnLocked(seg, txn)
	p.leo = seg.next
	p.unflushedMsgs += int64(h.NumRecords)
	p.mu.Unlock()
	return nil
}

// recordEpoch adds a leader epoch starting at start and persists the history
// before the batch that starts it is published. appendMu held; flushMu is
// taken because checkpoint writes (retention, DeleteRecords) also rewrite the
// file and must not interleave with this one.
func (p *Partition) recordEpoch(epoch int32, start int64) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	prev := p.epochs
	es := append(append([]EpochEntry(nil), prev...), EpochEntry{Epoch: epoch, Start: start})
	p.epochs = es
	p.mu.Unlock()
	if err := writeFileAtomic(filepath.Join(p.Dir(), leaderEpochFile), encodeEpochs(es)); err != nil {
		p.mu.Lock()
		p.epochs = prev
		p.mu.Unlock()
		return fmt.Errorf("%w: leader epoch checkpoint: %v", ErrStorage, err)
	}
	return nil
}

// shouldRoll decides whether the batch goes into a new segment. An empty
// active segment never rolls, so any batch fits somewhere.
func (p *Partition) shouldRoll(cfg *PartitionConfig, size int, h BatchHeader, now time.Time) bool {
	p.mu.RLock()
	seg := p.active()
	p.mu.RUnlock()
	if seg.size == 0 {
		return false
	}
	return seg.size+int64(size) > cfg.SegmentBytes ||
		now.UnixMilli()-seg.rollAt >= cfg.rollMs() ||
		seg.indexFull(cfg.SegmentIndexBytes) ||
		h.LastOffset()-seg.base > math.MaxInt32 ||
		seg.size+int64(size) > math.MaxInt32 // positions are uint32 in the index
}

// roll starts a new active segment at LEO. Called with appendMu held. The
// producer state is snapshotted at the new base so recovery after a crash
// replays at most one segment of headers.
func (p *Partition) roll() error {
	base := p.leo
	seg, err := createSegment(p.Dir(), base)
	if err != nil {
		return p.storageFailed(fmt.Errorf("%w: roll: %v", ErrStorage, err))
	}
	if err := syncDir(p.Dir()); err != nil {
		_ = seg.remove()
		return p.storageFailed(fmt.Errorf("%w: roll: %v", ErrStorage, err))
	}
	if err := p.producers.writeSnapshot(p.Dir(), base); err != nil {
		p.logger.Warn("producer snapshot failed", "partition", p.Dir(), "error", err)
	}
	p.mu.Lock()
	p.active().maybeTimeEntry()
	p.segs = append(p.segs, seg)
	p.mu.Unlock()
	return nil
}

// LogStartOffset is the first offset a reader may fetch.
func (p *Partition) LogStartOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.logStart
}

// LogEndOffset is the offset the next appended record gets.
func (p *Partition) LogEndOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.leo
}

// HighWatermark is the offset below which records are committed.
func (p *Partition) HighWatermark() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.hw
}

// RecoveryPoint is the offset below which everything is fsynced.
func (p *Partition) RecoveryPoint() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.recoveryPoint
}

// SetHighWatermark moves the HW forward, clamped to LEO; it never moves back.
// Waiters are woken when it moves.
func (p *Partition) SetHighWatermark(hw int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hw = min(hw, p.leo)
	if hw <= p.hw || p.closed {
		return
	}
	p.hw = hw
	p.pruneUnreplicatedLocked()
	p.hwMovedLocked()
}

// hwMovedLocked wakes everything waiting for the HW to move: Wait's
// channel and the registered waiters. mu held (write).
func (p *Partition) hwMovedLocked() {
	close(p.waitCh)
	p.waitCh = make(chan struct{})
	p.hwWaiters.WakeAll()
}

// closedLocked wakes every waiter of a partition that has just closed;
// they find it closed when they read again. mu held (write).
func (p *Partition) closedLocked() {
	close(p.waitCh)
	p.hwWaiters.WakeAll()
}

// WatchHighWatermark registers w to be woken the next time the HW moves
// or the partition closes. Call it before reading the HW, so a move in
// between is not missed; w.Release unregisters it.
func (p *Partition) WatchHighWatermark(w *Waiter) { p.hwWaiters.Add(w) }

// Wait returns a channel closed the next time the HW moves or the partition
// is closed or deleted. Callers take the channel before checking the HW, so
// a move between the check and the wait is not missed.
func (p *Partition) Wait() <-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.waitCh
}

// ReadResult carries whole stored batches back to back.
type ReadResult struct {
	Data             []byte
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	// Aborted lists the aborted transactions overlapping Data, filled only
	// by a read_committed ReadIsolated.
	Aborted []AbortedTxn
}

// Read returns whole batches starting with the batch that contains offset, up
// to maxBytes in total, and only batches starting below maxOffset (the broker
// passes the HW). With minOneBatch the first batch is returned even if it is
// larger than maxBytes (KIP-74), so a consumer can always make progress.
// Batches come from one segment per call.
func (p *Partition) Read(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (ReadResult, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.readLocked(offset, maxBytes, maxOffset, minOneBatch)
}

// readLocked implements Read. mu held (read).
func (p *Partition) readLocked(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (ReadResult, error) {
	res, seg, err := p.locateLocked(offset, maxOffset)
	if seg == nil || err != nil {
		return res, err
	}
	data, err := seg.read(offset, maxBytes, min(maxOffset, p.leo), minOneBatch)
	res.Data = data
	return res, err
}

// locateLocked checks a read at offset against the log's bounds and finds
// the segment holding its first batch below maxOffset: nil when there is
// nothing to read. mu held (read).
func (p *Partition) locateLocked(offset, maxOffset int64) (ReadResult, *segment, error) {
	if err := p.openErr(); err != nil {
		return ReadResult{}, nil, err
	}
	res := ReadResult{HighWatermark: p.hw, LastStableOffset: p.lsoLocked(), LogStartOffset: p.logStart}
	if offset < p.logStart || offset > p.leo {
		return res, nil, fmt.Errorf("%w: offset %d outside [%d, %d]", ErrOffsetOutOfRange, offset, p.logStart, p.leo)
	}
	if offset >= min(maxOffset, p.leo) {
		return res, nil, nil
	}
	for i := p.segmentFor(offset); i < len(p.segs); i++ {
		seg := p.segs[i]
		if offset >= seg.next || seg.size == 0 {
			// Offset lies past this segment's last batch, or the segment is
			// empty (its next is its base, which may lie above offset when
			// the offsets below it were compacted away).
			continue
		}
		return res, seg, nil
	}
	return res, nil, nil
}

// segmentFor returns the index of the last segment whose base is <= offset
// (0 if offset is below all). mu held.
func (p *Partition) segmentFor(offset int64) int {
	i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset })
	return max(i-1, 0)
}

// read implements Read within one segment. Partition.mu is held (read).
func (s *segment) read(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) ([]byte, error) {
	first, start, want, err := s.extent(offset, maxBytes, maxOffset, minOneBatch)
	if want == 0 || err != nil {
		return nil, err
	}
	buf := make([]byte, want)
	if _, err := s.log.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("%w: segment %d read at %d: %v", ErrStorage, s.base, start, err)
	}
	// Keep whole batches below maxOffset. The first batch is known to fit.
	end := first.Size()
	for end+BatchHeaderSize <= len(buf) {
		h, err := ParseBatchHeader(buf[end:])
		if err != nil || h.BaseOffset >= maxOffset || end+h.Size() > len(buf) {
			break
		}
		end += h.Size()
	}
	return buf[:end:end], nil
}

// extent finds what a read of the segment covers: the first batch (the one
// holding offset), its position, and how many bytes from there the read
// may take (0: nothing to read). The whole batches within those bytes and
// below maxOffset are the read's answer. Partition.mu is held (read).
func (s *segment) extent(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (first BatchHeader, start, want int64, err error) {
	start = lookupOffset(s.index, s.base, offset)
	sc := newHeaderScanner(s.log, start, s.size, lookupWindow)
	defer sc.release()
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			return first, 0, 0, nil
		}
		if err != nil {
			return first, 0, 0, fmt.Errorf("%w: segment %d at %d: %v", ErrStorage, s.base, pos, err)
		}
		if h.LastOffset() >= offset {
			first, start = h, pos
			break
		}
	}
	if first.BaseOffset >= maxOffset {
		return first, 0, 0, nil
	}
	want = min(int64(max(maxBytes, 0)), s.size-start)
	if maxOffset < s.next {
		// Batches at or past maxOffset follow in this segment: read only up
		// to the first of them, not the whole byte budget, when a caller
		// asks for a short range of a long log.
		if end, err := s.positionOf(maxOffset, start); err == nil {
			want = min(want, end-start)
		}
	}
	if int64(first.Size()) > want {
		if !minOneBatch {
			return first, 0, 0, nil
		}
		want = int64(first.Size())
	}
	return first, start, want, nil
}

// positionOf returns the file position of the first batch of the segment
// at or after from (a batch position) whose base offset is >= offset, or the
// segment's size when there is none. Partition.mu is held (read).
func (s *segment) positionOf(offset, from int64) (int64, error) {
	sc := newHeaderScanner(s.log, max(from, lookupOffset(s.index, s.base, offset)), s.size, lookupWindow)
	defer sc.release()
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			return s.size, nil
		}
		if err != nil {
			return 0, err
		}
		if h.BaseOffset >= offset {
			return pos, nil
		}
	}
}

// OffsetForTimestamp finds the first record at or after the log start whose
// timestamp is >= ts: the time index picks the segment and a starting batch,
// batch headers skip batches whose max timestamp is lower, and the first
// candidate batch is decoded for the exact record.
func (p *Partition) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, found bool, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.openErr(); err != nil {
		return -1, -1, false, err
	}
	for _, seg := range p.segs {
		if seg.maxTs < ts || seg.next <= p.logStart {
			continue
		}
		from := max(lookupTime(seg.tindex, seg.base, ts), p.logStart)
		sc := newHeaderScanner(seg.log, lookupOffset(seg.index, seg.base, from), seg.size, lookupWindow)
		for {
			h, pos, err := sc.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return -1, -1, false, fmt.Errorf("%w: %v", ErrStorage, err)
			}
			if h.LastOffset() < p.logStart || h.MaxTimestamp < ts {
				continue
			}
			batch := make([]byte, h.Size())
			if _, err := seg.log.ReadAt(batch, pos); err != nil {
				return -1, -1, false, fmt.Errorf("%w: %v", ErrStorage, err)
			}
			_, recs, err := DecodeRecords(batch)
			if err != nil {
				return -1, -1, false, err
			}
			for _, r := range recs {
				if r.Offset >= p.logStart && r.Timestamp >= ts {
					return r.Offset, r.Timestamp, true, nil
				}
			}
		}
	}
	return -1, -1, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the earliest such record on ties), or (-1, -1) when the
// log holds no records.
func (p *Partition) MaxTimestamp() (offset int64, timestamp int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return -1, -1
	}
	var best *segment
	for _, seg := range p.segs {
		if seg.maxTs >= 0 && seg.next > p.logStart && (best == nil || seg.maxTs > best.maxTs) {
			best = seg
		}
	}
	if best == nil {
		return -1, -1
	}
	sc := newHeaderScanner(best.log, lookupOffset(best.index, best.base, best.maxTsBase), best.size, lookupWindow)
	for {
		h, pos, err := sc.next()
		if err != nil {
			return best.maxTsBase, best.maxTs
		}
		if h.BaseOffset != best.maxTsBase {
			continue
		}
		batch := make([]byte, h.Size())
		if _, err := best.log.ReadAt(batch, pos); err != nil {
			return h.BaseOffset, best.maxTs
		}
		if _, recs, err := DecodeRecords(batch); err == nil {
			for _, r := range recs {
				if r.Timestamp == best.maxTs {
					return r.Offset, r.Timestamp
				}
			}
		}
		return h.BaseOffset, best.maxTs
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= the
// requested one and the start offset of the epoch after it (LEO for the
// latest epoch). (-1, -1) when the epoch is unknown or above every epoch.
func (p *Partition) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := len(p.epochs)
	if epoch < 0 || n == 0 {
		return -1, -1
	}
	if p.epochs[n-1].Epoch == epoch {
		return epoch, p.leo
	}
	// First entry with a higher epoch.
	i := sort.Search(n, func(i int) bool { return p.epochs[i].Epoch > epoch })
	if i == n {
		return -1, -1
	}
	if i == 0 {
		// Older than anything we know: Kafka answers the requested epoch with
		// the start of the first known one.
		return epoch, p.epochs[0].Start
	}
	return p.epochs[i-1].Epoch, p.epochs[i].Start
}

// EpochForOffset returns the leader epoch offset was written in, as the
// history says: the last epoch starting at or before it, or -1.
func (p *Partition) EpochForOffset(offset int64) int32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i := sort.Search(len(p.epochs), func(i int) bool { return p.epochs[i].Start > offset })
	if i == 0 {
		return -1
	}
	return p.epochs[i-1].Epoch
}

// LeaderEpochs returns a copy of the epoch history (epoch, start offset).
func (p *Partition) LeaderEpochs() []EpochEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]EpochEntry(nil), p.epochs...)
}

// Size is the total bytes of the partition's segments.
func (p *Partition) Size() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var n int64
	for _, s := range p.segs {
		n += s.size
	}
	return n
}

// DeleteRecordsBefore moves the log start offset to offset (-1 = HW) and
// deletes segments wholly below it. offset > HW is out of range; an offset at
// or below the current start changes nothing.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	if p.closed {
		err := p.closedErr()
		p.mu.Unlock()
		return -1, err
	}
	if offset == -1 {
		offset = p.hw
	}
	if offset < 0 || offset > p.hw {
		start := p.logStart
		p.mu.Unlock()
		return start, fmt.Errorf("%w: delete before %d with high watermark %d", ErrOffsetOutOfRange, offset, p.hw)
	}
	if offset <= p.logStart {
		start := p.logStart
		p.mu.Unlock()
		return start, nil
	}
	p.logStart = offset
	p.truncateEpochsFromStartLocked()
	var gone []*segment
	for len(p.segs) > 1 && p.segs[0].next <= p.logStart && p.segs[1].base <= p.logStart {
		gone = append(gone, p.segs[0])
		p.segs = p.segs[1:]
	}
	start := p.logStart
	p.mu.Unlock()
	p.removeSegments(gone)
	return start, p.writeCheckpointLocked(true)
}

// truncateEpochsFromStartLocked drops epoch entries wholly below the log
// start, moving the start of the one that spans it. mu held (write); the file
// is rewritten by the next checkpoint write.
func (p *Partition) truncateEpochsFromStartLocked() {
	i := 0
	for i+1 < len(p.epochs) && p.epochs[i+1].Start <= p.logStart {
		i++
	}
	if len(p.epochs) == 0 {
		return
	}
	es := append([]EpochEntry(nil), p.epochs[i:]...)
	if es[0].Start < p.logStart {
		es[0].Start = p.logStart
	}
	p.epochs = es
}

// removeSegments deletes segments already unlinked from the list. flushMu
// held, so no fsync runs on them; no reader holds them since they left the
// list under mu, and a slice being sent keeps the log file open itself
// (FileSlice).
func (p *Partition) removeSegments(gone []*segment) {
	for _, s := range gone {
		if err := s.remove(); err != nil {
			p.logger.Warn("removing segment", "partition", p.Dir(), "base", s.base, "error", err)
		}
	}
}

// writeCheckpointLocked persists log start, recovery point, HW and the epoch
// history if they changed (or force). flushMu held.
func (p *Partition) writeCheckpointLocked(force bool) error {
	p.mu.RLock()
	c := offsetsCheckpoint{LogStartOffset: p.logStart, RecoveryPoint: p.recoveryPoint, HighWatermark: p.hw}
	es := append([]EpochEntry(nil), p.epochs...)
	p.mu.RUnlock()
	if c == p.lastCkpt && !force {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(p.Dir(), offsetsCheckpointFile), c.encode()); err != nil {
		return p.storageFailed(fmt.Errorf("%w: checkpoint: %v", ErrStorage, err))
	}
	if c.LogStartOffset != p.lastCkpt.LogStartOffset || force {
		if err := writeFileAtomic(filepath.Join(p.Dir(), leaderEpochFile), encodeEpochs(es)); err != nil {
			return p.storageFailed(fmt.Errorf("%w: checkpoint: %v", ErrStorage, err))
		}
	}
	p.lastCkpt = c
	p.lastCkptAt = time.Now()
	return nil
}

// enforceRetention applies segment.ms rolling and time/size retention.
// An active segment that is wholly committed and past retention.ms is rolled
// first, as Kafka does, so that retention can delete it: otherwise a quiet
// topic would keep its last segment forever. With cleanup.policy=compact
// (without delete) only rolling and DeleteRecords' log start apply.
func (p *Partition) enforceRetention(now time.Time) error {
	cfg := p.cfg.Load()
	del := cfg.deletes()
	p.appendMu.Lock()
	p.mu.RLock()
	a := p.active()
	expired := del && cfg.RetentionMs >= 0 && a.next <= p.hw && now.UnixMilli()-segmentTimestamp(a) > cfg.RetentionMs
	due := !p.closed && a.size > 0 && (now.UnixMilli()-a.rollAt >= cfg.rollMs() || expired)
	p.mu.RUnlock()
	var err error
	if due {
		err = p.roll()
	}
	p.appendMu.Unlock()
	if err != nil {
		return err
	}

	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	excess := int64(-1)
	if del && cfg.RetentionBytes >= 0 {
		excess = total - cfg.RetentionBytes
	}
	nowMs := now.UnixMilli()
	var gone []*segment
	for len(p.segs) > 1 {
		s := p.segs[0]
		if s.next > p.lsoLocked() {
			// Never delete uncommitted data, nor a segment holding part
			// of an open transaction: its abort would need the records'
			// offsets in the index, and read_committed readers below the
			// LSO must still find them.
			break
		}
		expired := del && cfg.RetentionMs >= 0 && nowMs-segmentTimestamp(s) > cfg.RetentionMs
		tooBig := excess >= 0 && excess-s.size >= 0
		belowStart := s.next <= p.logStart
		if !expired && !tooBig && !belowStart {
			break
		}
		excess -= s.size
		gone = append(gone, s)
		p.segs = p.segs[1:]
	}
	moved := false
	if len(gone) > 0 && p.segs[0].base > p.logStart {
		p.logStart = p.segs[0].base
		p.hw = max(p.hw, p.logStart)
		p.truncateEpochsFromStartLocked()
		moved = true
	}
	p.mu.Unlock()
	if len(gone) > 0 {
		p.logger.Info("retention deleted segments", "partition", p.Dir(), "segments", len(gone), "logStartOffset", p.LogStartOffset())
	}
	p.removeSegments(gone)
	if moved {
		return p.writeCheckpointLocked(false)
	}
	return nil
}

// segmentTimestamp is what retention.ms compares: the largest timestamp in
// the segment, or the file's modification time when it holds none.
func segmentTimestamp(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if st, err := s.log.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return math.MaxInt64
}

// close shuts the partition down. A clean close makes everything durable and
// writes the state a restart needs (indexes, producer snapshot, checkpoints)
// so it can skip recovery; an unclean one only closes files, as a crash would.
func (p *Partition) close(clean, deleted bool) (err error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.RLock()
	offline := p.offline
	p.mu.RUnlock()
	if offline != nil && clean {
		// No clean shutdown marker: the next Open must recover it. Its
		// files may still be open if closeOffline has not run yet.
		clean, p.failed = false, true
		defer func() { err = offline }()
	}
	if p.filesClosed {
		if p.failed && clean {
			// No clean shutdown marker: the next Open must recover it.
			return fmt.Errorf("%w: partition went offline after a failed rewrite of its files", ErrStorage)
		}
		return nil
	}
	if clean {
		p.mu.Lock()
		p.active().maybeTimeEntry()
		p.mu.Unlock()
		err = p.flushLocked(true)
		if err == nil {
			err = p.producers.writeSnapshot(p.Dir(), p.LogEndOffset())
		}
		if err == nil {
			err = p.writeCheckpointLocked(true)
		}
	}
	p.mu.Lock()
	p.closed, p.deleted, p.filesClosed = true, deleted, true
	p.closedLocked()
	segs := p.segs
	p.mu.Unlock()
	for _, s := range segs {
		if e := s.closeFiles(); e != nil && err == nil {
			err = e
		}
	}
	return err
}
