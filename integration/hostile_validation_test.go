package integration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testcompress"
)

// Kafka error codes the hostile-validation tests expect.
const (
	codeCorruptMessage        = 2
	codeInvalidTopic          = 17
	codeInvalidTimestamp      = 32
	codeInvalidRequiredAcks   = 21
	codeInvalidPIDMapping     = 49
	codeTxnIDAuthFailed       = 53
	codeUnknownProducerID     = 59
	codeInvalidRecord         = 87
	codeUnknownTopicPartition = 3
)

// TestHostileValidation sends a real node what a buggy or hostile client
// might — undecodable compressed batches, bad produce fields, operations on
// internal topics, unbounded creations — while bystanders keep producing
// and consuming, and checks each gets Kafka's error, nothing bad is stored
// or created, and the bystanders never notice.
func TestHostileValidation(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{"max.broker.partitions=2000"}})
	by := startBystanders(t, n, "validation")
	adm := n.Admin(t)
	rc := dialRaw(t, n.Addr())

	t.Run("CorruptCompressedBatches", func(t *testing.T) {
		topic := topicName(t, "")
		id := createTopic(t, adm, topic, 1, nil).ID
		ts := time.Now().UnixMilli()
		var want []string
		for _, c := range []struct {
			name   string
			codec  int8
			xerial bool
		}{{"gzip", 1, false}, {"snappy", 2, false}, {"snappy-xerial", 2, true}, {"lz4", 3, false}, {"zstd", 4, false}} {
			// The codec flag with a payload that is not in its format, a
			// correct CRC: stored, it would fail every later fetch.
			notCompressed := recompress(t, producerBatch(-1, -1, -1, ts, []byte("a"), []byte("b")), c.codec, c.xerial,
				func([]byte) []byte { return []byte("this is not " + c.name) })
			if code, _ := rc.produceRaw(topic, id, 0, notCompressed); code != codeCorruptMessage {
				t.Errorf("%s batch whose payload is not %s: error %d, want %d (CORRUPT_MESSAGE)", c.name, c.name, code, codeCorruptMessage)
			}
			// Well-compressed records, but the header counts three of two.
			miscounted := recompress(t, producerBatch(-1, -1, -1, ts, []byte("a"), []byte("b")), c.codec, c.xerial, nil)
			binary.BigEndian.PutUint32(miscounted[57:], 3)
			binary.BigEndian.PutUint32(miscounted[23:], 2)
			fixCRC(miscounted)
			if code, _ := rc.produceRaw(topic, id, 0, miscounted); code != codeCorruptMessage {
				t.Errorf("%s batch with a record count above its records: error %d, want %d (CORRUPT_MESSAGE)", c.name, code, codeCorruptMessage)
			}
			good := "good-" + c.name
			ok := recompress(t, producerBatch(-1, -1, -1, ts, []byte(good)), c.codec, c.xerial, nil)
			if code, _ := rc.produceRaw(topic, id, 0, ok); code != 0 {
				t.Fatalf("valid %s batch: error %d", c.name, code)
			}
			want = append(want, good)
		}
		// A consumer reads every good record: nothing undecodable sits
		// between them.
		cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		var got []string
		for _, r := range consumeN(t, cl, len(want), opTimeout) {
			got = append(got, string(r.Value))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("consumed %v, want %v", got, want)
		}
	})

	t.Run("ProduceFields", func(t *testing.T) {
		topic := topicName(t, "")
		id := createTopic(t, adm, topic, 1, nil).ID
		ts := time.Now().UnixMilli()
		produce := func(acks int16, txnID *string, batch []byte) int16 {
			t.Helper()
			req := produceRequest(acks, topic, id, 0, batch)
			req.TransactionID = txnID
			resp := rc.request(req, -1).(*kmsg.ProduceResponse)
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		plain := recordBatch(ts, []byte("v"))
		for _, acks := range []int16{2, -2, 100} {
			if code := produce(acks, nil, plain); code != codeInvalidRequiredAcks {
				t.Errorf("acks=%d: error %d, want %d (INVALID_REQUIRED_ACKS)", acks, code, codeInvalidRequiredAcks)
			}
		}
		pid := initProducerID(t, rc)
		txn := func(pid int64) []byte {
			b := producerBatch(pid, 0, 0, ts, []byte("txn"))
			b[22] |= 0x10 // transactional attribute
			fixCRC(b)
			return b
		}
		if code := produce(-1, nil, txn(pid)); code != codeTxnIDAuthFailed {
			t.Errorf("transactional batch without a transactional id: error %d, want %d (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)", code, codeTxnIDAuthFailed)
		}
		tid := "tx"
		// The transaction coordinator knows no producer for the id, and
		// the leader passes its answer on, as Kafka's do.
		if code := produce(-1, &tid, txn(pid)); code != codeInvalidPIDMapping {
			t.Errorf("transactional batch outside a transaction: error %d, want %d (INVALID_PRODUCER_ID_MAPPING)", code, codeInvalidPIDMapping)
		}
		if code := produce(-1, &tid, txn(-1)); code != codeInvalidRecord {
			t.Errorf("transactional batch without a producer id: error %d, want %d (INVALID_RECORD)", code, codeInvalidRecord)
		}
		if code := produce(-1, nil, producerBatch(1<<40, 0, 0, ts, []byte("v"))); code != codeUnknownProducerID {
			t.Errorf("producer id never issued: error %d, want %d (UNKNOWN_PRODUCER_ID)", code, codeUnknownProducerID)
		}
		if code := produce(-1, nil, producerBatch(pid, 0, -1, ts, []byte("v"))); code != codeInvalidRecord {
			t.Errorf("producer id without a sequence: error %d, want %d (INVALID_RECORD)", code, codeInvalidRecord)
		}
		if code := produce(-1, nil, producerBatch(pid, 0, 0, ts, []byte("v"))); code != 0 {
			t.Errorf("the issued producer id at sequence 0: error %d", code)
		}
		// Nothing refused was stored: the one plain and the one idempotent
		// record are all there is.
		offs, err := adm.ListEndOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := offs.Lookup(topic, 0); o.Offset != 1 {
			t.Errorf("end offset %d after one accepted batch, want 1", o.Offset)
		}
	})

	t.Run("RecordRules", func(t *testing.T) {
		// Kafka refuses a batch for the records breaking the topic's rules
		// and names each (RecordErrors), so a producer fails those records
		// with their own message: a CreateTime timestamp further than
		// message.timestamp.after.max.ms ahead of the broker's clock (an
		// hour by default) or message.timestamp.before.max.ms behind it
		// (KIP-937), a batch the producer stamped LogAppendTime, a record
		// without a key on a compacted topic.
		topic := topicName(t, "")
		id := createTopic(t, adm, topic, 1, map[string]*string{"message.timestamp.before.max.ms": kadm.StringPtr("3600000")}).ID
		compacted := topicName(t, "compacted")
		compactedID := createTopic(t, adm, compacted, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}).ID
		now := time.Now().UnixMilli()
		hour := time.Hour.Milliseconds()
		// Stamped LogAppendTime without a time: on a CreateTime topic
		// Kafka reads a LogAppendTime batch's time as its records' and
		// checks only the bounds when there is one.
		lat := recordBatch(-1, []byte("v"))
		lat[22] |= 0x08 // timestamp type LogAppendTime
		fixCRC(lat)
		for _, c := range []struct {
			name      string
			topic     string
			id        [16]byte
			batch     []byte
			code      int16
			message   string
			index     int32
			recordMsg string
		}{
			{"two hours ahead", topic, id, timedBatch(now, 0, 2*hour), codeInvalidTimestamp,
				"One or more records have been rejected due to invalid timestamp", 1,
				fmt.Sprintf("Timestamp %d of message with offset 1 is out of range. The timestamp should be within [", now+2*hour)},
			{"two hours behind", topic, id, timedBatch(now-2*hour, 0), codeInvalidTimestamp,
				"One or more records have been rejected due to invalid timestamp", 0,
				fmt.Sprintf("Timestamp %d of message with offset 0 is out of range. The timestamp should be within [", now-2*hour)},
			{"stamped LogAppendTime", topic, id, lat, codeInvalidTimestamp,
				"One or more records have been rejected due to invalid timestamp", 0,
				"Invalid timestamp type in message with offset 0. Producer should not set timestamp type to LogAppendTime."},
			{"keyless on a compacted topic", compacted, compactedID, recordBatch(now, []byte("v")), codeInvalidRecord,
				"One or more records have been rejected due to 1 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=0, message='Compacted topic cannot accept message without key in topic partition " + compacted + "-0.')]", 0,
				"Compacted topic cannot accept message without key in topic partition " + compacted + "-0."},
		} {
			resp := rc.request(produceRequest(-1, c.topic, c.id, 0, c.batch), -1).(*kmsg.ProduceResponse)
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != c.code || p.ErrorMessage == nil || *p.ErrorMessage != c.message || p.BaseOffset != -1 {
				t.Errorf("%s: error %d %v, base offset %d; want %d %q, -1", c.name, p.ErrorCode, derefOr(p.ErrorMessage, "null"), p.BaseOffset, c.code, c.message)
			}
			if len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != c.index || !strings.HasPrefix(derefOr(p.ErrorRecords[0].ErrorMessage, "null"), c.recordMsg) {
				t.Errorf("%s: record errors %+v, want record %d: %q...", c.name, p.ErrorRecords, c.index, c.recordMsg)
			}
		}
		// Within the bounds, an hour ahead and behind less a minute.
		if code, off := rc.produceRaw(topic, id, 0, timedBatch(now, 0, hour-60000, -hour+60000)); code != 0 || off != 0 {
			t.Errorf("records within the bounds: error %d at offset %d, want 0 at 0", code, off)
		}
	})

	t.Run("InternalTopics", func(t *testing.T) {
		topic := topicName(t, "")
		createTopic(t, adm, topic, 1, nil)
		group := topicName(t, "group")
		ctx := ctxT(t, opTimeout)
		commit := kadm.Offsets{}
		commit.AddOffset(topic, 0, 7, -1)
		if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
			t.Fatalf("commit: %v", err)
		}
		const offsets = "__consumer_offsets"
		details, err := adm.ListTopicsWithInternal(ctx, offsets)
		if err != nil || details[offsets].Err != nil {
			t.Fatalf("describe %s: %v %v", offsets, err, details[offsets].Err)
		}
		offsetsID := details[offsets].ID

		if code, _ := rc.produceRaw(offsets, offsetsID, 0, recordBatch(time.Now().UnixMilli(), []byte("junk"))); code != codeInvalidTopic {
			t.Errorf("produce to %s: error %d, want %d (INVALID_TOPIC_EXCEPTION)", offsets, code, codeInvalidTopic)
		}
		del := kmsg.NewPtrDeleteTopicsRequest()
		del.TimeoutMillis = 10000
		byName, byID := kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic()
		byName.Topic = kmsg.StringPtr(offsets)
		byID.TopicID = offsetsID
		del.Topics = []kmsg.DeleteTopicsRequestTopic{byName}
		del.TopicNames = []string{offsets}
		for _, req := range []kmsg.DeleteTopicsRequestTopic{byName, byID} {
			del.Topics = []kmsg.DeleteTopicsRequestTopic{req}
			resp := rc.request(del, -1).(*kmsg.DeleteTopicsResponse)
			if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != codeInvalidTopic {
				t.Errorf("DeleteTopics %s (by name: %v): %+v, want error %d (INVALID_TOPIC_EXCEPTION)", offsets, req.Topic != nil, resp.Topics, codeInvalidTopic)
			}
		}
		cp, err := adm.CreatePartitions(ctx, 10, offsets)
		if err != nil || !errors.Is(cp[offsets].Err, kerr.InvalidTopicException) {
			t.Errorf("CreatePartitions %s: %v %+v, want INVALID_TOPIC_EXCEPTION", offsets, err, cp[offsets])
		}
		dr := kmsg.NewPtrDeleteRecordsRequest()
		drt := kmsg.NewDeleteRecordsRequestTopic()
		drt.Topic = offsets
		drp := kmsg.NewDeleteRecordsRequestTopicPartition()
		drp.Offset = -1
		drt.Partitions = append(drt.Partitions, drp)
		dr.Topics = append(dr.Topics, drt)
		dr.TimeoutMillis = 10000
		if resp := rc.request(dr, -1).(*kmsg.DeleteRecordsResponse); resp.Topics[0].Partitions[0].ErrorCode != codeInvalidTopic {
			t.Errorf("DeleteRecords on %s: error %d, want %d (INVALID_TOPIC_EXCEPTION)", offsets, resp.Topics[0].Partitions[0].ErrorCode, codeInvalidTopic)
		}
		// The group's committed offset survived all of it.
		fetched, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 7 {
			t.Errorf("committed offset after the attempts: %+v (found %v), want 7", o, ok)
		}
	})

	t.Run("TopicLimits", func(t *testing.T) {
		ctx := ctxT(t, opTimeout)
		name := topicName(t, "")
		tiny := map[string]*string{"segment.bytes": strp("14")}
		if _, err := adm.CreateTopic(ctx, 1, 1, tiny, name+"-tiny"); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("segment.bytes=14: %v, want INVALID_CONFIG (at least 1 MiB since Kafka 4)", err)
		}
		createTopic(t, adm, name, 1, nil)
		alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("1048575")}}, name)
		if err != nil || len(alter) != 1 || alter[0].Err == nil {
			t.Errorf("altering segment.bytes to 1 MiB - 1: %v %+v, want INVALID_CONFIG", err, alter)
		}
		// 10,000 partitions pass Kafka's per-request bound but not this
		// broker's max.broker.partitions; 10,001 pass neither.
		for _, parts := range []int32{10000, 10001} {
			huge := fmt.Sprintf("%s-%d", name, parts)
			if _, err := adm.CreateTopic(ctx, parts, 1, nil, huge); !errors.Is(err, kerr.PolicyViolation) {
				t.Errorf("create %d partitions: %v, want POLICY_VIOLATION", parts, err)
			}
		}
		cp, err := adm.CreatePartitions(ctx, 2500, name)
		if err != nil || !errors.Is(cp[name].Err, kerr.PolicyViolation) {
			t.Errorf("grow to 2500 partitions over max.broker.partitions=2000: %v %+v, want POLICY_VIOLATION", err, cp[name])
		}
		// Nothing was half-created.
		details, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for topic, d := range details {
			if strings.HasPrefix(topic, name) && topic != name {
				t.Errorf("refused topic %s exists with %d partitions", topic, len(d.Partitions))
			}
		}
		if got := len(details[name].Partitions); got != 1 {
			t.Errorf("%s has %d partitions after the refused increase, want 1", name, got)
		}
	})

	t.Run("MetadataAutoCreate", func(t *testing.T) {
		prefix := topicName(t, "")
		metadata := func(allow bool, names []string) *kmsg.MetadataResponse {
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = allow
			for _, name := range names {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(name)
				req.Topics = append(req.Topics, rt)
			}
			return rc.request(req, -1).(*kmsg.MetadataResponse)
		}
		// Listed with a raw Metadata of all topics: the admin client
		// caches metadata and would not see topics created meanwhile.
		created := func() int {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = nil
			count := 0
			for _, mt := range rc.request(req, -1).(*kmsg.MetadataResponse).Topics {
				if mt.Topic != nil && strings.HasPrefix(*mt.Topic, prefix) {
					count++
				}
			}
			return count
		}
		var names []string
		for i := range 200 {
			names = append(names, fmt.Sprintf("%s-%03d", prefix, i))
		}
		metadata(false, names)
		if got := created(); got != 0 {
			t.Fatalf("Metadata with AllowAutoTopicCreation=false created %d topics", got)
		}
		resp := metadata(true, names)
		unknown := 0
		for _, mt := range resp.Topics {
			switch mt.ErrorCode {
			case 0:
			case codeUnknownTopicPartition:
				unknown++
			default:
				t.Errorf("topic %s: error %d", *mt.Topic, mt.ErrorCode)
			}
		}
		if got := created(); got != 10 || unknown != 190 {
			t.Errorf("one Metadata naming 200 missing topics created %d (want 10) and answered %d UNKNOWN_TOPIC_OR_PARTITION (want 190)", got, unknown)
		}
	})

	by.check(100)
	if !n.Alive() {
		t.Fatalf("shoal died: %v", n.exitError())
	}
	t.Logf("peak RSS %d MiB", n.peakRSS()>>20)
}

// initProducerID asks the node for an idempotent producer id.
func initProducerID(t *testing.T, rc *rawConn) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := rc.request(req, -1).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: error %d", resp.ErrorCode)
	}
	return resp.ProducerID
}

// recompress turns an uncompressed batch into one of codec: its records are
// compressed (or replaced by payload(records) when payload is set) and the
// header's attributes, length and CRC are rewritten to match.
func recompress(t *testing.T, b []byte, codec int8, xerial bool, payload func([]byte) []byte) []byte {
	t.Helper()
	const headerSize = 61
	records := b[headerSize:]
	var body []byte
	if payload != nil {
		body = payload(records)
	} else {
		body = testcompress.Records(t, codec, xerial, records)
	}
	out := append(bytes.Clone(b[:headerSize]), body...)
	out[22] = out[22]&^7 | byte(codec)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	fixCRC(out)
	return out
}

// fixCRC recomputes a v2 batch's CRC-32C over attributes..end.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}
