package raftmeta

import (
	"errors"
	"log/slog"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ent(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: new(index), Term: new(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

func hard(term, commit uint64) *pb.HardState {
	return &pb.HardState{Term: new(term), Commit: new(commit), Vote: new(uint64(1))}
}

func openTestStorage(t *testing.T, dir string) *storage {
	t.Helper()
	s, err := openStorage(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkLog asserts the log's bounds and the term of each entry.
func checkLog(t *testing.T, s *storage, first uint64, terms ...uint64) {
	t.Helper()
	fi, _ := s.FirstIndex()
	li, _ := s.LastIndex()
	if fi != first || li != first+uint64(len(terms))-1 {
		t.Fatalf("log is [%d, %d], want [%d, %d]", fi, li, first, first+uint64(len(terms))-1)
	}
	for i, want := range terms {
		if got, err := s.Term(first + uint64(i)); err != nil || got != want {
			t.Fatalf("term(%d) = %d, %v; want %d", first+uint64(i), got, err, want)
		}
	}
	ents, err := s.Entries(first, li+1, 1<<30)
	if err != nil || len(ents) != len(terms) {
		t.Fatalf("entries: %d, %v", len(ents), err)
	}
}

func TestStorageAppendTruncateReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestStorage(t, dir)
	if !s.empty() {
		t.Fatal("new storage not empty")
	}
	cs := &pb.ConfState{Voters: []uint64{2}}
	if err := s.bootstrap(cs, []byte("image")); err != nil {
		t.Fatal(err)
	}
	if err := s.save(hard(2, 3), []*pb.Entry{ent(2, 2, "a"), ent(3, 2, "b"), ent(4, 2, "c"), ent(5, 2, "d")}, nil, true); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 2, 2, 2, 2, 2)
	// A new leader overwrites the uncommitted suffix from index 4.
	if err := s.save(hard(3, 3), []*pb.Entry{ent(4, 3, "x")}, nil, true); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 2, 2, 2, 3)
	if err := s.save(nil, []*pb.Entry{ent(7, 3, "gap")}, nil, true); err == nil {
		t.Fatal("append past the end accepted")
	}
	if err := s.save(nil, []*pb.Entry{ent(1, 3, "before")}, nil, true); err == nil {
		t.Fatal("append into the snapshot accepted")
	}

	if _, err := s.Term(0); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("term(0): %v", err)
	}
	if term, err := s.Term(1); err != nil || term != 1 {
		t.Fatalf("term(1) = %d, %v; want the snapshot's term", term, err)
	}
	if _, err := s.Term(5); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("term(5): %v", err)
	}
	if _, err := s.Entries(1, 3, 100); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("entries(1): %v", err)
	}
	if _, err := s.Entries(2, 6, 100); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("entries(2,6): %v", err)
	}
	// maxSize limits the result but never below one entry.
	if ents, _ := s.Entries(2, 5, 0); len(ents) != 1 {
		t.Fatalf("maxSize 0 gave %d entries", len(ents))
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStorage(t, dir)
	defer s.close()
	checkLog(t, s, 2, 2, 2, 3)
	hs, gotCS, _ := s.InitialState()
	if hs.GetTerm() != 3 || hs.GetCommit() != 3 || len(gotCS.GetVoters()) != 1 || gotCS.GetVoters()[0] != 2 {
		t.Fatalf("initial state %v %v", hs, gotCS)
	}
	if ents, _ := s.Entries(4, 5, 100); string(ents[0].GetData()) != "x" {
		t.Fatalf("entry 4 = %q", ents[0].GetData())
	}
}

func TestStorageSnapshotCompactAndReceive(t *testing.T) {
	dir := t.TempDir()
	s := openTestStorage(t, dir)
	cs := &pb.ConfState{Voters: []uint64{1}}
	if err := s.bootstrap(cs, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.save(hard(2, 5), []*pb.Entry{ent(2, 2, "a"), ent(3, 2, "b"), ent(4, 2, "c"), ent(5, 2, "d")}, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.snapshotAndCompact(3, cs, []byte("v3")); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 4, 2, 2)
	if err := s.snapshotAndCompact(3, cs, []byte("again")); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("stale snapshot: %v", err)
	}
	if err := s.snapshotAndCompact(9, cs, nil); err == nil {
		t.Fatal("snapshot past the log accepted")
	}
	s.close()

	s = openTestStorage(t, dir)
	checkLog(t, s, 4, 2, 2)
	snap, _ := s.Snapshot()
	if string(snap.GetData()) != "v3" || snap.GetMetadata().GetIndex() != 3 || snap.GetMetadata().GetTerm() != 2 {
		t.Fatalf("snapshot %v", snap)
	}
	if term, _ := s.Term(3); term != 2 {
		t.Fatalf("term at the snapshot %d", term)
	}

	// A snapshot from the leader replaces the whole log.
	recv := &pb.Snapshot{Data: []byte("v10"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(10)), Term: new(uint64(4)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	if err := s.save(hard(4, 10), nil, recv, true); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 11)
	s.close()

	s = openTestStorage(t, dir)
	defer s.close()
	checkLog(t, s, 11)
	_, gotCS, _ := s.InitialState()
	if len(gotCS.GetVoters()) != 3 {
		t.Fatalf("conf state %v", gotCS)
	}
	if err := s.save(nil, []*pb.Entry{ent(11, 4, "next")}, nil, true); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 11, 4)
}
