package log

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Log compaction (cleanup.policy=compact), after Kafka's log cleaner.
//
// What is cleaned. The cleanable range runs from the first segment to the
// first uncleanable offset: the active segment, segments reaching above the
// high watermark and (with min.compaction.lag.ms > 0) segments holding a
// record younger than the lag are never touched, nor anything after them.
// The cleaner checkpoint records the first dirty offset: everything below it
// was cleaned by an earlier pass.
//
// A pass first maps every key in the cleanable range to the offset of its
// last occurrence, then rewrites the range in groups of consecutive segments
// (a group's input stays within segment.bytes, so small cleaned segments are
// merged). A record survives if it has no key (Kafka rejects those at produce
// time; they can only predate the policy), or if it is the last record of its
// key and not a tombstone whose delete horizon has passed. Records of aborted
// transactions are removed (no reader ever sees them).
//
// Transaction markers go as Kafka's cleaner drops them: a pass reads the
// range in offset order, noting each producer whose transaction (its data
// batches, committed or aborted, emptied or not) it read; a marker closing a
// transaction none of whose batches were read has no data left below it.
// Such a marker is first stamped with a delete horizon, as a tombstone is,
// so a consumer that read the transaction's data before it was cleaned still
// finds the marker for delete.retention.ms; a pass at or after the horizon
// drops it, and with an abort marker its aborted-transaction index entry.
// A marker still covering data is copied as it is.
//
// Tombstones follow KIP-534: when a batch holding a surviving tombstone is
// cleaned for the first time, its baseTimestamp becomes the delete horizon
// (now + delete.retention.ms) and attribute bit 6 marks it; record timestamp
// deltas are rewritten so every record keeps its timestamp. A later pass at
// or after the horizon drops the tombstones. The smallest horizon still
// pending is kept in the cleaner checkpoint and triggers that pass.
//
// Output batches. Offsets never change. A batch with no removed record (and
// no horizon to stamp) is copied byte for byte. Otherwise its survivors are
// written into a batch with the same base offset, lastOffsetDelta, leader
// epoch, producer id/epoch, base sequence and attributes, recompressed with
// the same codec (snappy keeps its framing); the record count, maxTimestamp
// (CreateTime), length and CRC are recomputed. A batch left with no records is
// dropped, except (as Kafka does) the last batch of a producer id, which the
// idempotent producer state needs after a replay, and the last batch of each
// group, which keeps the rewritten segment ending at the same offset as the
// segments it replaces. Those are kept as empty uncompressed batches (record
// count 0, original lastOffsetDelta), which Kafka consumers skip.
//
// Swap. A group is written to <base>.log.cleaned, .index.cleaned and
// .timeindex.cleaned, fsynced, then, holding flushMu (so no fsync round or
// retention pass runs on the old segments):
//
//  1. the index files are renamed to .swap, then the log file; the directory
//     is fsynced. The rename of <base>.log.swap is the commit point.
//  2. the index .swap files replace the old <base> index files; the other old
//     segments of the group are deleted; <base>.log.swap replaces <base>.log;
//     the directory is fsynced.
//  3. under mu (write) the new segment replaces the group in the list; the
//     old segments' files are closed.
//
// Readers hold mu (read) for the whole of a read, and old files stay open
// (unlinked files remain readable) until step 3 has removed them from the
// list, so a reader sees either the old segments or the new one, never a
// mix and never a closed file.
//
// Recovery (completeCleaning, at load): .cleaned files are deleted (the pass
// never committed). For each <base>.log.swap the pass committed: every
// segment whose base lies in (base, end of the swap file) is deleted, the
// swap becomes <base>.log, and its indexes are rebuilt from the log. Index
// .swap files without a log .swap are deleted. So a crash at any step leaves
// either the old segments or the new one.

const (
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"
	cleanerCheckpointFile = "cleaner-offset-checkpoint"

	// attrDeleteHorizon (bit 6) says baseTimestamp holds the delete horizon.
	attrDeleteHorizon = 0x40
)

// errCleanAborted reports a pass abandoned because the log changed under it
// (retention or DeleteRecords removed a segment, or the partition closed).
var errCleanAborted = errors.New("log: cleaning aborted")

