package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawShareMember is one share group member speaking ShareFetch and
// ShareAcknowledge frames itself, so a test controls exactly what each
// request asks for and sees exactly what it acquired.
type rawShareMember struct {
	t             *testing.T
	rc            *rawConn
	group, member string
	topicID       [16]byte
	epoch         int32
}

// joinRawShareMember joins member to group, subscribed to topic, and waits
// until the group takes it.
func joinRawShareMember(t *testing.T, n *node, group, member, topic string, topicID [16]byte) *rawShareMember {
	t.Helper()
	rc := dialRaw(t, n.Addr())
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
	rc.request(fc, -1)
	waitFor(t, opTimeout, "the share group to take "+member, func() (bool, string) {
		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = group, member, 0, []string{topic}
		resp := rc.request(hb, -1).(*kmsg.ShareGroupHeartbeatResponse)
		return resp.ErrorCode == 0, fmt.Sprintf("error %d", resp.ErrorCode)
	})
	return &rawShareMember{t: t, rc: rc, group: group, member: member, topicID: topicID}
}

// fetch sends one ShareFetch of partition 0 asking for at most maxRecords
// (ShareAcquireMode batch_optimized) and returns the acquired offsets with
// their delivery counts.
func (m *rawShareMember) fetch(maxRecords int32) map[int64]int16 {
	m.t.Helper()
	resp := m.fetchResponse(maxRecords)
	got := map[int64]int16{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 {
				m.t.Fatalf("share fetch: partition error %d", p.ErrorCode)
			}
			for _, a := range p.AcquiredRecords {
				for o := a.FirstOffset; o <= a.LastOffset; o++ {
					got[o] = a.DeliveryCount
				}
			}
		}
	}
	return got
}

// fetchResponse sends one ShareFetch of partition 0 asking for at most
// maxRecords and returns its response, failing the test on a
// request-level error.
func (m *rawShareMember) fetchResponse(maxRecords int32) *kmsg.ShareFetchResponse {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr(m.group), kmsg.StringPtr(m.member), m.epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords, req.BatchSize = 100, 1, 1<<20, maxRecords, maxRecords
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = m.topicID
	rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp := m.rc.request(req, -1).(*kmsg.ShareFetchResponse)
	if resp.ErrorCode != 0 {
		m.t.Fatalf("share fetch at session epoch %d: error %d", m.epoch, resp.ErrorCode)
	}
	m.epoch++
	return resp
}

// ackRequest is a ShareAcknowledge of one offset of partition 0 with one
// acknowledgement type (4, RENEW, sets IsRenewAck), at the member's next
// session epoch: the caller sends it, alone or pipelined with others.
func (m *rawShareMember) ackRequest(offset int64, typ int8) *kmsg.ShareAcknowledgeRequest {
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr(m.group), kmsg.StringPtr(m.member), m.epoch
	req.IsRenewAck = typ == ackRenew
	m.epoch++
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID = m.topicID
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	b := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
	b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = offset, offset, []int8{typ}
	rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, b)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// renew RENEWs offset and returns the partition's error code.
