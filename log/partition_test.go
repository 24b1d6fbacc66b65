package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var testTopicID = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func newTestPartition(t *testing.T, cfg PartitionConfig) (*Manager, *Partition, string) {
	t.Helper()
	dir := t.TempDir()
	m := openManager(t, dir)
	p := mustCreate(t, m, "orders", 0, testTopicID, cfg)
	return m, p, dir
}

// readAll reads every batch from offset to LEO with small reads.
func readAll(t *testing.T, p *Partition, from int64) [][]byte {
	t.Helper()
	var out [][]byte
	for off := from; off < p.LogEndOffset(); {
		res, err := p.Read(off, 1, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs := splitBatches(t, res.Data)
		if len(bs) != 1 {
			t.Fatalf("read at %d: %d batches", off, len(bs))
		}
		h, _ := ParseBatchHeader(bs[0])
		if h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("read at %d returned batch %d..%d", off, h.BaseOffset, h.LastOffset())
		}
		out = append(out, bs[0])
		off = h.LastOffset() + 1
	}
	return out
}

func TestAppendReadRoundtrip(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	var sent [][]byte
	var want int64
	for i := range 20 {
		b := buildBatch(t, batchSpec{recs: []testRec{{value: []byte("a")}, {value: []byte(fmt.Sprint(i))}, {value: []byte("c")}}, baseTs: 1000 + int64(i), codec: int8(i % 5)})
		res := mustAppend(t, p, b, 3)
		if res.BaseOffset != want || res.LastOffset != want+2 || res.Duplicate || res.LogAppendTime != -1 {
			t.Fatalf("batch %d: %+v", i, res)
		}
		want += 3
		sent = append(sent, b)
	}
	if p.LogEndOffset() != 60 {
		t.Fatalf("LEO %d", p.LogEndOffset())
	}
	// Nothing visible until the HW moves.
	if res, err := p.Read(0, 1<<20, p.HighWatermark(), true); err != nil || len(res.Data) != 0 {
		t.Fatalf("read below HW: %d bytes, %v", len(res.Data), err)
	}
	p.SetHighWatermark(p.LogEndOffset())
	res, err := p.Read(0, 1<<20, p.HighWatermark(), true)
	if err != nil {
		t.Fatal(err)
	}
	got := splitBatches(t, res.Data)
	if len(got) != 20 || res.HighWatermark != 60 || res.LogStartOffset != 0 {
		t.Fatalf("%d batches, hw %d", len(got), res.HighWatermark)
	}
	for i, g := range got {
		// Identical to what was sent apart from baseOffset and leader epoch.
		exp := bytes.Clone(sent[i])
		binary.BigEndian.PutUint64(exp[offBaseOffset:], uint64(i*3))
		binary.BigEndian.PutUint32(exp[offLeaderEpoch:], 3)
		if !bytes.Equal(g, exp) {
			t.Fatalf("batch %d differs", i)
		}
		if !VerifyBatchCRC(g) {
			t.Fatalf("batch %d: bad crc", i)
		}
		_, recs, err := DecodeRecords(g)
		if err != nil || len(recs) != 3 || recs[1].Offset != int64(i*3+1) || string(recs[1].Value) != fmt.Sprint(i) {
			t.Fatalf("batch %d records: %v %+v", i, err, recs)
		}
	}
	// Read from the middle of a batch starts at that batch.
	res, _ = p.Read(4, 1<<20, 60, true)
	if h, _ := ParseBatchHeader(res.Data); h.BaseOffset != 3 {
		t.Fatalf("read 4 starts at %d", h.BaseOffset)
	}
	// maxBytes smaller than one batch: nothing, unless minOneBatch.
	if res, _ := p.Read(0, 10, 60, false); len(res.Data) != 0 {
		t.Fatal("got data with maxBytes below one batch")
	}
	if res, _ := p.Read(0, 10, 60, true); len(splitBatches(t, res.Data)) != 1 {
		t.Fatal("minOneBatch did not return one batch")
	}
	// maxOffset cuts at batch boundaries.
	if res, _ := p.Read(0, 1<<20, 9, true); len(splitBatches(t, res.Data)) != 3 {
		t.Fatal("maxOffset 9 should give 3 batches")
	}
	// Range checks.
	if _, err := p.Read(61, 1<<20, 60, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past LEO: %v", err)
	}
	if res, err := p.Read(60, 1<<20, 60, true); err != nil || len(res.Data) != 0 {
		t.Fatalf("read at LEO: %v", err)
	}
	if e, off := p.EndOffsetForEpoch(3); e != 3 || off != 60 {
		t.Fatalf("EndOffsetForEpoch(3) = %d, %d", e, off)
	}
}

