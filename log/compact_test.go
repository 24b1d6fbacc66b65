package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func compactConfig() PartitionConfig {
	cfg := DefaultPartitionConfig()
	cfg.CleanupPolicy = CleanupCompact
	cfg.SegmentBytes = 700
	cfg.IndexIntervalBytes = 100
	return cfg
}

// kv is one record of a test batch; a nil val is a tombstone, a nil key a
// keyless record.
type kv struct {
	key, val []byte
}

func k(key, val string) kv  { return kv{key: []byte(key), val: []byte(val)} }
func tomb(key string) kv    { return kv{key: []byte(key)} }
func kvs(pairs ...kv) []kv  { return pairs }
func str(b []byte) string   { return string(b) }
func keyless(val string) kv { return kv{val: []byte(val)} }

func kvBatch(t testing.TB, baseTs int64, codec int8, recs []kv) []byte {
	trs := make([]testRec, len(recs))
	for i, r := range recs {
		trs[i] = testRec{key: r.key, value: r.val, tsDelta: int64(i)}
	}
	return buildBatch(t, batchSpec{recs: trs, baseTs: baseTs, codec: codec})
}

// logRec is a record as a consumer sees it.
type logRec struct {
	off  int64
	key  string
	val  string
	tomb bool
	ts   int64
}

// consume reads every record from the log start to the LEO the way a
// consumer does: fetch, then continue after the last offset of the last
// batch (empty batches included). Every batch must be whole, CRC-valid and
// hold what its header says.
func consume(t *testing.T, p *Partition) []logRec {
	t.Helper()
	var out []logRec
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		res, err := p.Read(off, 300, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs := splitBatches(t, res.Data)
		if len(bs) == 0 {
			t.Fatalf("read at %d returned nothing below LEO %d", off, p.LogEndOffset())
		}
		for _, b := range bs {
			if !VerifyBatchCRC(b) {
				t.Fatalf("batch at %d: bad CRC", off)
			}
			h, recs, err := DecodeRecords(b)
			if err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			if h.LastOffset() < off || int(h.NumRecords) != len(recs) {
				t.Fatalf("read at %d: batch %d..%d with %d/%d records", off, h.BaseOffset, h.LastOffset(), len(recs), h.NumRecords)
			}
			for _, r := range recs {
				if r.Offset < h.BaseOffset || r.Offset > h.LastOffset() || (len(out) > 0 && r.Offset <= out[len(out)-1].off) {
					t.Fatalf("record offset %d in batch %d..%d after %v", r.Offset, h.BaseOffset, h.LastOffset(), out[len(out)-1:])
				}
				if r.Offset >= off {
					out = append(out, logRec{off: r.Offset, key: str(r.Key), val: str(r.Value), tomb: r.Value == nil, ts: r.Timestamp})
				}
			}
			off = h.LastOffset() + 1
		}
	}
	return out
}

// model tracks what was appended.
type model struct {
	recs []logRec
}

func (m *model) append(t *testing.T, p *Partition, codec int8, baseTs int64, recs []kv) AppendResult {
	t.Helper()
	res := mustAppend(t, p, kvBatch(t, baseTs, codec, recs), 0)
	for i, r := range recs {
		m.recs = append(m.recs, logRec{off: res.BaseOffset + int64(i), key: str(r.key), val: str(r.val), tomb: r.val == nil, ts: baseTs + int64(i)})
	}
	return res
}

