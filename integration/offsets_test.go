package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListOffsetsByTimestamp(t *testing.T) {
	t.Parallel()
	n, adm, topic, _ := startNodeWithTopic(t, nodeOpts{}, 1)

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	producer := n.Client(t)
	ctx := ctxT(t, opTimeout)

	// Offsets 0-4 go in one request (normally one batch), 5-9 one at a
	// time; timestamps t0, t0+1000, ..., t0+9000. Offset 10 has an older
	// timestamp, t0+500, so the largest timestamp is not the last record's.
	var first []*kgo.Record
	for i := int64(0); i < 5; i++ {
		first = append(first, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i)), Timestamp: at(i * 1000)})
	}
	if err := producer.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for i := int64(5); i < 10; i++ {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i)), Timestamp: at(i * 1000)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("10"), Timestamp: at(500)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	const end = 11

	ms := func(d int64) int64 { return t0.UnixMilli() + d }
	cases := []struct {
		name     string
		target   int64
		offset   int64
		recordTS int64 // -1: none
	}{
		{"before all", ms(-5000), 0, ms(0)},
		{"exactly the first", ms(0), 0, ms(0)},
		{"just after the first", ms(1), 1, ms(1000)},
		{"before the out-of-order record's time", ms(400), 1, ms(1000)},
		{"between records", ms(2500), 3, ms(3000)},
		{"exactly a record", ms(4000), 4, ms(4000)},
		{"first of the single-record batches", ms(4001), 5, ms(5000)},
		{"exactly the largest", ms(9000), 9, ms(9000)},
		{"after all", ms(9001), end, -1},
	}
	for _, c := range cases {
		lo, err := adm.ListOffsetsAfterMilli(ctx, c.target, topic)
		if err != nil {
			t.Fatalf("%s: ListOffsetsAfterMilli(%d): %v", c.name, c.target, err)
		}
		o, ok := lo.Lookup(topic, 0)
		if !ok || o.Err != nil {
			t.Fatalf("%s: no offset for partition 0: %v", c.name, o.Err)
		}
		if o.Offset != c.offset {
			t.Errorf("%s: offset for timestamp %d is %d, want %d", c.name, c.target, o.Offset, c.offset)
		}
		if c.recordTS >= 0 && o.Timestamp != c.recordTS {
			t.Errorf("%s: timestamp for target %d is %d, want %d", c.name, c.target, o.Timestamp, c.recordTS)
		}
	}

	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Err != nil || o.Offset != 0 {
		t.Errorf("start offset %d (%v), want 0", o.Offset, o.Err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Err != nil || o.Offset != end {
		t.Errorf("end offset %d (%v), want %d", o.Offset, o.Err, end)
	}

	// Raw ListOffsets: a timestamp after every record answers offset -1 and
	// timestamp -1; -3 asks for the record with the largest timestamp.
	raw := func(ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = 0
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kr, err := producer.Request(ctx, req)
		if err != nil {
			t.Fatalf("ListOffsets(%d): %v", ts, err)
		}
		resp := kr.(*kmsg.ListOffsetsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("ListOffsets(%d): response has %d topics", ts, len(resp.Topics))
		}
		return resp.Topics[0].Partitions[0]
	}
	if p := raw(ms(9001)); p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 {
		t.Errorf("ListOffsets(after all): error %d offset %d timestamp %d, want 0 -1 -1", p.ErrorCode, p.Offset, p.Timestamp)
	}
	if p := raw(-3); p.ErrorCode != 0 || p.Offset != 9 || p.Timestamp != ms(9000) {
		t.Errorf("ListOffsets(max timestamp): error %d offset %d timestamp %d, want 0 9 %d", p.ErrorCode, p.Offset, p.Timestamp, ms(9000))
	}
	if p := raw(-2); p.ErrorCode != 0 || p.Offset != 0 {
		t.Errorf("ListOffsets(earliest): error %d offset %d, want 0 0", p.ErrorCode, p.Offset)
	}
	if p := raw(-1); p.ErrorCode != 0 || p.Offset != end {
		t.Errorf("ListOffsets(latest): error %d offset %d, want 0 %d", p.ErrorCode, p.Offset, end)
	}

	// Each spec from the version it came with; a negative timestamp
	// naming none, or a spec asked with an older version, is
	// UNSUPPORTED_VERSION, and a partition asked twice INVALID_REQUEST,
	// as Kafka answers. Without tiered storage the earliest offset
	// pending upload (-6) is -1 with epoch -1.
	rc := dialRaw(t, n.Addr())
	rawAt := func(v int16, timestamps ...int64) []kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, ts := range timestamps {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.CurrentLeaderEpoch = -1
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return rc.request(req, v).(*kmsg.ListOffsetsResponse).Topics[0].Partitions
	}
	const unsupportedVersion, invalidRequest = 35, 42
	for _, c := range []struct {
		v    int16
		ts   int64
		code int16
	}{{6, -3, unsupportedVersion}, {7, -3, 0}, {7, -4, unsupportedVersion}, {8, -4, 0}, {8, -5, unsupportedVersion},
		{9, -5, 0}, {10, -6, unsupportedVersion}, {11, -6, 0}, {11, -7, unsupportedVersion}, {11, -100, unsupportedVersion}} {
		if p := rawAt(c.v, c.ts)[0]; p.ErrorCode != c.code {
			t.Errorf("ListOffsets v%d (%d): error %d, want %d", c.v, c.ts, p.ErrorCode, c.code)
		}
	}
	if p := rawAt(11, -6)[0]; p.Offset != -1 || p.Timestamp != -1 || p.LeaderEpoch != -1 {
		t.Errorf("ListOffsets(earliest pending upload): offset %d timestamp %d epoch %d, want -1 -1 -1", p.Offset, p.Timestamp, p.LeaderEpoch)
	}
	for i, p := range rawAt(11, -1, -2) {
		if p.ErrorCode != invalidRequest {
			t.Errorf("ListOffsets of partition 0 twice: answer %d error %d, want %d", i, p.ErrorCode, invalidRequest)
		}
	}
}

func TestDeleteRecordsAndRetention(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{"log.retention.check.interval.ms=200"}})
	adm := n.Admin(t)

	t.Run("DeleteRecords", func(t *testing.T) {
		topic := topicName(t, "")
		createTopic(t, adm, topic, 1, nil)
		producer := n.Client(t)
		ctx := ctxT(t, opTimeout)
		var rs []*kgo.Record
		for i := 0; i < 100; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("r-%d", i))})
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}

		deleteTo := func(at int64) kadm.DeleteRecordsResponse {
			t.Helper()
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at})
			resp, err := adm.DeleteRecords(ctx, offs)
			if err != nil {
				t.Fatalf("DeleteRecords(%d): %v", at, err)
			}
			r, ok := resp.Lookup(topic, 0)
			if !ok {
				t.Fatalf("DeleteRecords(%d): no response for partition 0", at)
			}
			return r
		}
		startOffset := func() int64 {
			t.Helper()
			lo, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				t.Fatalf("list start offsets: %v", err)
			}
			o, _ := lo.Lookup(topic, 0)
			if o.Err != nil {
				t.Fatalf("list start offsets: %v", o.Err)
			}
			return o.Offset
		}
		fromStart := func(want int) []*kgo.Record {
			t.Helper()
			cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
			defer cl.Close()
			return consumeN(t, cl, want, opTimeout)
		}

		if r := deleteTo(40); r.Err != nil || r.LowWatermark != 40 {
			t.Fatalf("DeleteRecords(40): low watermark %d, err %v; want 40", r.LowWatermark, r.Err)
		}
		if s := startOffset(); s != 40 {
			t.Fatalf("start offset %d after DeleteRecords(40)", s)
		}
		recs := fromStart(60)
		for i, r := range recs {
			if r.Offset != int64(40+i) || string(r.Value) != fmt.Sprintf("r-%d", 40+i) {
				t.Fatalf("record %d from the start: offset %d value %q, want offset %d", i, r.Offset, r.Value, 40+i)
			}
		}

		// Beyond the high watermark is out of range and changes nothing.
		if r := deleteTo(500); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			t.Errorf("DeleteRecords(500) past the end: err %v, want OFFSET_OUT_OF_RANGE", r.Err)
		}
		// Moving backwards is not an error and keeps the start offset.
		if r := deleteTo(10); r.Err != nil || r.LowWatermark != 40 {
			t.Errorf("DeleteRecords(10) below the start: low watermark %d, err %v; want 40", r.LowWatermark, r.Err)
		}
		if s := startOffset(); s != 40 {
			t.Fatalf("start offset %d after DeleteRecords(500) and (10), want 40", s)
		}
		// -1 means the high watermark: everything goes.
		if r := deleteTo(-1); r.Err != nil || r.LowWatermark != 100 {
			t.Fatalf("DeleteRecords(-1): low watermark %d, err %v; want 100", r.LowWatermark, r.Err)
		}
		if s := startOffset(); s != 100 {
			t.Fatalf("start offset %d after DeleteRecords(-1), want 100", s)
		}
		res := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("after delete")})
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce after delete: %v", err)
		}
		if off := res[0].Record.Offset; off != 100 {
			t.Fatalf("record after DeleteRecords(-1) at offset %d, want 100", off)
		}
		if recs := fromStart(1); recs[0].Offset != 100 || string(recs[0].Value) != "after delete" {
			t.Fatalf("from the start: offset %d value %q, want 100 %q", recs[0].Offset, recs[0].Value, "after delete")
		}
	})

	t.Run("Retention", func(t *testing.T) {
		topic := topicName(t, "")
		createTopic(t, adm, topic, 1, map[string]*string{
			"internal.segment.bytes": strp("16384"),
			"retention.ms":           strp("60000"),
		})
		const valueSize = 500
		// Uncompressed and small batches, so segments fill and roll.
		producer := n.Client(t, kgo.ProducerBatchMaxBytes(4096), kgo.ProducerBatchCompression(kgo.NoCompression()))
		ctx := ctxT(t, opTimeout)
		old := time.Now().Add(-2 * time.Hour)
		const numOld, numNew = 200, 5
		var rs []*kgo.Record
		for i := 0; i < numOld; i++ {
			v := fmt.Sprintf("old-%03d-", i)
			rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(v + strings.Repeat("x", valueSize-len(v))), Timestamp: old.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce old records: %v", err)
		}
		rs = rs[:0]
		for i := 0; i < numNew; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("new-%d", i))})
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce new records: %v", err)
		}

		// Every segment holding only two-hour-old records is past
		// retention.ms and goes; the segment with the new records stays.
		// Segments hold at most segment.bytes, so the start offset ends
		// within two segments' worth of records before the first new one.
		minStart := int64(numOld - 2*16384/valueSize)
		var start int64
		waitFor(t, 30*time.Second, "retention to delete the expired segments", func() (bool, string) {
			lo, err := adm.ListStartOffsets(ctxT(t, 5*time.Second), topic)
			if err != nil {
				return false, err.Error()
			}
			o, _ := lo.Lookup(topic, 0)
			if o.Err != nil {
				return false, o.Err.Error()
			}
			start = o.Offset
			if start > numOld {
				t.Fatalf("start offset %d is past the first unexpired record %d", start, numOld)
			}
			return start >= minStart, fmt.Sprintf("start offset %d, want >= %d", start, minStart)
		})
		ends, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatalf("list end offsets: %v", err)
		}
		if o, _ := ends.Lookup(topic, 0); o.Offset != numOld+numNew {
			t.Fatalf("end offset %d after retention, want %d", o.Offset, numOld+numNew)
		}
		cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		recs := consumeN(t, cl, int(numOld+numNew-start), opTimeout)
		if recs[0].Offset != start {
			t.Fatalf("consuming from the start began at offset %d, start offset is %d", recs[0].Offset, start)
		}
		for i, r := range recs[len(recs)-numNew:] {
			if want := fmt.Sprintf("new-%d", i); string(r.Value) != want || r.Offset != int64(numOld+i) {
				t.Fatalf("offset %d: %q, want %q at offset %d", r.Offset, r.Value, want, numOld+i)
			}
		}
	})
}
