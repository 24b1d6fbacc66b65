package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	const maxRequest = 1 << 20
	n := startNode(t, nodeOpts{set: []string{
		fmt.Sprintf("socket.request.max.bytes=%d", maxRequest),
		"message.max.bytes=100000",
	}})
	adm := n.Admin(t)
	small := topicName(t, "small")
	smallID := createTopic(t, adm, small, 1, map[string]*string{"max.message.bytes": strp("1024")}).ID
	plain := topicName(t, "plain")
	plainID := createTopic(t, adm, plain, 1, nil).ID

	alive := func(after string) {
		t.Helper()
		if !n.Alive() {
			t.Fatalf("shoal died after %s: %v", after, n.exitError())
		}
	}

	t.Run("OversizedFrame", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		frame := binary.BigEndian.AppendUint32(nil, maxRequest+1)
		frame = append(frame, make([]byte, 64)...)
		rc.write(frame)
		rc.expectClosed("frame of socket.request.max.bytes+1", 10*time.Second)
		alive("an oversized frame")
	})

	t.Run("NegativeFrameSize", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		rc.write([]byte{0xff, 0xff, 0xff, 0xf0, 0, 18, 0, 0})
		rc.expectClosed("negative frame size", 10*time.Second)
		alive("a negative frame size")
	})

	t.Run("GarbageFrame", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		body := []byte("\xff\xfe\x7f\x13garbage!garbage!")
		rc.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
		rc.expectClosed("garbage frame", 10*time.Second)
		alive("a garbage frame")
	})

	t.Run("TruncatedRequest", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		req := kmsg.NewPtrMetadataRequest()
		topic := "some-topic"
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &topic
		req.Topics = append(req.Topics, rt)
		req.SetVersion(rc.version(req))
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("x")).AppendRequest(nil, req, 1)
		// Keep the header and half the body, with a size that matches.
		cut := frame[:4+(len(frame)-4)*2/3]
		binary.BigEndian.PutUint32(cut, uint32(len(cut)-4))
		rc.write(cut)
		rc.expectClosed("truncated Metadata request", 10*time.Second)
		alive("a truncated request")
	})

	t.Run("ApiVersionsUnsupportedVersion", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		var frame []byte
		frame = binary.BigEndian.AppendUint16(frame, 18) // ApiVersions
		frame = binary.BigEndian.AppendUint16(frame, 99) // version
		frame = binary.BigEndian.AppendUint32(frame, 7)  // correlation id
		frame = binary.BigEndian.AppendUint16(frame, 1)
		frame = append(frame, 'x')
		frame = append(frame, 0) // header tags
		frame = append(frame, 5)
		frame = append(frame, "test"...)
		frame = append(frame, 2)
		frame = append(frame, "1"...)
		frame = append(frame, 0) // body tags
		if err := rc.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
			t.Fatal(err)
		}
		body, err := rc.readFrame(opTimeout)
		if err != nil {
			t.Fatalf("no response to ApiVersions v99: %v", err)
		}
		if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
			t.Fatalf("correlation id %d, want 7", corr)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatalf("response to ApiVersions v99 is not a v0 ApiVersions response: %v", err)
		}
		if resp.ErrorCode != 35 {
			t.Errorf("error code %d, want 35 (UNSUPPORTED_VERSION)", resp.ErrorCode)
		}
		// As Kafka: only ApiVersions' own range, for the client to
		// retry within; the whole table comes with that answer.
		if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion < 3 {
			t.Errorf("the error response must list ApiVersions' versions (v3+) alone, got %+v", resp.ApiKeys)
		}
		// The connection stays usable so the client can retry lower.
		rc.corr = 7
		again := kmsg.NewPtrApiVersionsRequest()
		if r := rc.request(again, 0).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 || len(r.ApiKeys) == 0 {
			t.Errorf("ApiVersions v0 after the v99 one: error %d, %d keys", r.ErrorCode, len(r.ApiKeys))
		}
		alive("ApiVersions v99")
	})

	t.Run("ProduceCorruptCRC", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		ts := time.Now().UnixMilli()
		if code, off := rc.produceRaw(plain, plainID, 0, recordBatch(ts, []byte("intact"))); code != 0 || off != 0 {
			t.Fatalf("a well-formed hand-built batch: error %d offset %d, want 0 0", code, off)
		}
		batch := recordBatch(ts, []byte("corrupted"))
		batch[len(batch)-3] ^= 0x55 // inside the value, covered by the CRC
		if code, _ := rc.produceRaw(plain, plainID, 0, batch); code != 2 {
			t.Errorf("batch with a bad CRC: error %d, want 2 (CORRUPT_MESSAGE)", code)
		}
		batch = recordBatch(ts, []byte("bad crc field"))
		batch[18] ^= 0xff // the CRC itself
		if code, _ := rc.produceRaw(plain, plainID, 0, batch); code != 2 {
			t.Errorf("batch with a flipped CRC field: error %d, want 2 (CORRUPT_MESSAGE)", code)
		}
		alive("corrupt batches")
	})

	t.Run("ProduceBatchFraming", func(t *testing.T) {
		// Kafka looks at a partition's records before its leader:
		// bytes holding no whole batch and magic 0 or 1 are
		// INVALID_RECORD (fatal to a producer), a length below any
		// record's or a magic above 2 CORRUPT_MESSAGE, zstd before
		// Produce v7 UNSUPPORTED_COMPRESSION_TYPE.
		rc := dialRaw(t, n.Addr())
		ts := time.Now().UnixMilli()
		produceAt := func(v int16, batch []byte) int16 {
			t.Helper()
			return rc.request(produceRequest(-1, plain, plainID, 0, batch), v).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		}
		withByte := func(at int, b byte) []byte {
			batch := recordBatch(ts, []byte("v"))
			batch[at] = b
			return batch
		}
		zstd := withByte(22, 4) // the codec bits; the CRC is not looked at first
		for _, c := range []struct {
			name  string
			v     int16
			batch []byte
			code  int16
		}{
			{"no records", 9, nil, 87},
			{"a cut batch", 9, recordBatch(ts, []byte("v"))[:40], 87},
			{"magic 1", 9, withByte(16, 1), 87},
			{"magic 3", 9, withByte(16, 3), 2},
			{"length 5", 9, append(make([]byte, 11), 5), 2},
			{"zstd at v6", 6, zstd, 76},
		} {
			if code := produceAt(c.v, c.batch); code != c.code {
				t.Errorf("%s: error %d, want %d", c.name, code, c.code)
			}
		}
		alive("badly framed batches")
	})

	t.Run("ProduceTooLarge", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		ts := time.Now().UnixMilli()
		if code, _ := rc.produceRaw(small, smallID, 0, recordBatch(ts, bytes.Repeat([]byte("a"), 2000))); code != 10 {
			t.Errorf("2000-byte batch on a topic with max.message.bytes=1024: error %d, want 10 (MESSAGE_TOO_LARGE)", code)
		}
		if code, _ := rc.produceRaw(small, smallID, 0, recordBatch(ts, []byte("fits"))); code != 0 {
			t.Errorf("small batch on the same topic: error %d, want 0", code)
		}
		if code, _ := rc.produceRaw(plain, plainID, 0, recordBatch(ts, bytes.Repeat([]byte("b"), 150000))); code != 10 {
			t.Errorf("150000-byte batch with message.max.bytes=100000: error %d, want 10 (MESSAGE_TOO_LARGE)", code)
		}
		alive("oversized batches")
	})

	t.Run("CreateTopicsInvalid", func(t *testing.T) {
		rc := dialRaw(t, n.Addr())
		create := func(name string, partitions int32, rf int16, configs map[string]string) (int16, string) {
			t.Helper()
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = name
			rt.NumPartitions = partitions
			rt.ReplicationFactor = rf
			for k, v := range configs {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name = k
				c.Value = strp(v)
				rt.Configs = append(rt.Configs, c)
			}
			req.Topics = append(req.Topics, rt)
			resp := rc.request(req, -1).(*kmsg.CreateTopicsResponse)
			if len(resp.Topics) != 1 {
				t.Fatalf("CreateTopics %q: %d topics in response", name, len(resp.Topics))
			}
			msg := ""
			if resp.Topics[0].ErrorMessage != nil {
				msg = *resp.Topics[0].ErrorMessage
			}
			return resp.Topics[0].ErrorCode, msg
		}
		cases := []struct {
			what       string
			name       string
			partitions int32
			rf         int16
			configs    map[string]string
			want       int16
		}{
			{"slash in name", "bad/name", 1, 1, nil, 17},
			{"empty name", "", 1, 1, nil, 17},
			{"name ..", "..", 1, 1, nil, 17},
			{"name .", ".", 1, 1, nil, 17},
			{"250-character name", strings.Repeat("a", 250), 1, 1, nil, 17},
			{"unknown config", "bad-input-unknown-config", 1, 1, map[string]string{"no.such.config": "1"}, 40},
			{"bad config value", "bad-input-bad-value", 1, 1, map[string]string{"retention.ms": "soon"}, 40},
			{"zero partitions", "bad-input-zero-partitions", 0, 1, nil, 37},
			{"negative partitions", "bad-input-negative-partitions", -5, 1, nil, 37},
			{"zero replication factor", "bad-input-zero-rf", 1, 0, nil, 38},
			{"more replicas than brokers", "bad-input-rf3", 1, 3, nil, 38},
		}
		for _, c := range cases {
			if code, msg := create(c.name, c.partitions, c.rf, c.configs); code != c.want {
				t.Errorf("CreateTopics with %s: error %d (%s), want %d", c.what, code, msg, c.want)
			}
		}
		// The longest legal name is accepted.
		long := strings.Repeat("b", 249)
		if code, msg := create(long, 1, 1, nil); code != 0 {
			t.Errorf("CreateTopics with a 249-character name: error %d (%s), want 0", code, msg)
		}
		topics, err := adm.ListTopics(ctxT(t, opTimeout))
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		for _, c := range cases {
			if topics.Has(c.name) {
				t.Errorf("topic %q was created despite %s", c.name, c.what)
			}
		}
		if !topics.Has(long) {
			t.Errorf("249-character topic missing from metadata")
		}
		alive("invalid CreateTopics")
	})

	// After all of that, the broker still does its job.
	if !n.Alive() {
		t.Fatalf("shoal is not running: %v", n.exitError())
	}
	rc := dialRaw(t, n.Addr())
	rc.negotiate()
	topic := topicName(t, "after")
	createTopic(t, adm, topic, 1, nil)
	producer := n.Client(t)
	if err := producer.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Value: []byte("still here")}).FirstErr(); err != nil {
		t.Fatalf("produce after bad input: %v", err)
	}
	consumer := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if recs := consumeN(t, consumer, 1, opTimeout); string(recs[0].Value) != "still here" {
		t.Fatalf("consumed %q", recs[0].Value)
	}
	if !n.Alive() {
		t.Fatalf("shoal is not running: %v", n.exitError())
	}
}