// compacted is what the log must hold after cleaning [0, end) with the
// given tombstone rule: below end, the last record of each key (keyless
// records all kept); from end on, everything.
func (m *model) compacted(end int64, dropTombs bool) []logRec {
	last := map[string]int64{}
	for _, r := range m.recs {
		if r.off < end && r.key != "" {
			last[r.key] = r.off
		}
	}
	var out []logRec
	for _, r := range m.recs {
		if r.off < end && r.key != "" && (last[r.key] != r.off || (r.tomb && dropTombs)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func sameRecs(t *testing.T, what string, got, want []logRec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func activeBase(p *Partition) int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.active().base
}

func segmentCount(p *Partition) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.segs)
}

// fillOverwrites appends batches of 3 records over keys k0..k(nkeys-1) in a
// random order, cycling codecs when codec < 0.
func fillOverwrites(t *testing.T, p *Partition, m *model, batches, nkeys int, codec int8, rng *rand.Rand) {
	t.Helper()
	for i := range batches {
		recs := make([]kv, 3)
		for j := range recs {
			recs[j] = k(fmt.Sprintf("k%d", rng.IntN(nkeys)), fmt.Sprintf("v%d.%d", i, j))
		}
		c := codec
		if c < 0 {
			c = int8(i % 5)
		}
		m.append(t, p, c, 1000+int64(i)*10, recs)
	}
	p.SetHighWatermark(p.LogEndOffset())
}

func TestCompactKeepsLastValuePerKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec int8
	}{{"none", CompressionNone}, {"gzip", CompressionGzip}, {"snappy", CompressionSnappy}, {"lz4", CompressionLZ4}, {"zstd", CompressionZstd}, {"mixed", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			mgr, p, dir := newTestPartition(t, compactConfig())
			var m model
			rng := rand.New(rand.NewPCG(1, uint64(tc.codec+10)))
			fillOverwrites(t, p, &m, 120, 12, tc.codec, rng)
			segsBefore := segmentCount(p)
			end := activeBase(p)
			mustCompact(t, p)
			if got := p.FirstDirtyOffset(); got != end {
				t.Fatalf("first dirty offset %d, want active base %d", got, end)
			}
			want := m.compacted(end, false)
			sameRecs(t, "after compaction", consume(t, p), want)
			checkIndexes(t, p)
			// Cleaned batches keep their codec.
			if tc.codec > 0 {
				res, _ := p.Read(0, 1<<20, math.MaxInt64, true)
				for _, b := range splitBatches(t, res.Data) {
					if h, _ := ParseBatchHeader(b); h.NumRecords > 0 && h.Compression() != tc.codec {
						t.Fatalf("batch %d codec %d, want %d", h.BaseOffset, h.Compression(), tc.codec)
					}
				}
			}
			// Groups are formed by input size, so the second pass merges the
			// now small cleaned segments.
			mustCompact(t, p)
			if n := segmentCount(p); n >= segsBefore/2 {
				t.Fatalf("%d segments before, %d after: small cleaned segments not merged", segsBefore, n)
			}
			sameRecs(t, "after merging", consume(t, p), want)
			checkIndexes(t, p)
			// A third pass finds nothing to do and rewrites nothing.
			sizeBefore, segsNow := p.Size(), segmentCount(p)
			mtimes := map[string]time.Time{}
			ents, _ := os.ReadDir(p.Dir())
			for _, e := range ents {
				if fi, err := e.Info(); err == nil {
					mtimes[e.Name()] = fi.ModTime()
				}
			}
			mustCompact(t, p)
			if p.Size() != sizeBefore || segmentCount(p) != segsNow {
				t.Fatalf("third pass changed the log: %d -> %d bytes", sizeBefore, p.Size())
			}
			ents, _ = os.ReadDir(p.Dir())
			for _, e := range ents {
				if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == logSuffix && !fi.ModTime().Equal(mtimes[e.Name()]) {
					t.Fatalf("third pass rewrote %s", e.Name())
				}
			}
			// Survives a clean reopen and a crash (full verification).
			if err := mgr.Close(); err != nil {
				t.Fatal(err)
			}
			mgr = openManager(t, dir)
			p = mgr.Partition("orders", 0)
			p.SetConfig(compactConfig())
			sameRecs(t, "after reopen", consume(t, p), want)
			if got := p.FirstDirtyOffset(); got != end {
				t.Fatalf("first dirty offset after reopen %d, want %d", got, end)
			}
			mgr.crash()
			mgr = openManager(t, dir)
			defer mgr.Close()
			p = mgr.Partition("orders", 0)
			sameRecs(t, "after crash", consume(t, p), want)
			checkIndexes(t, p)
		})
	}
}