func (m *rawShareMember) renew(offset int64) int16 {
	m.t.Helper()
	resp := m.rc.request(m.ackRequest(offset, ackRenew), -1).(*kmsg.ShareAcknowledgeResponse)
	if resp.ErrorCode != 0 {
		m.t.Fatalf("share acknowledge: error %d", resp.ErrorCode)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestShareGroupParityConfigs drives the KIP-1240 and KIP-1206 group
// configs through IncrementalAlterConfigs and raw share members: values
// outside the broker's group.share.min/max limits are refused with
// INVALID_CONFIG; share.acquire.mode=record_limit makes MaxRecords a hard
// limit; share.renew.acknowledge.enable=false refuses RENEW with
// INVALID_RECORD_STATE; and share.partition.max.record.locks bounds the
// in-flight records, changed on a live share partition.
func TestShareGroupParityConfigs(t *testing.T) {
	t.Parallel()
	n := startShareNode(t, "group.share.max.delivery.count.limit=8")
	adm := n.Admin(t)
	admin := n.Client(t)
	topic := topicName(t, "")
	id := createTopic(t, adm, topic, 1, nil).ID
	rc := dialRaw(t, n.Addr())
	// 30 batches of 10 records: offsets 0-299.
	for b := 0; b < 30; b++ {
		var values [][]byte
		for i := 0; i < 10; i++ {
			values = append(values, []byte(fmt.Sprint(b*10+i)))
		}
		if code, _ := rc.produceRaw(topic, id, 0, recordBatch(time.Now().UnixMilli(), values...)); code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}

	for _, kv := range []string{
		"share.delivery.count.limit=9",          // above group.share.max.delivery.count.limit=8
		"share.partition.max.record.locks=99",   // below group.share.min.partition.max.record.locks
		"share.partition.max.record.locks=4001", // above group.share.max.partition.max.record.locks
		"share.acquire.mode=strict",
		"share.renew.acknowledge.enable=sometimes",
	} {
		err := trySetGroupConfigs(ctxT(t, opTimeout), admin, "bounds", kv)
		if !errors.Is(err, kerr.InvalidConfig) && (err == nil || !strings.Contains(err.Error(), kerr.InvalidConfig.Message)) {
			t.Errorf("%s: %v, want INVALID_CONFIG", kv, err)
		}
	}
	setGroupConfigs(t, admin, "bounds", "share.delivery.count.limit=8", "share.partition.max.record.locks=4000")

	// batch_optimized (the default) hands out the whole first batch.
	setGroupConfigs(t, admin, "batchy", "share.auto.offset.reset=earliest")
	batchy := joinRawShareMember(t, n, "batchy", "batchy-1", topic, id)
	var got map[int64]int16
	waitFor(t, opTimeout, "a batch_optimized fetch to acquire", func() (bool, string) {
		got = batchy.fetch(3)
		return len(got) > 0, "nothing acquired"
	})
	if len(got) != 10 {
		t.Errorf("batch_optimized with MaxRecords 3 acquired %v, want the whole batch 0-9", got)
	}

	// record_limit: exactly MaxRecords, the batch split.
	setGroupConfigs(t, admin, "strict", "share.auto.offset.reset=earliest", "share.acquire.mode=record_limit")
	strict := joinRawShareMember(t, n, "strict", "strict-1", topic, id)
	waitFor(t, opTimeout, "a record_limit fetch to acquire", func() (bool, string) {
		got = strict.fetch(3)
		return len(got) > 0, "nothing acquired"
	})
	if fmt.Sprint(got) != "map[0:1 1:1 2:1]" {
		t.Errorf("record_limit with MaxRecords 3 acquired %v, want 0-2 at delivery count 1", got)
	}

	// RENEW is allowed by default and refused once the group turns it off.
	if code := strict.renew(0); code != 0 {
		t.Errorf("RENEW with the default share.renew.acknowledge.enable: error %d", code)
	}
	setGroupConfigs(t, admin, "strict", "share.renew.acknowledge.enable=false")
	waitFor(t, opTimeout, "RENEW to be refused", func() (bool, string) {
		code := strict.renew(1)
		return code == kerr.InvalidRecordState.Code, fmt.Sprintf("error %d", code)
	})

	// share.partition.max.record.locks bounds what is in flight, and a
	// change applies to the live share partition.
	setGroupConfigs(t, admin, "window", "share.auto.offset.reset=earliest", "share.partition.max.record.locks=100")
	window := joinRawShareMember(t, n, "window", "window-1", topic, id)
	held := map[int64]bool{}
	drain := func(want int) {
		t.Helper()
		waitFor(t, opTimeout, fmt.Sprintf("%d records in flight", want), func() (bool, string) {
			for o := range window.fetch(500) {
				held[o] = true
			}
			return len(held) >= want, fmt.Sprintf("%d in flight", len(held))
		})
		// Another fetch acquires nothing more: the window is full.
		for o := range window.fetch(500) {
			held[o] = true
		}
		if len(held) != want {
			t.Fatalf("%d records in flight, want %d", len(held), want)
		}
	}
	drain(100)
	setGroupConfigs(t, admin, "window", "share.partition.max.record.locks=200")
	drain(200)
}

// TestShareReadCommitted has a transactional producer commit one
// transaction, abort another and leave a third open while a plain producer
// writes after it: a read_committed share group gets the committed records,
// never the aborted ones nor the transaction markers, and nothing past the
// open transaction until it commits; its start offset then reaches the end
// of the log, markers and aborted records archived.
func TestShareReadCommitted(t *testing.T) {
	t.Parallel()
	n, topic, group, admin := startShareTopic(t, 1, "share.auto.offset.reset=earliest", "share.isolation.level=read_committed")
	ctx := ctxT(t, 2*opTimeout)
	txp := n.Client(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic+"-txn"))
	plain := n.Client(t, kgo.DefaultProduceTopic(topic))
	inTxn := func(commit kgo.TransactionEndTry, values ...string) {
		t.Helper()
		if err := txp.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := txp.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		if err := txp.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	inTxn(kgo.TryCommit, "committed-1", "committed-2")
	inTxn(kgo.TryAbort, "aborted-1", "aborted-2")
	// A transaction left open holds back the plain record after it.
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx, kgo.StringRecord("late-committed")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := kgo.StringRecord("plain")
	if err := plain.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	plainOffset := r.Offset

	seen, stop := acceptValues(t, n, group, topic, 100)
	got := map[string]int{}
	take := func(want int) {
		t.Helper()
		waitFor(t, opTimeout, fmt.Sprintf("%d records delivered", want), func() (bool, string) {
			for {
				select {
				case v := <-seen:
					got[v]++
					continue
				default:
				}
				break
			}
			total := 0
			for _, c := range got {
				total += c
			}
			return total >= want, fmt.Sprint(got)
		})
	}
	take(2)
	// The group stops at the open transaction: its start offset is the
	// transaction's first offset (the aborted records and both markers
	// behind it archived), the plain record after it not delivered.
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: plainOffset - 1}, opTimeout)
	if got["plain"] != 0 || got["late-committed"] != 0 {
		t.Fatalf("delivered past the last stable offset: %v", got)
	}
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	take(4)
	end := highWatermarks(t, n, topic)[0]
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: end}, opTimeout)
	stop()
	for len(seen) > 0 {
		got[<-seen]++
	}
	want := map[string]int{"committed-1": 1, "committed-2": 1, "late-committed": 1, "plain": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestShareAutoOffsetResetByDuration starts a share group with
// share.auto.offset.reset=by_duration:PT1H on a partition whose records
// were written three hours, two hours and half an hour ago and now: the
// group starts at the first record of the last hour and delivers only it
// and the newer one.
func TestShareAutoOffsetResetByDuration(t *testing.T) {
	t.Parallel()
	n, topic, group, admin := startShareTopic(t, 1, "share.auto.offset.reset=by_duration:PT1H")
	now := time.Now()
	prod := n.Client(t, kgo.DefaultProduceTopic(topic))
	for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 30 * time.Minute, 0} {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: now.Add(-age)}
		if err := prod.ProduceSync(ctxT(t, opTimeout), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	seen, stop := acceptValues(t, n, group, topic, 10)
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: 4}, opTimeout)
	stop()
	var got []string
	for len(seen) > 0 {
		got = append(got, <-seen)
	}
	if fmt.Sprint(got) != "[2 3]" {
		t.Fatalf("delivered %v, want [2 3]", got)
	}
}

