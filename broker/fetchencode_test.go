package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// buildFetchResponse is a two-topic response of three partitions each,
// the middle one without data; data gives each other partition's record
// set.
func buildFetchResponse(v int16, data func(topic, partition int) []byte) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SetVersion(v)
	for ti, name := range []string{"a", "b"} {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = name
		rt.TopicID = [16]byte{byte(ti + 1)}
		for p := int32(0); p < 3; p++ {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.HighWatermark = p, int64(p)*10
			rp.RecordBatches = []byte{}
			if p != 1 { // one partition without data
				rp.RecordBatches = data(ti, int(p))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	return r
}

// The spliced encoding must be byte-for-byte what kmsg would write.
func TestFetchEncoderMatchesKmsg(t *testing.T) {
	e := newFetchEncoder()
	data := func(_, p int) []byte { return bytes.Repeat([]byte{byte(p + 1)}, 100+p*300) }
	for _, v := range []int16{4, 11, 12, 16, 18} {
		want := encodeResponse(42, buildFetchResponse(v, data))
		pieces, files := e.encode(42, buildFetchResponse(v, data), nil)
		if got := bytes.Join(pieces, nil); !bytes.Equal(got, want) || len(files) != 0 {
			t.Errorf("v%d: spliced encoding differs (%d vs %d bytes)", v, len(got), len(want))
		}
	}
}