func TestCompactLatestPerKeyInOffsetOrder(t *testing.T) {
	mgr, p, _ := newTestPartition(t, compactConfig())
	defer mgr.Close()
	var m model
	rng := rand.New(rand.NewPCG(7, 7))
	fillOverwrites(t, p, &m, 80, 8, CompressionNone, rng)
	// Roll so every record is in an inactive segment, then put one record
	// with a fresh key in the active segment.
	mustRoll(t, p)
	m.append(t, p, CompressionNone, 5000, kvs(k("fresh", "x")))
	p.SetHighWatermark(p.LogEndOffset())
	mustCompact(t, p)
	got := consume(t, p)
	last := map[string]logRec{}
	for _, r := range m.recs {
		last[r.key] = r
	}
	var want []logRec
	for _, r := range last {
		want = append(want, r)
	}
	slices.SortFunc(want, func(a, b logRec) int { return int(a.off - b.off) })
	sameRecs(t, "consume from 0", got, want)
}

func TestCompactTombstones(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 60_000
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	var m model
	m.append(t, p, CompressionNone, 1000, kvs(k("a", "1"), k("b", "1"), k("c", "1")))
	m.append(t, p, CompressionGzip, 2000, kvs(tomb("a"), k("b", "2")))
	m.append(t, p, CompressionNone, 3000, kvs(tomb("c"), k("d", "1")))
	mustRoll(t, p)
	m.append(t, p, CompressionNone, 4000, kvs(k("e", "1")))
	p.SetHighWatermark(p.LogEndOffset())
	end := activeBase(p)

	t0 := testNow
	if err := p.CompactNow(t0); err != nil {
		t.Fatal(err)
	}
	// First pass: older values go, tombstones stay with their timestamps.
	sameRecs(t, "first pass", consume(t, p), m.compacted(end, false))
	res, _ := p.Read(0, 1<<20, math.MaxInt64, true)
	horizons := 0
	for _, b := range splitBatches(t, res.Data) {
		h, _ := ParseBatchHeader(b)
		if h.Attributes&attrDeleteHorizon != 0 {
			horizons++
			if h.BaseTimestamp != t0.UnixMilli()+cfg.DeleteRetentionMs {
				t.Fatalf("batch %d horizon %d", h.BaseOffset, h.BaseTimestamp)
			}
		}
	}
	if horizons != 2 {
		t.Fatalf("%d batches carry a delete horizon, want 2", horizons)
	}

	// Before the horizon: Manager.Compact has nothing due, CompactNow keeps them.
	mgr.Compact(t0.Add(59 * time.Second))
	if err := p.CompactNow(t0.Add(59 * time.Second)); err != nil {
		t.Fatal(err)
	}
	sameRecs(t, "before horizon", consume(t, p), m.compacted(end, false))

	// At the horizon the periodic pass is due and removes them.
	mgr.Compact(t0.Add(60 * time.Second))
	sameRecs(t, "after horizon", consume(t, p), m.compacted(end, true))
	if h := p.cleaner.horizon; h != math.MaxInt64 {
		t.Fatalf("pending horizon %d after the tombstones went", h)
	}
}

func TestCompactLeavesActiveSegmentAndAboveHW(t *testing.T) {
	mgr, p, _ := newTestPartition(t, compactConfig())
	defer mgr.Close()
	var m model
	for i := range 60 {
		m.append(t, p, CompressionNone, int64(i), kvs(k("same", fmt.Sprint(i)), k("other", fmt.Sprint(i))))
	}
	p.mu.RLock()
	n := len(p.segs)
	hwSeg := p.segs[n-3] // the HW falls inside this segment
	hw := hwSeg.base + 1
	p.mu.RUnlock()
	p.SetHighWatermark(hw)
	files := map[string][]byte{}
	p.mu.RLock()
	for _, s := range p.segs[n-3:] {
		b, _ := os.ReadFile(segmentPath(p.Dir(), s.base, logSuffix))
		files[segmentPath(p.Dir(), s.base, logSuffix)] = b
	}
	p.mu.RUnlock()
	mustCompact(t, p)
	for path, before := range files {
		after, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("%s changed (err %v)", filepath.Base(path), err)
		}
	}
	if got := p.FirstDirtyOffset(); got != hwSeg.base {
		t.Fatalf("first dirty %d, want %d", got, hwSeg.base)
	}
	sameRecs(t, "below HW", consume(t, p), m.compacted(hwSeg.base, false))

	// Once the HW covers everything, all but the active segment is cleaned.
	p.SetHighWatermark(p.LogEndOffset())
	active := activeBase(p)
	activeBytes, _ := os.ReadFile(segmentPath(p.Dir(), active, logSuffix))
	mustCompact(t, p)
	if after, _ := os.ReadFile(segmentPath(p.Dir(), active, logSuffix)); !bytes.Equal(after, activeBytes) {
		t.Fatal("active segment changed")
	}
	sameRecs(t, "full", consume(t, p), m.compacted(active, false))
}

