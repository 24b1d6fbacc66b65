package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// txnHarness drives one partition on real files from a datadriven script
// (testdata/txn): transactional produce, markers, HW moves, rolls, crashes
// and clean restarts, truncation and retention, printing the LSO, the open
// transactions and the aborted-transaction index as memory and disk hold it.
type txnHarness struct {
	t   *testing.T
	dir string
	cfg PartitionConfig
	m   *Manager
	p   *Partition
}

func (h *txnHarness) open() {
	h.m = openManager(h.t, h.dir)
	h.p = h.m.Partition("t", 0)
	if h.p == nil {
		h.p = mustCreate(h.t, h.m, "t", 0, [16]byte{1}, h.cfg)
	}
	h.p.SetConfig(h.cfg)
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int64) int64 {
	if !d.HasArg(key) {
		return def
	}
	var s string
	d.ScanArgs(t, key, &s)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.Fatalf(t, "bad %s=%s", key, s)
	}
	return v
}

func TestTxnDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata/txn", func(t *testing.T, path string) {
		h := &txnHarness{t: t, dir: t.TempDir(), cfg: DefaultPartitionConfig()}
		defer func() {
			if h.m != nil {
				h.m.Close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(d)
		})
	})
}

func (h *txnHarness) run(d *datadriven.TestData) string {
	t := h.t
	switch d.Cmd {
	case "open":
		h.cfg.SegmentBytes = intArg(t, d, "segment-bytes", h.cfg.SegmentBytes)
		h.open()
		return h.state()

	case "produce":
		n := int(intArg(t, d, "n", 1))
		spec := batchSpec{baseTs: 1000, pid: intArg(t, d, "pid", 0), epoch: int16(intArg(t, d, "epoch", 0)), seq: int32(intArg(t, d, "seq", 0)), txn: d.HasArg("txn")}
		for i := range n {
			spec.recs = append(spec.recs, testRec{value: []byte(fmt.Sprintf("v%d", i))})
		}
		res, err := appendCopy(h.p, buildBatch(t, spec), 0)
		if err != nil {
			return fmt.Sprintf("error: %v\n", errName(err))
		}
		return fmt.Sprintf("offsets %d..%d\n%s", res.BaseOffset, res.LastOffset, h.state())

	case "marker":
		m := EndTxnMarker{Commit: d.HasArg("commit"), CoordinatorEpoch: int32(intArg(t, d, "coord", 0))}
		res, err := h.p.AppendMarker(intArg(t, d, "pid", 1), int16(intArg(t, d, "epoch", 0)), m, 0, testNow)
		if err != nil {
			return fmt.Sprintf("error: %v\n", errName(err))
		}
		return fmt.Sprintf("marker at %d\n%s", res.BaseOffset, h.state())

	case "hw":
		h.p.SetHighWatermark(intArg(t, d, "to", h.p.LogEndOffset()))
		return h.state()

	case "roll":
		mustRoll(t, h.p)
		return h.state()

	case "crash":
		h.m.crash()
		h.open()
		return h.state()

	case "restart":
		if err := h.m.Close(); err != nil {
			t.Fatal(err)
		}
		h.open()
		return h.state()

	case "truncate":
		if _, err := h.p.TruncateTo(intArg(t, d, "to", 0)); err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		return h.state()

	case "delete-records":
		if _, err := h.p.DeleteRecordsBefore(intArg(t, d, "before", -1)); err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		return h.state()

	case "retention":
		cfg := h.cfg
		cfg.RetentionBytes = intArg(t, d, "bytes", -1)
		h.p.SetConfig(cfg)
		err := h.p.enforceRetention(testNow)
		h.p.SetConfig(h.cfg)
		if err != nil {
			t.Fatal(err)
		}
		return h.state()

	case "read":
		iso := ReadUncommitted
		if d.HasArg("committed") {
			iso = ReadCommitted
		}
		res, err := h.p.ReadIsolated(intArg(t, d, "offset", 0), int32(intArg(t, d, "max-bytes", 1<<20)), math.MaxInt64, true, iso)
		if err != nil {
			return fmt.Sprintf("error: %v\n", errName(err))
		}
		var b strings.Builder
		fmt.Fprintf(&b, "hw=%d lso=%d\n", res.HighWatermark, res.LastStableOffset)
		for _, batch := range splitBatches(t, res.Data) {
			hd, _ := ParseBatchHeader(batch)
			fmt.Fprintf(&b, "batch %d..%d %s\n", hd.BaseOffset, hd.LastOffset(), batchKind(batch, hd))
		}
		for _, a := range res.Aborted {
			fmt.Fprintf(&b, "aborted %s\n", fmtAborted(a))
		}
		return b.String()

	case "plant-txnindex":
		// A stale index file left where a segment will be created (a
		// crash between removing a segment's log and its index).
		stale := encodeAbortedTxns([]AbortedTxn{{ProducerID: 99, FirstOffset: intArg(t, d, "base", 0), LastOffset: intArg(t, d, "base", 0), LastStableOffset: 0}})
		if err := os.WriteFile(segmentPath(h.p.Dir(), intArg(t, d, "base", 0), txnIndexSuffix), stale, 0o644); err != nil {
			t.Fatal(err)
		}
		return h.state()

	case "producers":
		ps := h.p.Producers()
		slices.SortFunc(ps, func(a, b ProducerInfo) int { return int(a.ProducerID - b.ProducerID) })
		var b strings.Builder
		for _, pi := range ps {
			fmt.Fprintf(&b, "pid=%d epoch=%d lastSeq=%d coord=%d txnFirst=%d\n", pi.ProducerID, pi.Epoch, pi.LastSequence, pi.CoordinatorEpoch, pi.TxnFirstOffset)
		}
		return b.String()
	}
	d.Fatalf(t, "unknown command %s", d.Cmd)
	return ""
}

