package log

import (
	"bytes"
	"errors"
	"math"
	"os"
	"testing"
)

// sliceBytes reads what a slice covers, as a send from the file would.
func sliceBytes(t *testing.T, fs *FileSlice) []byte {
	t.Helper()
	if fs.Size == 0 {
		return nil
	}
	b := make([]byte, fs.Size)
	if _, err := fs.File().ReadAt(b, fs.Pos); err != nil {
		t.Fatal(err)
	}
	return b
}

// recordsIn sums the batches' record counts.
func recordsIn(t *testing.T, data []byte) int64 {
	n := int64(0)
	for _, b := range splitBatches(t, data) {
		h, _ := ParseBatchHeader(b)
		n += int64(h.NumRecords)
	}
	return n
}

// A slice covers exactly the bytes Read returns, whatever the offset, byte
// budget and bound (HW for a consumer, LEO for a follower), across
// segments and index entries.
func TestReadSliceMatchesRead(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes, cfg.IndexIntervalBytes = 3000, 200
	m, p, _ := newTestPartition(t, cfg)
	defer m.Close()
	for i := range 60 {
		mustAppend(t, p, simpleBatch(t, 1+i%7, int64(1000+i), string(bytes.Repeat([]byte("x"), i%5*40))), 1)
	}
	p.SetHighWatermark(p.LogEndOffset() - 20)
	for off := int64(0); off <= p.LogEndOffset(); off++ {
		for _, maxBytes := range []int32{0, 1, 90, 250, 700, 2000, 1 << 20} {
			for _, minOne := range []bool{false, true} {
				want, err := p.ReadIsolated(off, maxBytes, math.MaxInt64, minOne, ReadUncommitted)
				res, fs, serr := p.ReadSlice(off, maxBytes, minOne, false)
				check(t, "consumer", off, maxBytes, want, err, res, &fs, serr)
				want, err = p.ReadForReplica(off, maxBytes)
				if minOne {
					_, fs, serr = p.ReadSlice(off, maxBytes, true, true)
					check(t, "follower", off, maxBytes, want, err, res, &fs, serr)
				}
			}
		}
	}
}

func check(t *testing.T, who string, off int64, maxBytes int32, want ReadResult, err error, res ReadResult, fs *FileSlice, serr error) {
	t.Helper()
	defer fs.Release()
	if !errors.Is(serr, err) && (err == nil || serr == nil) {
		t.Fatalf("%s at %d, %d bytes: errors %v and %v", who, off, maxBytes, err, serr)
	}
	if err != nil {
		return
	}
	got := sliceBytes(t, fs)
	if !bytes.Equal(got, want.Data) {
		t.Fatalf("%s at %d, %d bytes: slice has %d bytes, read %d", who, off, maxBytes, len(got), len(want.Data))
	}
	if res.HighWatermark != want.HighWatermark || res.LogStartOffset != want.LogStartOffset || res.LastStableOffset != want.LastStableOffset {
		t.Fatalf("%s at %d: offsets %+v, read %+v", who, off, res, want)
	}
	if n := recordsIn(t, want.Data); fs.Records != n {
		t.Fatalf("%s at %d, %d bytes: %d records, read %d", who, off, maxBytes, fs.Records, n)
	}
}

// A held slice outlives its segment: deleting it (DeleteRecords, as
// retention does) and closing the log leave the file readable until the
// slice is released.
func TestFileSliceOutlivesSegment(t *testing.T) {
	cfg := DefaultPartitionConfig()
	cfg.SegmentBytes = 1000
	m, p, _ := newTestPartition(t, cfg)
	for i := range 20 {
		mustAppend(t, p, simpleBatch(t, 5, int64(1000+i), "v"), 1)
	}
	p.SetHighWatermark(p.LogEndOffset())
	want, err := p.Read(0, 1<<20, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	_, fs, err := p.ReadSlice(0, 1<<20, true, false)
	if err != nil || fs.Size == 0 {
		t.Fatalf("slice of %d bytes: %v", fs.Size, err)
	}
	path := fs.File().Name()
	if _, err := p.DeleteRecordsBefore(p.HighWatermark()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("segment file still there: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sliceBytes(t, &fs); !bytes.Equal(got, want.Data) {
		t.Fatal("a deleted segment's slice reads other bytes")
	}
	f := fs.File()
	fs.Release()
	fs.Release()
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file not closed by the last release: %v", err)
	}
}
