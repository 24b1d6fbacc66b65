package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// The sparse indexes of a segment live in memory (the authoritative copy a
// reader searches) and are mirrored to files on flush so a clean restart need
// not rebuild them. Entries are appended in order and never rewritten, so the
// file is always a prefix of memory: flushing writes only the new tail.
//
// Offset index entry (8 bytes): relative offset uint32, file position uint32.
// Entry (rel, pos) means: the batch whose base offset is segBase+rel starts at
// pos. Entries are strictly increasing in both fields.
//
// Time index entry (12 bytes): timestamp int64, relative offset uint32.
// Entry (ts, rel) means: ts is the largest batch max timestamp among the
// segment's batches up to the point the entry was written, and the batch that
// carries it starts at offset segBase+rel. Entries are strictly increasing in
// ts and non-decreasing in rel. So if ts < target, no record at or before that
// batch has a timestamp >= target.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

// lookupOffset returns the file position of the last indexed batch whose
// base offset is <= off, or 0 (the segment start) when none is.
func lookupOffset(idx []offsetEntry, base, off int64) int64 {
	if off < base {
		return 0
	}
	rel := off - base
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns the base offset of the batch of the last entry whose
// timestamp is < ts, or base when none is: no record before that batch has a
// timestamp >= ts.
func lookupTime(tidx []timeEntry, base, ts int64) int64 {
	i := sort.Search(len(tidx), func(i int) bool { return tidx[i].ts >= ts })
	if i == 0 {
		return base
	}
	return base + int64(tidx[i-1].rel)
}

func encodeOffsetEntries(es []offsetEntry) []byte {
	b := make([]byte, len(es)*offsetEntrySize)
	for i, e := range es {
		binary.BigEndian.PutUint32(b[i*offsetEntrySize:], e.rel)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize+4:], e.pos)
	}
	return b
}

func encodeTimeEntries(es []timeEntry) []byte {
	b := make([]byte, len(es)*timeEntrySize)
	for i, e := range es {
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.rel)
	}
	return b
}

// loadIndex reads the index file at path, whole entries of entrySize bytes
// that decode turns into E. Any inconsistency returns an error and the caller
// rebuilds the index from the log: an index is only an accelerator. check
// says what is wrong with an entry on its own, increasing whether an entry
// may follow the one before it.
func loadIndex[E any](path, kind string, entrySize int, decode func([]byte) E, check func(E) error, increasing func(prev, e E) bool) ([]E, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%entrySize != 0 {
		return nil, fmt.Errorf("%s index %s: size %d not a multiple of %d", kind, path, len(b), entrySize)
	}
	es := make([]E, len(b)/entrySize)
	for i := range es {
		e := decode(b[i*entrySize:])
		if err := check(e); err != nil {
			return nil, fmt.Errorf("%s index %s: entry %d %w", kind, path, i, err)
		}
		if i > 0 && !increasing(es[i-1], e) {
			return nil, fmt.Errorf("%s index %s: entry %d not increasing", kind, path, i)
		}
		es[i] = e
	}
	return es, nil
}

// loadOffsetIndex reads an offset index file and checks it against the log
// it indexes.
func loadOffsetIndex(path string, logSize int64) ([]offsetEntry, error) {
	return loadIndex(path, "offset", offsetEntrySize, func(b []byte) offsetEntry {
		return offsetEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])}
	}, func(e offsetEntry) error {
		if int64(e.pos)+BatchHeaderSize > logSize {
			return fmt.Errorf("points at %d past log size %d", e.pos, logSize)
		}
		return nil
	}, func(prev, e offsetEntry) bool {
		return e.rel > prev.rel && e.pos > prev.pos
	})
}

// errBeyondSegment: a time index entry names an offset past its segment.
var errBeyondSegment = errors.New("beyond the segment")

// loadTimeIndex reads a time index file, checking its ordering invariants.
func loadTimeIndex(path string, maxRel int64) ([]timeEntry, error) {
	return loadIndex(path, "time", timeEntrySize, func(b []byte) timeEntry {
		return timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])}
	}, func(e timeEntry) error {
		if int64(e.rel) > maxRel {
			return errBeyondSegment
		}
		return nil
	}, func(prev, e timeEntry) bool {
		return e.ts > prev.ts && e.rel >= prev.rel
	})
}