// TestShareDeadLetterAutoCreateNoCopy rejects a record of a group whose
// dead-letter topic does not exist, on a broker with
// errors.deadletterqueue.auto.create.topics.enable: the topic is created
// with errors.deadletterqueue.group.enable=true, and the dead letter, with
// errors.deadletterqueue.copy.record.enable at its default (false), carries
// no key, value or original headers, only where it came from and why.
func TestShareDeadLetterAutoCreateNoCopy(t *testing.T) {
	t.Parallel()
	n := startShareNode(t, "errors.deadletterqueue.auto.create.topics.enable=true")
	admin := n.Client(t)
	topic := topicName(t, "")
	dlq, group := "dlq."+topic, topic+"-g"
	createTopic(t, kadmOf(admin), topic, 1, nil)
	setGroupConfigs(t, admin, group, "share.auto.offset.reset=earliest", "errors.deadletterqueue.topic.name="+dlq)
	prod := n.Client(t, kgo.DefaultProduceTopic(topic))
	r := &kgo.Record{Key: []byte("k"), Value: []byte("poison"), Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("h")}}}
	if err := prod.ProduceSync(ctxT(t, opTimeout), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl := shareClient(t, n, group, topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := pollShareRecords(ctx, cl, func(r *kgo.Record) { cl.MarkAcks(kgo.AckReject, r) })
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: 1}, opTimeout)

	dl := n.Client(t, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, dl, 1, 30*time.Second)
	cancel()
	<-done
	d := got[0]
	if d.Key != nil || d.Value != nil {
		t.Errorf("dead letter copied the record: key %q value %q", d.Key, d.Value)
	}
	h := map[string]string{}
	for _, rh := range d.Headers {
		h[rh.Key] = string(rh.Value)
	}
	if _, ok := h["origin"]; ok {
		t.Errorf("dead letter copied the record's headers: %v", h)
	}
	for k, v := range map[string]string{
		"__dlq.errors.topic": topic, "__dlq.errors.partition": "0", "__dlq.errors.offset": "0",
		"__dlq.errors.group": group, "__dlq.errors.delivery.count": "1",
	} {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	if h["__dlq.errors.message"] == "" {
		t.Errorf("no __dlq.errors.message header: %v", h)
	}
	cfgs, err := kadmOf(admin).DescribeTopicConfigs(ctxT(t, opTimeout), dlq)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(dlq, nil)
	if err != nil {
		t.Fatal(err)
	}
	enabled := ""
	for _, c := range rc.Configs {
		if c.Key == "errors.deadletterqueue.group.enable" {
			enabled = c.MaybeValue()
		}
	}
	if enabled != "true" {
		t.Errorf("auto-created %s has errors.deadletterqueue.group.enable=%q, want true", dlq, enabled)
	}
}