func TestCompactMinCompactionLag(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 3_600_000
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	var m model
	now := testNow.UnixMilli()
	// Old records, then records younger than the lag.
	for i := range 30 {
		m.append(t, p, CompressionNone, now-7_200_000+int64(i), kvs(k("a", fmt.Sprint(i)), k("b", fmt.Sprint(i))))
	}
	mustRoll(t, p)
	young := p.LogEndOffset()
	for i := range 30 {
		m.append(t, p, CompressionNone, now-60_000+int64(i), kvs(k("a", fmt.Sprint(100+i)), k("b", fmt.Sprint(100+i))))
	}
	p.SetHighWatermark(p.LogEndOffset())
	mustCompact(t, p)
	if got := p.FirstDirtyOffset(); got != young {
		t.Fatalf("cleaned up to %d, want %d (start of the young records)", got, young)
	}
	sameRecs(t, "lag respected", consume(t, p), m.compacted(young, false))
	// Two hours later everything but the active segment is cleanable.
	if err := p.CompactNow(testNow.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	sameRecs(t, "after the lag", consume(t, p), m.compacted(activeBase(p), false))
}

func TestCompactRejectsKeylessRecords(t *testing.T) {
	mgr, p, _ := newTestPartition(t, compactConfig())
	defer mgr.Close()
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionZstd} {
		_, err := appendCopy(p, kvBatch(t, 1, codec, kvs(k("a", "1"), keyless("x"))), 0)
		if !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("codec %d: keyless record: %v", codec, err)
		}
		if _, err := appendCopy(p, kvBatch(t, 1, codec, kvs(k("a", "1"), tomb("b"))), 0); err != nil {
			t.Fatalf("codec %d: keyed records: %v", codec, err)
		}
	}
	// A delete topic takes them.
	cfg := compactConfig()
	cfg.CleanupPolicy = ""
	p.SetConfig(cfg)
	if _, err := appendCopy(p, kvBatch(t, 1, CompressionGzip, kvs(keyless("x"))), 0); err != nil {
		t.Fatal(err)
	}
	// Records without keys already in the log survive compaction.
	p.SetConfig(compactConfig())
	mustRoll(t, p)
	mustAppend(t, p, kvBatch(t, 1, CompressionNone, kvs(k("a", "2"))), 0)
	p.SetHighWatermark(p.LogEndOffset())
	mustCompact(t, p)
	recs := consume(t, p)
	var keylessSeen bool
	for _, r := range recs {
		keylessSeen = keylessSeen || (r.key == "" && r.val == "x")
	}
	if !keylessSeen {
		t.Fatalf("keyless record lost: %v", recs)
	}
}

