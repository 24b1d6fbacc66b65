package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The spliced encoding must be byte-for-byte what kmsg would write.
func TestFetchEncoderMatchesKmsg(t *testing.T) {
	e := newFetchEncoder()
	build := func(v int16) *kmsg.FetchResponse {
		r := kmsg.NewPtrFetchResponse()
		r.SetVersion(v)
		for ti, name := range []string{"a", "b"} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = name
			rt.TopicID = [16]byte{byte(ti + 1)}
			for p := int32(0); p < 3; p++ {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.HighWatermark = p, int64(p)*10
				if p != 1 { // one partition without data
					rp.RecordBatches = bytes.Repeat([]byte{byte(p + 1)}, 100+int(p)*300)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	for _, v := range []int16{4, 11, 12, 16, 18} {
		want := encodeResponse(42, build(v))
		got := bytes.Join(e.encode(42, build(v)), nil)
		if !bytes.Equal(got, want) {
			t.Errorf("v%d: spliced encoding differs (%d vs %d bytes)", v, len(got), len(want))
		}
	}
}
