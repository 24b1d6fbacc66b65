package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
)

func segmentPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// segment is one file of batches plus its indexes.
//
// Locking: fields in the first group change only while the partition's
// appendMu and mu (write) are both held, so readers holding mu.RLock see them
// consistent; the batch bytes themselves are written before size publishes
// them, so a reader never reads past size. Fields in the second group belong
// to the partition's flushMu.
type segment struct {
	base int64
	dir  string
	log  *os.File

	// Guarded by Partition.mu (writers also hold appendMu).
	size            int64 // bytes of whole batches in log
	next            int64 // offset after the last batch; base when empty
	index           []offsetEntry
	tindex          []timeEntry
	maxTs           int64        // largest batch max timestamp, -1 when none
	maxTsBase       int64        // base offset of the batch carrying maxTs
	lastBatchBase   int64        // base offset of the last batch, -1 when empty
	bytesSinceIndex int64        // bytes appended since the last offset index entry
	rollAt          int64        // ms timestamp segment.ms counts from; -1 when empty
	aborted         []AbortedTxn // the .txnindex entries, in marker order (txnindex.go)

	// Guarded by Partition.flushMu.
	idxFile, tidxFile   *os.File
	idxDone, tidxDone   int   // entries already in the index files
	flushedSize         int64 // bytes of log known durable
	indexFilesTruncated bool
	indexUnsynced       bool // index bytes written but not yet fsynced

	// Guarded by sendMu: how many FileSlices of log are held, and
	// whether the segment's files were closed meanwhile, leaving log for
	// the last Release to close.
	sendMu     sync.Mutex
	sends      int
	closeLater bool
}