// TestClusterShareLag reads share lag (KIP-1226) from DescribeShareGroupOffsets
// on a 3-node cluster whose topic has one replica per partition, so the
// group's coordinator holds only some partitions: every partition, local or
// not, reports its lag (records past the start offset not yet acknowledged).
func TestClusterShareLag(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, "group.share.heartbeat.interval.ms=500", "group.share.session.timeout.ms=10000")
	topic := topicName(t, "")
	const parts = 6
	cl := c.Client(t, kgo.RetryTimeout(30*time.Second))
	adm := kadmOf(cl)
	c.createReplicated(adm, topic, parts, 1, nil)
	group := topic + "-g"
	setGroupConfigs(t, cl, group, "share.auto.offset.reset=earliest")
	produceSpread(t, c.nodes[0], topic, parts, 4*parts)
	consumeAllShare(t, c, []string{group}, topic, 4*parts)
	waitShareGroupEmpty(t, cl, group)
	produceSpread(t, c.nodes[0], topic, parts, 3*parts)

	waitFor(t, opTimeout, "a lag of 3 on every partition", func() (bool, string) {
		offs, err := adm.DescribeShareGroupOffsets(ctxT(t, opTimeout), group)
		if err != nil {
			return false, err.Error()
		}
		lags := map[int32]int64{}
		for p, o := range offs[group].Offsets[topic] {
			lags[p] = o.Lag
		}
		for p := range int32(parts) {
			if lags[p] != 3 {
				return false, fmt.Sprintf("lags %v", lags)
			}
		}
		return true, ""
	})
}