// cleanerCheckpoint is the persisted cleaner state of a partition:
// "0\n<first dirty offset>\n<smallest pending delete horizon>\n".
type cleanerCheckpoint struct {
	firstDirty int64
	horizon    int64 // math.MaxInt64 when no cleaned tombstone waits
}

func readCleanerCheckpoint(dir string) (cleanerCheckpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, cleanerCheckpointFile))
	if err != nil {
		return cleanerCheckpoint{}, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "0" {
		return cleanerCheckpoint{}, fmt.Errorf("malformed %s", cleanerCheckpointFile)
	}
	var c cleanerCheckpoint
	if c.firstDirty, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return c, fmt.Errorf("malformed %s", cleanerCheckpointFile)
	}
	if c.horizon, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return c, fmt.Errorf("malformed %s", cleanerCheckpointFile)
	}
	return c, nil
}

func (c cleanerCheckpoint) encode() []byte {
	return fmt.Appendf(nil, "0\n%d\n%d\n", c.firstDirty, c.horizon)
}

// cleanerState loads the checkpoint on first use. Without one, the whole log
// is dirty and the horizon unknown, so the first pass runs and finds it.
// cleanMu held.
func (p *Partition) cleanerState() *cleanerCheckpoint {
	if p.cleaner == nil {
		c, err := readCleanerCheckpoint(p.Dir())
		if err != nil {
			if !os.IsNotExist(err) {
				p.logger.Warn("unreadable cleaner checkpoint, cleaning the whole log", "error", err)
			}
			c = cleanerCheckpoint{firstDirty: 0, horizon: 0}
		}
		p.cleaner = &c
	}
	return p.cleaner
}

// FirstDirtyOffset is the cleaner checkpoint: every record below it has been
// through a cleaning pass.
func (p *Partition) FirstDirtyOffset() int64 {
	p.cleanMu.Lock()
	defer p.cleanMu.Unlock()
	return p.cleanerState().firstDirty
}

// Compact runs one cleaning pass over each partition with a compact policy
// that needs one: its dirty bytes are at least min.cleanable.dirty.ratio of
// its cleanable bytes, a dirty record is older than max.compaction.lag.ms, or
// a cleaned tombstone's delete horizon has passed. The broker calls it
// periodically (log.cleaner.backoff.ms).
func (m *Manager) Compact(now time.Time) {
	for _, p := range m.Partitions() {
		if !p.cfg.Load().compact() {
			continue
		}
		if err := p.compact(now, false); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrPartitionDeleted) {
			p.logger.Error("log cleaner", "error", err)
		}
	}
}

// CompactNow runs one cleaning pass whatever the dirty ratio, for tests and
// tools. The active segment, offsets at or above the high watermark and
// records younger than min.compaction.lag.ms are still left alone. It does
// nothing unless cleanup.policy includes compact.
func (p *Partition) CompactNow(now time.Time) error {
	if !p.cfg.Load().compact() {
		return nil
	}
	return p.compact(now, true)
}

// cleanSeg is what a pass needs of a segment, captured under mu.
type cleanSeg struct {
	seg              *segment
	base, next, size int64
	idxLen, tidxLen  int
}

// cleanPlan is the cleanable range of one pass.
type cleanPlan struct {
	segs        []cleanSeg
	end         int64 // first uncleanable offset
	firstDirty  int64
	dirtyBytes  int64
	totalBytes  int64
	oldestDirty int64 // earliest first-batch max timestamp of a dirty segment; MaxInt64 if none
	lastOf      map[int64]int64
	aborted     abortedRanges
}