func TestCompactReadAtRemovedOffset(t *testing.T) {
	mgr, p, _ := newTestPartition(t, compactConfig())
	defer mgr.Close()
	var m model
	for i := range 40 {
		m.append(t, p, CompressionNone, 1000+int64(i)*10, kvs(k(fmt.Sprintf("x%d", i%4), fmt.Sprint(i)), k(fmt.Sprintf("y%d", i), fmt.Sprint(i))))
	}
	p.SetHighWatermark(p.LogEndOffset())
	end := activeBase(p)
	mustCompact(t, p)
	survivors := m.compacted(end, false)
	alive := map[int64]bool{}
	for _, r := range survivors {
		alive[r.off] = true
	}
	removed := 0
	for off := int64(0); off < end; off++ {
		if alive[off] {
			continue
		}
		removed++
		res, err := p.Read(off, 1, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		bs := splitBatches(t, res.Data)
		if len(bs) != 1 {
			t.Fatalf("read at removed %d: %d batches", off, len(bs))
		}
		// The batch is the first one ending at or after off: its first
		// record at or after off is the next survivor, or it has none and
		// the next survivor lies beyond it.
		h, recs, _ := DecodeRecords(bs[0])
		var next int64 = -1
		for _, r := range recs {
			if r.Offset >= off {
				next = r.Offset
				break
			}
		}
		wantNext := int64(math.MaxInt64)
		for _, r := range survivors {
			if r.off >= off {
				wantNext = r.off
				break
			}
		}
		ok := h.LastOffset() >= off && (next == wantNext || (next == -1 && wantNext > h.LastOffset()))
		if !ok {
			t.Fatalf("read at removed %d: batch %d..%d first record %d, want %d", off, h.BaseOffset, h.LastOffset(), next, wantNext)
		}
	}
	if removed == 0 {
		t.Fatal("nothing was compacted away")
	}
	// Timestamp lookups skip removed records too: 1050 is the timestamp of
	// a removed record (batch 5's x1); the answer is the first survivor
	// with a timestamp at or after it.
	off, ts, found, err := p.OffsetForTimestamp(1050)
	if err != nil || !found {
		t.Fatalf("%d %d %v %v", off, ts, found, err)
	}
	for _, r := range survivors {
		if r.ts >= 1050 {
			if r.off != off || r.ts != ts || r.ts == 1050 {
				t.Fatalf("OffsetForTimestamp(1050) = %d@%d, want %d@%d", off, ts, r.off, r.ts)
			}
			break
		}
	}
	if e, end := p.EndOffsetForEpoch(0); e != 0 || end != p.LogEndOffset() {
		t.Fatalf("EndOffsetForEpoch(0) = %d, %d", e, end)
	}
}

func TestCompactIdempotentProducerAfterReopen(t *testing.T) {
	for _, dropSnapshots := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropSnapshots=%v", dropSnapshots), func(t *testing.T) {
			mgr, p, dir := newTestPartition(t, compactConfig())
			pidBatch := func(seq int32, val string) []byte {
				return buildBatch(t, batchSpec{recs: []testRec{{key: []byte("p"), value: []byte(val)}}, baseTs: 1000, pid: 7, epoch: 2, seq: seq})
			}
			var last AppendResult
			for i := range 4 {
				last = mustAppend(t, p, pidBatch(int32(i), fmt.Sprint(i)), 0)
			}
			// A later write of the same key empties every batch of producer 7.
			for i := range 20 {
				mustAppend(t, p, kvBatch(t, 2000, CompressionNone, kvs(k("p", fmt.Sprint("later", i)), k("q", "x"))), 0)
			}
			p.SetHighWatermark(p.LogEndOffset())
			mustCompact(t, p)
			// The producer's last batch stays, empty, with its offsets.
			res, _ := p.Read(last.BaseOffset, 1, math.MaxInt64, true)
			h, _ := ParseBatchHeader(res.Data)
			if h.BaseOffset != last.BaseOffset || h.ProducerID != 7 || h.NumRecords != 0 || h.BaseSequence != 3 || !VerifyBatchCRC(res.Data) {
				t.Fatalf("producer's last batch: %+v", h)
			}
			if err := mgr.Close(); err != nil {
				t.Fatal(err)
			}
			if dropSnapshots {
				removeSnapshots(p.Dir())
			}
			mgr = openManager(t, dir)
			defer mgr.Close()
			p = mgr.Partition("orders", 0)
			p.SetConfig(compactConfig())
			dup, err := appendCopy(p, pidBatch(3, "3"), 0)
			if err != nil || !dup.Duplicate || dup.BaseOffset != last.BaseOffset {
				t.Fatalf("retry of the last batch: %+v %v", dup, err)
			}
			if _, err := appendCopy(p, pidBatch(5, "5"), 0); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap in sequence: %v", err)
			}
			if r, err := appendCopy(p, pidBatch(4, "4"), 0); err != nil || r.Duplicate {
				t.Fatalf("next sequence: %+v %v", r, err)
			}
		})
	}
}

func TestCompactPolicyAndRetention(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		deletes bool
	}{{"compact", false}, {"compact,delete", true}, {"delete, compact", true}, {"", true}} {
		t.Run(tc.policy, func(t *testing.T) {
			cfg := compactConfig()
			cfg.CleanupPolicy = tc.policy
			cfg.RetentionMs = 0
			mgr, p, _ := newTestPartition(t, cfg)
			defer mgr.Close()
			for i := range 30 {
				mustAppend(t, p, kvBatch(t, 1000, CompressionNone, kvs(k(fmt.Sprint(i), "v"))), 0)
			}
			p.SetHighWatermark(p.LogEndOffset())
			mgr.EnforceRetention(testNow)
			if gone := p.LogStartOffset() > 0; gone != tc.deletes {
				t.Fatalf("policy %q: retention deleted segments = %v (log start %d)", p.Config().CleanupPolicy, gone, p.LogStartOffset())
			}
		})
	}
}

