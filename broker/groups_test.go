package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

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

// DescribeGroups answers for a KIP-848 group as Kafka does, whatever
// version the client speaks: Dead without an error before version 6,
// GROUP_ID_NOT_FOUND with Kafka's message from it; a missing group alike.
func TestDescribeGroupsOfConsumerGroupByVersion(t *testing.T) {
	s, ctx, _ := startWithConsumerGroup(t, "orders", 1, "kip848")
	for _, version := range []int16{5, 6} {
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(kmsg.DescribeGroups.Int16(), version)
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"kip848", "missing"}
		resp, err := req.RequestWith(ctx, testClient(t, s, kgo.MaxVersions(versions)))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"kip848": "Group kip848 is not a classic group.", "missing": "Group missing not found."}
		for _, g := range resp.Groups {
			var code int16
			msg := ""
			if version >= 6 {
				code, msg = kerr.GroupIDNotFound.Code, want[g.Group]
			}
			if g.State != "Dead" || g.ProtocolType != "" || len(g.Members) != 0 || g.ErrorCode != code || deref(g.ErrorMessage) != msg {
				t.Errorf("v%d %s: state %q protocol type %q, %d members, error %d %q; want Dead, none, error %d %q",
					version, g.Group, g.State, g.ProtocolType, len(g.Members), g.ErrorCode, deref(g.ErrorMessage), code, msg)
			}
		}
		if len(resp.Groups) != 2 {
			t.Errorf("v%d: %d groups described, want 2", version, len(resp.Groups))
		}
	}
}

// startWithConsumerGroup starts a server with a topic of the given
// partitions and a KIP-848 group of one member subscribed to it: where the
// group-type tests start from.
func startWithConsumerGroup(t *testing.T, topic string, partitions int32, group string) (*Server, context.Context, *kgo.Client) {
	t.Helper()
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	cl := testClient(t, s)
	createTopic(t, ctx, kadm.NewClient(cl), partitions, topic, nil)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = group, group+"-member0", 30000
	hb.SubscribedTopicNames, hb.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if resp, err := hb.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("join of consumer group %s: %v %+v", group, err, resp)
	}
	return s, ctx, cl
}