func batchKind(b []byte, h BatchHeader) string {
	switch {
	case h.Control():
		m, err := ParseMarker(b)
		if err != nil {
			return "bad-marker"
		}
		if m.Commit {
			return fmt.Sprintf("commit pid=%d coord=%d", h.ProducerID, m.CoordinatorEpoch)
		}
		return fmt.Sprintf("abort pid=%d coord=%d", h.ProducerID, m.CoordinatorEpoch)
	case h.Transactional():
		return fmt.Sprintf("txn pid=%d", h.ProducerID)
	case h.ProducerID >= 0:
		return fmt.Sprintf("idempotent pid=%d", h.ProducerID)
	}
	return "plain"
}

func fmtAborted(a AbortedTxn) string {
	return fmt.Sprintf("pid=%d %d..%d lso=%d", a.ProducerID, a.FirstOffset, a.LastOffset, a.LastStableOffset)
}

// errName names the sentinel a log error wraps.
func errName(err error) string {
	for _, e := range []error{ErrInvalidProducerEpoch, ErrTransactionCoordinatorFenced, ErrInvalidTxnState, ErrOutOfOrderSequence, ErrOffsetOutOfRange} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

// state prints offsets and, per segment, the aborted index in memory and in
// its .txnindex file, which must agree.
func (h *txnHarness) state() string {
	p := h.p
	var b strings.Builder
	fus := p.FirstUnstableOffset()
	fmt.Fprintf(&b, "leo=%d hw=%d lso=%d firstUnstable=%d logStart=%d\n", p.LogEndOffset(), p.HighWatermark(), p.LastStableOffset(), fus, p.LogStartOffset())
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, s := range p.segs {
		fmt.Fprintf(&b, "segment %d..%d", s.base, s.next-1)
		for _, a := range s.aborted {
			fmt.Fprintf(&b, " [%s]", fmtAborted(a))
		}
		b.WriteString("\n")
		raw, err := os.ReadFile(segmentPath(s.dir, s.base, txnIndexSuffix))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			h.t.Fatal(err)
		}
		if onDisk := decodeAbortedTxns(raw); !slices.Equal(onDisk, s.aborted) || len(raw)%txnIndexEntrySize != 0 {
			fmt.Fprintf(&b, "  MISMATCH: .txnindex holds %v (%d bytes)\n", onDisk, len(raw))
		}
	}
	ents, err := os.ReadDir(p.Dir())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), txnIndexSuffix)
		if !ok {
			continue
		}
		base, _ := strconv.ParseInt(name, 10, 64)
		if !slices.ContainsFunc(p.segs, func(s *segment) bool { return s.base == base }) {
			fmt.Fprintf(&b, "ORPHAN: %s\n", e.Name())
		}
	}
	return b.String()
}

