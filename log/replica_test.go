package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// workload appends a mix of batches to a leader: plain, compressed with every
// codec, and idempotent (producer pid, sequences continuing from *seq). It
// returns the idempotent batches it sent, as the producer built them.
func workload(t *testing.T, p *Partition, rng *rand.Rand, n int, epoch int32, pid int64, seq *int32) [][]byte {
	t.Helper()
	var idem [][]byte
	for range n {
		ts := 1000 + p.LogEndOffset()*10
		if rng.Intn(10) == 0 {
			ts -= 500 // timestamps go back now and then
		}
		var b []byte
		switch rng.Intn(4) {
		case 0:
			b = simpleBatch(t, 1+rng.Intn(5), ts, fmt.Sprint("p", p.LogEndOffset()))
		case 1:
			codec := []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}[rng.Intn(4)]
			recs := make([]testRec, 1+rng.Intn(6))
			for i := range recs {
				recs[i] = testRec{key: []byte(fmt.Sprint("k", i)), value: bytes.Repeat([]byte{byte(i)}, rng.Intn(200)), tsDelta: int64(i)}
			}
			b = buildBatch(t, batchSpec{recs: recs, baseTs: ts, codec: codec, xerial: rng.Intn(2) == 0})
		default:
			k := 1 + rng.Intn(3)
			b = idemBatch(t, k, pid, 0, *seq)
			*seq += int32(k)
			idem = append(idem, b)
		}
		mustAppend(t, p, b, epoch)
	}
	return idem
}

// replicate copies the leader's log to the follower with ReadForReplica and
// AppendReplicated in random chunk sizes, cutting a partial batch off the
// end of some chunks, until the follower reaches the leader's LEO.
func replicate(t *testing.T, leader, follower *Partition, rng *rand.Rand) {
	t.Helper()
	for follower.LogEndOffset() < leader.LogEndOffset() {
		off := follower.LogEndOffset()
		res, err := leader.ReadForReplica(off, int32(1+rng.Intn(3000)))
		if err != nil {
			t.Fatalf("leader read at %d: %v", off, err)
		}
		data := res.Data
		first, err := ParseBatchHeader(data)
		if err != nil {
			t.Fatalf("leader read at %d: %v", off, err)
		}
		if rng.Intn(3) == 0 && len(data) > first.Size() {
			data = data[:first.Size()+rng.Intn(len(data)-first.Size())]
		}
		want := off - 1
		for rest := data; len(rest) >= BatchHeaderSize; {
			h, _ := ParseBatchHeader(rest)
			if h.Size() > len(rest) {
				break
			}
			want = h.LastOffset()
			rest = rest[h.Size():]
		}
		last, err := follower.AppendReplicated(data, testNow)
		if err != nil {
			t.Fatalf("AppendReplicated at %d: %v", off, err)
		}
		if last != want || follower.LogEndOffset() != want+1 {
			t.Fatalf("AppendReplicated at %d returned %d (LEO %d), want %d", off, last, follower.LogEndOffset(), want)
		}
		follower.SetHighWatermarkFollower(res.HighWatermark)
	}
}

// logFiles returns the segment and index files of a partition by name.
func logFiles(t *testing.T, dir string, indexes bool) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, de := range ents {
		n := de.Name()
		if strings.HasSuffix(n, logSuffix) || (indexes && (strings.HasSuffix(n, indexSuffix) || strings.HasSuffix(n, timeIndexSuffix))) {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = b
		}
	}
	return out
}

func sameFiles(t *testing.T, what string, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d files vs %d: %v / %v", what, len(a), len(b), slices.Sorted(mapKeys(a)), slices.Sorted(mapKeys(b)))
	}
	for n, x := range a {
		if y, ok := b[n]; !ok || !bytes.Equal(x, y) {
			t.Fatalf("%s: %s differs (%d vs %d bytes, present %v)", what, n, len(x), len(y), ok)
		}
	}
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// segState is what must agree between replicas, segment by segment.
type segState struct {
	Base, Size, Next, MaxTs, MaxTsBase, LastBatchBase int64
	Index                                             []offsetEntry
	Tindex                                            []timeEntry
}

func segStates(p *Partition) []segState {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []segState
	for _, s := range p.segs {
		out = append(out, segState{s.base, s.size, s.next, s.maxTs, s.maxTsBase, s.lastBatchBase,
			slices.Clone(s.index), slices.Clone(s.tindex)})
	}
	return out
}

func producerBytes(p *Partition) []byte {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	return p.producers.encode()
}