func TestCompactTrigger(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	add := func(n int, prefix string) {
		for i := range n {
			mustAppend(t, p, kvBatch(t, testNow.UnixMilli(), CompressionNone, kvs(k(fmt.Sprintf("%s%d", prefix, i), "some value bytes"))), 0)
		}
		p.SetHighWatermark(p.LogEndOffset())
	}
	add(60, "a") // all distinct keys: cleaning removes nothing
	mgr.Compact(testNow)
	first := p.FirstDirtyOffset()
	if first != activeBase(p) {
		t.Fatalf("first pass: first dirty %d, want %d", first, activeBase(p))
	}
	// A little more: dirty share below the ratio, nothing happens.
	add(12, "b")
	mgr.Compact(testNow)
	if got := p.FirstDirtyOffset(); got != first {
		t.Fatalf("pass ran below the dirty ratio: %d -> %d", first, got)
	}
	// max.compaction.lag.ms forces it once the oldest dirty record is old.
	cfg.MaxCompactionLagMs = 60_000
	p.SetConfig(cfg)
	mgr.Compact(testNow.Add(30 * time.Second))
	if got := p.FirstDirtyOffset(); got != first {
		t.Fatalf("pass ran before max.compaction.lag.ms: %d -> %d", first, got)
	}
	mgr.Compact(testNow.Add(2 * time.Minute))
	if got := p.FirstDirtyOffset(); got == first {
		t.Fatal("max.compaction.lag.ms did not force a pass")
	}
	// Enough new data passes the ratio again.
	cfg.MaxCompactionLagMs = math.MaxInt64
	p.SetConfig(cfg)
	first = p.FirstDirtyOffset()
	add(120, "c")
	mgr.Compact(testNow)
	if got := p.FirstDirtyOffset(); got == first {
		t.Fatal("dirty ratio above the threshold did not trigger a pass")
	}
	// Delete topics are never compacted.
	cfg.CleanupPolicy = CleanupDelete
	p.SetConfig(cfg)
	first = p.FirstDirtyOffset()
	add(120, "a")
	mgr.Compact(testNow)
	if err := p.CompactNow(testNow); err != nil || p.FirstDirtyOffset() != first {
		t.Fatalf("delete policy compacted: %v", err)
	}
}

func TestCompactMaxLagRollsActiveSegment(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.MaxCompactionLagMs = 60_000
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	mustAppend(t, p, kvBatch(t, 1, CompressionNone, kvs(k("a", "1"))), 0)
	p.SetHighWatermark(p.LogEndOffset())
	mgr.EnforceRetention(testNow.Add(2 * time.Minute))
	if segmentCount(p) != 2 {
		t.Fatalf("%d segments: active segment not rolled after max.compaction.lag.ms", segmentCount(p))
	}
}

