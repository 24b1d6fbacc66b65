package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setGroupConfig sets one group config with IncrementalAlterConfigs.
func setGroupConfig(t *testing.T, cl *kgo.Client, group, key, value string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceType(resourceGroup), group
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: opSet, Value: &value}}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Resources[0].ErrorCode; c != 0 {
		t.Fatalf("setting %s=%s on group %s: error %d %v", key, value, group, c, deref(resp.Resources[0].ErrorMessage))
	}
}

// Several share consumers on a topic with fewer partitions than consumers
// get every record, each accepted once.
func TestShareGroupDeliversEveryRecordOnce(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 60*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 2, "jobs", nil)
	setGroupConfig(t, testClient(t, s), "workers", "share.auto.offset.reset", "earliest")
	prod := testClient(t, s, kgo.DefaultProduceTopic("jobs"))
	const n = 1000
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	pollCtx, allSeen := context.WithCancel(ctx)
	defer allSeen()
	for w := 0; w < 4; w++ {
		cl := testClient(t, s, kgo.ShareGroup("workers"), kgo.ConsumeTopics("jobs"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
				if len(seen) >= n {
					allSeen()
				}
				mu.Unlock()
				cl.MarkAcks(kgo.AckAccept)
			}
			cl.FlushAcks(ctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("timed out with %d of %d records", len(seen), n)
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct records, want %d", len(seen), n)
	}
	for v, c := range seen {
		if c != 1 {
			t.Errorf("record %s delivered %d times", v, c)
		}
	}
}

// AlterShareGroupOffsets and DescribeShareGroupOffsets answer a partition
// the topic does not have, or a topic that does not exist, with
// UNKNOWN_TOPIC_OR_PARTITION, and still serve the partitions that exist.
func TestShareGroupOffsetsUnknownPartitions(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s)
	createTopic(t, ctx, kadm.NewClient(cl), 2, "jobs", nil)
	const group = "positioned"
	parts := map[string][]int32{"jobs": {0, 1, 2, -1}, "absent": {0}}
	known := func(topic string, p int32) bool { return topic == "jobs" && p >= 0 && p < 2 }

	alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	alter.GroupID = group
	for topic, ps := range parts {
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range ps {
			rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
			rp.Partition, rp.StartOffset = p, 0
			rt.Partitions = append(rt.Partitions, rp)
		}
		alter.Topics = append(alter.Topics, rt)
	}
	aresp, err := alter.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if aresp.ErrorCode != 0 {
		t.Fatalf("AlterShareGroupOffsets: error %d", aresp.ErrorCode)
	}
	answered := 0
	for _, rt := range aresp.Topics {
		for _, rp := range rt.Partitions {
			answered++
			want := int16(0)
			if !known(rt.Topic, rp.Partition) {
				want = kerr.UnknownTopicOrPartition.Code
			}
			if rp.ErrorCode != want {
				t.Errorf("AlterShareGroupOffsets %s/%d: error %d, want %d", rt.Topic, rp.Partition, rp.ErrorCode, want)
			}
		}
	}
	if answered != 5 {
		t.Errorf("AlterShareGroupOffsets answered %d partitions, want 5", answered)
	}

	describe := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	rg.GroupID = group
	for topic, ps := range parts {
		rg.Topics = append(rg.Topics, kmsg.DescribeShareGroupOffsetsRequestGroupTopic{Topic: topic, Partitions: ps})
	}
	describe.Groups = append(describe.Groups, rg)
	dresp, err := describe.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Groups) != 1 || dresp.Groups[0].ErrorCode != 0 {
		t.Fatalf("DescribeShareGroupOffsets: %+v", dresp.Groups)
	}
	answered = 0
	for _, rt := range dresp.Groups[0].Topics {
		for _, rp := range rt.Partitions {
			answered++
			switch {
			case !known(rt.Topic, rp.Partition):
				if rp.ErrorCode != kerr.UnknownTopicOrPartition.Code || rp.StartOffset != -1 {
					t.Errorf("DescribeShareGroupOffsets %s/%d: error %d, start %d; want UNKNOWN_TOPIC_OR_PARTITION, -1",
						rt.Topic, rp.Partition, rp.ErrorCode, rp.StartOffset)
				}
			case rp.ErrorCode != 0 || rp.StartOffset != 0:
				t.Errorf("DescribeShareGroupOffsets %s/%d: error %d, start %d; want start 0",
					rt.Topic, rp.Partition, rp.ErrorCode, rp.StartOffset)
			}
		}
	}
	if answered != 5 {
		t.Errorf("DescribeShareGroupOffsets answered %d partitions, want 5", answered)
	}
}

// ShareFetch and ShareAcknowledge refuse a member id Kafka refuses (empty
// or longer than 36 characters) with a top-level INVALID_REQUEST, before
// any share session is looked at; 36 characters are fine.
func TestShareRequestsRefuseInvalidMemberID(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s)
	id := createTopic(t, ctx, kadm.NewClient(cl), 1, "jobs", nil)
	group := "g"
	for _, tc := range []struct {
		member string
		want   int16
	}{
		{"", kerr.InvalidRequest.Code},
		{"0123456789012345678901234567890123456", kerr.InvalidRequest.Code},
		{"012345678901234567890123456789012345", 0},
	} {
		member := tc.member
		if fresp, _ := openShareSession(t, ctx, cl, group, member, id, 0); fresp.ErrorCode != tc.want {
			t.Errorf("ShareFetch member id of %d characters: error %d, want %d", len(member), fresp.ErrorCode, tc.want)
		}

		ack := kmsg.NewPtrShareAcknowledgeRequest()
		ack.GroupID, ack.MemberID = &group, &member
		ack.ShareSessionEpoch = 1
		aresp, err := ack.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if aresp.ErrorCode != tc.want {
			t.Errorf("ShareAcknowledge member id of %d characters: error %d, want %d", len(member), aresp.ErrorCode, tc.want)
		}
	}
}

