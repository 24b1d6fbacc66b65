package raftmeta

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// storage is raft's log and state, kept in pebble for durability and mirrored
// in memory for reads.
//
// The whole uncompacted log fits in memory by construction: the node takes a
// snapshot and compacts every SnapshotEvery entries, and metadata entries are
// small. So pebble is written on every change and read only when opening.
//
// Keys:
//
//	raft/hardstate       pb.HardState
//	raft/confstate       pb.ConfState (latest applied membership)
//	raft/snapshot        pb.Snapshot, metadata and image bytes
//	raft/entry/<be64>    pb.Entry at that index
//
// Invariants, between calls:
//   - ents holds exactly the entries snapIndex+1 .. lastIndex(), contiguous,
//     and pebble holds exactly those entry keys.
//   - snap is the latest snapshot; Term(snapIndex) is snap's term.
//   - hard.Commit <= lastIndex().
type storage struct {
	db *pebble.DB

	// mu guards the in-memory state. The Ready loop is the only writer, but
	// Node's accessors and tests read through raft-independent paths.
	mu   sync.Mutex
	hard *pb.HardState
	conf *pb.ConfState
	snap *pb.Snapshot
	ents []*pb.Entry
}

var _ raft.Storage = (*storage)(nil)

var (
	keyHardState = []byte("raft/hardstate")
	keyConfState = []byte("raft/confstate")
	keySnapshot  = []byte("raft/snapshot")
	prefixEntry  = []byte("raft/entry/")
)

func entryKey(index uint64) []byte {
	k := make([]byte, 0, len(prefixEntry)+8)
	k = append(k, prefixEntry...)
	return binary.BigEndian.AppendUint64(k, index)
}

// openStorage opens (creating if needed) the pebble store in dir and loads
// the raft state into memory.
func openStorage(dir string, log *slog.Logger) (*storage, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("raftmeta: open pebble at %s: %w", dir, err)
	}
	s := &storage{db: db, hard: &pb.HardState{}, conf: pb.EnsureConfState(nil), snap: pb.EnsureSnapshot(nil)}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *storage) load() error {
	if err := s.getProto(keyHardState, s.hard); err != nil {
		return err
	}
	if err := s.getProto(keyConfState, s.conf); err != nil {
		return err
	}
	if err := s.getProto(keySnapshot, s.snap); err != nil {
		return err
	}
	pb.EnsureConfState(s.conf)
	pb.EnsureSnapshot(s.snap)

	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(s.snapIndex() + 1), UpperBound: entryKey(1<<64 - 1)})
	if err != nil {
		return err
	}
	defer iter.Close()
	next := s.snapIndex() + 1
	for iter.First(); iter.Valid(); iter.Next() {
		e := &pb.Entry{}
		if err := proto.Unmarshal(iter.Value(), e); err != nil {
			return fmt.Errorf("raftmeta: decode raft entry: %w", err)
		}
		if e.GetIndex() != next {
			return fmt.Errorf("raftmeta: raft log has a gap: found index %d, expected %d", e.GetIndex(), next)
		}
		s.ents = append(s.ents, e)
		next++
	}
	if err := iter.Error(); err != nil {
		return err
	}
	if c := s.hard.GetCommit(); c > s.lastIndex() {
		return fmt.Errorf("raftmeta: commit index %d is past the last log index %d", c, s.lastIndex())
	}
	return nil
}

func (s *storage) getProto(key []byte, m proto.Message) error {
	v, closer, err := s.db.Get(key)
	if err == pebble.ErrNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("raftmeta: decode %s: %w", key, err)
	}
	return nil
}

func (s *storage) close() error { return s.db.Close() }

// empty reports whether nothing was ever written: no snapshot, no entries, no
// hard state. Only an empty store is bootstrapped.
func (s *storage) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return raft.IsEmptySnap(s.snap) && len(s.ents) == 0 && raft.IsEmptyHardState(s.hard)
}

func (s *storage) snapIndex() uint64 { return s.snap.GetMetadata().GetIndex() }
func (s *storage) snapTerm() uint64  { return s.snap.GetMetadata().GetTerm() }
func (s *storage) lastIndex() uint64 { return s.snapIndex() + uint64(len(s.ents)) }

// InitialState implements raft.Storage.
func (s *storage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.CloneOf(s.hard), proto.CloneOf(s.conf), nil
}