func (p *Partition) compact(now time.Time, force bool) error {
	p.cleanMu.Lock()
	defer p.cleanMu.Unlock()
	cfg := p.cfg.Load()
	st := p.cleanerState()
	plan, err := p.planClean(cfg, st, now)
	if err != nil {
		return err
	}
	if len(plan.segs) == 0 {
		return nil
	}
	nowMs := now.UnixMilli()
	if !force {
		ratio := float64(plan.dirtyBytes) / float64(max(plan.totalBytes, 1))
		due := plan.dirtyBytes > 0 && ratio >= cfg.MinCleanableDirtyRatio
		due = due || (plan.oldestDirty != math.MaxInt64 && nowMs-plan.oldestDirty > cfg.MaxCompactionLagMs)
		due = due || nowMs >= st.horizon
		if !due {
			return nil
		}
	}
	start := time.Now()
	c := &cleaner{p: p, cfg: cfg, nowMs: nowMs, lastOf: plan.lastOf, aborted: plan.aborted, horizon: math.MaxInt64,
		txnRead: map[int64]bool{}, droppedAborts: map[int64]bool{}}
	if err := c.buildKeyMap(plan.segs); err != nil {
		if errors.Is(err, errCleanAborted) {
			return nil
		}
		return err
	}
	for _, g := range groupSegments(plan.segs, cfg) {
		if err := c.cleanGroup(g); err != nil {
			if errors.Is(err, errCleanAborted) {
				return nil
			}
			return err
		}
	}
	next := cleanerCheckpoint{firstDirty: plan.end, horizon: c.horizon}
	if err := writeFileAtomic(filepath.Join(p.Dir(), cleanerCheckpointFile), next.encode()); err != nil {
		return fmt.Errorf("%w: cleaner checkpoint: %v", ErrStorage, err)
	}
	*st = next
	p.logger.Info("log cleaner pass", "partition", p.Dir(), "upTo", plan.end,
		"bytesIn", c.bytesIn, "bytesOut", c.bytesOut, "recordsRemoved", c.removed,
		"elapsed", time.Since(start))
	return nil
}

// planClean finds the cleanable range. cleanMu held.
func (p *Partition) planClean(cfg *PartitionConfig, st *cleanerCheckpoint, now time.Time) (cleanPlan, error) {
	plan := cleanPlan{oldestDirty: math.MaxInt64}
	// The producer state is read under appendMu: the last batch of each
	// producer id is kept even when emptied.
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return plan, p.closedErr()
	}
	lagLimit := now.UnixMilli() - cfg.MinCompactionLagMs
	firstDirty := max(st.firstDirty, p.segs[0].base)
	lso := p.lsoLocked()
	for _, s := range p.segs[:len(p.segs)-1] {
		// Only decided data is cleaned: an open transaction's records
		// may still be aborted, and must not shadow committed ones.
		if s.next > lso {
			break
		}
		if cfg.MinCompactionLagMs > 0 && s.maxTs > lagLimit {
			break
		}
		if s.size > math.MaxInt32 {
			break // positions must fit the index; cannot happen with sane configs
		}
		plan.segs = append(plan.segs, cleanSeg{seg: s, base: s.base, next: s.next, size: s.size, idxLen: len(s.index), tidxLen: len(s.tindex)})
		plan.totalBytes += s.size
		if s.next > firstDirty {
			plan.dirtyBytes += s.size
			if cfg.MaxCompactionLagMs != math.MaxInt64 && s.size >= BatchHeaderSize {
				var hb [BatchHeaderSize]byte
				if _, err := s.log.ReadAt(hb[:], 0); err == nil {
					if h, err := ParseBatchHeader(hb[:]); err == nil && h.MaxTimestamp >= 0 {
						plan.oldestDirty = min(plan.oldestDirty, h.MaxTimestamp)
					}
				}
			}
		}
		plan.end = s.next
	}
	plan.firstDirty = firstDirty
	plan.aborted = abortedRanges{}
	for _, s := range p.segs {
		for _, a := range s.aborted {
			plan.aborted[a.ProducerID] = append(plan.aborted[a.ProducerID], a)
		}
	}
	plan.lastOf = make(map[int64]int64, len(p.producers.m))
	for id, e := range p.producers.m {
		if n := len(e.Batches); n > 0 {
			plan.lastOf[id] = e.Batches[n-1].LastOffset
		}
	}
	return plan, nil
}

