package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testcompress"
)

// codecCase is one codec and framing a client may send.
type codecCase struct {
	name   string
	codec  int8
	xerial bool
}

var produceCodecs = []codecCase{
	{"none", CompressionNone, false},
	{"gzip", CompressionGzip, false},
	{"snappy", CompressionSnappy, false},
	{"snappy-xerial", CompressionSnappy, true},
	{"lz4", CompressionLZ4, false},
	{"zstd", CompressionZstd, false},
}

// withPayload is a batch of n records whose payload is exactly payload,
// with a correct CRC: only the record checks can refuse it.
func withPayload(codec int8, n int32, payload []byte) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: n - 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: n, Records: payload,
	}
	rb.Length = int32(BatchHeaderSize - 12 + len(payload))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func threeRecords() []testRec {
	return []testRec{
		{key: []byte("a"), value: []byte("one"), headers: []kmsg.Header{{Key: "h", Value: []byte("v")}}},
		{value: bytes.Repeat([]byte("two"), 500)},
		{key: []byte("c")},
	}
}

func TestValidateProduceBatchCodecs(t *testing.T) {
	for _, c := range produceCodecs {
		t.Run(c.name, func(t *testing.T) {
			recs := threeRecords()
			raw := encodeRecords(recs)
			check := func(name string, b []byte, want error) {
				t.Helper()
				if _, err := ValidateProduceBatch(b, 1<<20); !errors.Is(err, want) {
					t.Errorf("%s: got %v, want %v", name, err, want)
				}
			}
			good := buildBatch(t, batchSpec{recs: recs, codec: c.codec, xerial: c.xerial})
			stored := bytes.Clone(good)
			check("valid", good, nil)
			if !bytes.Equal(good, stored) {
				t.Fatal("validation changed the batch bytes")
			}
			compress := func(raw []byte) []byte { return testcompress.Records(t, c.codec, c.xerial, raw) }
			check("count above records", withPayload(c.codec, 4, compress(raw)), ErrCorruptMessage)
			check("count below records", withPayload(c.codec, 2, compress(raw)), ErrCorruptMessage)
			check("records garbage", withPayload(c.codec, 3, compress(bytes.Repeat([]byte{0x7f}, 64))), ErrCorruptMessage)
			check("record cut short", withPayload(c.codec, 3, compress(raw[:len(raw)-1])), ErrCorruptMessage)
			check("bytes after records", withPayload(c.codec, 3, compress(append(bytes.Clone(raw), 0))), ErrCorruptMessage)
			// Offset deltas 0, 2, 1: right count, wrong numbering.
			var out []byte
			for i, delta := range []int32{0, 2, 1} {
				r := kmsg.Record{OffsetDelta: delta, Value: []byte(fmt.Sprint(i))}
				body := r.AppendTo(nil)[1:]
				r.Length = int32(len(body))
				out = r.AppendTo(out)
			}
			check("offset deltas out of order", withPayload(c.codec, 3, compress(out)), ErrCorruptMessage)
			if c.codec != CompressionNone {
				check("payload not in the codec's format", withPayload(c.codec, 3, bytes.Repeat([]byte("not compressed "), 8)), ErrCorruptMessage)
				full := compress(raw)
				check("compressed stream truncated", withPayload(c.codec, 3, full[:len(full)-3]), ErrCorruptMessage)
				check("empty payload", withPayload(c.codec, 3, nil), ErrCorruptMessage)
			}
		})
	}
}

func TestValidateProduceBatchProducerFields(t *testing.T) {
	noSeq := buildBatch(t, batchSpec{recs: threeRecords(), pid: 7, epoch: 0, seq: -1})
	if _, err := ValidateProduceBatch(noSeq, 1<<20); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("producer id without a sequence: %v", err)
	}
	txn := buildBatch(t, batchSpec{recs: threeRecords()})
	txn[offAttributes+1] |= attrTransactional
	binary.BigEndian.PutUint32(txn[offCRC:], batchCRC(txn))
	if _, err := ValidateProduceBatch(txn, 1<<20); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("transactional batch without a producer id: %v", err)
	}
}