// TestTxnFollowerCopiesMarkers: a follower that copies the leader's batches
// (markers included) derives the same open transactions, LSO bound and
// aborted index, and refuses a control batch whose marker does not parse.
func TestTxnFollowerCopiesMarkers(t *testing.T) {
	m := openManager(t, t.TempDir(), t.TempDir())
	defer m.Close()
	leader := mustCreate(t, m, "lead", 0, [16]byte{1}, DefaultPartitionConfig())
	follower := mustCreate(t, m, "follow", 0, [16]byte{2}, DefaultPartitionConfig())
	txn := func(pid int64, seq int32) []byte {
		return buildBatch(t, batchSpec{recs: []testRec{{value: []byte("x")}}, baseTs: 1000, pid: pid, seq: seq, txn: true})
	}
	mustAppend(t, leader, txn(1, 0), 0)
	mustAppend(t, leader, txn(2, 0), 0)
	if _, err := leader.AppendMarker(1, 0, EndTxnMarker{CoordinatorEpoch: 3}, 0, testNow); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, leader, txn(2, 1), 0)
	res, err := leader.ReadForReplica(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendReplicated(res.Data, testNow); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Partition{leader, follower} {
		p.SetHighWatermark(p.LogEndOffset())
	}
	lr, _ := leader.ReadIsolated(0, 1<<20, math.MaxInt64, true, ReadCommitted)
	fr, _ := follower.ReadIsolated(0, 1<<20, math.MaxInt64, true, ReadCommitted)
	want := []AbortedTxn{{ProducerID: 1, FirstOffset: 0, LastOffset: 2, LastStableOffset: 1}}
	if !slices.Equal(lr.Aborted, want) || !slices.Equal(fr.Aborted, want) {
		t.Fatalf("aborted: leader %v follower %v, want %v", lr.Aborted, fr.Aborted, want)
	}
	if lr.LastStableOffset != 1 || fr.LastStableOffset != 1 || follower.FirstUnstableOffset() != 1 {
		t.Fatalf("LSO leader %d follower %d, follower first unstable %d; want 1 (producer 2 open)", lr.LastStableOffset, fr.LastStableOffset, follower.FirstUnstableOffset())
	}

	// A control batch whose record is not a marker is corrupt.
	bad := buildMarkerBatch(9, 0, EndTxnMarker{Commit: true}, 1000)
	bad[len(bad)-9] = 0x7f // the key's type, low byte (headers 1, value 6, value length 1 come after): 0x7f is unknown
	binary.BigEndian.PutUint32(bad[offCRC:], batchCRC(bad))
	binary.BigEndian.PutUint64(bad[offBaseOffset:], uint64(follower.LogEndOffset()))
	if _, err := follower.AppendReplicated(bad, testNow); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("bad marker: %v", err)
	}
}

// TestParseMarkerRejectsGarbage: ParseMarker never panics on truncated or
// mangled marker batches.
func TestParseMarkerRejectsGarbage(t *testing.T) {
	good := buildMarkerBatch(5, 2, EndTxnMarker{Commit: true, CoordinatorEpoch: 7}, 1000)
	if m, err := ParseMarker(good); err != nil || !m.Commit || m.CoordinatorEpoch != 7 {
		t.Fatalf("%+v %v", m, err)
	}
	for i := range good {
		_, _ = ParseMarker(good[:i])
		c := bytes.Clone(good)
		c[i] ^= 0xff
		_, _ = ParseMarker(c)
	}
}