// groupSegments splits the cleanable segments into runs rewritten as one
// segment each: input bytes within segment.bytes, offsets within the index's
// relative range, index entries within segment.index.bytes.
func groupSegments(segs []cleanSeg, cfg *PartitionConfig) [][]cleanSeg {
	var groups [][]cleanSeg
	for i := 0; i < len(segs); {
		j := i + 1
		size, idx, tidx := segs[i].size, segs[i].idxLen, segs[i].tidxLen
		for j < len(segs) {
			s := segs[j]
			if size+s.size > min(cfg.SegmentBytes, math.MaxInt32) ||
				s.next-1-segs[i].base > math.MaxInt32 ||
				int64(idx+s.idxLen+1)*offsetEntrySize > int64(cfg.SegmentIndexBytes) ||
				int64(tidx+s.tidxLen+1)*timeEntrySize > int64(cfg.SegmentIndexBytes) {
				break
			}
			size, idx, tidx = size+s.size, idx+s.idxLen, tidx+s.tidxLen
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// cleaner holds one pass's state.
type cleaner struct {
	p       *Partition
	cfg     *PartitionConfig
	nowMs   int64
	keys    map[string]int64 // key -> offset of its last record in the range
	lastOf  map[int64]int64  // producer id -> last offset of its last batch
	aborted abortedRanges    // aborted transactions of the whole log
	horizon int64            // smallest delete horizon of a kept tombstone or marker
	buf     []byte
	// txnRead holds the producers with a transaction whose data batches
	// this pass read and whose marker it has not reached yet.
	txnRead map[int64]bool
	// droppedAborts holds the offsets of the abort markers this pass
	// dropped: their index entries go with them.
	droppedAborts map[int64]bool

	bytesIn, bytesOut int64
	removed           int64
}

// eachBatch calls fn for every batch of a segment, reading whole batches.
// A read failure on a segment that has left the list aborts the pass.
func (c *cleaner) eachBatch(s cleanSeg, fn func(h BatchHeader, b []byte) error) error {
	sc := newHeaderScanner(s.seg.log, 0, s.size, scanWindow)
	for {
		if c.p.cleanAbort.Load() > 0 {
			return errCleanAborted // a truncation is waiting for cleanMu
		}
		h, pos, err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err == nil {
			if cap(c.buf) < h.Size() {
				c.buf = make([]byte, h.Size())
			}
			c.buf = c.buf[:h.Size()]
			_, err = s.seg.log.ReadAt(c.buf, pos)
		}
		if err != nil {
			if !c.p.holds(s.seg) {
				return errCleanAborted
			}
			return fmt.Errorf("%w: cleaning segment %d at %d: %v", ErrStorage, s.base, pos, err)
		}
		if err := fn(h, c.buf); err != nil {
			return err
		}
	}
}

// holds reports whether s is still one of the partition's open segments.
func (p *Partition) holds(s *segment) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	for _, x := range p.segs {
		if x == s {
			return true
		}
	}
	return false
}

// forRecords walks the records of a batch body (decompressed), handing each
// record's raw bytes to fn.
func forRecords(h BatchHeader, data []byte, fn func(raw []byte, rec *rawRecord)) error {
	r := recReader{b: data}
	var rec rawRecord
	for i := int32(0); i < h.NumRecords; i++ {
		before := r.b
		if err := r.next(&rec); err != nil {
			return err
		}
		fn(before[:len(before)-len(r.b)], &rec)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorruptMessage, len(r.b))
	}
	return nil
}

// buildKeyMap maps every key of the cleanable range to its last offset.
func (c *cleaner) buildKeyMap(segs []cleanSeg) error {
	c.keys = map[string]int64{}
	for _, s := range segs {
		err := c.eachBatch(s, func(h BatchHeader, b []byte) error {
			if h.Control() || c.aborted.holds(h) {
				return nil // an aborted record never shadows a committed one
			}
			data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
			if err != nil {
				return fmt.Errorf("segment %d batch %d: %w", s.base, h.BaseOffset, err)
			}
			return forRecords(h, data, func(_ []byte, rec *rawRecord) {
				if !rec.keyNull {
					c.keys[string(rec.key)] = h.BaseOffset + rec.offsetDelta
				}
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// cleanGroup rewrites one group of segments and swaps it in. A single
// segment in which nothing changes is left as it is.
func (c *cleaner) cleanGroup(g []cleanSeg) error {
	p := c.p
	base, end := g[0].base, g[len(g)-1].next
	paths := [3]string{
		segmentPath(p.Dir(), base, logSuffix+cleanedSuffix),
		segmentPath(p.Dir(), base, indexSuffix+cleanedSuffix),
		segmentPath(p.Dir(), base, timeIndexSuffix+cleanedSuffix),
	}
	discard := func(ns *segment) {
		_ = ns.closeFiles()
		for _, path := range paths {
			_ = os.Remove(path)
		}
	}
	ns := &segment{base: base, dir: p.Dir(), next: base, maxTs: -1, maxTsBase: -1, lastBatchBase: -1, rollAt: -1}
	var err error
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if ns.log, err = os.OpenFile(paths[0], flags, 0o644); err != nil {
		return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
	}
	w := bufio.NewWriterSize(ns.log, 256<<10)
	changed := len(g) > 1
	horizon := int64(math.MaxInt64)
	var pos int64
	interval := int64(c.cfg.IndexIntervalBytes)
	for _, s := range g {
		c.bytesIn += s.size
		err := c.eachBatch(s, func(h BatchHeader, b []byte) error {
			out, same, hz, err := c.filterBatch(h, b, h.LastOffset() == end-1)
			if err != nil {
				return fmt.Errorf("segment %d batch %d: %w", s.base, h.BaseOffset, err)
			}
			horizon = min(horizon, hz)
			if !same && !changed {
				// First change in a single-segment group: the output so far
				// equals the input, which is copied now rather than written
				// batch by batch in case nothing changed.
				changed = true
				if _, err := io.Copy(w, io.NewSectionReader(s.seg.log, 0, pos)); err != nil {
					return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
				}
			}
			if out == nil {
				return nil
			}
			if changed {
				if _, err := w.Write(out); err != nil {
					return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
				}
			}
			oh, _ := ParseBatchHeader(out)
			ns.trackBatch(oh, pos, interval, oh.MaxTimestamp)
			pos += int64(len(out))
			return nil
		})
		if err != nil {
			discard(ns)
			return err
		}
	}
	if !changed {
		discard(ns)
		c.bytesOut += pos
		c.horizon = min(c.horizon, horizon)
		return nil
	}
	if err := w.Flush(); err != nil {
		discard(ns)
		return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
	}
	ns.maybeTimeEntry()
	if ns.rollAt < 0 {
		ns.rollAt = c.nowMs
	}
	if err := c.writeIndexes(ns, paths); err != nil {
		discard(ns)
		return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
	}
	if err := ns.log.Sync(); err != nil {
		discard(ns)
		return fmt.Errorf("%w: cleaning: %v", ErrStorage, err)
	}
	ns.flushedSize = ns.size
	if err := p.swapCleaned(g, ns, c.droppedAborts); err != nil {
		if errors.Is(err, errCleanAborted) {
			discard(ns)
		}
		return err
	}
	c.bytesOut += ns.size
	c.horizon = min(c.horizon, horizon)
	return nil
}

// writeIndexes writes and fsyncs the new segment's index files.
func (c *cleaner) writeIndexes(ns *segment, paths [3]string) error {
	var err error
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if ns.idxFile, err = os.OpenFile(paths[1], flags, 0o644); err != nil {
		return err
	}
	if ns.tidxFile, err = os.OpenFile(paths[2], flags, 0o644); err != nil {
		return err
	}
	if _, err := ns.idxFile.Write(encodeOffsetEntries(ns.index)); err != nil {
		return err
	}
	if _, err := ns.tidxFile.Write(encodeTimeEntries(ns.tindex)); err != nil {
		return err
	}
	if err := ns.idxFile.Sync(); err != nil {
		return err
	}
	if err := ns.tidxFile.Sync(); err != nil {
		return err
	}
	ns.idxDone, ns.tidxDone = len(ns.index), len(ns.tindex)
	return nil
}

// filterBatch applies the retention rules to one batch. It returns the bytes
// to write (nil to drop the batch), whether they are the input unchanged, and
// the delete horizon the output carries (MaxInt64 if none). last says the
// batch ends its group and must stay, if only as an empty batch.
func (c *cleaner) filterBatch(h BatchHeader, b []byte, last bool) (out []byte, same bool, horizon int64, err error) {
	horizon = math.MaxInt64
	if h.Control() {
		return c.filterMarker(h, b, last)
	}
	if h.Transactional() {
		c.txnRead[h.ProducerID] = true
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return nil, false, horizon, err
	}
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	expired := hasHorizon && h.BaseTimestamp <= c.nowMs
	aborted := c.aborted.holds(h)
	var keep []keptRecord
	var tombs, total int
	err = forRecords(h, data, func(raw []byte, rec *rawRecord) {
		total++
		if aborted {
			return // no reader ever sees it: read_committed drops it, and it shadows nothing
		}
		if !rec.keyNull {
			off := h.BaseOffset + rec.offsetDelta
			if c.keys[string(rec.key)] > off {
				return // a later record has the key
			}
			if rec.valueNull {
				if expired {
					return // tombstone past its delete horizon
				}
				tombs++
			}
		}
		keep = append(keep, keptRecord{raw: raw, ts: h.BaseTimestamp + rec.timestampDelta})
	})
	if err != nil {
		return nil, false, horizon, err
	}
	c.removed += int64(total - len(keep))
	if len(keep) == total && (tombs == 0 || hasHorizon) {
		if tombs > 0 {
			horizon = h.BaseTimestamp
		}
		return b, true, horizon, nil
	}
	if len(keep) == 0 {
		return c.dropBatch(h, last), false, horizon, nil
	}
	return c.rewriteBatch(h, b, keep, tombs > 0)
}

// keptRecord is a record a cleaned batch keeps, with its timestamp.
type keptRecord struct {
	raw []byte
	ts  int64
}

// dropBatch is what replaces a batch left with nothing: nothing, or an empty
// batch when it ends its group or is its producer's last.
func (c *cleaner) dropBatch(h BatchHeader, last bool) []byte {
	if last || (h.ProducerID >= 0 && c.lastOf[h.ProducerID] == h.LastOffset()) {
		return emptyBatch(h)
	}
	return nil
}

// filterMarker applies the marker rule (see the file comment) to a control
// batch.
func (c *cleaner) filterMarker(h BatchHeader, b []byte, last bool) (out []byte, same bool, horizon int64, err error) {
	horizon = math.MaxInt64
	covers := c.txnRead[h.ProducerID]
	delete(c.txnRead, h.ProducerID)
	if h.NumRecords == 0 {
		// Emptied by an earlier pass: it carries nothing and stays only
		// while it is needed as its producer's last batch or a group's end.
		if out = c.dropBatch(h, last); out != nil && bytes.Equal(out, b) {
			return b, true, horizon, nil
		}
		return out, false, horizon, nil
	}
	m, err := ParseMarker(b)
	if covers || err != nil {
		// Data of its transaction is left, or it is no marker shoal
		// knows: copied as it is.
		return b, true, horizon, nil
	}
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	switch {
	case hasHorizon && h.BaseTimestamp <= c.nowMs:
		if !m.Commit {
			c.droppedAborts[h.BaseOffset] = true
		}
		c.removed += int64(h.NumRecords)
		return c.dropBatch(h, last), false, horizon, nil
	case hasHorizon:
		return b, true, h.BaseTimestamp, nil
	}
	data, err := decompress(h.Compression(), b[BatchHeaderSize:h.Size()])
	if err != nil {
		return nil, false, horizon, err
	}
	var keep []keptRecord
	err = forRecords(h, data, func(raw []byte, rec *rawRecord) {
		keep = append(keep, keptRecord{raw: raw, ts: h.BaseTimestamp + rec.timestampDelta})
	})
	if err != nil || len(keep) == 0 {
		return b, true, horizon, err
	}
	return c.rewriteBatch(h, b, keep, true)
}

// rewriteBatch writes h's batch with only keep, its records. stamp says the
// batch keeps something with a delete horizon (a tombstone, an empty
// transaction's marker): the horizon already set, or now +
// delete.retention.ms.
func (c *cleaner) rewriteBatch(h BatchHeader, b []byte, keep []keptRecord, stamp bool) (out []byte, same bool, horizon int64, err error) {
	horizon = math.MaxInt64
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	nh := h
	nh.NumRecords = int32(len(keep))
	nh.Attributes &^= attrDeleteHorizon
	switch {
	case stamp && hasHorizon:
		nh.Attributes |= attrDeleteHorizon // keep the horizon already set
	case stamp:
		nh.Attributes |= attrDeleteHorizon
		nh.BaseTimestamp = c.nowMs + c.cfg.DeleteRetentionMs
		if nh.BaseTimestamp < c.nowMs { // overflow: delete.retention.ms "forever"
			nh.BaseTimestamp = math.MaxInt64
		}
	case hasHorizon:
		nh.BaseTimestamp = keep[0].ts // horizon gone with the tombstones
	}
	if stamp {
		horizon = nh.BaseTimestamp
	}
	if !h.LogAppendTime() {
		nh.MaxTimestamp = keep[0].ts
		for _, k := range keep[1:] {
			nh.MaxTimestamp = max(nh.MaxTimestamp, k.ts)
		}
	}
	var recs []byte
	for _, k := range keep {
		if nh.BaseTimestamp == h.BaseTimestamp {
			recs = append(recs, k.raw...)
		} else {
			recs = retimeRecord(recs, k.raw, k.ts-nh.BaseTimestamp)
		}
	}
	payload, err := compress(h.Compression(), bytes.HasPrefix(b[BatchHeaderSize:], xerialMagic), recs)
	if err != nil {
		return nil, false, horizon, err
	}
	return encodeBatch(nh, payload), false, horizon, nil
}

// retimeRecord appends raw (one encoded record) with its timestamp delta
// replaced by delta.
func retimeRecord(dst, raw []byte, delta int64) []byte {
	_, n := binary.Varint(raw) // record length
	body := raw[n:]
	_, m := binary.Varint(body[1:]) // old timestamp delta, after attributes
	rest := body[1+m:]
	var d [binary.MaxVarintLen64]byte
	k := binary.PutVarint(d[:], delta)
	dst = binary.AppendVarint(dst, int64(1+k+len(rest)))
	dst = append(dst, body[0])
	dst = append(dst, d[:k]...)
	return append(dst, rest...)
}

// emptyBatch is h with every record removed: uncompressed, record count 0,
// the original offsets, producer fields and max timestamp.
func emptyBatch(h BatchHeader) []byte {
	nh := h
	nh.NumRecords = 0
	nh.Attributes &^= attrCompressionMask | attrDeleteHorizon
	nh.BaseTimestamp = h.MaxTimestamp
	return encodeBatch(nh, nil)
}

// encodeBatch writes a v2 batch with h's fields around payload, computing
// length and CRC.
func encodeBatch(h BatchHeader, payload []byte) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(payload))
	return sealBatch(append(b, payload...), h)
}

// sealBatch writes h's fields into the header space at the start of b, whose
// payload follows it, with b's length and CRC, and returns b.
func sealBatch(b []byte, h BatchHeader) []byte {
	putHeader(b, h, len(b))
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
	return b
}

// putHeader writes h's fields into head, the header of a batch of size
// bytes, with the batch's length; all but the CRC.
func putHeader(head []byte, h BatchHeader, size int) {
	be := binary.BigEndian
	be.PutUint64(head[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(head[offLength:], uint32(size-lengthFieldEnd))
	be.PutUint32(head[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	head[offMagic] = 2
	be.PutUint16(head[offAttributes:], uint16(h.Attributes))
	be.PutUint32(head[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(head[offBaseTimestamp:], uint64(h.BaseTimestamp))
	be.PutUint64(head[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(head[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(head[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(head[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(head[offRecordCount:], uint32(h.NumRecords))
}

// swapCleaned replaces the group old with the cleaned segment ns (files named
// .cleaned, fsynced) following the protocol above.
func (p *Partition) swapCleaned(old []cleanSeg, ns *segment, droppedAborts map[int64]bool) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.RLock()
	at := -1
	if !p.filesClosed {
		for i, s := range p.segs {
			if s == old[0].seg {
				at = i
				break
			}
		}
	}
	ok := at >= 0 && at+len(old) < len(p.segs) // never the active segment
	for k := 0; ok && k < len(old); k++ {
		ok = p.segs[at+k] == old[k].seg
	}
	p.mu.RUnlock()
	if !ok {
		return errCleanAborted
	}

	dir, base := p.Dir(), ns.base
	fail := func(err error) error {
		p.logger.Error("log cleaner swap failed; a restart completes it", "partition", dir, "segment", base, "error", err)
		return fmt.Errorf("%w: cleaner swap: %v", ErrStorage, err)
	}
	// The merged segment keeps its inputs' aborted-transaction entries but
	// those whose abort marker the pass dropped (their data went in an
	// earlier pass), so every entry still names a marker inside it. The
	// file is written under the first input's name before the later
	// inputs' files go; a crash between the two leaves an entry in two
	// files, and both name the same transaction. A crash before the commit
	// below leaves the old log with entries for dropped markers missing,
	// which is harmless: none of those transactions has data left.
	dropped := false
	for _, s := range old {
		for _, a := range s.seg.aborted {
			if droppedAborts[a.LastOffset] {
				dropped = true
				continue
			}
			ns.aborted = append(ns.aborted, a)
		}
	}
	if len(old) > 1 || dropped {
		if err := ns.rewriteTxnIndex(ns.aborted); err != nil {
			return err // not committed: the caller discards the .cleaned files
		}
	}
	// Step 1: commit.
	for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if err := os.Rename(segmentPath(dir, base, suf+cleanedSuffix), segmentPath(dir, base, suf+swapSuffix)); err != nil {
			if suf == logSuffix {
				return fail(err)
			}
			return err // not committed: the caller discards the .cleaned files
		}
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	// Step 2: install.
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.Rename(segmentPath(dir, base, suf+swapSuffix), segmentPath(dir, base, suf)); err != nil {
			return fail(err)
		}
	}
	for _, s := range old[1:] {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if err := os.Remove(segmentPath(dir, s.base, suf)); err != nil && !os.IsNotExist(err) {
				return fail(err)
			}
		}
	}
	if err := os.Rename(segmentPath(dir, base, logSuffix+swapSuffix), segmentPath(dir, base, logSuffix)); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	// Step 3: publish.
	p.mu.Lock()
	segs := make([]*segment, 0, len(p.segs)-len(old)+1)
	segs = append(segs, p.segs[:at]...)
	segs = append(segs, ns)
	segs = append(segs, p.segs[at+len(old):]...)
	p.segs = segs
	p.mu.Unlock()
	for _, s := range old {
		_ = s.seg.closeFiles()
	}
	return nil
}

// completeCleaning finishes or discards cleaner work interrupted by a crash
// (see the protocol above) before the segments are listed. It returns the
// bases of segments installed from a swap, whose indexes must be rebuilt.
func completeCleaning(dir string) (map[int64]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	var swaps []int64
	for _, de := range ents {
		name := de.Name()
		if b, ok := nameOffset(name, logSuffix); ok {
			logs[b] = true
		}
		if b, ok := nameOffset(name, logSuffix+swapSuffix); ok {
			swaps = append(swaps, b)
		}
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasSuffix(name, cleanedSuffix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			// Index swaps are either installed below or stale.
			if strings.HasSuffix(name, suf+swapSuffix) {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					return nil, err
				}
			}
		}
	}
	rebuild := map[int64]bool{}
	for _, base := range swaps {
		swapPath := segmentPath(dir, base, logSuffix+swapSuffix)
		end, err := swapEnd(swapPath, base)
		if err != nil {
			return nil, err
		}
		for b := range logs {
			if b > base && b < end {
				removeSegmentFiles(dir, b)
			}
		}
		// The installed segment gets its indexes rebuilt from the log.
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := os.Remove(segmentPath(dir, base, suf)); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
		}
		if err := os.Rename(swapPath, segmentPath(dir, base, logSuffix)); err != nil {
			return nil, err
		}
		rebuild[base] = true
	}
	if len(swaps) > 0 || len(rebuild) > 0 {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	return rebuild, nil
}

// swapEnd returns the offset after the last batch of a committed swap file
// (fsynced before the commit, so whole).
func swapEnd(path string, base int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := base
	sc := newHeaderScanner(f, 0, st.Size(), scanWindow)
	for {
		h, _, err := sc.next()
		if err != nil {
			return end, nil
		}
		end = max(end, h.LastOffset()+1)
	}
}

// abortedRanges maps a producer id to its aborted transactions.
type abortedRanges map[int64][]AbortedTxn

// holds reports whether a data batch belongs to an aborted transaction: it is
// transactional and lies between the transaction's first offset and its
// abort marker.
func (r abortedRanges) holds(h BatchHeader) bool {
	if !h.Transactional() || h.Control() {
		return false
	}
	for _, a := range r[h.ProducerID] {
		if a.FirstOffset <= h.BaseOffset && h.BaseOffset < a.LastOffset {
			return true
		}
	}
	return false
}