// TestValidateProduceBatchInflationBounded sends payloads that claim or
// inflate to far more than any batch may: each is refused, and the memory
// validation allocates stays small whatever the claim.
func TestValidateProduceBatchInflationBounded(t *testing.T) {
	// One record claiming a value of ~100 MiB, inflating from ~100 KiB.
	var rec []byte
	rec = append(rec, 0)                    // attributes
	rec = binary.AppendVarint(rec, 0)       // timestamp delta
	rec = binary.AppendVarint(rec, 0)       // offset delta
	rec = binary.AppendVarint(rec, -1)      // null key
	rec = binary.AppendVarint(rec, 100<<20) // value length
	body := binary.AppendVarint(nil, int64(len(rec)+100<<20+1))
	body = append(body, rec...)
	bomb := func(codec int8) []byte {
		var buf bytes.Buffer
		switch codec {
		case CompressionGzip:
			w := gzip.NewWriter(&buf)
			w.Write(body)
			w.Write(make([]byte, 100<<20))
			w.Write([]byte{0})
			w.Close()
			return buf.Bytes()
		case CompressionZstd:
			enc, _ := zstd.NewWriter(nil)
			return enc.EncodeAll(append(bytes.Clone(body), make([]byte, 100<<20+1)...), nil)
		}
		return nil
	}
	// A snappy block whose header claims 1 GiB.
	forgedSnappy := binary.AppendUvarint(nil, 1<<30)
	forgedSnappy = append(forgedSnappy, snappy.Encode(nil, body)[1:]...)
	// A zstd frame header declaring a 1 GiB window (window descriptor
	// exponent 20 + 10 = 30), with no content size.
	bigWindow := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3}
	bigWindow = append(bigWindow, 0x01, 0x00, 0x00) // last raw block, empty

	cases := []struct {
		name string
		b    []byte
	}{
		{"gzip bomb", withPayload(CompressionGzip, 1, bomb(CompressionGzip))},
		{"zstd bomb", withPayload(CompressionZstd, 1, bomb(CompressionZstd))},
		{"snappy forged length", withPayload(CompressionSnappy, 1, forgedSnappy)},
		{"zstd huge window", withPayload(CompressionZstd, 1, bigWindow)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ValidateProduceBatch(c.b, 1<<30)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorruptMessage) {
				t.Fatalf("got %v, want corrupt message", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Fatalf("validation allocated %d bytes for a %d-byte batch", alloc, len(c.b))
			}
		})
	}
}

// TestValidateProduceBatchAllocations: in the steady state validation reuses
// pooled decoders and buffers, so its allocations do not grow with the batch.
func TestValidateProduceBatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	recs := make([]testRec, 64)
	for i := range recs {
		recs[i] = testRec{key: []byte(fmt.Sprint(i)), value: bytes.Repeat([]byte{byte(i)}, 1000)}
	}
	for _, c := range produceCodecs {
		t.Run(c.name, func(t *testing.T) {
			b := buildBatch(t, batchSpec{recs: recs, codec: c.codec, xerial: c.xerial})
			ValidateProduceBatch(b, 1<<20) // warm the pools
			// The median run: a GC may empty the pools now and then (lz4
			// then allocates its block buffer afresh), which is not the
			// steady state.
			const runs = 21
			per := make([]uint64, runs)
			var before, after runtime.MemStats
			for i := range per {
				runtime.ReadMemStats(&before)
				if _, err := ValidateProduceBatch(b, 1<<20); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				per[i] = after.TotalAlloc - before.TotalAlloc
			}
			slices.Sort(per)
			if med := per[runs/2]; med > 4<<10 {
				t.Fatalf("%d bytes allocated per validation of a %d-byte batch inflating to %d", med, len(b), len(encodeRecords(recs)))
			}
		})
	}
}