// A ShareFetch refused a share session because the broker holds as many as
// group.share.max.share.sessions is answered SHARE_SESSION_LIMIT_REACHED
// only after the request's MaxWaitMillis, as Kafka does: a client that
// retries at once does not spin against the full cache.
func TestShareSessionLimitReachedAnsweredAfterMaxWait(t *testing.T) {
	s := startTestServer(t, "group.share.max.share.sessions=1")
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s)
	id := createTopic(t, ctx, kadm.NewClient(cl), 1, "jobs", nil)
	if resp, _ := openShareSession(t, ctx, cl, "g", "first", id, 0); resp.ErrorCode != 0 {
		t.Fatalf("first member's session: error %d", resp.ErrorCode)
	}
	const wait = 400 * time.Millisecond
	resp, took := openShareSession(t, ctx, cl, "g", "second", id, wait)
	if resp.ErrorCode != kerr.ShareSessionLimitReached.Code {
		t.Fatalf("second member's session: error %d, want SHARE_SESSION_LIMIT_REACHED (%d)", resp.ErrorCode, kerr.ShareSessionLimitReached.Code)
	}
	if took < wait {
		t.Errorf("SHARE_SESSION_LIMIT_REACHED answered after %v, want at least the request's MaxWaitMillis (%v)", took, wait)
	}
}

// openShareSession sends group's member an epoch-0 ShareFetch of partition 0
// of topic id, waiting up to maxWait, and returns the response and how long
// it took.
func openShareSession(t *testing.T, ctx context.Context, cl *kgo.Client, group, member string, id [16]byte, maxWait time.Duration) (*kmsg.ShareFetchResponse, time.Duration) {
	t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = &group, &member
	req.MaxRecords, req.BatchSize, req.MaxWaitMillis = 10, 10, int32(maxWait/time.Millisecond)
	ft := kmsg.NewShareFetchRequestTopic()
	ft.TopicID = id
	ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{kmsg.NewShareFetchRequestTopicPartition()}
	req.Topics = append(req.Topics, ft)
	start := time.Now()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp, time.Since(start)
}

// DescribeShareGroupOffsets does not look the group up, as Kafka's group
// coordinator does not: for an id that names no share group (a missing
// one, a consumer group) it reports what the share coordinators hold,
// nothing, without an error. Every partition then has no start offset,
// and asked for all partitions the group has none.
func TestDescribeShareGroupOffsetsOfOtherGroups(t *testing.T) {
	_, ctx, cl := startWithConsumerGroup(t, "jobs", 2, "consumers")
	for _, group := range []string{"missing", "consumers"} {
		for _, all := range []bool{false, true} {
			rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
			rg.GroupID = group
			if !all {
				rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "jobs", Partitions: []int32{0, 1}}}
			}
			req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			req.Groups = append(req.Groups, rg)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
				t.Errorf("%s (all partitions %v): %+v, want no error", group, all, resp.Groups)
				continue
			}
			answered := 0
			for _, rt := range resp.Groups[0].Topics {
				for _, rp := range rt.Partitions {
					answered++
					if rp.ErrorCode != 0 || rp.StartOffset != -1 {
						t.Errorf("%s %s/%d: error %d, start %d; want no error, -1", group, rt.Topic, rp.Partition, rp.ErrorCode, rp.StartOffset)
					}
				}
			}
			if want := map[bool]int{false: 2, true: 0}[all]; answered != want {
				t.Errorf("%s (all partitions %v): %d partitions answered, want %d", group, all, answered, want)
			}
		}
	}
}

// AlterShareGroupOffsets and DeleteShareGroupOffsets refuse a group they
// cannot change with Kafka's codes and messages: a group of another type,
// a missing one (Delete; Alter creates it) and a share group with members.
func TestShareGroupOffsetsChangeRefusals(t *testing.T) {
	_, ctx, cl := startWithConsumerGroup(t, "jobs", 1, "consumers")
	shb := kmsg.NewPtrShareGroupHeartbeatRequest()
	shb.GroupID, shb.MemberID, shb.SubscribedTopicNames = "workers", "workers-member0", []string{"jobs"}
	if resp, err := shb.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("share join: %v %+v", err, resp)
	}
	alter := func(group string) (int16, string) {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = group
		req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "jobs", Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0}}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode, deref(resp.ErrorMessage)
	}
	del := func(group string) (int16, string) {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = group
		req.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "jobs"}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode, deref(resp.ErrorMessage)
	}
	notFound, nonEmpty := kerr.GroupIDNotFound.Code, kerr.NonEmptyGroup.Code
	for _, tc := range []struct {
		name     string
		call     func(string) (int16, string)
		group    string
		wantCode int16
		wantMsg  string
	}{
		{"alter a consumer group", alter, "consumers", notFound, "Group consumers is not a share group."},
		{"alter a share group with members", alter, "workers", nonEmpty, "The group is not empty."},
		{"delete from a consumer group", del, "consumers", notFound, "Group consumers is not a share group."},
		{"delete from a missing group", del, "missing", notFound, "Group missing not found."},
		{"delete from a share group with members", del, "workers", nonEmpty, "The group is not empty."},
	} {
		if code, msg := tc.call(tc.group); code != tc.wantCode || msg != tc.wantMsg {
			t.Errorf("%s: error %d %q, want %d %q", tc.name, code, msg, tc.wantCode, tc.wantMsg)
		}
	}
}
