package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// FileSlice is the answer of ReadSlice: whole stored batches, back to back,
// as the byte range [Pos, Pos+Size) of a segment file. The broker sends it
// to a socket straight from the file (sendfile), so the bytes never pass
// through its memory.
//
// The file stays open until Release, even if retention, compaction, a move
// or a truncation takes the segment out of the log meanwhile: closing a
// segment's files leaves its log file open while slices of it are held
// (segment.closeLog), and an unlinked file keeps its bytes until its last
// descriptor closes. A truncation in place (a follower truncating to its
// new leader, which Kafka does the same way) can still shorten the file
// under a slice; a send that then comes up short must fail, not pad.
type FileSlice struct {
	seg       *segment
	Pos, Size int64
	// Records is the span of offsets the batches cover, what the broker
	// counts as records sent. It is the number of records unless the
	// cleaner removed some from the batches' range.
	Records int64
}

// File is the segment file the slice is part of. It must not be used after
// Release.
func (fs *FileSlice) File() *os.File { return fs.seg.log }

// Release lets the segment's file close once nothing else needs it. A
// released or empty slice may be released again.
func (fs *FileSlice) Release() {
	if fs.seg != nil {
		fs.seg.unpin()
		fs.seg = nil
	}
}

// ReadSlice is Read, answering with a range of a segment file instead of
// the bytes: the same batches Read returns, for a consumer up to the HW
// (read_uncommitted), for a follower (replica) up to the LEO. The slice is
// empty (Size 0, nothing to release) when there is nothing to read;
// otherwise the caller must Release it.
func (p *Partition) ReadSlice(offset int64, maxBytes int32, minOneBatch, replica bool) (ReadResult, FileSlice, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	maxOffset := p.hw
	if replica {
		maxOffset = math.MaxInt64
	}
	res, seg, err := p.locateLocked(offset, maxOffset)
	if seg == nil || err != nil {
		return res, FileSlice{}, err
	}
	fs, err := seg.slice(offset, maxBytes, min(maxOffset, p.leo), minOneBatch)
	if err == nil && fs.Size > 0 {
		// Pinned under mu: the segment is still in the log, so its
		// files are open.
		seg.pin()
		fs.seg = seg
	}
	return res, fs, err
}

// slice is read without the read: it finds where the whole batches of the
// extent end from the offset index and the few batch headers past its
// last entry, not from every header. Partition.mu is held (read).
func (s *segment) slice(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (FileSlice, error) {
	first, start, want, err := s.extent(offset, maxBytes, maxOffset, minOneBatch)
	if want == 0 || err != nil {
		return FileSlice{}, err
	}
	limit := start + want
	// The first batch fits (extent says so); scan from the last indexed
	// batch at or before the limit, if that lies past the first.
	from, end, next := start+int64(first.Size()), start+int64(first.Size()), first.LastOffset()+1
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].pos) > limit })
	if i > 0 && int64(s.index[i-1].pos) > from {
		// Every batch before an indexed one is whole and, since the
		// extent stops at maxOffset, below it.
		from, end, next = int64(s.index[i-1].pos), int64(s.index[i-1].pos), s.base+int64(s.index[i-1].rel)
	}
	sc := newHeaderScanner(s.log, from, limit, lookupWindow)
	defer sc.release()
	for {
		h, pos, err := sc.next()
		if errors.Is(err, io.EOF) || errors.Is(err, errShortBatch) || errors.Is(err, ErrCorruptMessage) {
			// The limit, or a batch Read would not parse either.
			break
		}
		if err != nil {
			return FileSlice{}, fmt.Errorf("%w: segment %d at %d: %v", ErrStorage, s.base, pos, err)
		}
		if h.BaseOffset >= maxOffset {
			break
		}
		end, next = pos+int64(h.Size()), h.LastOffset()+1
	}
	return FileSlice{Pos: start, Size: end - start, Records: next - first.BaseOffset}, nil
}
