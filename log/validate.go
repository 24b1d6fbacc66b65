package log

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Record-level validation of a produced batch, for every codec.
//
// A batch is stored exactly as the producer sent it, so whatever is accepted
// here is what every consumer, follower and share group will later decode.
// A compressed payload that does not inflate, or inflates to records that do
// not parse, would be acknowledged and then fail every fetch of the
// partition forever; Kafka decompresses on produce for the same reason.
//
// The walk is single-pass and streaming: the payload is inflated through a
// pooled decoder into a small pooled buffer and the records are checked as
// the bytes come out, so memory does not grow with the inflated size. The
// work is bounded by maxValidatedInflation: a batch whose records claim more
// inflated bytes than that is refused before they are read.

// maxValidatedInflation bounds the inflated record bytes of one produced
// batch. It matches what the log is willing to decode later (DecodeRecords,
// compaction), so nothing accepted here is refused on the read side.
func maxValidatedInflation() int64 { return int64(MaxDecompressedBatchBytes) }

// maxZstdWindow is the largest zstd window a produced batch may declare: the
// 8 MiB the zstd format recommends every decoder support. Producers at
// their default levels use 2 MiB or less; a frame declaring more would make
// the decoder allocate that much history for a few bytes of input.
const maxZstdWindow = 8 << 20

// snappyMaxExpansion bounds how far a raw snappy block can inflate: its
// densest element is a 3-byte copy of 64 bytes. A block header claiming more
// is corrupt, and refusing it before decoding keeps a forged length from
// sizing the output buffer.
const snappyMaxExpansion = 22

// recordSource is what the record walker reads a streamed (inflating)
// batch body from.
type recordSource interface {
	io.ByteReader
	// Discard skips n bytes (key, value and header contents are not
	// inspected, only their framing).
	Discard(n int) (int, error)
}

// recordWalker checks the framing of a batch's records as they stream out of
// a recordSource. Bodies already in memory (uncompressed, snappy) are checked
// by checkRecords over the slice instead, twice as fast; both apply the
// framing rules of recReader.next.
type recordWalker struct {
	src recordSource
	// budget is how many more inflated bytes the records may claim.
	budget int64
	// left is how many bytes of the current record are unread.
	left int64
	// deltas collects the records' timestamp deltas.
	deltas deltaRange
}

// deltaRange is the smallest and largest timestamp delta of a batch's
// records, found while its records are validated, so the topic's timestamp
// bounds are checked without inflating the batch a second time. known is
// false for a batch whose records were not walked (one the broker encoded).
type deltaRange struct {
	min, max int64
	known    bool
}

func newDeltaRange() deltaRange {
	return deltaRange{min: math.MaxInt64, max: math.MinInt64, known: true}
}

func (r *deltaRange) add(d int64) {
	r.min = min(r.min, d)
	r.max = max(r.max, d)
}

// corrupt wraps a failure of the payload itself. A decoder error (bad gzip
// header, failed checksum) arrives through the source's errors and is
// reported the same way: either way the stored bytes could not be read back.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptMessage, fmt.Sprintf(format, args...))
}

func sourceErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("payload ends inside %s", what)
	}
	return corrupt("reading %s: %v", what, err)
}

// varint reads one zigzag varint inside the current record.
func (w *recordWalker) varint(what string) (int64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		if w.left <= 0 {
			return 0, corrupt("record ends inside its %s", what)
		}
		c, err := w.src.ReadByte()
		if err != nil {
			return 0, sourceErr(err, what)
		}
		w.left--
		buf[i] = c
		if c < 0x80 {
			v, n := binary.Varint(buf[:i+1])
			if n <= 0 {
				return 0, corrupt("bad varint in the %s", what)
			}
			return v, nil
		}
	}
	return 0, corrupt("varint longer than %d bytes in the %s", binary.MaxVarintLen64, what)
}

// skipField reads a varint length and skips that many bytes; -1 (null) is
// allowed only when nullable.
func (w *recordWalker) skipField(what string, nullable bool) error {
	l, err := w.varint(what)
	if err != nil {
		return err
	}
	switch {
	case l == -1 && nullable:
		return nil
	case l < 0:
		return corrupt("%s length %d", what, l)
	case l > w.left:
		return corrupt("%s length %d with %d bytes left in the record", what, l, w.left)
	}
	if _, err := w.src.Discard(int(l)); err != nil {
		return sourceErr(err, what)
	}
	w.left -= l
	return nil
}

