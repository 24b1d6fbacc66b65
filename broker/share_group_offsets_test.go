package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterShareGroupOffsets and DescribeShareGroupOffsets answer a partition
// the topic does not have, or a topic that does not exist, with
// UNKNOWN_TOPIC_OR_PARTITION, and still serve the partitions that exist.
func TestShareGroupOffsetsUnknownPartitions(t *testing.T) {
	s := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := testClient(t, s)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "jobs"); err != nil {
		t.Fatal(err)
	}
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