// TestCompactCrashDuringSwap builds the files each step of the swap leaves
// behind and checks that Open recovers either the old segments or the new
// one, whole, with the same latest value for every key.
func TestCompactCrashDuringSwap(t *testing.T) {
	dir := t.TempDir()
	cfg := compactConfig()
	mgr := openManager(t, dir)
	p := mustCreate(t, mgr, "orders", 0, testTopicID, cfg)
	var m model
	rng := rand.New(rand.NewPCG(3, 3))
	fillOverwrites(t, p, &m, 60, 6, -1, rng)
	// Tombstones in the cleaned range too.
	m.append(t, p, CompressionNone, 9000, kvs(tomb("k1"), tomb("k2")))
	mustRoll(t, p)
	m.append(t, p, CompressionNone, 9100, kvs(k("tail", "t")))
	p.SetHighWatermark(p.LogEndOffset())
	end := activeBase(p)
	if err := mgr.Close(); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(t.TempDir(), "before")
	copyTree(t, dir, before)
	partDir := "orders-0"
	oldBases, _ := scanSegmentFiles(filepath.Join(before, partDir))

	// The cleaned result: one group (segment.bytes large enough to merge
	// every inactive segment).
	mgr = openManager(t, dir)
	p = mgr.Partition("orders", 0)
	big := cfg
	big.SegmentBytes = 1 << 20
	p.SetConfig(big)
	mustCompact(t, p)
	newBases, _ := scanSegmentFiles(p.Dir())
	if len(newBases) != 2 || newBases[0] != oldBases[0] || newBases[1] != end || len(oldBases) < 4 {
		t.Fatalf("old segments %v, new %v", oldBases, newBases)
	}
	if err := mgr.Close(); err != nil {
		t.Fatal(err)
	}
	after := filepath.Join(t.TempDir(), "after")
	copyTree(t, dir, after)

	base := oldBases[0]
	oldAll := m.recs
	newAll := m.compacted(end, false)
	cp := func(t *testing.T, from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type state struct {
		name  string
		setup func(t *testing.T, d string) // d: a copy of the old log dir
		want  []logRec
	}
	newFile := func(suf string) string { return segmentPath(filepath.Join(after, partDir), base, suf) }
	in := func(d string, b int64, suf string) string { return segmentPath(d, b, suf) }
	withCleaned := func(t *testing.T, d string, logSuf, idxSuf string) {
		cp(t, newFile(logSuffix), in(d, base, logSuffix+logSuf))
		if idxSuf != "" {
			cp(t, newFile(indexSuffix), in(d, base, indexSuffix+idxSuf))
			cp(t, newFile(timeIndexSuffix), in(d, base, timeIndexSuffix+idxSuf))
		}
	}
	states := []state{
		{"cleaned log only", func(t *testing.T, d string) { withCleaned(t, d, cleanedSuffix, "") }, oldAll},
		{"torn cleaned log", func(t *testing.T, d string) {
			withCleaned(t, d, cleanedSuffix, cleanedSuffix)
			os.Truncate(in(d, base, logSuffix+cleanedSuffix), 100)
		}, oldAll},
		{"all cleaned", func(t *testing.T, d string) { withCleaned(t, d, cleanedSuffix, cleanedSuffix) }, oldAll},
		{"indexes swapped, log not", func(t *testing.T, d string) { withCleaned(t, d, cleanedSuffix, swapSuffix) }, oldAll},
		{"committed", func(t *testing.T, d string) { withCleaned(t, d, swapSuffix, swapSuffix) }, newAll},
		{"committed, index renames lost", func(t *testing.T, d string) { withCleaned(t, d, swapSuffix, cleanedSuffix) }, newAll},
		{"indexes installed", func(t *testing.T, d string) {
			withCleaned(t, d, swapSuffix, "")
			cp(t, newFile(indexSuffix), in(d, base, indexSuffix))
			cp(t, newFile(timeIndexSuffix), in(d, base, timeIndexSuffix))
		}, newAll},
		{"some old segments deleted", func(t *testing.T, d string) {
			withCleaned(t, d, swapSuffix, "")
			cp(t, newFile(indexSuffix), in(d, base, indexSuffix))
			cp(t, newFile(timeIndexSuffix), in(d, base, timeIndexSuffix))
			removeSegmentFiles(d, oldBases[1])
			removeSegmentFiles(d, oldBases[2])
		}, newAll},
		{"all old segments deleted", func(t *testing.T, d string) {
			withCleaned(t, d, swapSuffix, "")
			for _, b := range oldBases[1:] {
				if b < end {
					removeSegmentFiles(d, b)
				}
			}
		}, newAll},
		{"done", func(t *testing.T, d string) {
			os.RemoveAll(d)
			copyTree(t, filepath.Join(after, partDir), d)
		}, newAll},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, before, root)
			os.Remove(filepath.Join(root, cleanShutdownFile)) // a crash, not a clean stop
			st.setup(t, filepath.Join(root, partDir))
			mgr := openManager(t, root)
			defer mgr.Close()
			p := mgr.Partition("orders", 0)
			sameRecs(t, st.name, consume(t, p), st.want)
			checkIndexes(t, p)
			ents, _ := os.ReadDir(p.Dir())
			for _, e := range ents {
				if filepath.Ext(e.Name()) == cleanedSuffix || filepath.Ext(e.Name()) == swapSuffix {
					t.Fatalf("leftover %s", e.Name())
				}
			}
			// And it cleans to the same result afterwards.
			p.SetConfig(big)
			mustCompact(t, p)
			sameRecs(t, st.name+", cleaned again", consume(t, p), newAll)
		})
	}
}