// sameReplica checks that two partitions hold the same log and derive the
// same state from it.
func sameReplica(t *testing.T, a, b *Partition) {
	t.Helper()
	if a.LogEndOffset() != b.LogEndOffset() || a.LogStartOffset() != b.LogStartOffset() {
		t.Fatalf("offsets differ: [%d, %d) vs [%d, %d)", a.LogStartOffset(), a.LogEndOffset(), b.LogStartOffset(), b.LogEndOffset())
	}
	sameFiles(t, "segment files", logFiles(t, a.Dir(), false), logFiles(t, b.Dir(), false))
	if x, y := segStates(a), segStates(b); !reflect.DeepEqual(x, y) {
		t.Fatalf("segment state differs:\n%+v\n%+v", x, y)
	}
	if x, y := a.LeaderEpochs(), b.LeaderEpochs(); !reflect.DeepEqual(x, y) {
		t.Fatalf("epochs differ: %v vs %v", x, y)
	}
	if !bytes.Equal(producerBytes(a), producerBytes(b)) {
		t.Fatal("producer state differs")
	}
	for e := int32(-1); e < 12; e++ {
		e1, o1 := a.EndOffsetForEpoch(e)
		e2, o2 := b.EndOffsetForEpoch(e)
		if e1 != e2 || o1 != o2 {
			t.Fatalf("EndOffsetForEpoch(%d): %d,%d vs %d,%d", e, e1, o1, e2, o2)
		}
	}
	for ts := int64(0); ts < 1000+a.LogEndOffset()*10+20; ts += 37 {
		o1, t1, f1, err1 := a.OffsetForTimestamp(ts)
		o2, t2, f2, err2 := b.OffsetForTimestamp(ts)
		if o1 != o2 || t1 != t2 || f1 != f2 || err1 != nil || err2 != nil {
			t.Fatalf("OffsetForTimestamp(%d): %d %d %v %v vs %d %d %v %v", ts, o1, t1, f1, err1, o2, t2, f2, err2)
		}
	}
	o1, t1 := a.MaxTimestamp()
	o2, t2 := b.MaxTimestamp()
	if o1 != o2 || t1 != t2 {
		t.Fatalf("MaxTimestamp %d %d vs %d %d", o1, t1, o2, t2)
	}
	x, y := readAll(t, a, a.LogStartOffset()), readAll(t, b, b.LogStartOffset())
	if len(x) != len(y) {
		t.Fatalf("%d vs %d batches", len(x), len(y))
	}
	for i := range x {
		if !bytes.Equal(x[i], y[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

func TestReplicaCopyIsIdentical(t *testing.T) {
	for _, tsType := range []string{TimestampCreateTime, TimestampLogAppendTime} {
		t.Run(tsType, func(t *testing.T) {
			cfg := smallSegments()
			cfg.MessageTimestampType = tsType
			ldir, fdir := t.TempDir(), t.TempDir()
			lm, fm := openManager(t, ldir), openManager(t, fdir)
			leader := mustCreate(t, lm, "r", 0, testTopicID, cfg)
			follower := mustCreate(t, fm, "r", 0, testTopicID, cfg)
			rng := rand.New(rand.NewSource(1))
			var seq int32
			var idem [][]byte
			for i, epoch := range []int32{0, 0, 2, 3, 3, 7} {
				idem = append(idem, workload(t, leader, rng, 15+rng.Intn(15), epoch, 42, &seq)...)
				leader.SetHighWatermark(leader.LogEndOffset() - int64(i)) // HW lags the LEO a little
				replicate(t, leader, follower, rng)
			}
			if len(leader.LeaderEpochs()) != 4 || len(segStates(leader)) < 5 {
				t.Fatalf("workload too small: epochs %v, %d segments", leader.LeaderEpochs(), len(segStates(leader)))
			}
			sameReplica(t, leader, follower)
			if follower.HighWatermark() != leader.HighWatermark() {
				t.Fatalf("follower HW %d, leader %d", follower.HighWatermark(), leader.HighWatermark())
			}

			// Indexes on disk agree too once both are closed cleanly.
			if err := lm.Close(); err != nil {
				t.Fatal(err)
			}
			if err := fm.Close(); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, "after close", logFiles(t, leader.Dir(), true), logFiles(t, follower.Dir(), true))
			if a, b := filepath.Join(leader.Dir(), leaderEpochFile), filepath.Join(follower.Dir(), leaderEpochFile); !sameFile(t, a, b) {
				t.Fatal("leader epoch checkpoints differ")
			}

			// The follower becomes leader: a retry of the producer's last
			// batch is a duplicate with the offsets the old leader gave it,
			// and the sequence continues.
			fm = openManager(t, fdir)
			defer fm.Close()
			follower = fm.Partition("r", 0)
			follower.SetConfig(cfg)
			last := idem[len(idem)-1]
			lh, _ := ParseBatchHeader(last)
			res := mustAppend(t, follower, last, 8)
			if !res.Duplicate {
				t.Fatalf("retry of the last producer batch appended at %d", res.BaseOffset)
			}
			stored := findBatch(t, leader.Dir(), lh.ProducerID, lh.BaseSequence)
			if res.BaseOffset != stored.BaseOffset || res.LastOffset != stored.LastOffset() {
				t.Fatalf("duplicate answered %d..%d, stored at %d..%d", res.BaseOffset, res.LastOffset, stored.BaseOffset, stored.LastOffset())
			}
			if _, err := appendCopy(follower, idemBatch(t, 1, 42, 0, seq+1), 8); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("sequence gap: %v", err)
			}
			if res := mustAppend(t, follower, idemBatch(t, 1, 42, 0, seq), 8); res.Duplicate {
				t.Fatal("next sequence treated as duplicate")
			}
		})
	}
}

func sameFile(t *testing.T, a, b string) bool {
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// findBatch finds the stored batch of a producer sequence in a log dir.
func findBatch(t *testing.T, dir string, pid int64, seq int32) BatchHeader {
	t.Helper()
	bases, _ := scanSegmentFiles(dir)
	for _, base := range bases {
		for _, b := range segmentBatches(t, segmentPath(dir, base, logSuffix), base) {
			if b.h.ProducerID == pid && b.h.BaseSequence == seq {
				return b.h
			}
		}
	}
	t.Fatalf("no batch of producer %d seq %d", pid, seq)
	return BatchHeader{}
}

// reconcile runs a follower's truncation on a leader change (KIP-279):
// ask the leader for the end of the follower's latest epoch; if the leader
// answers with an older epoch, truncate to the end of that epoch on both
// sides; repeat until the epochs agree.
func reconcile(t *testing.T, leader, follower *Partition) {
	t.Helper()
	for range 10 {
		epoch, _ := follower.LatestEpoch()
		if epoch < 0 {
			return
		}
		le, end := leader.EndOffsetForEpoch(epoch)
		if le < 0 {
			if err := follower.TruncateFullyAndStartAt(leader.LogStartOffset()); err != nil {
				t.Fatal(err)
			}
			return
		}
		target := min(end, follower.LogEndOffset())
		if le != epoch {
			_, fend := follower.EndOffsetForEpoch(le)
			target = min(target, fend)
		}
		got, err := follower.TruncateTo(target)
		if err != nil {
			t.Fatalf("TruncateTo(%d): %v", target, err)
		}
		if got > target {
			t.Fatalf("TruncateTo(%d) left LEO %d", target, got)
		}
		if le == epoch {
			return
		}
	}
	t.Fatal("reconcile did not converge")
}

func TestReplicaDivergence(t *testing.T) {
	cfg := smallSegments()
	rng := rand.New(rand.NewSource(2))
	open := func() (*Manager, *Partition) {
		m := openManager(t, t.TempDir())
		p := mustCreate(t, m, "d", 0, testTopicID, cfg)
		return m, p
	}
	am, a := open()
	defer am.Close()
	bm, b := open()
	defer bm.Close()

	// Epoch 0: A leads, B follows.
	var seq int32
	workload(t, a, rng, 20, 0, 5, &seq)
	replicate(t, a, b, rng)
	a.SetHighWatermark(a.LogEndOffset())
	b.SetHighWatermarkFollower(a.HighWatermark())
	committed := a.LogEndOffset()

	// Epoch 1: B leads. A replicates only part of what B writes, including
	// part of one producer's batches.
	workload(t, b, rng, 10, 1, 6, &seq)
	replicate(t, b, a, rng)
	bseq := seq
	bIdem := workload(t, b, rng, 12, 1, 6, &bseq)
	if len(bIdem) == 0 {
		t.Fatal("no producer batches in the divergent part")
	}
	aEnd := a.LogEndOffset()

	// Epoch 2: A leads and the producer retries what B lost, then more.
	for _, raw := range bIdem {
		mustAppend(t, a, raw, 2)
	}
	workload(t, a, rng, 10, 2, 7, &seq)

	if e, _ := b.LatestEpoch(); e != 1 {
		t.Fatalf("B latest epoch %d", e)
	}
	if e, end := a.EndOffsetForEpoch(1); e != 1 || end != aEnd {
		t.Fatalf("A EndOffsetForEpoch(1) = %d, %d; want 1, %d", e, end, aEnd)
	}
	reconcile(t, a, b)
	if b.LogEndOffset() != aEnd {
		t.Fatalf("B truncated to %d, want %d", b.LogEndOffset(), aEnd)
	}
	if b.HighWatermark() != committed {
		t.Fatalf("B HW %d after truncation, want %d", b.HighWatermark(), committed)
	}
	replicate(t, a, b, rng)
	sameReplica(t, a, b)

	// B becomes leader again: retries of the batches it lost (the ones the
	// producer state still remembers) are duplicates at A's offsets.
	for _, raw := range bIdem[max(len(bIdem)-maxCachedBatches, 0):] {
		h, _ := ParseBatchHeader(raw)
		stored := findBatch(t, a.Dir(), h.ProducerID, h.BaseSequence)
		res := mustAppend(t, b, raw, 3)
		if !res.Duplicate || res.BaseOffset != stored.BaseOffset || res.LastOffset != stored.LastOffset() {
			t.Fatalf("retry of seq %d: %+v, stored at %d", h.BaseSequence, res, stored.BaseOffset)
		}
	}
}

// TestReplicaDivergenceUnknownEpoch: the follower led an epoch the new
// leader never saw; the leader answers with the largest epoch below it and
// the follower drops the whole unknown epoch.
func TestReplicaDivergenceUnknownEpoch(t *testing.T) {
	cfg := smallSegments()
	rng := rand.New(rand.NewSource(3))
	am, bm := openManager(t, t.TempDir()), openManager(t, t.TempDir())
	defer am.Close()
	defer bm.Close()
	a, _ := am.CreatePartition("d", 0, testTopicID, cfg)
	b, _ := bm.CreatePartition("d", 0, testTopicID, cfg)
	var seq int32
	workload(t, a, rng, 15, 0, 5, &seq)
	replicate(t, a, b, rng)
	x := a.LogEndOffset()
	workload(t, b, rng, 8, 1, 6, &seq) // A never gets these
	workload(t, a, rng, 8, 2, 7, &seq)
	if e, end := a.EndOffsetForEpoch(1); e != 0 || end != x {
		t.Fatalf("A EndOffsetForEpoch(1) = %d, %d; want 0, %d", e, end, x)
	}
	reconcile(t, a, b)
	if b.LogEndOffset() != x {
		t.Fatalf("B at %d, want %d", b.LogEndOffset(), x)
	}
	replicate(t, a, b, rng)
	sameReplica(t, a, b)
}

// buildSource writes a closed log with several segments, epochs, producer
// batches and compression, and returns its dir and batches.
func buildSource(t *testing.T, cfg PartitionConfig) (string, []storedBatch) {
	dir := t.TempDir()
	m := openManager(t, dir)
	p := mustCreate(t, m, "tr", 0, testTopicID, cfg)
	rng := rand.New(rand.NewSource(4))
	var seq int32
	for _, e := range []int32{0, 1, 1, 4, 6} {
		workload(t, p, rng, 8, e, 9, &seq)
	}
	p.SetHighWatermark(p.LogEndOffset())
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var all []storedBatch
	bases, _ := scanSegmentFiles(p.Dir())
	for _, base := range bases {
		all = append(all, segmentBatches(t, segmentPath(p.Dir(), base, logSuffix), base)...)
	}
	if len(bases) < 4 {
		t.Fatalf("want several segments, have %d", len(bases))
	}
	return dir, all
}

// expectedEpochs derives the epoch history of a prefix of batches.
func expectedEpochs(bs []storedBatch) []EpochEntry {
	var es []EpochEntry
	for _, b := range bs {
		if e := b.h.PartitionLeaderEpoch; e >= 0 && (len(es) == 0 || e > es[len(es)-1].Epoch) {
			es = append(es, EpochEntry{Epoch: e, Start: b.h.BaseOffset})
		}
	}
	return es
}

// checkPrefix verifies that p holds exactly the batches keep and that what it
// derives from them is what a fresh derivation gives.
func checkPrefix(t *testing.T, p *Partition, keep []storedBatch, leo int64) {
	t.Helper()
	if p.LogEndOffset() != leo {
		t.Fatalf("LEO %d, want %d", p.LogEndOffset(), leo)
	}
	if p.HighWatermark() > leo || p.RecoveryPoint() > leo {
		t.Fatalf("HW %d, recovery point %d above LEO %d", p.HighWatermark(), p.RecoveryPoint(), leo)
	}
	expectBatches(t, p, keep)
	checkIndexes(t, p)
	if es, want := p.LeaderEpochs(), expectedEpochs(keep); !reflect.DeepEqual(es, want) && !(len(es) == 0 && len(want) == 0) {
		t.Fatalf("epochs %v, want %v", es, want)
	}
	ps := newProducerState()
	wantTs, wantTsOff := int64(-1), int64(-1)
	for _, b := range keep {
		ps.update(b.h, nil)
		if b.h.MaxTimestamp > wantTs {
			wantTs = b.h.MaxTimestamp
			_, recs, err := DecodeRecords(b.b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Timestamp == wantTs {
					wantTsOff = r.Offset
					break
				}
			}
		}
	}
	if !bytes.Equal(producerBytes(p), ps.encode()) {
		t.Fatal("producer state differs from a rebuild")
	}
	if off, ts := p.MaxTimestamp(); off != wantTsOff || ts != wantTs {
		t.Fatalf("MaxTimestamp %d@%d, want %d@%d", ts, off, wantTs, wantTsOff)
	}
	// Every segment's derived state equals a full scan of its file.
	p.mu.RLock()
	for _, s := range p.segs {
		data := make([]byte, s.size)
		if _, err := s.log.ReadAt(data, 0); err != nil {
			t.Fatal(err)
		}
		maxTs, maxTsBase, next, last := int64(-1), int64(-1), s.base, int64(-1)
		for len(data) > 0 {
			h := ParseBatchHeader2(data)
			if h.MaxTimestamp > maxTs {
				maxTs, maxTsBase = h.MaxTimestamp, h.BaseOffset
			}
			next, last = h.LastOffset()+1, h.BaseOffset
			data = data[h.Size():]
		}
		if s.maxTs != maxTs || s.maxTsBase != maxTsBase || s.next != next || s.lastBatchBase != last {
			t.Errorf("segment %d: maxTs %d@%d next %d last %d, want %d@%d %d %d", s.base, s.maxTs, s.maxTsBase, s.next, s.lastBatchBase, maxTs, maxTsBase, next, last)
		}
	}
	p.mu.RUnlock()
	for _, ts := range []int64{0, 1200, 1500, 2000, 2500, 3000, 1 << 40} {
		wantOff, wantFound := int64(-1), false
	search:
		for _, b := range keep {
			_, recs, _ := DecodeRecords(b.b)
			for _, r := range recs {
				if r.Timestamp >= ts {
					wantOff, wantFound = r.Offset, true
					break search
				}
			}
		}
		if off, _, found, err := p.OffsetForTimestamp(ts); err != nil || found != wantFound || off != wantOff {
			t.Fatalf("OffsetForTimestamp(%d) = %d %v %v, want %d %v", ts, off, found, err, wantOff, wantFound)
		}
	}
}

// truncated returns the batches kept by truncating to offset and the LEO.
func truncated(all []storedBatch, offset int64) ([]storedBatch, int64) {
	var keep []storedBatch
	leo := int64(0)
	for _, b := range all {
		if b.h.LastOffset() < offset {
			keep = append(keep, b)
			leo = b.h.LastOffset() + 1
		}
	}
	return keep, leo
}

func TestTruncateToEveryOffset(t *testing.T) {
	cfg := smallSegments()
	src, all := buildSource(t, cfg)
	end := all[len(all)-1].h.LastOffset() + 1
	for offset := int64(0); offset <= end; offset++ {
		keep, leo := truncated(all, offset)
		dir := t.TempDir()
		copyTree(t, src, dir)
		m := openManager(t, dir)
		p := m.Partition("tr", 0)
		p.SetConfig(cfg)
		got, err := p.TruncateTo(offset)
		if err != nil || got != leo {
			t.Fatalf("TruncateTo(%d) = %d, %v; want %d", offset, got, err, leo)
		}
		if p.HighWatermark() != leo {
			t.Fatalf("TruncateTo(%d): HW %d, want %d", offset, p.HighWatermark(), leo)
		}
		checkPrefix(t, p, keep, leo)

		// Appends continue at the new end, in a new epoch; a retry of a kept
		// producer batch is a duplicate, a truncated one is not remembered.
		extra := simpleBatch(t, 2, 5000, "after")
		if res := mustAppend(t, p, extra, 9); res.BaseOffset != leo {
			t.Fatalf("append after TruncateTo(%d) at %d", offset, res.BaseOffset)
		}
		if e, start := p.LatestEpoch(); e != 9 || start != leo {
			t.Fatalf("latest epoch %d@%d after append, want 9@%d", e, start, leo)
		}
		stored := append(append([]storedBatch(nil), keep...), storedBatch{h: mustHeader(t, p, leo), b: readOne(t, p, leo)})
		if offset%3 == 0 {
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			m.crash()
		}
		m = openManager(t, dir)
		p = m.Partition("tr", 0)
		p.SetConfig(cfg)
		checkPrefix(t, p, stored, leo+2)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func mustHeader(t *testing.T, p *Partition, off int64) BatchHeader {
	h, err := ParseBatchHeader(readOne(t, p, off))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readOne(t *testing.T, p *Partition, off int64) []byte {
	t.Helper()
	res, err := p.Read(off, 1, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	return splitBatches(t, res.Data)[0]
}

// TestTruncateCrashMidway builds each state a crash can leave on disk
// during TruncateTo and checks that the log opens consistent (a prefix of
// the old log with matching epochs and producer state) and that redoing the
// truncation reaches the target.
func TestTruncateCrashMidway(t *testing.T) {
	cfg := smallSegments()
	src, all := buildSource(t, cfg)
	end := all[len(all)-1].h.LastOffset() + 1
	targets := []int64{all[3].h.BaseOffset + 1, end / 2, end - 3}
	for _, offset := range targets {
		keep, leo := truncated(all, offset)
		cutSeg := keep[len(keep)-1].seg
		bases, _ := scanSegmentFiles(filepath.Join(src, "tr-0"))
		stages := map[string]func(dir string){
			"checkpoint lowered": func(dir string) {
				ck := offsetsCheckpoint{LogStartOffset: 0, RecoveryPoint: leo, HighWatermark: leo}
				if err := writeFileAtomic(filepath.Join(dir, offsetsCheckpointFile), ck.encode()); err != nil {
					t.Fatal(err)
				}
			},
			"some segments removed": func(dir string) {
				if last := bases[len(bases)-1]; last > cutSeg {
					removeSegmentFiles(dir, last)
				}
			},
			"segments removed": func(dir string) {
				for _, b := range bases {
					if b > cutSeg {
						removeSegmentFiles(dir, b)
					}
				}
			},
			"segment cut": func(dir string) {
				for _, b := range bases {
					if b > cutSeg {
						removeSegmentFiles(dir, b)
					}
				}
				size := int64(0)
				for _, b := range keep {
					if b.seg == cutSeg {
						size = b.pos + int64(len(b.b))
					}
				}
				if err := os.Truncate(segmentPath(dir, cutSeg, logSuffix), size); err != nil {
					t.Fatal(err)
				}
			},
		}
		for name, stage := range stages {
			t.Run(fmt.Sprint(offset, " ", name), func(t *testing.T) {
				dir := t.TempDir()
				copyTree(t, src, dir)
				pdir := filepath.Join(dir, "tr-0")
				stage(pdir)
				// A crash: no clean shutdown marker.
				if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
					t.Fatal(err)
				}
				m := openManager(t, dir)
				defer m.Close()
				p := m.Partition("tr", 0)
				p.SetConfig(cfg)
				now, nowLEO := truncatedAt(all, p.LogEndOffset())
				if nowLEO != p.LogEndOffset() || nowLEO < leo {
					t.Fatalf("reopened at LEO %d, not a batch end at or above %d", p.LogEndOffset(), leo)
				}
				checkPrefix(t, p, now, nowLEO)
				if got, err := p.TruncateTo(min(offset, p.LogEndOffset())); err != nil || got != leo {
					t.Fatalf("TruncateTo(%d) again: %d %v", offset, got, err)
				}
				checkPrefix(t, p, keep, leo)
			})
		}
	}
}

// leaderAndFollower creates partition 0 of topic in two managers of their
// own, one to lead and one to follow; both are closed when the test ends.
func leaderAndFollower(t *testing.T, topic string, cfg PartitionConfig) (leader, follower *Partition) {
	t.Helper()
	var ps [2]*Partition
	for i := range ps {
		m := openManager(t, t.TempDir())
		t.Cleanup(func() { m.Close() })
		ps[i] = mustCreate(t, m, topic, 0, testTopicID, cfg)
	}
	return ps[0], ps[1]
}

// truncatedAt returns the batches below leo, and leo itself if it is a
// batch end (else -1).
func truncatedAt(all []storedBatch, leo int64) ([]storedBatch, int64) {
	keep, end := truncated(all, leo)
	if end != leo {
		return keep, -1
	}
	return keep, end
}

func TestAppendReplicatedRejects(t *testing.T) {
	cfg := smallSegments()
	leader, follower := leaderAndFollower(t, "x", cfg)
	rng := rand.New(rand.NewSource(5))
	var seq int32
	workload(t, leader, rng, 10, 3, 1, &seq)
	replicate(t, leader, follower, rng)
	workload(t, leader, rng, 10, 4, 1, &seq)
	leo := follower.LogEndOffset()
	res, err := leader.ReadForReplica(leo, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	bs := splitBatches(t, res.Data)
	if len(bs) < 3 {
		t.Fatalf("%d batches", len(bs))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	mutate := func(b []byte, f func([]byte)) []byte {
		b = bytes.Clone(b)
		f(b)
		return b
	}
	withBase := func(b []byte, base int64) []byte {
		return mutate(b, func(b []byte) { patchBatch(b, base, int32(ParseBatchHeader2(b).PartitionLeaderEpoch)) })
	}
	withEpoch := func(b []byte, e int32) []byte {
		return mutate(b, func(b []byte) { patchBatch(b, ParseBatchHeader2(b).BaseOffset, e) })
	}
	h0 := ParseBatchHeader2(bs[0])
	h1 := ParseBatchHeader2(bs[1])
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"gap at start", withBase(bs[0], leo+1), ErrUnexpectedAppendOffset},
		{"behind the log end", withBase(bs[0], leo-1), ErrUnexpectedAppendOffset},
		{"already stored", readOne(t, leader, leo-1), ErrUnexpectedAppendOffset},
		{"gap between batches", cat(bs[0], withBase(bs[1], h1.BaseOffset+1)), ErrUnexpectedAppendOffset},
		{"going backwards", cat(bs[0], bs[1], withBase(bs[2], h0.BaseOffset)), ErrUnexpectedAppendOffset},
		{"bad crc", cat(bs[0], mutate(bs[1], func(b []byte) { b[len(b)-1] ^= 1 })), ErrCorruptMessage},
		{"bad crc first", mutate(bs[0], func(b []byte) { b[offAttributes+1] ^= 0x40 }), ErrCorruptMessage},
		{"bad magic", mutate(bs[0], func(b []byte) { b[offMagic] = 1 }), ErrUnsupportedMagic},
		{"epoch goes back", cat(bs[0], withEpoch(bs[1], h0.PartitionLeaderEpoch-2)), ErrCorruptMessage},
		{"short length", mutate(bs[0], func(b []byte) { b[offLength], b[offLength+1], b[offLength+2], b[offLength+3] = 0, 0, 0, 5 }), ErrCorruptMessage},
		{"no whole batch", bs[0][:len(bs[0])-1], ErrCorruptMessage},
	}
	before := logFiles(t, follower.Dir(), false)
	epochs := follower.LeaderEpochs()
	prod := producerBytes(follower)
	for _, c := range cases {
		last, err := follower.AppendReplicated(c.data, testNow)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
		if last != leo-1 || follower.LogEndOffset() != leo {
			t.Errorf("%s: returned %d, LEO %d; want %d", c.name, last, follower.LogEndOffset(), leo)
		}
	}
	sameFiles(t, "after rejections", before, logFiles(t, follower.Dir(), false))
	if !reflect.DeepEqual(epochs, follower.LeaderEpochs()) || !bytes.Equal(prod, producerBytes(follower)) {
		t.Fatal("rejected appends changed the epochs or the producer state")
	}
	// Empty input is no progress and no error; the real data then applies.
	if last, err := follower.AppendReplicated(nil, testNow); err != nil || last != leo-1 {
		t.Fatalf("empty append: %d %v", last, err)
	}
	replicate(t, leader, follower, rng)
	sameReplica(t, leader, follower)
}

// ParseBatchHeader2 parses a header known to be valid.
func ParseBatchHeader2(b []byte) BatchHeader {
	h, err := ParseBatchHeader(b)
	if err != nil {
		panic(err)
	}
	return h
}

// readGaps reads every batch of a log that may have offset gaps.
func readGaps(t *testing.T, p *Partition) [][]byte {
	t.Helper()
	var out [][]byte
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		res, err := p.ReadForReplica(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		b := splitBatches(t, res.Data)[0]
		out = append(out, b)
		off = ParseBatchHeader2(b).LastOffset() + 1
	}
	return out
}

// TestAppendReplicatedCompactedGaps: a compacted leader's log has offset
// gaps; a follower of a compacted topic accepts them.
func TestAppendReplicatedCompactedGaps(t *testing.T) {
	cfg := compactConfig()
	leader, follower := leaderAndFollower(t, "c", cfg)
	for i := range 60 {
		mustAppend(t, leader, kvBatch(t, int64(1000+i), CompressionNone, kvs(k(fmt.Sprint("key", i%3), fmt.Sprint(i)))), 1)
	}
	leader.SetHighWatermark(leader.LogEndOffset())
	mustCompact(t, leader)
	rng := rand.New(rand.NewSource(6))
	replicate(t, leader, follower, rng)
	if got, want := consume(t, follower), consume(t, leader); !reflect.DeepEqual(got, want) {
		t.Fatalf("follower records differ:\n%v\n%v", got, want)
	}
	x := readGaps(t, leader)
	y := readGaps(t, follower)
	if !reflect.DeepEqual(x, y) || len(x) >= 60 {
		t.Fatalf("follower has %d batches, leader %d (compaction should have dropped some)", len(y), len(x))
	}
	// A plain topic rejects the same gap.
	dm := openManager(t, t.TempDir())
	defer dm.Close()
	plain, _ := dm.CreatePartition("p", 0, testTopicID, DefaultPartitionConfig())
	var data []byte
	for _, b := range x {
		data = append(data, b...)
	}
	if _, err := plain.AppendReplicated(data, testNow); !errors.Is(err, ErrUnexpectedAppendOffset) {
		t.Fatalf("plain topic accepted gaps: %v", err)
	}
}

func TestFollowerHighWatermarkAndEpochs(t *testing.T) {
	m, p, _ := newTestPartition(t, DefaultPartitionConfig())
	defer m.Close()
	if e, o := p.LatestEpoch(); e != -1 || o != -1 {
		t.Fatalf("empty LatestEpoch %d %d", e, o)
	}
	mustAppend(t, p, simpleBatch(t, 3, 0, "a"), 2) // epoch 2 at 0
	mustAppend(t, p, simpleBatch(t, 3, 0, "a"), 2)
	mustAppend(t, p, simpleBatch(t, 3, 0, "a"), 5) // epoch 5 at 6
	mustAppend(t, p, simpleBatch(t, 3, 0, "a"), 9) // epoch 9 at 9
	if e, o := p.LatestEpoch(); e != 9 || o != 9 {
		t.Fatalf("LatestEpoch %d %d", e, o)
	}
	// OffsetForLeaderEpoch: the largest epoch <= the requested one, ending
	// where the next higher epoch starts, or at the LEO for the latest.
	for _, c := range []struct {
		ask, e int32
		off    int64
	}{{-1, -1, -1}, {0, 0, 0}, {1, 1, 0}, {2, 2, 6}, {3, 2, 6}, {4, 2, 6}, {5, 5, 9}, {8, 5, 9}, {9, 9, 12}, {10, -1, -1}} {
		if e, o := p.EndOffsetForEpoch(c.ask); e != c.e || o != c.off {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.ask, e, o, c.e, c.off)
		}
	}
	// A follower's HW follows the leader's, down as well as up, clamped to
	// the log.
	ch := p.Wait()
	p.SetHighWatermarkFollower(8)
	select {
	case <-ch:
	default:
		t.Fatal("waiters not woken")
	}
	for _, c := range [][2]int64{{10, 10}, {4, 4}, {100, 12}, {-5, 0}} {
		p.SetHighWatermarkFollower(c[0])
		if hw := p.HighWatermark(); hw != c[1] {
			t.Fatalf("SetHighWatermarkFollower(%d): HW %d, want %d", c[0], hw, c[1])
		}
	}
	p.SetHighWatermark(7)
	// TruncateTo bounds.
	if _, err := p.TruncateTo(13); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("truncate past LEO: %v", err)
	}
	if got, err := p.TruncateTo(12); err != nil || got != 12 || p.LogEndOffset() != 12 {
		t.Fatalf("truncate at LEO: %d %v", got, err)
	}
	if _, err := p.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if _, err := p.TruncateTo(3); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("truncate below log start: %v", err)
	}
	// Inside the batch holding the log start: the log start comes down to
	// the batch boundary with the LEO.
	if got, err := p.TruncateTo(4); err != nil || got != 3 || p.LogStartOffset() != 3 || p.HighWatermark() != 3 {
		t.Fatalf("truncate at log start: %d %v (start %d, HW %d)", got, err, p.LogStartOffset(), p.HighWatermark())
	}
	// DeleteRecordsBefore moved epoch 2's start to 4, now beyond the end.
	if got := p.LeaderEpochs(); len(got) != 0 {
		t.Fatalf("epochs %v", got)
	}
	if res := mustAppend(t, p, simpleBatch(t, 1, 0, "b"), 11); res.BaseOffset != 3 {
		t.Fatalf("append after truncation at %d", res.BaseOffset)
	}
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	cfg := smallSegments()
	lm, fm := openManager(t, t.TempDir()), openManager(t, t.TempDir())
	defer lm.Close()
	leader, _ := lm.CreatePartition("f", 0, testTopicID, cfg)
	fdir := t.TempDir()
	fm = openManager(t, fdir)
	follower, _ := fm.CreatePartition("f", 0, testTopicID, cfg)
	rng := rand.New(rand.NewSource(7))
	var seq int32
	workload(t, leader, rng, 10, 0, 3, &seq)
	replicate(t, leader, follower, rng)
	workload(t, leader, rng, 40, 1, 3, &seq)
	leader.SetHighWatermark(leader.LogEndOffset())
	// Retention on the leader passes the follower's LEO.
	start, err := leader.DeleteRecordsBefore(leader.LogEndOffset() - 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.ReadForReplica(follower.LogEndOffset(), 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("leader read below its start: %v", err)
	}
	if err := follower.TruncateFullyAndStartAt(start); err != nil {
		t.Fatal(err)
	}
	if follower.LogStartOffset() != start || follower.LogEndOffset() != start || follower.HighWatermark() != start || len(follower.LeaderEpochs()) != 0 {
		t.Fatalf("after reset: [%d, %d) HW %d epochs %v", follower.LogStartOffset(), follower.LogEndOffset(), follower.HighWatermark(), follower.LeaderEpochs())
	}
	// The leader's batch holding its log start begins below it: the
	// append is refused, and the follower restarts at that batch, as Kafka's
	// followers do.
	first, err := leader.ReadForReplica(start, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := ParseBatchHeader2(first.Data)
	if h.BaseOffset == start {
		t.Fatal("want a log start inside a batch")
	}
	if _, err := follower.AppendReplicated(first.Data, testNow); !errors.Is(err, ErrUnexpectedAppendOffset) {
		t.Fatalf("append below the LEO: %v", err)
	}
	if err := follower.TruncateFullyAndStartAt(h.BaseOffset); err != nil {
		t.Fatal(err)
	}
	if last, err := follower.AppendReplicated(first.Data, testNow); err != nil || last != h.LastOffset() {
		t.Fatalf("append after restart: %d %v", last, err)
	}
	replicate(t, leader, follower, rng)
	if x, y := readAll(t, leader, start), readAll(t, follower, start); !reflect.DeepEqual(x, y) {
		t.Fatal("follower differs after reset")
	}
	leo := follower.LogEndOffset()
	fm.crash()
	fm = openManager(t, fdir)
	defer fm.Close()
	follower = fm.Partition("f", 0)
	if follower.LogEndOffset() != leo || follower.LogStartOffset() != h.BaseOffset {
		t.Fatalf("after crash: [%d, %d), want [%d, %d)", follower.LogStartOffset(), follower.LogEndOffset(), h.BaseOffset, leo)
	}
	if got := follower.LeaderEpochs(); !reflect.DeepEqual(got, []EpochEntry{{1, h.BaseOffset}}) {
		t.Fatalf("epochs %v", got)
	}
}

// TestTruncateConcurrentReaders truncates and re-replicates while readers
// fetch and look up timestamps; run with -race.
func TestTruncateConcurrentReaders(t *testing.T) {
	cfg := smallSegments()
	leader, follower := leaderAndFollower(t, "c", cfg)
	rng := rand.New(rand.NewSource(8))
	var seq int32
	workload(t, leader, rng, 60, 0, 3, &seq)
	replicate(t, leader, follower, rng)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				leo := follower.LogEndOffset()
				if leo == 0 {
					continue
				}
				off := r.Int63n(leo)
				res, err := follower.ReadForReplica(off, int32(1+r.Intn(2000)))
				if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					t.Errorf("read %d: %v", off, err)
					return
				}
				for rest := res.Data; len(rest) > 0; {
					h, err := ParseBatchHeader(rest)
					if err != nil || h.Size() > len(rest) || !VerifyBatchCRC(rest) {
						t.Errorf("read %d returned a damaged batch", off)
						return
					}
					rest = rest[h.Size():]
				}
				if _, _, _, err := follower.OffsetForTimestamp(1000 + r.Int63n(600)); err != nil {
					t.Errorf("OffsetForTimestamp: %v", err)
					return
				}
			}
		}()
	}
	for range 30 {
		target := rng.Int63n(follower.LogEndOffset() + 1)
		if _, err := follower.TruncateTo(target); err != nil {
			t.Fatal(err)
		}
		replicate(t, leader, follower, rng)
	}
	close(stop)
	wg.Wait()
	sameReplica(t, leader, follower)
}

// TestTruncateCompactedTopic: truncation lowers the cleaner checkpoint, and
// a truncation racing a cleaning pass leaves a consistent log.
func TestTruncateCompactedTopic(t *testing.T) {
	cfg := compactConfig()
	for round := range 6 {
		dir := t.TempDir()
		m := openManager(t, dir)
		p, _ := m.CreatePartition("c", 0, testTopicID, cfg)
		for i := range 120 {
			mustAppend(t, p, kvBatch(t, int64(1000+i), CompressionNone, kvs(k(fmt.Sprint("key", i%7), fmt.Sprint(i)))), 1)
		}
		p.SetHighWatermark(p.LogEndOffset())
		target := p.LogEndOffset() / 2
		if round == 0 {
			mustCompact(t, p)
			if p.FirstDirtyOffset() <= target {
				t.Fatalf("first dirty %d, want above %d", p.FirstDirtyOffset(), target)
			}
		}
		var cleaned chan error
		if round > 0 {
			cleaned = make(chan error, 1)
			cleaning := p // p is reassigned after the simulated crash below
			go func() { cleaned <- cleaning.CompactNow(testNow) }()
			for range round * 50 {
				p.LogEndOffset() // let the pass get going
			}
		}
		leo, err := p.TruncateTo(target)
		if err != nil {
			t.Fatal(err)
		}
		if p.FirstDirtyOffset() > leo {
			t.Fatalf("first dirty %d above the new LEO %d", p.FirstDirtyOffset(), leo)
		}
		if c, err := readCleanerCheckpoint(p.Dir()); err == nil && c.firstDirty > leo {
			t.Fatalf("cleaner checkpoint %d above the new LEO %d", c.firstDirty, leo)
		}
		if p.LogEndOffset() != leo || p.HighWatermark() != leo {
			t.Fatalf("LEO %d HW %d, want %d", p.LogEndOffset(), p.HighWatermark(), leo)
		}
		if cleaned != nil {
			// The pass finished before the truncation, was abandoned by
			// it, or ran after it; none of these may fail.
			if err := <-cleaned; err != nil {
				t.Fatal(err)
			}
		}
		if p.LogEndOffset() != leo {
			t.Fatalf("LEO %d after the cleaning pass, want %d", p.LogEndOffset(), leo)
		}
		recs := consume(t, p)
		for _, r := range recs {
			if r.off >= leo {
				t.Fatalf("record %d survived truncation to %d", r.off, leo)
			}
		}
		checkIndexes(t, p)
		m.crash()
		m = openManager(t, dir)
		p = m.Partition("c", 0)
		p.SetConfig(cfg)
		if p.LogEndOffset() != leo || !reflect.DeepEqual(consume(t, p), recs) {
			t.Fatalf("after a crash: LEO %d (want %d) or records differ", p.LogEndOffset(), leo)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTruncateFailureTakesPartitionOffline: a file operation failing
// mid-truncation takes the partition offline, the dir gets no clean shutdown
// marker, and the next Open recovers a consistent log.
func TestTruncateFailureTakesPartitionOffline(t *testing.T) {
	cfg := smallSegments()
	src, all := buildSource(t, cfg)
	dir := t.TempDir()
	copyTree(t, src, dir)
	m := openManager(t, dir)
	p := m.Partition("tr", 0)
	p.SetConfig(cfg)
	p.mu.RLock()
	last := p.segs[len(p.segs)-1]
	p.mu.RUnlock()
	_ = last.log.Close() // its removal will fail
	offset := all[5].h.BaseOffset
	if _, err := p.TruncateTo(offset); !errors.Is(err, ErrStorage) {
		t.Fatalf("TruncateTo with a failing removal: %v", err)
	}
	if _, err := p.Read(0, 100, math.MaxInt64, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read from an offline partition: %v", err)
	}
	if _, err := p.AppendReplicated(nil, testNow); !errors.Is(err, ErrClosed) {
		t.Fatalf("append to an offline partition: %v", err)
	}
	if err := m.Close(); err == nil {
		t.Fatal("Close reported success with an offline partition")
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatalf("clean shutdown marker written: %v", err)
	}
	m = openManager(t, dir)
	defer m.Close()
	p = m.Partition("tr", 0)
	p.SetConfig(cfg)
	keep, leo := truncatedAt(all, p.LogEndOffset())
	if leo < 0 {
		t.Fatalf("reopened at LEO %d, not a batch end", p.LogEndOffset())
	}
	checkPrefix(t, p, keep, leo)
	want, wantLEO := truncated(all, offset)
	if got, err := p.TruncateTo(offset); err != nil || got != wantLEO {
		t.Fatalf("TruncateTo again: %d %v", got, err)
	}
	checkPrefix(t, p, want, wantLEO)
}