// TestTxnCompactionKeepsCommittedOverAborted: on a compacted topic a key's
// committed value survives a later aborted write of the same key (the
// aborted record is removed, not kept as the newest), an open transaction's
// segment is not cleaned, and merged segments keep their aborted entries.
func TestTxnCompactionKeepsCommittedOverAborted(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	cfg := DefaultPartitionConfig()
	cfg.CleanupPolicy = CleanupCompact
	p := mustCreate(t, m, "c", 0, [16]byte{1}, cfg)
	kv := func(pid int64, seq int32, txn bool, v string) []byte {
		return buildBatch(t, batchSpec{recs: []testRec{{key: []byte("k"), value: []byte(v)}}, baseTs: 1000, pid: pid, seq: seq, txn: txn})
	}
	mustAppend(t, p, kv(1, 0, true, "committed"), 0) // 0
	if _, err := p.AppendMarker(1, 0, EndTxnMarker{Commit: true}, 0, testNow); err != nil {
		t.Fatal(err)
	}
	mustRoll(t, p)
	mustAppend(t, p, kv(2, 0, true, "aborted"), 0) // 2
	if _, err := p.AppendMarker(2, 0, EndTxnMarker{}, 0, testNow); err != nil {
		t.Fatal(err)
	}
	mustRoll(t, p)
	mustAppend(t, p, kv(3, 0, true, "open"), 0) // 4, still open
	mustRoll(t, p)
	mustAppend(t, p, kv(-1, 0, false, "tail"), 0)
	p.SetHighWatermark(p.LogEndOffset())
	mustCompact(t, p)

	var values []string
	var aborted []AbortedTxn
	for off := p.LogStartOffset(); off < p.LastStableOffset(); {
		res, err := p.ReadIsolated(off, 1<<20, math.MaxInt64, true, ReadCommitted)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			break
		}
		aborted = append(aborted, res.Aborted...)
		for _, b := range splitBatches(t, res.Data) {
			h, recs, err := DecodeRecords(b)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Control() {
				for _, r := range recs {
					values = append(values, string(r.Value))
				}
			}
			off = h.LastOffset() + 1
		}
	}
	if !slices.Equal(values, []string{"committed"}) {
		t.Fatalf("read_committed below the LSO after cleaning sees %q, want [committed]", values)
	}
	if len(aborted) != 1 || aborted[0].ProducerID != 2 {
		t.Fatalf("aborted entries after cleaning: %v", aborted)
	}
	p.mu.RLock()
	for _, s := range p.segs {
		raw, _ := os.ReadFile(segmentPath(s.dir, s.base, txnIndexSuffix))
		if onDisk := decodeAbortedTxns(raw); !slices.Equal(onDisk, s.aborted) {
			t.Errorf("segment %d: .txnindex holds %v, memory %v", s.base, onDisk, s.aborted)
		}
	}
	p.mu.RUnlock()
	if p.LastStableOffset() != 4 {
		t.Fatalf("LSO %d, want 4 (producer 3 open)", p.LastStableOffset())
	}
	// The open transaction's record was not cleaned.
	res, err := p.Read(4, 1<<20, p.LogEndOffset(), true)
	if err != nil || len(res.Data) == 0 {
		t.Fatalf("open transaction's batch gone: %v", err)
	}
	if _, recs, _ := DecodeRecords(splitBatches(t, res.Data)[0]); len(recs) != 1 || string(recs[0].Value) != "open" {
		t.Fatalf("open transaction's batch cleaned: %v", recs)
	}
}

// TxnOpen: a producer's transaction is open in a partition from its first
// transactional batch to its marker, at that epoch only.
func TestTxnOpen(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	p := mustCreate(t, m, "open", 0, [16]byte{1}, DefaultPartitionConfig())
	if p.TxnOpen(7, 0) {
		t.Fatal("open before any batch")
	}
	mustAppend(t, p, buildBatch(t, batchSpec{recs: []testRec{{value: []byte("x")}}, baseTs: 1000, pid: 7, seq: 0, txn: true}), 0)
	if !p.TxnOpen(7, 0) || p.TxnOpen(7, 1) || p.TxnOpen(8, 0) {
		t.Fatalf("after the first batch: open(7,0)=%v open(7,1)=%v open(8,0)=%v", p.TxnOpen(7, 0), p.TxnOpen(7, 1), p.TxnOpen(8, 0))
	}
	if _, err := p.AppendMarker(7, 0, EndTxnMarker{Commit: true}, 0, testNow); err != nil {
		t.Fatal(err)
	}
	if p.TxnOpen(7, 0) {
		t.Fatal("open after its marker")
	}
}

