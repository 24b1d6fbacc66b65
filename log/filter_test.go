package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// producerBatch builds a batch of n records at offsets 100 on, in codec, from
// producer 7 (epoch 1, first sequence 3): record i has key k(i%keys), value
// v(i) and timestamp 1000+i.
func producerBatch(t *testing.T, codec int8, n, keys int) []byte {
	t.Helper()
	var recs []testRec
	for i := range n {
		recs = append(recs, testRec{key: fmt.Appendf(nil, "k%d", i%keys), value: fmt.Appendf(nil, "v%d", i), tsDelta: int64(i)})
	}
	b := buildBatch(t, batchSpec{recs: recs, baseTs: 1000, codec: codec, pid: 7, epoch: 1, seq: 3})
	patchBatch(b, 100, 0)
	return b
}

// TestFilterBatch checks that a filtered batch keeps exactly the chosen
// records, at their offsets with their keys, values and timestamps, in the
// original codec, with a valid CRC and the original offset span.
func TestFilterBatch(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			b := producerBatch(t, codec, 10, 3)
			orig, _ := ParseBatchHeader(b)

			odd := func(o int64) bool { return o%2 == 1 }
			out, err := FilterBatch(b, odd)
			if err != nil {
				t.Fatal(err)
			}
			if !VerifyBatchCRC(out) {
				t.Fatal("filtered batch has a bad CRC")
			}
			h, got, err := DecodeRecords(out)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 100 || h.LastOffset() != orig.LastOffset() || h.Compression() != codec ||
				h.ProducerID != 7 || h.BaseSequence != 3 || h.NumRecords != 5 || h.MaxTimestamp != orig.MaxTimestamp {
				t.Fatalf("header %+v, want the original's offsets, codec and producer with 5 records", h)
			}
			if len(got) != 5 {
				t.Fatalf("%d records, want 5", len(got))
			}
			for _, r := range got {
				i := r.Offset - 100
				if !odd(r.Offset) || !bytes.Equal(r.Value, fmt.Appendf(nil, "v%d", i)) ||
					!bytes.Equal(r.Key, fmt.Appendf(nil, "k%d", i%3)) || r.Timestamp != 1000+i {
					t.Fatalf("record %+v does not match offset %d", r, r.Offset)
				}
			}

			if all, err := FilterBatch(b, func(int64) bool { return true }); err != nil || !bytes.Equal(all, b) {
				t.Fatalf("keeping every record changed the batch (err %v)", err)
			}
			if none, err := FilterBatch(b, func(int64) bool { return false }); err != nil || none != nil {
				t.Fatalf("keeping no record gave %d bytes (err %v), want nil", len(none), err)
			}
		})
	}
}

// TestFilterBatchCorrupt checks that a batch that does not decode is an
// error, not a panic.
func TestFilterBatchCorrupt(t *testing.T) {
	b := simpleBatch(t, 3, 0, "x")
	for _, cut := range []int{0, 10, BatchHeaderSize, len(b) - 1} {
		if _, err := FilterBatch(b[:cut], func(int64) bool { return true }); err == nil {
			t.Fatalf("a batch cut to %d bytes filtered without error", cut)
		}
	}
	bad := bytes.Clone(b)
	bad[len(bad)-2] ^= 0xff // inside the last record
	bad[offRecordCount+3] = 9
	if _, err := FilterBatch(bad, func(o int64) bool { return o == 0 }); err == nil {
		t.Fatal("a batch claiming more records than it holds filtered without error")
	}
}

