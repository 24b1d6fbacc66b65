package broker

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameOf encodes a request as the bytes of a frame after the size prefix.
func frameOf(req kmsg.Request, version int16) []byte {
	req.SetVersion(version)
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "cli"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// FuzzDecodeRequest feeds arbitrary frames to the request decoder: it must
// return a request or an error, never panic, whatever the bytes claim.
func FuzzDecodeRequest(f *testing.F) {
	s := &Server{}
	apis := s.newAPITables().all
	topic := "t"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{1, 2, 3}}}}}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 5, PartitionMaxBytes: 1 << 20}}}}
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t", NumPartitions: 3, ReplicationFactor: 1}}
	for _, seed := range []struct {
		req kmsg.Request
		v   int16
	}{
		{kmsg.NewPtrApiVersionsRequest(), 3}, {kmsg.NewPtrApiVersionsRequest(), 0},
		{meta, 12}, {meta, 4}, {produce, 9}, {produce, 3}, {fetch, 12}, {fetch, 4}, {create, 5},
	} {
		f.Add(frameOf(seed.req, seed.v))
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 255, 255})
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := decodeRequest(apis, frame)
		if err == nil && (req == nil || req.Key() != h.key || req.GetVersion() != h.version) {
			t.Fatalf("decoded %v for header %+v", req, h)
		}
	})
}

func TestDecodeRequestRejects(t *testing.T) {
	s := &Server{}
	apis := s.newAPITables().all
	for name, frame := range map[string][]byte{
		"short":               {0, 3},
		"client id too long":  {0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff},
		"unknown api":         {0x7f, 0, 0, 0, 0, 0, 0, 1, 0, 0},
		"produce v0 (pre-v2)": frameOf(kmsg.NewPtrProduceRequest(), 0),
		"truncated body":      frameOf(kmsg.NewPtrCreateTopicsRequest(), 4)[:12],
	} {
		if _, _, err := decodeRequest(apis, frame); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, _, err := decodeRequest(apis, []byte{0, 18, 0, 99, 0, 0, 0, 1, 0, 0}); err != errUnsupportedApiVersions {
		t.Errorf("ApiVersions v99: %v, want errUnsupportedApiVersions", err)
	}
}

// A tagged-field count the frame cannot back ends decoding at once: a
// 19-byte Metadata request claiming 2^32-1 tags used to keep its
// connection's reader looping over the missing tags for about 45 s of CPU,
// and a handful of such requests would have held every core.
func TestDecodeRequestRefusesUnbackedTagCount(t *testing.T) {
	apis := (&Server{}).newAPITables().all
	// Metadata v12, null client id, no header tags, no topics, two
	// booleans, then a tag count of 0xffffffff and nothing after it.
	frame := []byte("\x00\x03\x00\x0c\x00\x00\x9b\x9b\xff\xff\x00\x01\x00\x00\xff\xff\xff\xff\x0f")
	done := make(chan error, 1)
	go func() {
		_, _, err := decodeRequest(apis, frame)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("decoded a request whose tags are missing")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("decoding a 19-byte request still running after 5 s")
	}
}