func TestLogAppendTime(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.MessageTimestampType = TimestampLogAppendTime
	m, p, _ := newTestPartition(t, cfg)
	defer m.Close()
	res := mustAppend(t, p, simpleBatch(t, 3, 5, "v"), 0)
	if res.LogAppendTime != testNow.UnixMilli() {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	p.SetHighWatermark(3)
	r, _ := p.Read(0, 1<<20, 3, true)
	if !VerifyBatchCRC(r.Data) {
		t.Fatal("crc not recomputed")
	}
	h, recs, _ := DecodeRecords(r.Data)
	if !h.LogAppendTime() || recs[2].Timestamp != testNow.UnixMilli() {
		t.Fatalf("%+v %+v", h, recs)
	}
}

func smallSegments() PartitionConfig {
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes = 1000
	cfg.IndexIntervalBytes = 100
	return cfg
}

func TestRollIndexesAndTimestamps(t *testing.T) {
	m, p, _ := newTestPartition(t, smallSegments())
	defer m.Close()
	// 60 batches of 4 records, timestamps 10*i + j (batch 30 jumps back in time).
	for i := range 60 {
		ts := int64(10 * i)
		if i == 30 {
			ts = 5
		}
		mustAppend(t, p, simpleBatch(t, 4, ts, fmt.Sprint(i)), 0)
	}
	p.SetHighWatermark(p.LogEndOffset())
	p.mu.RLock()
	nsegs := len(p.segs)
	indexed := 0
	for _, s := range p.segs {
		indexed += len(s.index)
		if s.size > 1000 {
			t.Errorf("segment %d has %d bytes", s.base, s.size)
		}
	}
	p.mu.RUnlock()
	if nsegs < 5 || indexed == 0 {
		t.Fatalf("%d segments, %d index entries", nsegs, indexed)
	}
	// Every offset is readable and reads cross segments.
	if got := readAll(t, p, 0); len(got) != 60 {
		t.Fatalf("%d batches", len(got))
	}
	res, _ := p.Read(0, 1<<20, 240, true)
	if len(splitBatches(t, res.Data)) == 60 {
		t.Fatal("one read should stop at a segment end")
	}
	// Timestamps: batch i has records at 10i..10i+3, offsets 4i..4i+3.
	for _, c := range []struct{ ts, off, gotTs int64 }{
		{0, 0, 0}, {2, 2, 2}, {12, 6, 12}, {13, 7, 13}, {14, 8, 20}, {295, 124, 310}, {301, 124, 310}, {592, 238, 592}, {593, 239, 593},
		{5, 4, 10}, // earliest offset wins over the later out-of-order batch
	} {
		off, ts, found, err := p.OffsetForTimestamp(c.ts)
		if err != nil || !found || off != c.off || ts != c.gotTs {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d", c.ts, off, ts, found, err, c.off, c.gotTs)
		}
	}
	if _, _, found, _ := p.OffsetForTimestamp(594); found {
		t.Error("found a record after the last timestamp")
	}
	if off, ts := p.MaxTimestamp(); off != 239 || ts != 593 {
		t.Errorf("MaxTimestamp = %d, %d", off, ts)
	}
}

func TestMaxTimestampInMiddle(t *testing.T) {
	m, p, _ := newTestPartition(t, smallSegments())
	defer m.Close()
	if off, ts := p.MaxTimestamp(); off != -1 || ts != -1 {
		t.Fatalf("empty: %d %d", off, ts)
	}
	mustAppend(t, p, buildBatch(t, batchSpec{recs: []testRec{{tsDelta: 1}, {tsDelta: 50}, {tsDelta: 50}, {tsDelta: 3}}, baseTs: 100}), 0)
	for range 20 {
		mustAppend(t, p, simpleBatch(t, 2, 10, "x"), 0)
	}
	if off, ts := p.MaxTimestamp(); off != 1 || ts != 150 {
		t.Fatalf("MaxTimestamp = %d, %d", off, ts)
	}
}

func TestRetentionAndDeleteRecords(t *testing.T) {
	cfg := smallSegments()
	cfg.RetentionMs = 1000
	dir := t.TempDir()
	m := openManager(t, dir)
	p, _ := m.CreatePartition("t", 0, testTopicID, cfg)
	for i := range 40 {
		mustAppend(t, p, simpleBatch(t, 4, int64(i*100), "v"), 0)
	}
	// Nothing above the HW may be deleted.
	m.EnforceRetention(time.UnixMilli(100_000))
	if p.LogStartOffset() != 0 {
		t.Fatal("retention deleted uncommitted data")
	}
	p.SetHighWatermark(p.LogEndOffset())
	// Batches i have ts 100i..100i+3; at now=2500 with 1000ms retention,
	// segments whose max ts < 1500 go.
	m.EnforceRetention(time.UnixMilli(2500))
	ls := p.LogStartOffset()
	if ls == 0 || ls > 15*4 {
		t.Fatalf("log start after time retention: %d", ls)
	}
	if _, err := p.Read(ls-1, 100, 1000, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if off, _, _, _ := p.OffsetForTimestamp(0); off != ls {
		t.Fatalf("OffsetForTimestamp(0) = %d, log start %d", off, ls)
	}
	// Size retention.
	p.SetConfig(func() PartitionConfig { c := cfg; c.RetentionMs = -1; c.RetentionBytes = 2000; return c }())
	m.EnforceRetention(time.UnixMilli(2500))
	if p.Size() > 2000+1000 || p.LogStartOffset() <= ls {
		t.Fatalf("size %d, log start %d", p.Size(), p.LogStartOffset())
	}
	// DeleteRecords.
	if _, err := p.DeleteRecordsBefore(p.HighWatermark() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past HW: %v", err)
	}
	ls, err := p.DeleteRecordsBefore(150)
	if err != nil || ls != 150 || p.LogStartOffset() != 150 {
		t.Fatalf("delete records: %d %v", ls, err)
	}
	res, err := p.Read(150, 1, 1000, true)
	if h, _ := ParseBatchHeader(res.Data); err != nil || h.LastOffset() < 150 {
		t.Fatalf("read at new log start: %v", err)
	}
	if ls, _ := p.DeleteRecordsBefore(-1); ls != p.HighWatermark() {
		t.Fatalf("delete to HW: %d", ls)
	}
	wantStart := p.LogStartOffset()
	leo := p.LogEndOffset()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	defer m.Close()
	p = m.Partition("t", 0)
	if p.LogStartOffset() != wantStart || p.LogEndOffset() != leo || p.HighWatermark() != leo {
		t.Fatalf("after reopen: start %d leo %d hw %d", p.LogStartOffset(), p.LogEndOffset(), p.HighWatermark())
	}
	if p.TopicID() != testTopicID {
		t.Fatal("topic id lost")
	}
}

func TestSegmentMsRoll(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.SegmentMs = 1000
	m, p, _ := newTestPartition(t, cfg)
	defer m.Close()
	mustAppend(t, p, simpleBatch(t, 1, 0, "v"), 0)
	m.EnforceRetention(testNow.Add(500 * time.Millisecond))
	if n := len(p.segs); n != 1 {
		t.Fatalf("%d segments", n)
	}
	m.EnforceRetention(testNow.Add(time.Second))
	p.mu.RLock()
	n := len(p.segs)
	p.mu.RUnlock()
	if n != 2 {
		t.Fatalf("%d segments after segment.ms", n)
	}
}

func TestHighWatermarkWait(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	w := p.Wait()
	p.SetHighWatermark(5) // clamped to LEO 0: no move
	select {
	case <-w:
		t.Fatal("woken without a move")
	default:
	}
	mustAppend(t, p, simpleBatch(t, 2, 0, "v"), 0)
	done := make(chan struct{})
	go func() { <-w; close(done) }()
	p.SetHighWatermark(5)
	<-done
	if p.HighWatermark() != 2 {
		t.Fatalf("hw %d", p.HighWatermark())
	}
	p.SetHighWatermark(1)
	if p.HighWatermark() != 2 {
		t.Fatal("hw moved back")
	}
	w = p.Wait()
	if err := m.DeletePartition("orders", 0); err != nil {
		t.Fatal(err)
	}
	<-w // deletion wakes waiters
	if _, err := p.Read(0, 100, 2, true); !errors.Is(err, ErrPartitionDeleted) {
		t.Fatalf("read after delete: %v", err)
	}
	if _, err := os.Stat(p.Dir()); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestCreatePartitionPlacementAndIdempotence(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	m := openManager(t, d1, d2)
	defer m.Close()
	var ps []*Partition
	for i := range 4 {
		p := mustCreate(t, m, "t", int32(i), testTopicID, DefaultPartitionConfig())
		ps = append(ps, p)
	}
	counts := map[string]int{}
	for _, d := range m.Dirs() {
		counts[d.Path] = len(d.Partitions)
		if d.TotalBytes <= 0 || d.Err != nil {
			t.Fatalf("dir info %+v", d)
		}
	}
	if len(counts) != 2 || counts[filepath.Clean(d1)] != 2 {
		t.Fatalf("placement %v", counts)
	}
	again, _ := m.CreatePartition("t", 0, testTopicID, DefaultPartitionConfig())
	if again != ps[0] {
		t.Fatal("not idempotent")
	}
	mustAppend(t, again, simpleBatch(t, 1, 0, "v"), 0)
	other := testTopicID
	other[0] = 99
	fresh, err := m.CreatePartition("t", 0, other, DefaultPartitionConfig())
	if err != nil || fresh == ps[0] || fresh.LogEndOffset() != 0 || fresh.TopicID() != other {
		t.Fatalf("recreate: %v", err)
	}
	if _, err := m.CreatePartition("../x", 0, other, DefaultPartitionConfig()); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad topic: %v", err)
	}
	if _, err := Open(ManagerConfig{Dirs: []string{d1}}); err == nil {
		t.Fatal("second manager on a locked dir")
	}
}

func TestLeaderEpochs(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	p, _ := m.CreatePartition("t", 0, testTopicID, DefaultPartitionConfig())
	if e, o := p.EndOffsetForEpoch(0); e != -1 || o != -1 {
		t.Fatal("unknown epoch")
	}
	mustAppend(t, p, simpleBatch(t, 2, 0, "v"), 1) // epoch 1 at 0
	mustAppend(t, p, simpleBatch(t, 2, 0, "v"), 1)
	mustAppend(t, p, simpleBatch(t, 2, 0, "v"), 4) // epoch 4 at 4
	for _, c := range []struct {
		ask, e int32
		off    int64
	}{{0, 0, 0}, {1, 1, 4}, {2, 1, 4}, {3, 1, 4}, {4, 4, 6}, {5, -1, -1}} {
		if e, o := p.EndOffsetForEpoch(c.ask); e != c.e || o != c.off {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.ask, e, o, c.e, c.off)
		}
	}
	m.Close()
	m = openManager(t, dir)
	defer m.Close()
	if e, o := m.Partition("t", 0).EndOffsetForEpoch(2); e != 1 || o != 4 {
		t.Fatalf("after reopen: %d %d", e, o)
	}
}

func TestSyncGroupCommit(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for part := range 8 {
		cfg := DefaultPartitionConfig()
		cfg.FlushMessages = 3
		p := mustCreate(t, m, "t", int32(part), testTopicID, cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				res, err := appendCopy(p, simpleBatch(t, 1, 0, "v"), 0)
				if err == nil {
					err = p.Sync(res.LastOffset)
				}
				if err == nil && p.RecoveryPoint() <= res.LastOffset {
					err = fmt.Errorf("recovery point %d not past %d", p.RecoveryPoint(), res.LastOffset)
				}
				if err == nil && p.NeedsFlush() {
					err = errors.New("needs flush right after a sync")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p := m.Partition("t", 0)
	for range 3 {
		mustAppend(t, p, simpleBatch(t, 1, 0, "v"), 0)
	}
	if !p.NeedsFlush() {
		t.Fatal("flush.messages=3 not reported")
	}
	p.SetConfig(func() PartitionConfig { c := p.Config(); c.FlushMs = 0; return c }())
	m.FlushIfDue(time.Now())
	if p.NeedsFlush() || p.RecoveryPoint() != p.LogEndOffset() {
		t.Fatal("FlushIfDue did not flush")
	}
	m.Close()
	if err := p.Sync(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("sync after close: %v", err)
	}
}

// A quiet topic whose last records expired loses them too: the expired
// active segment is rolled and deleted, and appends continue at the LEO.
func TestRetentionDeletesExpiredActiveSegment(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.RetentionMs = 1000
	m := openManager(t, t.TempDir())
	p, _ := m.CreatePartition("t", 0, testTopicID, cfg)
	for i := range 3 {
		mustAppend(t, p, simpleBatch(t, 2, int64(i*100), "v"), 0)
	}
	leo := p.LogEndOffset()
	m.EnforceRetention(time.UnixMilli(5000))
	if p.LogStartOffset() != 0 {
		t.Fatal("retention deleted data above the HW")
	}
	p.SetHighWatermark(leo)
	m.EnforceRetention(time.UnixMilli(5000))
	if p.LogStartOffset() != leo || p.LogEndOffset() != leo {
		t.Fatalf("log start %d, end %d; want both %d", p.LogStartOffset(), p.LogEndOffset(), leo)
	}
	if res := mustAppend(t, p, simpleBatch(t, 1, 6000, "w"), 0); res.BaseOffset != leo {
		t.Fatalf("next append at %d, want %d", res.BaseOffset, leo)
	}
}
