package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchEmptyRecordSetIsNotNull checks that a Fetch partition with no data
// (caught up, empty, or answered with an error) carries a zero-length record
// set, as Kafka sends, and never a null one: librdkafka rejects the whole
// response on a null set ("invalid MessageSetSize -1") and kafka-python
// fails on it, so a caught-up consumer of those clients would stall.
func TestFetchEmptyRecordSetIsNotNull(t *testing.T) {
	t.Parallel()
	n, _, topic, id := startNodeWithTopic(t, nodeOpts{}, 2)
	rc := dialRaw(t, n.Addr())
	if code, _ := rc.produceRaw(topic, id, 0, recordBatch(time.Now().UnixMilli(), []byte("one"))); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	// v11 is the last version with an int32 record-set length, v12 the
	// first with a compact (uvarint) one; v13 names topics by id.
	for _, v := range []int16{4, 11, 12, rc.version(kmsg.NewPtrFetchRequest())} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 0
			req.MaxBytes = 1 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, id
			for _, p := range []struct {
				partition int32
				offset    int64
			}{
				{0, 1}, // caught up
				{1, 0}, // empty
				{9, 0}, // no such partition: an error
			} {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			resp := rc.request(req, v).(*kmsg.FetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
				t.Fatalf("fetch response has %d topics, want 1 with 3 partitions", len(resp.Topics))
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.RecordBatches == nil || len(p.RecordBatches) != 0 {
					t.Errorf("partition %d (error %d): record set %s, want empty and not null", p.Partition, p.ErrorCode, describeBytes(p.RecordBatches))
				}
			}
			if code := resp.Topics[0].Partitions[2].ErrorCode; code == 0 {
				t.Errorf("partition 9 of a 2-partition topic answered without error")
			}
		})
	}
}

// describeBytes tells a null byte field from an empty one.
func describeBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("of %d bytes", len(b))
}