// createSegment makes a new empty segment (and its empty index files).
func createSegment(dir string, base int64) (*segment, error) {
	s := &segment{base: base, dir: dir, next: base, maxTs: -1, maxTsBase: -1, lastBatchBase: -1, rollAt: -1}
	var err error
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if s.log, err = os.OpenFile(segmentPath(dir, base, logSuffix), flags, 0o644); err != nil {
		return nil, err
	}
	if s.idxFile, err = os.OpenFile(segmentPath(dir, base, indexSuffix), flags, 0o644); err != nil {
		s.closeFiles()
		return nil, err
	}
	if s.tidxFile, err = os.OpenFile(segmentPath(dir, base, timeIndexSuffix), flags, 0o644); err != nil {
		s.closeFiles()
		return nil, err
	}
	// The aborted-transaction index is created with the first abort; one
	// left by an earlier segment of the same base describes other data.
	if err = os.Remove(segmentPath(dir, base, txnIndexSuffix)); err != nil && !os.IsNotExist(err) {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// openSegmentFiles opens an existing segment's files without reading them.
func openSegmentFiles(dir string, base int64) (*segment, error) {
	s := &segment{base: base, dir: dir, next: base, maxTs: -1, maxTsBase: -1, lastBatchBase: -1, rollAt: -1}
	var err error
	if s.log, err = os.OpenFile(segmentPath(dir, base, logSuffix), os.O_RDWR, 0o644); err != nil {
		return nil, err
	}
	st, err := s.log.Stat()
	if err != nil {
		s.closeFiles()
		return nil, err
	}
	s.size = st.Size()
	if s.idxFile, err = os.OpenFile(segmentPath(dir, base, indexSuffix), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		s.closeFiles()
		return nil, err
	}
	if s.tidxFile, err = os.OpenFile(segmentPath(dir, base, timeIndexSuffix), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *segment) closeFiles() error {
	errs := []error{s.closeLog()}
	for _, f := range []*os.File{s.idxFile, s.tidxFile} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// closeLog closes the log file, or leaves that to the last release of a
// slice of it still being sent (see FileSlice).
func (s *segment) closeLog() error {
	if s.log == nil {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sends > 0 {
		s.closeLater = true
		return nil
	}
	return s.log.Close()
}

// pin holds the log file open for a slice. The segment must be in its
// partition's list (Partition.mu held), so its files are open.
func (s *segment) pin() {
	s.sendMu.Lock()
	s.sends++
	s.sendMu.Unlock()
}

// unpin releases a slice's hold, closing the log file if the segment's
// files were closed while it was held. Its error is dropped: the segment
// has left the log, and durability was settled by fsync, not by close.
func (s *segment) unpin() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.sends--
	if s.sends == 0 && s.closeLater {
		s.closeLater = false
		_ = s.log.Close()
	}
}

// remove closes and deletes the segment's files.
func (s *segment) remove() error {
	err := s.closeFiles()
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if e := os.Remove(segmentPath(s.dir, s.base, suf)); e != nil && !os.IsNotExist(e) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// trackBatch updates the in-memory indexes and bookkeeping for a batch that
// starts at pos. Callers hold the locks that guard the first field group.
// rollAtMs is the time segment.ms counts from if this is the first batch.
func (s *segment) trackBatch(h BatchHeader, pos int64, indexInterval int64, rollAtMs int64) {
	if s.lastBatchBase < 0 {
		s.rollAt = rollAtMs
	}
	newMax := h.MaxTimestamp > s.maxTs
	if newMax {
		s.maxTs = h.MaxTimestamp
		s.maxTsBase = h.BaseOffset
	}
	if pos > 0 && s.bytesSinceIndex >= indexInterval {
		s.index = append(s.index, offsetEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(pos)})
		s.bytesSinceIndex = 0
		s.maybeTimeEntry()
	}
	s.bytesSinceIndex += int64(h.Size())
	s.size = pos + int64(h.Size())
	s.next = h.LastOffset() + 1
	s.lastBatchBase = h.BaseOffset
}

// maybeTimeEntry appends a time index entry if the max timestamp grew since
// the last one. Called at index intervals and when the segment goes inactive
// or closes, so the last entry of a finished segment is its true maximum.
func (s *segment) maybeTimeEntry() {
	if s.maxTs < 0 {
		return
	}
	if n := len(s.tindex); n > 0 && s.tindex[n-1].ts >= s.maxTs {
		return
	}
	s.tindex = append(s.tindex, timeEntry{ts: s.maxTs, rel: uint32(s.maxTsBase - s.base)})
}

// resetIndexes clears the in-memory indexes before a rebuild; the files are
// truncated on the next flush.
func (s *segment) resetIndexes() {
	s.index, s.tindex = nil, nil
	s.next, s.size = s.base, 0
	s.maxTs, s.maxTsBase, s.lastBatchBase, s.rollAt = -1, -1, -1, -1
	s.bytesSinceIndex = 0
	s.idxDone, s.tidxDone = 0, 0
	s.indexFilesTruncated = true
}

// indexFull reports whether one more entry in either index would exceed
// segment.index.bytes.
func (s *segment) indexFull(maxIndexBytes int32) bool {
	return int64(len(s.index)+1)*offsetEntrySize > int64(maxIndexBytes) ||
		int64(len(s.tindex)+1)*timeEntrySize > int64(maxIndexBytes)
}

// flushState is what a flush captured under the partition lock.
type flushState struct {
	seg        *segment
	size       int64
	idx        []offsetEntry // entries not yet in the index file
	tidx       []timeEntry
	idxStart   int
	tidxStart  int
	truncIdx   bool
	syncLog    bool
	syncIndex  bool
	newIdxDone int
	newTidx    int
}

// captureFlush copies what must be written for this segment. Called with
// flushMu and mu.RLock held.
//
// Index files are fsynced only when syncIndex is set: for inactive segments
// and at close. The active segment's indexes need not be durable because
// recovery always rebuilds the indexes of the segment holding the recovery
// point, and a segment's indexes are fsynced (here) before a later recovery
// point can leave that segment behind. That saves two of three fsyncs per
// Sync of the active segment.
func (s *segment) captureFlush(syncIndex bool) (flushState, bool) {
	fs := flushState{seg: s, size: s.size, idxStart: s.idxDone, tidxStart: s.tidxDone, truncIdx: s.indexFilesTruncated}
	if s.idxDone < len(s.index) {
		fs.idx = append([]offsetEntry(nil), s.index[s.idxDone:]...)
	}
	if s.tidxDone < len(s.tindex) {
		fs.tidx = append([]timeEntry(nil), s.tindex[s.tidxDone:]...)
	}
	fs.newIdxDone = len(s.index)
	fs.newTidx = len(s.tindex)
	fs.syncLog = s.size != s.flushedSize
	writes := len(fs.idx) > 0 || len(fs.tidx) > 0 || fs.truncIdx
	fs.syncIndex = syncIndex && (writes || s.indexUnsynced)
	return fs, fs.syncLog || writes || fs.syncIndex
}

// writeFlush writes the captured index tail and fsyncs. Called with flushMu
// held but not mu, so appends continue while the disk works.
func (fs *flushState) writeFlush() error {
	s := fs.seg
	if fs.truncIdx {
		if err := s.idxFile.Truncate(int64(fs.idxStart) * offsetEntrySize); err != nil {
			return err
		}
		if err := s.tidxFile.Truncate(int64(fs.tidxStart) * timeEntrySize); err != nil {
			return err
		}
	}
	if len(fs.idx) > 0 {
		if _, err := s.idxFile.WriteAt(encodeOffsetEntries(fs.idx), int64(fs.idxStart)*offsetEntrySize); err != nil {
			return err
		}
	}
	if len(fs.tidx) > 0 {
		if _, err := s.tidxFile.WriteAt(encodeTimeEntries(fs.tidx), int64(fs.tidxStart)*timeEntrySize); err != nil {
			return err
		}
	}
	if fs.syncLog {
		if err := s.log.Sync(); err != nil {
			return err
		}
	}
	if fs.syncIndex {
		if err := s.idxFile.Sync(); err != nil {
			return err
		}
		if err := s.tidxFile.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// headerScanner walks batch headers of a segment file through a window
// buffer, so scanning many small batches costs few reads and a large batch
// costs one header read, not a read of its body.
type headerScanner struct {
	f      io.ReaderAt
	end    int64 // scan limit (file size or published size)
	pos    int64 // position of the next header
	buf    []byte
	bufPos int64 // file position of buf[0]
	bufLen int
}

// Window sizes: reads look at a few headers after an index entry (an index
// interval's worth), recovery streams whole segments.
const (
	lookupWindow = 4 << 10
	scanWindow   = 64 << 10
)

func newHeaderScanner(f io.ReaderAt, pos, end int64, window int) *headerScanner {
	var buf []byte
	if window == lookupWindow {
		buf = *lookupBufs.Get().(*[]byte)
	} else {
		buf = make([]byte, window)
	}
	return &headerScanner{f: f, pos: pos, end: end, buf: buf, bufPos: -1}
}

// lookupBufs recycles lookup windows: every fetch makes one scanner per
// partition, and on the long-poll path those buffers were most of the
// broker's garbage.
var lookupBufs = sync.Pool{New: func() any {
	b := make([]byte, lookupWindow)
	return &b
}}

// release returns a lookup window to the pool. The scanner must not be used
// afterwards; scanners never released are simply collected.
func (sc *headerScanner) release() {
	if len(sc.buf) == lookupWindow {
		b := sc.buf
		sc.buf = nil
		lookupBufs.Put(&b)
	}
}

// errShortBatch reports a header or body running past the scan end.
var errShortBatch = errors.New("batch runs past the end of the segment")

// next returns the header at the current position and its position, then
// advances past the batch. io.EOF means the scan ended exactly at end; any
// other error leaves pos at the failing batch.
func (sc *headerScanner) next() (BatchHeader, int64, error) {
	if sc.pos >= sc.end {
		return BatchHeader{}, sc.pos, io.EOF
	}
	if sc.end-sc.pos < BatchHeaderSize {
		return BatchHeader{}, sc.pos, errShortBatch
	}
	hb, err := sc.window(sc.pos, BatchHeaderSize)
	if err != nil {
		return BatchHeader{}, sc.pos, err
	}
	h, err := ParseBatchHeader(hb)
	if err != nil {
		return h, sc.pos, err
	}
	if int64(h.Size()) > sc.end-sc.pos {
		return h, sc.pos, errShortBatch
	}
	pos := sc.pos
	sc.pos += int64(h.Size())
	return h, pos, nil
}

// window returns n bytes at file position pos, refilling the buffer if needed.
func (sc *headerScanner) window(pos int64, n int) ([]byte, error) {
	if sc.bufPos >= 0 && pos >= sc.bufPos && pos+int64(n) <= sc.bufPos+int64(sc.bufLen) {
		off := pos - sc.bufPos
		return sc.buf[off : off+int64(n)], nil
	}
	if n > len(sc.buf) {
		sc.buf = make([]byte, n)
	}
	want := min(int64(len(sc.buf)), sc.end-pos)
	if want < int64(n) {
		return nil, errShortBatch
	}
	m, err := sc.f.ReadAt(sc.buf[:want], pos)
	if int64(m) < want {
		if err == nil || err == io.EOF {
			err = errShortBatch
		}
		return nil, err
	}
	sc.bufPos, sc.bufLen = pos, m
	return sc.buf[:n], nil
}

// readBatch returns the whole batch at the scanner's previous position; used
// by recovery to check CRCs.
func (sc *headerScanner) readBatch(pos int64, size int) ([]byte, error) {
	return sc.window(pos, size)
}
