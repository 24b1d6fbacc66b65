package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	f.Add(simpleBatch(f, 3, 1000, "v"))
	f.Add(idemBatch(f, 2, 5, 1, 7))
	for _, codec := range []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		f.Add(buildBatch(f, batchSpec{recs: []testRec{{key: []byte("k"), value: bytes.Repeat([]byte("ab"), 50)}, {value: []byte("x")}}, codec: codec}))
	}
	f.Add(buildBatch(f, batchSpec{recs: []testRec{{value: []byte("xerial")}}, codec: CompressionSnappy, xerial: true}))
	f.Add([]byte{})
	f.Add(make([]byte, BatchHeaderSize))
}

// FuzzValidateProduceBatch: the validator never panics, and whatever it
// accepts, of any codec, decodes to the records its header announces.
func FuzzValidateProduceBatch(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(b []byte) {
			h, err := ValidateProduceBatch(b, 1<<20)
			if err != nil {
				return
			}
			// Whatever passes must be safe to store and read back.
			if h.Size() != len(b) || h.NumRecords <= 0 || !VerifyBatchCRC(b) || h.Magic != 2 {
				t.Fatalf("accepted an inconsistent batch: %+v", h)
			}
			// Every codec: what a consumer will decode must decode.
			if _, recs, err := DecodeRecords(b); err != nil || len(recs) != int(h.NumRecords) {
				t.Fatalf("accepted codec %d batch does not decode: %v", h.Compression(), err)
			}
		}
		check(b)
		// Most mutations only break the CRC; fix it up so the fuzzer also
		// reaches the length, count and record checks behind it.
		if len(b) >= BatchHeaderSize {
			c := bytes.Clone(b)
			binary.BigEndian.PutUint32(c[offCRC:], crc32.Checksum(c[offAttributes:], castagnoli))
			check(c)
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, err := DecodeRecords(b)
		if err == nil && len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		if err != nil && !errors.Is(err, ErrCorruptMessage) && !errors.Is(err, ErrUnsupportedMagic) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