// lengthPrefix reads a record's length varint, which lies outside the record.
func (w *recordWalker) lengthPrefix() (int64, error) {
	w.left = binary.MaxVarintLen64
	l, err := w.varint("record length")
	if err != nil {
		return 0, err
	}
	w.budget -= binary.MaxVarintLen64 - w.left
	return l, nil
}

// walk checks that exactly n records fill the source, each well framed,
// with offset deltas 0..n-1, and that nothing follows the last one.
func (w *recordWalker) walk(n int32) error {
	for i := int32(0); i < n; i++ {
		l, err := w.lengthPrefix()
		if err != nil {
			return err
		}
		// The smallest record is attributes plus five one-byte varints.
		if l < minRecordSize-1 {
			return corrupt("record %d has length %d", i, l)
		}
		if l > w.budget {
			return corrupt("records inflate past %d bytes", maxValidatedInflation())
		}
		w.budget -= l
		w.left = l
		if _, err := w.src.ReadByte(); err != nil { // attributes: unused in v2
			return sourceErr(err, "record attributes")
		}
		w.left--
		ts, err := w.varint("timestamp delta")
		if err != nil {
			return err
		}
		w.deltas.add(ts)
		delta, err := w.varint("offset delta")
		if err != nil {
			return err
		}
		if delta != int64(i) {
			return corrupt("record %d has offset delta %d", i, delta)
		}
		if err := w.skipField("key", true); err != nil {
			return err
		}
		if err := w.skipField("value", true); err != nil {
			return err
		}
		nh, err := w.varint("header count")
		if err != nil {
			return err
		}
		if nh < 0 || nh > w.left/2 {
			return corrupt("header count %d with %d bytes left in the record", nh, w.left)
		}
		for range nh {
			if err := w.skipField("header key", false); err != nil {
				return err
			}
			if err := w.skipField("header value", true); err != nil {
				return err
			}
		}
		if w.left != 0 {
			return corrupt("%d bytes left inside record %d", w.left, i)
		}
	}
	// Reading past the last record also makes stream decoders verify their
	// trailing checksums (gzip's CRC-32, lz4's content checksum).
	switch _, err := w.src.ReadByte(); {
	case err == nil:
		return corrupt("bytes after the last of %d records", n)
	case !errors.Is(err, io.EOF):
		return corrupt("after the last record: %v", err)
	}
	return nil
}

// checkBatchRecords inflates (if compressed) and walks the records of one
// batch whose header already passed validation, returning the range of
// their timestamp deltas.
func checkBatchRecords(codec int8, payload []byte, n int32) (deltaRange, error) {
	w := recordWalker{budget: maxValidatedInflation(), deltas: newDeltaRange()}
	switch codec {
	case CompressionNone:
		return checkRecords(payload, n)
	case CompressionSnappy:
		buf := snappyBufs.Get().(*[]byte)
		defer putSnappyBuf(buf)
		out, err := inflateSnappy(payload, (*buf)[:0], w.budget)
		*buf = out
		if err != nil {
			return deltaRange{}, err
		}
		return checkRecords(out, n)
	}
	br := streamBufs.Get().(*bufio.Reader)
	defer func() {
		br.Reset(nil)
		streamBufs.Put(br)
	}()
	in := bytes.NewReader(payload)
	switch codec {
	case CompressionGzip:
		zr := gzipReaders.Get().(*gzip.Reader)
		defer func() {
			// A pooled reader must not keep the producer's payload alive.
			in.Reset(nil)
			gzipReaders.Put(zr)
		}()
		if err := zr.Reset(in); err != nil {
			return deltaRange{}, corrupt("gzip: %v", err)
		}
		br.Reset(zr)
	case CompressionLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		defer func() {
			zr.Reset(nil)
			lz4Readers.Put(zr)
		}()
		zr.Reset(in)
		br.Reset(zr)
	case CompressionZstd:
		zr := zstdReaders.Get().(*zstd.Decoder)
		defer func() {
			_ = zr.Reset(nil)
			zstdReaders.Put(zr)
		}()
		if err := zr.Reset(in); err != nil {
			return deltaRange{}, corrupt("zstd: %v", err)
		}
		br.Reset(zr)
	default:
		return deltaRange{}, corrupt("unknown compression codec %d", codec)
	}
	w.src = br
	if err := w.walk(n); err != nil {
		return deltaRange{}, err
	}
	return w.deltas, nil
}

