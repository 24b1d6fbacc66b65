package log

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Loading and recovery.
//
// After a clean shutdown every segment, index, snapshot and checkpoint was
// fsynced by Close, so loading trusts the indexes (after sanity checks) and
// only reads the few batch headers after each segment's last index entry to
// find its end.
//
// After a crash, segments wholly below the recovery point were fsynced with
// their indexes and are loaded the same way. From the segment holding the
// recovery point on, every batch is verified (length, magic, offsets moving
// forward, CRC-32C); at the first bad batch the segment is truncated there
// and later segments are deleted, because nothing after a torn write can be
// trusted to be in order. Batches before the cut are kept: a batch that was
// fully written is never dropped. The scanned segments' indexes are rebuilt.

// loadPartition opens an existing partition directory.
func loadPartition(m *Manager, dir, topic string, index int32, clean bool) (*Partition, error) {
	topicID, err := readPartitionMetadata(dir)
	if err != nil {
		return nil, err
	}
	p := newPartition(m, dir, topic, index, topicID)
	cfg := p.cfg.Load()

	ck, haveCk, err := readOffsetsCheckpoint(dir)
	if err != nil {
		p.logger.Warn("unreadable offsets checkpoint, recovering the whole log", "error", err)
		clean, haveCk = false, false
	}
	if !haveCk {
		clean = false // no record of what was durable
		ck = offsetsCheckpoint{}
	}
	epochs, err := readEpochs(dir)
	if err != nil {
		p.logger.Warn("unreadable leader epoch checkpoint, dropping it", "error", err)
		epochs = nil
	}

	rebuild, err := completeCleaning(dir)
	if err != nil {
		return nil, err
	}
	bases, err := scanSegmentFiles(dir)
	if err != nil {
		return nil, err
	}
	// Segments before firstScan are trusted; from it on they are verified.
	// The segment holding the recovery point is always verified. Strictly
	// below: when the recovery point equals a segment's base, the segment
	// before it may have been the active one at that flush, whose indexes were
	// not fsynced, so it is verified too.
	firstScan := len(bases)
	if !clean {
		firstScan = 0
		for i, b := range bases {
			if b < ck.RecoveryPoint {
				firstScan = i
			}
		}
	}

	var segs []*segment
	for i, base := range bases {
		s, err := openSegmentFiles(dir, base)
		if err != nil {
			closeAll(segs)
			return nil, err
		}
		if err := s.loadTxnIndex(); err != nil {
			s.closeFiles()
			closeAll(segs)
			return nil, fmt.Errorf("%w: transaction index of segment %d: %v", ErrStorage, base, err)
		}
		expect, verify := base, i >= firstScan || rebuild[base]
		if n := len(segs); n > 0 {
			expect = max(base, segs[n-1].next)
			// Overlapping segments can only come from damage; verify them.
			verify = verify || base < segs[n-1].next
		}
		trusted := false
		if !verify {
			if err := p.loadTrusted(s, int64(cfg.IndexIntervalBytes)); err != nil {
				p.logger.Warn("rebuilding segment indexes", "segment", base, "reason", err)
			} else {
				trusted = true
			}
		}
		if !trusted {
			cut, err := p.recoverSegment(s, expect, int64(cfg.IndexIntervalBytes))
			if err != nil {
				s.closeFiles()
				closeAll(segs)
				return nil, err
			}
			if cut {
				segs = append(segs, s)
				for _, later := range bases[i+1:] {
					p.logger.Warn("deleting segment after corruption", "segment", later)
					removeSegmentFiles(dir, later)
				}
				break
			}
		}
		segs = append(segs, s)
	}
	// An empty segment other than the last one carries nothing; one left by
	// a truncation in an earlier segment was handled by the cut above.
	if len(segs) == 0 {
		s, err := createSegment(dir, ck.LogStartOffset)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	p.segs = segs
	p.leo = segs[len(segs)-1].next
	p.logStart = max(ck.LogStartOffset, segs[0].base)
	if p.logStart > p.leo {
		// Everything below the recorded log start is gone (truncated by
		// recovery or never written): restart the log empty at the start.
		p.logger.Warn("log start beyond log end, starting an empty log", "logStartOffset", p.logStart, "logEndOffset", p.leo)
		for _, s := range segs {
			_ = s.remove()
		}
		s, err := createSegment(dir, p.logStart)
		if err != nil {
			return nil, err
		}
		p.segs = []*segment{s}
		p.leo = p.logStart
	}
	p.hw = min(max(ck.HighWatermark, p.logStart), p.leo)
	if clean {
		p.recoveryPoint = p.leo
	} else {
		p.recoveryPoint = min(ck.RecoveryPoint, p.leo)
	}

	// Leader epochs past the (possibly truncated) end describe lost data.
	for len(epochs) > 0 && epochs[len(epochs)-1].Start >= p.leo {
		epochs = epochs[:len(epochs)-1]
	}
	p.epochs = epochs
	p.truncateEpochsFromStartLocked()

	if err := p.rebuildProducerState(); err != nil {
		closeAll(p.segs)
		return nil, err
	}
	p.lastCkpt = ck
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	if !clean {
		// Make the verified data and rebuilt indexes durable now, so the
		// recovery point moves past them and the next crash starts from here.
		if err := p.flushLocked(true); err != nil {
			closeAll(p.segs)
			return nil, err
		}
	}
	if err := p.writeCheckpointLocked(!clean); err != nil {
		closeAll(p.segs)
		return nil, err
	}
	return p, nil
}

func closeAll(segs []*segment) {
	for _, s := range segs {
		_ = s.closeFiles()
	}
}

// scanSegmentFiles lists segment base offsets and removes debris: temp files
// of interrupted atomic writes and index files without a log.
func scanSegmentFiles(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, de := range ents {
		if b, ok := nameOffset(de.Name(), logSuffix); ok && b >= 0 {
			bases = append(bases, b)
			logs[b] = true
		}
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if b, ok := nameOffset(name, suf); ok && !logs[b] {
				_ = os.Remove(filepath.Join(dir, name))
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// nameOffset reads back the offset segmentPath wrote into a file name with
// suffix; ok is false for a name of another form.
func nameOffset(name, suffix string) (offset int64, ok bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return 0, false
	}
	offset, err := strconv.ParseInt(stem, 10, 64)
	return offset, err == nil
}

func removeSegmentFiles(dir string, base int64) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		_ = os.Remove(segmentPath(dir, base, suf))
	}
}

// loadTrusted loads a segment whose data and indexes were fsynced: it checks
// the indexes and reads only the headers after the last offset index entry.
func (p *Partition) loadTrusted(s *segment, indexInterval int64) error {
	idx, err := loadOffsetIndex(segmentPath(s.dir, s.base, indexSuffix), s.size)
	if err != nil {
		return err
	}
	var pos int64
	if n := len(idx); n > 0 {
		pos = int64(idx[n-1].pos)
	}
	sc := newHeaderScanner(s.log, pos, s.size, lookupWindow)
	next, lastBase := s.base, int64(-1)
	maxTs, maxTsBase := int64(-1), int64(-1)
	for first := true; ; first = false {
		h, _, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first && len(idx) > 0 && h.BaseOffset != s.base+int64(idx[len(idx)-1].rel) {
			return fmt.Errorf("last index entry does not point at its batch")
		}
		if h.Magic != 2 || h.BaseOffset < next || h.LastOffsetDelta < 0 {
			return fmt.Errorf("bad batch header at %d", sc.pos)
		}
		next, lastBase = h.LastOffset()+1, h.BaseOffset
		if h.MaxTimestamp > maxTs {
			maxTs, maxTsBase = h.MaxTimestamp, h.BaseOffset
		}
	}
	tidx, err := loadTimeIndex(segmentPath(s.dir, s.base, timeIndexSuffix), next-1-s.base)
	if err != nil {
		return err
	}
	if n := len(tidx); n > 0 && tidx[n-1].ts >= maxTs {
		maxTs, maxTsBase = tidx[n-1].ts, s.base+int64(tidx[n-1].rel)
	}
	rollAt := time.Now().UnixMilli()
	if s.size >= BatchHeaderSize {
		var hb [BatchHeaderSize]byte
		if _, err := s.log.ReadAt(hb[:], 0); err == nil {
			if h, err := ParseBatchHeader(hb[:]); err == nil && h.MaxTimestamp > 0 {
				rollAt = h.MaxTimestamp
			}
		}
	}
	s.index, s.tindex = idx, tidx
	s.idxDone, s.tidxDone, s.flushedSize = len(idx), len(tidx), s.size
	s.next, s.lastBatchBase = next, lastBase
	s.maxTs, s.maxTsBase = maxTs, maxTsBase
	s.bytesSinceIndex = s.size - pos
	s.rollAt = rollAt
	_ = indexInterval
	return nil
}

// recoverSegment verifies every batch of a segment, rebuilding its indexes,
// and truncates it at the first bad batch. expect is the lowest base offset
// the first batch may have. cut reports a truncation.
func (p *Partition) recoverSegment(s *segment, expect int64, indexInterval int64) (cut bool, err error) {
	st, err := s.log.Stat()
	if err != nil {
		return false, err
	}
	fileSize := st.Size()
	s.resetIndexes()
	s.next = max(s.base, expect)
	sc := newHeaderScanner(s.log, 0, fileSize, scanWindow)
	var reason string
	var badPos int64
	for {
		h, pos, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			reason, badPos = err.Error(), pos
			break
		}
		if h.Magic != 2 {
			reason, badPos = fmt.Sprintf("magic %d", h.Magic), pos
			break
		}
		if h.BaseOffset < s.next || h.LastOffsetDelta < 0 || h.LastOffset() == 1<<63-1 {
			reason, badPos = fmt.Sprintf("offsets %d..%d after %d", h.BaseOffset, h.LastOffset(), s.next-1), pos
			break
		}
		body, err := sc.readBatch(pos, h.Size())
		if err != nil {
			reason, badPos = err.Error(), pos
			break
		}
		if c := batchCRC(body); c != h.CRC {
			reason, badPos = fmt.Sprintf("crc %08x, computed %08x", h.CRC, c), pos
			break
		}
		s.trackBatch(h, pos, indexInterval, h.MaxTimestamp)
	}
	if s.rollAt <= 0 {
		s.rollAt = time.Now().UnixMilli()
	}
	if reason == "" {
		return false, nil
	}
	p.logger.Warn("truncating segment at bad batch",
		"segment", s.base, "position", badPos, "fileSize", fileSize,
		"droppedBytes", fileSize-badPos, "reason", reason)
	if err := s.log.Truncate(badPos); err != nil {
		return false, fmt.Errorf("%w: truncating %s: %v", ErrStorage, segmentPath(s.dir, s.base, logSuffix), err)
	}
	s.size = badPos
	return true, nil
}