// TestRecordIndexFilter checks that filtering through a batch's record index
// gives the bytes FilterBatch gives, for batches whose offsets follow their
// record order and for compacted ones whose offsets skip, in every codec,
// and that an index is refused for a batch it was not built from.
func TestRecordIndexFilter(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionLZ4} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			b := producerBatch(t, codec, 40, 7)
			compacted, err := FilterBatch(b, func(o int64) bool { return o%3 != 0 })
			if err != nil {
				t.Fatal(err)
			}
			keeps := map[string]func(int64) bool{
				"none":   func(int64) bool { return false },
				"all":    func(int64) bool { return true },
				"odd":    func(o int64) bool { return o%2 == 1 },
				"runs":   func(o int64) bool { return o%10 < 4 },
				"last":   func(o int64) bool { return o == 139 },
				"middle": func(o int64) bool { return o >= 110 && o < 130 },
			}
			for name, batch := range map[string][]byte{"whole": b, "compacted": compacted} {
				x, err := IndexBatch(batch)
				if err != nil {
					t.Fatal(err)
				}
				if name == "compacted" && x.delta == nil {
					t.Fatal("the compacted batch was indexed as if its offsets had no gaps")
				}
				for kname, keep := range keeps {
					want, err := FilterBatch(batch, keep)
					if err != nil {
						t.Fatal(err)
					}
					got, err := x.Filter(batch, keep)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("%s batch, keep %s: indexed filter gave %d bytes (err %v), FilterBatch %d", name, kname, len(got), err, len(want))
					}
					// The same records as offset ranges, reaching past
					// both ends of the batch, in pieces appended after
					// another.
					prefix := [][]byte{[]byte("prefix")}
					pieces, err := x.CutPieces(slices.Clip(prefix), batch, keptRanges(keep, 90, 150))
					if got := bytes.Join(pieces, nil); err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
						t.Fatalf("%s batch, keep %s: CutPieces gave %d bytes (err %v), FilterBatch %d after the prefix", name, kname, len(got), err, len(want))
					}
				}
			}
			x, err := IndexBatch(compacted)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := x.Filter(b, keeps["odd"]); err == nil {
				t.Fatal("an index of another batch filtered without error")
			}
			if _, err := x.CutPieces(nil, b, keptRanges(keeps["odd"], 100, 140)); err == nil {
				t.Fatal("an index of another batch cut without error")
			}
			negative := bytes.Clone(b)
			binary.BigEndian.PutUint32(negative[offRecordCount:], 0xffffffff)
			if _, err := (RecordIndex{}).Filter(negative, keeps["odd"]); err == nil {
				t.Fatal("a batch of -1 records filtered through an empty index without error")
			}
			if _, err := IndexBatch(negative); err == nil {
				t.Fatal("a batch of -1 records was indexed")
			}
			huge := bytes.Clone(b)
			binary.BigEndian.PutUint32(huge[offRecordCount:], 1<<30)
			if _, err := IndexBatch(huge); err == nil {
				t.Fatal("a batch claiming 2^30 records in a few hundred bytes was indexed")
			}
		})
	}
}

// keptRanges returns the offsets in [from, to) that keep reports as
// ascending ranges.
func keptRanges(keep func(int64) bool, from, to int64) []OffsetRange {
	var out []OffsetRange
	for o := from; o < to; o++ {
		if !keep(o) {
			continue
		}
		r := OffsetRange{First: o, Last: o}
		for r.Last+1 < to && keep(r.Last+1) {
			r.Last++
		}
		out = append(out, r)
		o = r.Last
	}
	return out
}