// checkRecords walks records held in memory without allocating, checking
// that exactly n records fill data and their offset deltas are 0..n-1, and
// returns the range of their timestamp deltas.
func checkRecords(data []byte, n int32) (deltaRange, error) {
	r := recReader{b: data}
	deltas := newDeltaRange()
	for i := int32(0); i < n; i++ {
		var rec rawRecord
		if err := r.next(&rec); err != nil {
			return deltaRange{}, err
		}
		if rec.offsetDelta != int64(i) {
			return deltaRange{}, corrupt("record %d has offset delta %d", i, rec.offsetDelta)
		}
		deltas.add(rec.timestampDelta)
	}
	if len(r.b) != 0 {
		return deltaRange{}, corrupt("%d bytes after the last record", len(r.b))
	}
	return deltas, nil
}

// inflateSnappy decodes a snappy payload in either framing clients send:
// Kafka's xerial framing (the Java client) or one raw block (most others),
// appending to dst. Snappy blocks cannot be streamed, so the output is held
// whole; its size is bounded by limit and by what the input can encode.
func inflateSnappy(in, dst []byte, limit int64) ([]byte, error) {
	if !bytes.HasPrefix(in, xerialMagic) {
		return snappyBlockInto(in, dst, limit)
	}
	const headerLen = 16 // magic, version, compatible version
	if len(in) < headerLen {
		return dst, corrupt("short xerial snappy header")
	}
	in = in[headerLen:]
	for len(in) > 0 {
		if len(in) < 4 {
			return dst, corrupt("short xerial snappy block length")
		}
		l := binary.BigEndian.Uint32(in)
		in = in[4:]
		if int64(l) > int64(len(in)) {
			return dst, corrupt("xerial snappy block of %d bytes with %d left", l, len(in))
		}
		var err error
		if dst, err = snappyBlockInto(in[:l], dst, limit); err != nil {
			return dst, err
		}
		in = in[l:]
	}
	return dst, nil
}

// snappyBlockInto decodes one raw snappy block onto the end of dst, after
// checking its declared length (attacker controlled: the decoder sizes its
// output by it) against limit and against what the block can encode.
func snappyBlockInto(in, dst []byte, limit int64) ([]byte, error) {
	n, err := snappy.DecodedLen(in)
	if err != nil {
		return dst, corrupt("snappy: %v", err)
	}
	if int64(n) > int64(len(in))*snappyMaxExpansion {
		return dst, corrupt("snappy block of %d bytes claims %d inflated", len(in), n)
	}
	if int64(len(dst))+int64(n) > limit {
		return dst, corrupt("snappy payload inflates past %d bytes", limit)
	}
	start := len(dst)
	dst = growTo(dst, start+n)
	if _, err := snappy.Decode(dst[start:], in); err != nil {
		return dst[:start], corrupt("snappy: %v", err)
	}
	return dst, nil
}

// growTo returns b extended to length n, reallocating only when its capacity
// is short.
func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// Pools of decoders and buffers, so validating a batch allocates nothing in
// the steady state. Buffers grown past pooledBufLimit by one large batch
// are dropped rather than pinned in the pool.
const pooledBufLimit = 4 << 20

var (
	streamBufs  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	snappyBufs  = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	zstdReaders = sync.Pool{New: func() any {
		// One synchronous decoder per pooled item: concurrency 1 keeps
		// streaming decodes on the caller's goroutine.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(uint64(MaxDecompressedBatchBytes)))
		if err != nil {
			panic(err) // only invalid options fail
		}
		return d
	}}
)

func putSnappyBuf(b *[]byte) {
	if cap(*b) > pooledBufLimit {
		return
	}
	*b = (*b)[:0]
	snappyBufs.Put(b)
}
