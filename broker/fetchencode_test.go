package broker

import (
	"bytes"
	"net"
	"testing"
	"time"

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

// buildShareFetchResponse is buildFetchResponse for ShareFetch, each
// partition with data acquired in one range.
func buildShareFetchResponse(v int16, data func(topic, partition int) []byte) *kmsg.ShareFetchResponse {
	r := kmsg.NewPtrShareFetchResponse()
	r.SetVersion(v)
	r.AcquisitionLockTimeoutMillis = 30000
	for ti := range 2 {
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = [16]byte{byte(ti + 1)}
		for p := int32(0); p < 3; p++ {
			rp := kmsg.NewShareFetchResponseTopicPartition()
			rp.Partition = p
			rp.Records = []byte{}
			if p != 1 {
				rp.Records = data(ti, int(p))
				rp.AcquiredRecords = []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{{FirstOffset: 5, LastOffset: 9, DeliveryCount: 1}}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	return r
}

// A spliced ShareFetch response is byte-for-byte kmsg's, including a
// record set too large for a one-byte length; a throttle written into it
// afterwards lands where kmsg puts ThrottleMillis.
func TestShareFetchEncoderMatchesKmsg(t *testing.T) {
	e := newFetchEncoder()
	data := func(ti, p int) []byte { return bytes.Repeat([]byte{byte(ti*3 + p + 1)}, 50+p*300) }
	for _, v := range []int16{0, 1, 2} {
		want := encodeResponse(42, buildShareFetchResponse(v, data))
		pieces := e.encodeShare(42, buildShareFetchResponse(v, data))
		if got := bytes.Join(pieces, nil); !bytes.Equal(got, want) {
			t.Errorf("v%d: spliced encoding differs (%d vs %d bytes)", v, len(got), len(want))
		}
		throttled := buildShareFetchResponse(v, data)
		throttled.ThrottleMillis = 1500
		want = encodeResponse(42, throttled)
		setFetchThrottle(pieces, true, 1500*time.Millisecond)
		if got := bytes.Join(pieces, nil); !bytes.Equal(got, want) {
			t.Errorf("v%d: throttle not where kmsg writes it", v)
		}
	}
}

// BenchmarkShareFetchEncode frames a ShareFetch response of 200 KiB of
// records in four partitions, as kmsg encodes it (copy) and spliced.
func BenchmarkShareFetchEncode(b *testing.B) {
	e := newFetchEncoder()
	data := func(_, p int) []byte { return make([]byte, 50<<10) }
	for _, c := range []struct {
		name   string
		encode func(*kmsg.ShareFetchResponse) net.Buffers
	}{
		{"copy", func(r *kmsg.ShareFetchResponse) net.Buffers { return net.Buffers{encodeResponse(1, r)} }},
		{"spliced", func(r *kmsg.ShareFetchResponse) net.Buffers { return e.encodeShare(1, r) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.encode(buildShareFetchResponse(2, data))
			}
		})
	}
}