// TestPipelinedOffsetCommitsApplyInOrder sends 200 OffsetCommits and an
// OffsetFetch back to back on one connection: Kafka processes a
// connection's requests one at a time, so the fetch sees the last commit.
// Clients rely on it (Node clients commit without awaiting the previous
// commit).
func TestPipelinedOffsetCommitsApplyInOrder(t *testing.T) {
	t.Parallel()
	n, _, topic, id := startNodeWithTopic(t, nodeOpts{}, 1)
	group := topicName(t, "group")
	rc := dialRaw(t, n.Addr())

	commit := func(offset int64) *kmsg.OffsetCommitRequest {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, -1, ""
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	commitErr := func(r kmsg.Response) int16 {
		resp := r.(*kmsg.OffsetCommitResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("offset commit response has %d topics, want 1 with 1 partition", len(resp.Topics))
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// The first commit creates __consumer_offsets and waits for its
	// coordinator to load.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
	rc.request(fc, -1)
	waitFor(t, opTimeout, "the group coordinator to accept a commit", func() (bool, string) {
		code := commitErr(rc.request(commit(0), -1))
		return code == 0, fmt.Sprintf("error %d", code)
	})

	const commits = 200
	reqs := make([]kmsg.Request, 0, commits+1)
	for i := 1; i <= commits; i++ {
		reqs = append(reqs, commit(int64(i)))
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = group
	fg := kmsg.NewOffsetFetchRequestGroup()
	fg.Group = group
	ft := kmsg.NewOffsetFetchRequestGroupTopic()
	ft.Topic, ft.TopicID, ft.Partitions = topic, id, []int32{0}
	fg.Topics = append(fg.Topics, ft)
	fetch.Groups = append(fetch.Groups, fg)
	fetch.Topics = append(fetch.Topics, kmsg.OffsetFetchRequestTopic{Topic: topic, Partitions: []int32{0}})
	reqs = append(reqs, fetch)

	resps := rc.pipeline(reqs...)
	for i, r := range resps[:commits] {
		if code := commitErr(r); code != 0 {
			t.Errorf("commit of offset %d: error %d", i+1, code)
		}
	}
	got := committedOffset(t, resps[commits].(*kmsg.OffsetFetchResponse))
	if got != commits {
		t.Fatalf("OffsetFetch after %d pipelined commits sees offset %d, want %d", commits, got, commits)
	}
}

// committedOffset is the one partition's offset in an OffsetFetch response
// of any version.
func committedOffset(t *testing.T, resp *kmsg.OffsetFetchResponse) int64 {
	t.Helper()
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		if g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 1 {
			t.Fatalf("offset fetch: group error %d, %d topics", g.ErrorCode, len(g.Topics))
		}
		p := g.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("offset fetch: partition error %d", p.ErrorCode)
		}
		return p.Offset
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("offset fetch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].Offset
}

// TestPipelinedCreateDeleteCreateTopic creates, deletes and creates again
// the same topics in requests pipelined on one connection: each must see
// the one before it.
func TestPipelinedCreateDeleteCreateTopic(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	rc := dialRaw(t, n.Addr())
	create := func(name string) *kmsg.CreateTopicsRequest {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		return req
	}
	del := func(name string) *kmsg.DeleteTopicsRequest {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 10000
		req.TopicNames = []string{name}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		return req
	}
	const rounds = 3
	var reqs []kmsg.Request
	var names []string
	for i := 0; i < rounds; i++ {
		name := topicName(t, fmt.Sprint(i))
		names = append(names, name)
		reqs = append(reqs, create(name), del(name), create(name))
	}
	meta := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		meta.Topics = append(meta.Topics, mt)
	}
	reqs = append(reqs, meta)

	resps := rc.pipeline(reqs...)
	var recreatedIDs [rounds][16]byte
	for i := 0; i < rounds; i++ {
		c1 := resps[3*i].(*kmsg.CreateTopicsResponse).Topics[0]
		d := resps[3*i+1].(*kmsg.DeleteTopicsResponse).Topics[0]
		c2 := resps[3*i+2].(*kmsg.CreateTopicsResponse).Topics[0]
		if c1.ErrorCode != 0 || d.ErrorCode != 0 || c2.ErrorCode != 0 {
			t.Errorf("%s: create error %d, delete error %d, create again error %d; want all 0", names[i], c1.ErrorCode, d.ErrorCode, c2.ErrorCode)
		}
		if c1.TopicID == c2.TopicID {
			t.Errorf("%s: created twice with the same id", names[i])
		}
		recreatedIDs[i] = c2.TopicID
	}
	mresp := resps[len(resps)-1].(*kmsg.MetadataResponse)
	for _, mt := range mresp.Topics {
		for i, name := range names {
			if mt.Topic != nil && *mt.Topic == name && (mt.ErrorCode != 0 || mt.TopicID != recreatedIDs[i]) {
				t.Errorf("metadata after the pipeline: %s has error %d, id %x; want the id of the second create", name, mt.ErrorCode, mt.TopicID)
			}
		}
	}
}

// Acknowledge types of ShareFetch and ShareAcknowledge (KIP-932).
const (
	ackAccept  int8 = 1
	ackRelease int8 = 2
	ackRenew   int8 = 4
)

// TestPipelinedShareAcknowledgementsApplyInOrder sends, back to back on one
// connection, pairs of acknowledgements of the same record: the second of
// each pair must find the record already settled by the first, and every
// request must see the share session epoch the one before it left.
func TestPipelinedShareAcknowledgementsApplyInOrder(t *testing.T) {
	t.Parallel()
	n := startShareNode(t)
	adm := n.Admin(t)
	topic := topicName(t, "")
	id := createTopic(t, adm, topic, 1, nil).ID
	group := topicName(t, "group")
	setGroupConfigs(t, n.Client(t), group, "share.auto.offset.reset=earliest")
	const records = 10
	var values [][]byte
	for i := 0; i < records; i++ {
		values = append(values, []byte(fmt.Sprint(i)))
	}
	rc := dialRaw(t, n.Addr())
	if code, _ := rc.produceRaw(topic, id, 0, recordBatch(time.Now().UnixMilli(), values...)); code != 0 {
		t.Fatalf("produce: error %d", code)
	}

	m := joinRawShareMember(t, n, group, "pipelined-share-member", topic, id)
	fetch := func() map[int64]int16 { return m.fetch(100) }
	acquired := map[int64]int16{}
	waitFor(t, opTimeout, "every record to be acquired", func() (bool, string) {
		for o, c := range fetch() {
			acquired[o] = c
		}
		return len(acquired) == records, fmt.Sprintf("acquired %d of %d", len(acquired), records)
	})

	// Even offsets: RELEASE, then ACCEPT (which must fail: released).
	// Odd offsets: ACCEPT, then RELEASE (which must fail: accepted).
	var reqs []kmsg.Request
	for o := int64(0); o < records; o++ {
		if o%2 == 0 {
			reqs = append(reqs, m.ackRequest(o, ackRelease), m.ackRequest(o, ackAccept))
		} else {
			reqs = append(reqs, m.ackRequest(o, ackAccept), m.ackRequest(o, ackRelease))
		}
	}
	resps := m.rc.pipeline(reqs...)
	for i, r := range resps {
		resp := r.(*kmsg.ShareAcknowledgeResponse)
		o, second := int64(i/2), i%2 == 1
		if resp.ErrorCode != 0 {
			t.Errorf("acknowledgement %d (offset %d): request error %d", i, o, resp.ErrorCode)
			continue
		}
		code := resp.Topics[0].Partitions[0].ErrorCode
		switch {
		case !second && code != 0:
			t.Errorf("first acknowledgement of offset %d: error %d, want none", o, code)
		case second && code == 0:
			t.Errorf("second acknowledgement of offset %d succeeded; the first had already settled the record", o)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The released (even) records come back, delivered a second time;
	// the accepted ones never do.
	again := map[int64]int16{}
	waitFor(t, opTimeout, "the released records to be acquired again", func() (bool, string) {
		for o, c := range fetch() {
			again[o] = c
		}
		return len(again) >= records/2, fmt.Sprintf("acquired %v", again)
	})
	for o, c := range again {
		if o%2 == 1 || c != 2 {
			t.Errorf("acquired offset %d (delivery count %d) again; want only the even offsets, each for the second time", o, c)
		}
	}
}
