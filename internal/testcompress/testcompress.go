// Package testcompress compresses the records of a test's record batches
// with the codecs' own encoders rather than the log package's, so that
// tests check the broker's decoding against an encoder it does not share.
package testcompress

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Records returns raw compressed with Kafka compression codec codec: 0
// (none) returns raw itself, 1 is gzip, 2 snappy, 3 lz4 and 4 zstd. With
// xerial, snappy output has the Java client's xerial framing, in blocks of
// 100 bytes rather than the Java client's 32 KiB, so that a test payload
// spans several and the framing is exercised.
func Records(t testing.TB, codec int8, xerial bool, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case 0:
		return raw
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		w.Close()
	case 2:
		if !xerial {
			return snappy.Encode(nil, raw)
		}
		// The magic, then version 1 and compatible version 1.
		buf.Write([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1})
		for len(raw) > 0 {
			n := min(len(raw), 100)
			blk := snappy.Encode(nil, raw[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(blk))))
			buf.Write(blk)
			raw = raw[n:]
		}
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(raw)
		w.Close()
	case 4:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return enc.EncodeAll(raw, nil)
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}