// rebuildProducerState loads the newest producer snapshot at or below LEO and
// replays the batches after it: headers, plus the marker of each control
// batch. The replay also rebuilds the aborted-transaction index of every
// segment it covers, and every segment's index loses entries past the
// segment's end, so the indexes match the log whatever a crash or truncation
// left in their files. Transactions completed by a replayed marker at or
// above the HW stay unstable (see lsoLocked); a marker above the HW but
// below the snapshot is not known to be one, as in Kafka, whose snapshots do
// not carry them either. Called before the partition is shared or with
// appendMu and flushMu held (TruncateTo); mu is taken to publish.
func (p *Partition) rebuildProducerState() error {
	state, from, ok := loadLatestSnapshot(p.Dir(), p.leo)
	if !ok {
		state, from = newProducerState(), p.segs[0].base
	}
	p.mu.RLock()
	hw := p.hw
	p.mu.RUnlock()
	var unreplicated []completedTxn
	aborted := make([][]AbortedTxn, len(p.segs))
	for i, s := range p.segs {
		limit := s.next
		if s.next > from && s.size > 0 {
			limit = min(limit, from)
		}
		aborted[i] = keepAbortedBelow(s.aborted, limit)
	}
	for i, s := range p.segs {
		if s.next <= from || s.size == 0 {
			continue
		}
		sc := newHeaderScanner(s.log, lookupOffset(s.index, s.base, from), s.size, scanWindow)
		for {
			h, pos, err := sc.next()
			if err == io.EOF {
				break
			}
			var done *completedTxn
			if err == nil && h.Control() && h.BaseOffset >= from {
				var body []byte
				if body, err = sc.readBatch(pos, h.Size()); err == nil {
					done, err = replayBatch(state, h, body, &aborted[i])
				}
			} else if err == nil && h.BaseOffset >= from {
				done, err = replayBatch(state, h, nil, &aborted[i])
			}
			if done != nil && done.last >= hw {
				unreplicated = append(unreplicated, *done)
			}
			if err != nil {
				sc.release()
				return fmt.Errorf("%w: replaying producer state in segment %d: %v", ErrStorage, s.base, err)
			}
		}
		sc.release()
	}
	for i, s := range p.segs {
		if len(aborted[i]) == len(s.aborted) && (s.next <= from || s.size == 0) {
			continue // nothing dropped, nothing replayed
		}
		if err := s.rewriteTxnIndex(aborted[i]); err != nil {
			return fmt.Errorf("%w: transaction index of segment %d: %v", ErrStorage, s.base, err)
		}
	}
	p.producers = state
	p.mu.Lock()
	for i, s := range p.segs {
		s.aborted = aborted[i]
	}
	p.firstUnstable, p.unreplicated = state.firstUnstable(), unreplicated
	p.mu.Unlock()
	return nil
}

// replayBatch applies one replayed batch to state; body holds a control
// batch's bytes (nil otherwise). It returns the transaction a marker
// completed; an abort appends its index entry to aborted.
func replayBatch(state *producerState, h BatchHeader, body []byte, aborted *[]AbortedTxn) (*completedTxn, error) {
	var marker *EndTxnMarker
	if body != nil {
		var err error
		if marker, err = markerOf(body, h); err != nil {
			return nil, err
		}
	}
	done, a := state.applyBatch(h, marker)
	if a != nil {
		*aborted = append(*aborted, *a)
	}
	return done, nil
}
