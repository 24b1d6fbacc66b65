package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestValidateProduceBatch(t *testing.T) {
	good := simpleBatch(t, 3, 1000, "v")
	if h, err := ValidateProduceBatch(good, 1<<20); err != nil || h.NumRecords != 3 || h.LastOffsetDelta != 2 {
		t.Fatalf("valid batch: %+v %v", h, err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	recrc := func(b []byte) []byte { binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b)); return b }
	cases := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"empty", nil, 1 << 20, ErrCorruptMessage},
		{"short header", good[:40], 1 << 20, ErrCorruptMessage},
		{"truncated body", good[:len(good)-1], 1 << 20, ErrCorruptMessage},
		{"two batches", append(bytes.Clone(good), good...), 1 << 20, ErrInvalidRecord},
		{"magic 1", mutate(func(b []byte) []byte { b[offMagic] = 1; return b }), 1 << 20, ErrUnsupportedMagic},
		{"too large", good, len(good) - 1, ErrMessageTooLarge},
		{"bad crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 1 << 20, ErrCorruptMessage},
		{"length too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 10); return b }), 1 << 20, ErrCorruptMessage},
		{"huge length", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 1<<31-1); return b }), 1 << 20, ErrCorruptMessage},
		// Kafka's LogValidator: a header whose count and offsets
		// disagree, or a base offset a client did not leave at 0, is
		// INVALID_RECORD (a producer fails it; CORRUPT_MESSAGE it retries).
		{"count mismatch", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offRecordCount:], 2); return recrc(b) }), 1 << 20, ErrInvalidRecord},
		{"zero records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			return recrc(b)
		}), 1 << 20, ErrInvalidRecord},
		{"base offset 5", mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[offBaseOffset:], 5); return b }), 1 << 20, ErrInvalidRecord},
		{"control", mutate(func(b []byte) []byte { b[offAttributes+1] |= attrControl; return recrc(b) }), 1 << 20, ErrInvalidRecord},
		{"records garbage", mutate(func(b []byte) []byte { b[BatchHeaderSize] = 0x7f; return recrc(b) }), 1 << 20, ErrCorruptMessage},
		{"unknown codec", mutate(func(b []byte) []byte { b[offAttributes+1] |= 7; return recrc(b) }), 1 << 20, ErrCorruptMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ValidateProduceBatch(c.b, c.max); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestDecodeRecordsCodecs(t *testing.T) {
	recs := []testRec{
		{key: []byte("a"), value: []byte("first"), tsDelta: 0, headers: []kmsg.Header{{Key: "h1", Value: []byte("x")}, {Key: "h2"}}},
		{key: nil, value: nil, tsDelta: 5},
		{key: []byte("c"), value: bytes.Repeat([]byte("z"), 3000), tsDelta: 2},
	}
	for _, tc := range []struct {
		codec  int8
		xerial bool
	}{{CompressionNone, false}, {CompressionGzip, false}, {CompressionSnappy, false}, {CompressionSnappy, true}, {CompressionLZ4, false}, {CompressionZstd, false}} {
		t.Run(fmt.Sprintf("codec%d-xerial%v", tc.codec, tc.xerial), func(t *testing.T) {
			b := buildBatch(t, batchSpec{recs: recs, baseTs: 5000, codec: tc.codec, xerial: tc.xerial})
			if _, err := ValidateProduceBatch(b, 1<<20); err != nil {
				t.Fatal(err)
			}
			binary.BigEndian.PutUint64(b, 100) // as if stored at offset 100
			h, got, err := DecodeRecords(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Compression() != tc.codec || len(got) != len(recs) {
				t.Fatalf("codec %d, %d records", h.Compression(), len(got))
			}
			for i, r := range got {
				want := recs[i]
				if r.Offset != 100+int64(i) || r.Timestamp != 5000+want.tsDelta ||
					!bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) ||
					(r.Key == nil) != (want.key == nil) || (r.Value == nil) != (want.value == nil) ||
					len(r.Headers) != len(want.headers) {
					t.Fatalf("record %d: %+v", i, r)
				}
				for j, hd := range r.Headers {
					if hd.Key != want.headers[j].Key || !bytes.Equal(hd.Value, want.headers[j].Value) {
						t.Fatalf("record %d header %d: %+v", i, j, hd)
					}
				}
			}
		})
	}
}

func TestDecodeRecordsBoundedAllocation(t *testing.T) {
	b := simpleBatch(t, 1, 0, "v")
	binary.BigEndian.PutUint32(b[offRecordCount:], 1<<31-1) // claims 2 billion records
	if _, _, err := DecodeRecords(b); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("got %v", err)
	}
	allocs := testing.AllocsPerRun(10, func() { DecodeRecords(b) })
	if allocs > 5 {
		t.Fatalf("%v allocations", allocs)
	}
	// A snappy block claiming an enormous decoded length is refused up front.
	s := buildBatch(t, batchSpec{recs: []testRec{{value: []byte("x")}}, codec: CompressionSnappy})
	payload := append([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, s[BatchHeaderSize+1:]...)
	bad := append(bytes.Clone(s[:BatchHeaderSize]), payload...)
	binary.BigEndian.PutUint32(bad[offLength:], uint32(len(bad)-12))
	if _, _, err := DecodeRecords(bad); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("got %v", err)
	}
}

func TestLastSeqWraps(t *testing.T) {
	h := BatchHeader{BaseSequence: 1<<31 - 2, LastOffsetDelta: 3}
	if got := lastSeqOf(h); got != 1 {
		t.Fatalf("got %d", got)
	}
}
