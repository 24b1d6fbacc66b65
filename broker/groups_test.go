package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordruntime"
)

// A KIP-848 regex subscription is matched against every topic, internal ones
// included, as Kafka's group coordinator does: naming __consumer_offsets in
// the pattern assigns it.
func TestConsumerGroupRegexMatchesInternalTopics(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s)
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, 2, "orders", nil)

	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "regex-internal", "regex-internal-member0", 0
	req.RebalanceTimeoutMillis = 30000
	req.SubscribedTopicRegex = kmsg.StringPtr(coordruntime.OffsetsTopic + "|orders")
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	var assigned, want map[[16]byte]int
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("heartbeat: error %d %s", resp.ErrorCode, deref(resp.ErrorMessage))
		}
		req.MemberEpoch = resp.MemberEpoch
		req.SubscribedTopicRegex, req.Topics = nil, nil // unchanged from here on
		if resp.Assignment != nil {
			assigned = map[[16]byte]int{}
			for _, tp := range resp.Assignment.Topics {
				assigned[tp.TopicID] = len(tp.Partitions)
			}
		}
		topics, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want = map[[16]byte]int{}
		for _, name := range []string{coordruntime.OffsetsTopic, "orders"} {
			if d, ok := topics[name]; ok {
				want[d.ID] = len(d.Partitions)
			}
		}
		if len(want) == 2 && fmt.Sprint(assigned) == fmt.Sprint(want) {
			return
		}
		// Heartbeat again, as a member does, for the assignment to
		// catch up.
		time.Sleep(time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond / 10)
	}
	t.Fatalf("assigned %v (topic id: partitions), want %v: all of %s and orders", assigned, want, coordruntime.OffsetsTopic)
}
