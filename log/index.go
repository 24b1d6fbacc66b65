package log

import (
	"encoding/binary"
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

// readIndexFile reads the index file at path, which must hold whole entries
// of entrySize bytes.
func readIndexFile(path, kind string, entrySize int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%entrySize != 0 {
		return nil, fmt.Errorf("%s index %s: size %d not a multiple of %d", kind, path, len(b), entrySize)
	}
	return b, nil
}

// loadOffsetIndex reads an offset index file and checks it against the log
// it indexes. Any inconsistency returns an error and the caller rebuilds the
// index from the log: an index is only an accelerator.
func loadOffsetIndex(path string, logSize int64) ([]offsetEntry, error) {
	b, err := readIndexFile(path, "offset", offsetEntrySize)
	if err != nil {
		return nil, err
	}
	es := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range es {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if int64(e.pos)+BatchHeaderSize > logSize {
			return nil, fmt.Errorf("offset index %s: entry %d points at %d past log size %d", path, i, e.pos, logSize)
		}
		if i > 0 && (e.rel <= es[i-1].rel || e.pos <= es[i-1].pos) {
			return nil, fmt.Errorf("offset index %s: entry %d not increasing", path, i)
		}
		es[i] = e
	}
	return es, nil
}

// loadTimeIndex reads a time index file, checking its ordering invariants.
func loadTimeIndex(path string, maxRel int64) ([]timeEntry, error) {
	b, err := readIndexFile(path, "time", timeEntrySize)
	if err != nil {
		return nil, err
	}
	es := make([]timeEntry, len(b)/timeEntrySize)
	for i := range es {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if int64(e.rel) > maxRel {
			return nil, fmt.Errorf("time index %s: entry %d beyond the segment", path, i)
		}
		if i > 0 && (e.ts <= es[i-1].ts || e.rel < es[i-1].rel) {
			return nil, fmt.Errorf("time index %s: entry %d not increasing", path, i)
		}
		es[i] = e
	}
	return es, nil
}