// Entries implements raft.Storage.
func (s *storage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lo <= s.snapIndex() {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex()+1 || lo > hi {
		return nil, raft.ErrUnavailable
	}
	off := s.snapIndex() + 1
	src := s.ents[lo-off : hi-off]
	// Entries are never mutated once stored, so the result may share them;
	// only the slice is fresh, because raft may append to it.
	out := make([]*pb.Entry, 0, len(src))
	var size uint64
	for _, e := range src {
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// Term implements raft.Storage.
func (s *storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case i < s.snapIndex():
		return 0, raft.ErrCompacted
	case i == s.snapIndex():
		return s.snapTerm(), nil
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-s.snapIndex()-1].GetTerm(), nil
}

// LastIndex implements raft.Storage.
func (s *storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastIndex(), nil
}

// FirstIndex implements raft.Storage.
func (s *storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapIndex() + 1, nil
}

// Snapshot implements raft.Storage.
func (s *storage) Snapshot() (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}

// hardState returns a copy of the persisted hard state.
func (s *storage) hardState() *pb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.CloneOf(s.hard)
}

// save durably writes what a Ready asks to persist, in one pebble batch:
// a received snapshot (which replaces the whole log), new entries (which
// replace any conflicting suffix), and the hard state. It returns only once
// the batch is on disk when sync is set, so the caller may then send
// messages and apply committed entries, as raft's Ready contract requires.
func (s *storage) save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()

	newSnap, newEnts := s.snap, s.ents
	if snap != nil && !raft.IsEmptySnap(snap) {
		if snap.GetMetadata().GetIndex() <= s.snapIndex() {
			return raft.ErrSnapOutOfDate
		}
		if err := setProto(b, keySnapshot, snap); err != nil {
			return err
		}
		if err := setProto(b, keyConfState, snap.GetMetadata().GetConfState()); err != nil {
			return err
		}
		if err := b.DeleteRange(entryKey(0), entryKey(s.lastIndex()+1), nil); err != nil {
			return err
		}
		newSnap, newEnts = snap, nil
	}
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		snapIdx := newSnap.GetMetadata().GetIndex()
		last := snapIdx + uint64(len(newEnts))
		if first <= snapIdx || first > last+1 {
			return fmt.Errorf("raftmeta: append at %d does not fit log (%d, %d]", first, snapIdx, last)
		}
		if first <= last {
			// raft replaces a conflicting suffix.
			if err := b.DeleteRange(entryKey(first), entryKey(last+1), nil); err != nil {
				return err
			}
		}
		for _, e := range ents {
			if err := setProto(b, entryKey(e.GetIndex()), e); err != nil {
				return err
			}
		}
		kept := newEnts[:first-snapIdx-1]
		newEnts = append(kept[:len(kept):len(kept)], ents...)
	}
	newHard := s.hard
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if err := setProto(b, keyHardState, hs); err != nil {
			return err
		}
		newHard = proto.CloneOf(hs)
	}
	if b.Empty() {
		return nil
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.Commit(opts); err != nil {
		return err
	}
	s.snap, s.ents, s.hard = newSnap, newEnts, newHard
	if snap != nil && !raft.IsEmptySnap(snap) {
		s.conf = proto.CloneOf(snap.GetMetadata().GetConfState())
	}
	return nil
}

// setConfState durably records the membership after a configuration change
// is applied.
func (s *storage) setConfState(cs *pb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := setProto(s.db, keyConfState, cs); err != nil {
		return err
	}
	s.conf = proto.CloneOf(cs)
	return nil
}

// snapshotAndCompact stores a snapshot of the state machine at index (which
// must be applied, hence committed and in the log) and drops the log up to
// and including index, in one durable batch.
func (s *storage) snapshotAndCompact(index uint64, cs *pb.ConfState, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.snapIndex() {
		return raft.ErrSnapOutOfDate
	}
	if index > s.lastIndex() {
		return fmt.Errorf("raftmeta: snapshot at %d is past the last log index %d", index, s.lastIndex())
	}
	term := s.ents[index-s.snapIndex()-1].GetTerm()
	snap := &pb.Snapshot{
		Data: data,
		Metadata: &pb.SnapshotMetadata{
			ConfState: proto.CloneOf(cs),
			Index:     new(index),
			Term:      new(term),
		},
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := setProto(b, keySnapshot, snap); err != nil {
		return err
	}
	if err := b.DeleteRange(entryKey(0), entryKey(index+1), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	rest := s.ents[index-s.snapIndex():]
	s.ents = append([]*pb.Entry(nil), rest...)
	s.snap = snap
	return nil
}

// bootstrap writes the initial state of a brand-new log: a snapshot at index
// 1, term 1 holding the initial image and membership, and a hard state that
// has it committed. Every voter bootstrapped with the same voters and cluster
// id starts from identical state, so no log entry is needed to agree on the
// initial membership.
func (s *storage) bootstrap(cs *pb.ConfState, data []byte) error {
	snap := &pb.Snapshot{
		Data:     data,
		Metadata: &pb.SnapshotMetadata{ConfState: cs, Index: new(uint64(1)), Term: new(uint64(1))},
	}
	hs := &pb.HardState{Term: new(uint64(1)), Commit: new(uint64(1)), Vote: new(uint64(0))}
	return s.save(hs, nil, snap, true)
}

type protoSetter interface {
	Set(key, value []byte, opts *pebble.WriteOptions) error
}

func setProto(w protoSetter, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	var opts *pebble.WriteOptions
	if _, ok := w.(*pebble.DB); ok {
		opts = pebble.Sync
	}
	return w.Set(key, v, opts)
}