// TestCompactConcurrentReaders runs appends, reads from offset 0 and
// cleaning passes at once (run with -race): readers must always get whole,
// valid batches and see every key's latest committed value.
func TestCompactConcurrentReaders(t *testing.T) {
	cfg := compactConfig()
	mgr, p, _ := newTestPartition(t, cfg)
	defer mgr.Close()
	var stop atomic.Bool
	var w workers
	w.Go(func() error {
		defer stop.Store(true)
		for i := range 600 {
			b := kvBatch(t, int64(i), int8(i%3), kvs(k(fmt.Sprintf("k%d", i%10), fmt.Sprint(i)), k("hot", fmt.Sprint(i))))
			if _, err := appendCopy(p, b, 0); err != nil {
				return err
			}
			p.SetHighWatermark(p.LogEndOffset())
		}
		return nil
	})
	w.Go(func() error {
		for !stop.Load() {
			if err := p.CompactNow(testNow); err != nil {
				return err
			}
		}
		return nil
	})
	for range 2 {
		w.Go(func() error {
			for !stop.Load() {
				hw := p.HighWatermark()
				for off := int64(0); off < hw; {
					res, err := p.Read(off, 200, hw, true)
					if err != nil {
						return err
					}
					if len(res.Data) == 0 {
						return fmt.Errorf("nothing at %d below %d", off, hw)
					}
					for len(res.Data) > 0 {
						h, err := ParseBatchHeader(res.Data)
						if err != nil || h.Size() > len(res.Data) || !VerifyBatchCRC(res.Data) || h.LastOffset() < off {
							return fmt.Errorf("bad batch at %d: %+v %v", off, h, err)
						}
						res.Data = res.Data[h.Size():]
						off = h.LastOffset() + 1
					}
				}
			}
			return nil
		})
	}
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	mustCompact(t, p)
	last := map[string]string{}
	for _, r := range consume(t, p) {
		last[r.key] = r.val
	}
	if last["hot"] != "599" || len(last) != 11 {
		t.Fatalf("latest values %v", last)
	}
}

// BenchmarkCompact measures cleaning throughput in bytes of input per
// second: 32 MiB of 1 KiB values over 4096 keys (each key written about 8
// times), uncompressed and lz4.
func BenchmarkCompact(b *testing.B) {
	for _, codec := range []int8{CompressionNone, CompressionLZ4} {
		b.Run(fmt.Sprintf("codec=%d", codec), func(b *testing.B) {
			var batches [][]byte
			rng := rand.New(rand.NewPCG(1, 2))
			val := make([]byte, 1024)
			for i := 0; i < 32<<10/16; i++ {
				recs := make([]testRec, 16)
				for j := range recs {
					for v := range val {
						val[v] = byte('a' + rng.IntN(8)) // compressible, not trivially
					}
					recs[j] = testRec{key: []byte(fmt.Sprintf("key-%d", rng.IntN(4096))), value: bytes.Clone(val)}
				}
				batches = append(batches, buildBatch(b, batchSpec{recs: recs, baseTs: 1000, codec: codec}))
			}
			cfg := compactConfig()
			cfg.SegmentBytes = 4 << 20
			cfg.IndexIntervalBytes = 4096
			inactive := func(p *Partition) int64 {
				p.mu.RLock()
				defer p.mu.RUnlock()
				var n int64
				for _, s := range p.segs[:len(p.segs)-1] {
					n += s.size
				}
				return n
			}
			var in, out int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				m := openManager(b, b.TempDir())
				p, _ := m.CreatePartition("bench", 0, testTopicID, cfg)
				for _, bt := range batches {
					if _, err := appendCopy(p, bt, 0); err != nil {
						b.Fatal(err)
					}
				}
				p.SetHighWatermark(p.LogEndOffset())
				in = inactive(p)
				b.StartTimer()
				mustCompact(b, p)
				b.StopTimer()
				out = inactive(p)
				m.Close()
				b.StartTimer()
			}
			b.SetBytes(in)
			b.ReportMetric(float64(out)/float64(in), "out/in")
		})
	}
}