// TestTxnCompactionDropsMarkers: cleaning drops a transaction's marker once
// no data of the transaction is left below it, Kafka-style: the pass that
// removes the last data keeps the marker, the next one stamps it with a
// delete horizon (now + delete.retention.ms), and a pass at the horizon
// drops it, with its aborted-transaction index entry. A marker still
// covering data stays, and the partition reopens with no transaction open.
func TestTxnCompactionDropsMarkers(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.CleanupPolicy = CleanupCompact
	cfg.DeleteRetentionMs = 60_000
	mgr, p, dir := newTestPartition(t, cfg)
	batch := func(pid int64, seq int32, key, v string) []byte {
		return buildBatch(t, batchSpec{recs: []testRec{{key: []byte(key), value: []byte(v)}}, baseTs: 1000, pid: pid, seq: seq, txn: pid >= 0})
	}
	marker := func(pid int64, commit bool) {
		t.Helper()
		if _, err := p.AppendMarker(pid, 0, EndTxnMarker{Commit: commit}, 0, testNow); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, p, batch(1, 0, "a", "old"), 0) // 0
	marker(1, true)                              // 1: its data is overwritten below
	mustRoll(t, p)
	mustAppend(t, p, batch(2, 0, "a", "aborted"), 0) // 2
	marker(2, false)                                 // 3: its data is aborted
	mustRoll(t, p)
	mustAppend(t, p, batch(1, 1, "b", "live"), 0) // 4
	marker(1, true)                               // 5: covers live data
	mustAppend(t, p, batch(2, 1, "c", "live"), 0) // 6
	marker(2, true)                               // 7
	mustAppend(t, p, batch(-1, 0, "a", "new"), 0) // 8
	mustRoll(t, p)
	mustAppend(t, p, batch(-1, 0, "z", "tail"), 0) // 9, the active segment
	p.SetHighWatermark(p.LogEndOffset())

	// markers lists the offsets of the markers left, "+" for one with a
	// delete horizon.
	markers := func() string {
		t.Helper()
		res, err := p.Read(0, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range splitBatches(t, res.Data) {
			h, _ := ParseBatchHeader(b)
			if h.Control() && h.NumRecords > 0 {
				s := fmt.Sprint(h.BaseOffset)
				if h.Attributes&attrDeleteHorizon != 0 {
					s += "+"
				}
				out = append(out, s)
			}
		}
		return strings.Join(out, " ")
	}
	abortedEntries := func() []AbortedTxn {
		t.Helper()
		p.mu.RLock()
		defer p.mu.RUnlock()
		var all []AbortedTxn
		for _, s := range p.segs {
			raw, _ := os.ReadFile(segmentPath(s.dir, s.base, txnIndexSuffix))
			if onDisk := decodeAbortedTxns(raw); !slices.Equal(onDisk, s.aborted) {
				t.Errorf("segment %d: .txnindex holds %v, memory %v", s.base, onDisk, s.aborted)
			}
			all = append(all, s.aborted...)
		}
		return all
	}
	pass := func(at time.Time, wantMarkers string, wantAborted int) {
		t.Helper()
		if err := p.CompactNow(at); err != nil {
			t.Fatal(err)
		}
		if got := markers(); got != wantMarkers {
			t.Fatalf("after the pass at %v: markers %q, want %q", at.Sub(testNow), got, wantMarkers)
		}
		if got := abortedEntries(); len(got) != wantAborted {
			t.Fatalf("after the pass at %v: aborted entries %v, want %d", at.Sub(testNow), got, wantAborted)
		}
	}
	// The first pass removes the overwritten and the aborted data; their
	// markers stay, for consumers that read that data.
	pass(testNow, "1 3 5 7", 1)
	// The next finds them empty and stamps their horizon.
	pass(testNow, "1+ 3+ 5 7", 1)
	if h := p.cleaner.horizon; h != testNow.UnixMilli()+cfg.DeleteRetentionMs {
		t.Fatalf("pending horizon %d, want %d", h, testNow.UnixMilli()+cfg.DeleteRetentionMs)
	}
	pass(testNow.Add(59*time.Second), "1+ 3+ 5 7", 1)
	// At the horizon they go, the abort's index entry with them.
	pass(testNow.Add(60*time.Second), "5 7", 0)

	var values []string
	for _, r := range consume(t, p) {
		if !strings.HasPrefix(r.key, "\x00") { // not a marker's control record
			values = append(values, r.key+"="+r.val)
		}
	}
	if want := []string{"b=live", "c=live", "a=new", "z=tail"}; !slices.Equal(values, want) {
		t.Fatalf("records after cleaning %v, want %v", values, want)
	}
	if p.LastStableOffset() != p.LogEndOffset() {
		t.Fatalf("LSO %d, LEO %d: a transaction looks open", p.LastStableOffset(), p.LogEndOffset())
	}
	// Reopened without producer snapshots, the state rebuilt from the
	// cleaned log has no transaction open.
	if err := mgr.Close(); err != nil {
		t.Fatal(err)
	}
	removeSnapshots(p.Dir())
	mgr = openManager(t, dir)
	defer mgr.Close()
	p = mgr.Partition("orders", 0)
	if p.FirstUnstableOffset() != -1 {
		t.Fatalf("after reopening, a transaction is open at %d", p.FirstUnstableOffset())
	}
}
