package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The share coordinator RPCs: what WriteShareGroupState stores,
// ReadShareGroupState and its summary return; DeleteShareGroupState
// removes it; Initialize refuses an older state epoch.
func TestShareStateRPCs(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 20*time.Second)
	if err := s.coord.ShareState.EnsureTopic(ctx); err != nil {
		t.Fatal(err)
	}
	cl := testClient(t, s)
	topicID := [16]byte{7}

	w := kmsg.NewPtrWriteShareGroupStateRequest()
	w.GroupID = "g"
	wp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	wp.Partition, wp.StateEpoch, wp.LeaderEpoch, wp.StartOffset = 3, 2, 0, 100
	wp.StateBatches = []kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch{
		{FirstOffset: 100, LastOffset: 104, DeliveryState: 2, DeliveryCount: 1},
		{FirstOffset: 105, LastOffset: 105, DeliveryState: 4, DeliveryCount: 5},
	}
	w.Topics = []kmsg.WriteShareGroupStateRequestTopic{{TopicID: topicID, Partitions: []kmsg.WriteShareGroupStateRequestTopicPartition{wp}}}
	wr, err := w.RequestWith(ctx, cl)
	if err != nil || wr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("write: %v %+v", err, wr)
	}

	read := func() kmsg.ReadShareGroupStateResponseTopicPartition {
		r := kmsg.NewPtrReadShareGroupStateRequest()
		r.GroupID = "g"
		r.Topics = []kmsg.ReadShareGroupStateRequestTopic{{TopicID: topicID, Partitions: []kmsg.ReadShareGroupStateRequestTopicPartition{{Partition: 3}}}}
		rr, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return rr.Topics[0].Partitions[0]
	}
	got := read()
	if got.ErrorCode != 0 || got.StartOffset != 100 || got.StateEpoch != 2 || len(got.StateBatches) != 2 ||
		got.StateBatches[1].DeliveryState != 4 || got.StateBatches[1].DeliveryCount != 5 {
		t.Fatalf("read back %+v", got)
	}

	sum := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	sum.GroupID = "g"
	sum.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: topicID, Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: 3}}}}
	sr, err := sum.RequestWith(ctx, cl)
	if err != nil || sr.Topics[0].Partitions[0].StartOffset != 100 {
		t.Fatalf("summary: %v %+v", err, sr)
	}

	init := kmsg.NewPtrInitializeShareGroupStateRequest()
	init.GroupID = "g"
	init.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: topicID, Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: 3, StateEpoch: 1, StartOffset: 0}}}}
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.Topics[0].Partitions[0].ErrorCode != kerr.FencedStateEpoch.Code {
		t.Fatalf("initialize with an older state epoch: %v %+v", err, ir)
	}

	del := kmsg.NewPtrDeleteShareGroupStateRequest()
	del.GroupID = "g"
	del.Topics = []kmsg.DeleteShareGroupStateRequestTopic{{TopicID: topicID, Partitions: []kmsg.DeleteShareGroupStateRequestTopicPartition{{Partition: 3}}}}
	if dr, err := del.RequestWith(ctx, cl); err != nil || dr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete: %v %+v", err, dr)
	}
	if got := read(); got.StartOffset != -1 || len(got.StateBatches) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
}