// BenchmarkFilterKeyOrderedBatch cuts a batch of 1,000 1 KiB records down to
// ten scattered ones, as a key-ordered share fetch does with a producer
// batch: by decoding every record (FilterBatch) and through the batch's
// record index, built once, asking about every record (indexed) or finding
// the kept ones by offset (ranges). Compare the ns/op of one run.
func BenchmarkFilterKeyOrderedBatch(b *testing.B) {
	recs := make([]testRec, 1000)
	for i := range recs {
		recs[i] = testRec{key: fmt.Appendf(nil, "k%d", i), value: bytes.Repeat([]byte{'v'}, 1024)}
	}
	batch := buildBatch(b, batchSpec{recs: recs, baseTs: 1000})
	keep := func(o int64) bool { return o%100 == 7 }
	b.Run("decode", func(b *testing.B) {
		for range b.N {
			if _, err := FilterBatch(batch, keep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("indexed", func(b *testing.B) {
		x, err := IndexBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			if _, err := x.Filter(batch, keep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ranges", func(b *testing.B) {
		x, err := IndexBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		every100th := keptRanges(keep, 0, 1000)
		for range b.N {
			pieces, err := x.CutPieces(nil, batch, every100th)
			if err != nil {
				b.Fatal(err)
			}
			_ = bytes.Join(pieces, nil)
		}
	})
}

// responseSink keeps BenchmarkKeyOrderedResponse's buffers alive.
var responseSink []byte

// BenchmarkKeyOrderedResponse copies what a key-ordered share fetch sends
// into one buffer: four batches of 1,000 1 KiB records cut down to 16
// scattered records each (about 64 KiB), by bytes.Join of the cuts' pieces
// as the share runtime does (join), and, for comparison, by appending them
// to a buffer made for them up front (made), which the runtime clears
// first, as it is past the size of small objects. Compare the ns/op of one
// run.
func BenchmarkKeyOrderedResponse(b *testing.B) {
	recs := make([]testRec, 1000)
	for i := range recs {
		recs[i] = testRec{key: fmt.Appendf(nil, "k%d", i), value: bytes.Repeat([]byte{'v'}, 1024)}
	}
	batch := buildBatch(b, batchSpec{recs: recs, baseTs: 1000})
	x, err := IndexBatch(batch)
	if err != nil {
		b.Fatal(err)
	}
	ranges := keptRanges(func(o int64) bool { return o%63 == 5 }, 0, 1000)
	var pieces [][]byte
	for range 4 {
		if pieces, err = x.CutPieces(pieces, batch, ranges); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("join", func(b *testing.B) {
		for b.Loop() {
			responseSink = bytes.Join(pieces, nil)
		}
	})
	b.Run("made", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for _, p := range pieces {
				n += len(p)
			}
			buf := make([]byte, 0, n)
			for _, p := range pieces {
				buf = append(buf, p...)
			}
			responseSink = buf
		}
	})
}

// TestIndexBatchKeys checks that indexing with keys hands every record's
// offset and key as DecodeRecords reads them (null keys as nil), for whole
// and compacted batches, and builds the same index as IndexBatch.
func TestIndexBatchKeys(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionLZ4} {
		var recs []testRec
		for i := range 30 {
			r := testRec{value: fmt.Appendf(nil, "v%d", i)}
			if i%4 != 0 {
				r.key = fmt.Appendf(nil, "key-%d", i%5)
			}
			recs = append(recs, r)
		}
		b := buildBatch(t, batchSpec{recs: recs, baseTs: 1000, codec: codec})
		patchBatch(b, 100, 0)
		compacted, err := FilterBatch(b, func(o int64) bool { return o%3 != 0 })
		if err != nil {
			t.Fatal(err)
		}
		for name, batch := range map[string][]byte{"whole": b, "compacted": compacted} {
			_, want, err := DecodeRecords(batch)
			if err != nil {
				t.Fatal(err)
			}
			var got []Record
			x, err := IndexBatchKeys(batch, func(o int64, k []byte) { got = append(got, Record{Offset: o, Key: k}) })
			if err != nil {
				t.Fatalf("codec %d, %s: %v", codec, name, err)
			}
			if len(got) != len(want) {
				t.Fatalf("codec %d, %s: %d keys handed, want %d", codec, name, len(got), len(want))
			}
			for i := range want {
				if got[i].Offset != want[i].Offset || !bytes.Equal(got[i].Key, want[i].Key) || (got[i].Key == nil) != (want[i].Key == nil) {
					t.Fatalf("codec %d, %s: record %d: offset %d key %q, want %d %q", codec, name, i, got[i].Offset, got[i].Key, want[i].Offset, want[i].Key)
				}
			}
			plain, err := IndexBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.pos, plain.pos) || !slices.Equal(x.delta, plain.delta) {
				t.Fatalf("codec %d, %s: index with keys differs from IndexBatch's", codec, name)
			}
		}
	}
}
