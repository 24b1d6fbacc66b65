package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnCommitReq(group string, pid int64, offset int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Group, req.ProducerID, req.Generation = group, pid, -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset}}}}
	return req
}

func committedOffset(t *testing.T, s *Shard, group string) int64 {
	t.Helper()
	topics, err := s.OffsetFetch(group, "", -1, []FetchTopic{{Topic: "in", Partitions: []int32{0}}})
	if err != nil {
		t.Fatal(err)
	}
	return topics[0].Partitions[0].Offset
}

func replayAll(t *testing.T, now time.Time, recs []Record) *Shard {
	t.Helper()
	s := NewShard(DefaultConfig())
	for _, r := range recs {
		if err := s.Replay(now, r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// A transactional offset stays invisible until its commit marker; an abort
// discards it; pending offsets survive a reload (replay) and are resolved
// there by the marker the transaction coordinator resends.
func TestTxnOffsetCommitPendingUntilMarker(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	if resp := s.TxnOffsetCommit(now, txnCommitReq("g", 7, 10)); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", resp)
	}
	if got := committedOffset(t, s, "g"); got != -1 {
		t.Fatalf("pending offset visible: %d", got)
	}
	if !s.PendingTxnOffset("g", "in", 0) {
		t.Fatal("no pending offset reported")
	}
	log := s.Drain()

	// A reload before the marker keeps the offset pending.
	reloaded := replayAll(t, now, log)
	if !reloaded.PendingTxnOffset("g", "in", 0) || committedOffset(t, reloaded, "g") != -1 {
		t.Fatal("pending offset lost or visible after replay")
	}
	reloaded.CompleteTxnOffsets(7, true)
	if got := committedOffset(t, reloaded, "g"); got != 10 {
		t.Fatalf("after commit marker: %d, want 10", got)
	}
	log = append(log, reloaded.Drain()...)
	// A repeated marker changes nothing.
	reloaded.CompleteTxnOffsets(7, true)
	if recs := reloaded.Drain(); len(recs) != 0 {
		t.Fatalf("repeated marker wrote %d records", len(recs))
	}
	final := replayAll(t, now, log)
	if got := committedOffset(t, final, "g"); got != 10 || final.PendingTxnOffset("g", "in", 0) {
		t.Fatalf("replayed: offset %d, pending %v", got, final.PendingTxnOffset("g", "in", 0))
	}

	// The next transaction aborts: the committed offset stays.
	final.TxnOffsetCommit(now, txnCommitReq("g", 7, 20))
	final.CompleteTxnOffsets(7, false)
	if got := committedOffset(t, final, "g"); got != 10 || final.PendingTxnOffset("g", "in", 0) {
		t.Fatalf("after abort: offset %d", got)
	}
	log = append(log, final.Drain()...)
	if got := committedOffset(t, replayAll(t, now, log), "g"); got != 10 {
		t.Fatalf("replayed after abort: %d", got)
	}
}

// KIP-447: a transactional commit naming a generation of a group that does
// not exist, or a stale one, is refused; an id known by its committed
// offsets is an Empty classic group, which knows no member.
func TestTxnOffsetCommitChecksGeneration(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewShard(DefaultConfig())
	req := txnCommitReq("g", 7, 10)
	req.Generation, req.MemberID = 3, "m"
	if code := s.TxnOffsetCommit(now, req).Topics[0].Partitions[0].ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Fatalf("unknown group with a generation: code %d", code)
	}
	commitOne(s, now, "simple", "", -1, 9)
	s.Drain()
	req.Group = "simple"
	if code := s.TxnOffsetCommit(now, req).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("offsets-only group with a generation: code %d", code)
	}
	req = txnCommitReq("", 7, 10)
	if code := s.TxnOffsetCommit(now, req).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group: code %d", code)
	}
	if len(s.Drain()) != 0 {
		t.Fatal("a refused commit wrote records")
	}
}

func TestTxnOffsetKeyRoundTrip(t *testing.T) {
	k := txnOffsetKey("group", "topic", 3, 1<<40)
	g, tp, p, pid, err := decodeTxnOffsetKey(k)
	if err != nil || g != "group" || tp != "topic" || p != 3 || pid != 1<<40 {
		t.Fatalf("%q %q %d %d %v", g, tp, p, pid, err)
	}
	for i := range k {
		if _, _, _, _, err := decodeTxnOffsetKey(k[:i]); err == nil {
			t.Fatalf("truncated key of %d bytes decoded", i)
		}
	}
}
