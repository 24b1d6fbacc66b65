package log

import (
	"bytes"
	"testing"
	"time"
)

// A batch the node encodes itself decodes back to its records (null key,
// tombstone and headers kept), carries a valid CRC, passes produce
// validation and has no producer id.
func TestEncodeBatchRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	in := []Record{
		{Key: []byte("k1"), Value: []byte("v1")},
		{Key: nil, Value: []byte("no key")},
		{Key: []byte("gone"), Value: nil},
		{Key: []byte("k4"), Value: []byte{}, Headers: []RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}}},
	}
	b := EncodeBatch(in, now)
	if !VerifyBatchCRC(b) {
		t.Fatal("CRC does not verify")
	}
	if _, err := ValidateProduceBatch(b, 1<<20); err != nil {
		t.Fatalf("produce validation: %v", err)
	}
	h, out, err := DecodeRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != len(b) || h.NumRecords != int32(len(in)) || h.LastOffsetDelta != int32(len(in)-1) {
		t.Fatalf("header %+v for %d bytes", h, len(b))
	}
	if h.ProducerID != -1 || h.BaseSequence != -1 || h.BaseTimestamp != now.UnixMilli() || h.MaxTimestamp != now.UnixMilli() {
		t.Fatalf("header %+v", h)
	}
	if len(out) != len(in) {
		t.Fatalf("%d records decoded, want %d", len(out), len(in))
	}
	for i, r := range out {
		w := in[i]
		if r.Offset != int64(i) || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
			!bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) || len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d: got %+v, want %+v", i, r, w)
		}
		for j, hd := range r.Headers {
			if hd.Key != w.Headers[j].Key || !bytes.Equal(hd.Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: got %+v, want %+v", i, j, hd, w.Headers[j])
			}
		}
	}
}
