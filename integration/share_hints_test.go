package integration

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A ShareFetch or ShareAcknowledge sent to a node that does not lead the
// partition answers NOT_LEADER_OR_FOLLOWER naming the leader (CurrentLeader)
// and giving its endpoint (NodeEndpoints), as Kafka does: franz-go moves the
// partition to the hinted leader at once, and without a hint waits for a
// metadata refresh while the share consumer gets nothing from it.
func TestShareLeaderHintsCluster(t *testing.T) {
	c := startCluster(t, 2)
	topic := topicName(t, "")
	cl := c.Client(t)
	createTopicRF(t, kadm.NewClient(cl), topic, 1, 1, nil)
	st := c.waitPartition(c.nodes[0], topic, 0, "a leader", func(s partitionState) bool { return s.leader > 0 })
	away := c.nodes[0]
	if away.id() == st.leader {
		away = c.nodes[1]
	}
	c.waitPartition(away, topic, 0, "the same leader", func(s partitionState) bool { return s.leader == st.leader })
	md, err := kadm.NewClient(cl).Metadata(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := [16]byte(md.Topics[topic].ID)

	ctx := ctxT(t, opTimeout)
	onAway := cl.Broker(int(away.id()))
	group, member := topic+"-g", "0123456789abcdef0123456789abcdef"
	// check compares one answer's partition error, leader hint and
	// endpoints ("id@host:port") with the leader's.
	check := func(what string, code int16, leaderID, leaderEpoch int32, endpoints []string) {
		t.Helper()
		want := fmt.Sprintf("%d@%s", st.leader, c.node(st.leader).Addr())
		if code != kerr.NotLeaderForPartition.Code || leaderID != st.leader || leaderEpoch != st.epoch || len(endpoints) != 1 || endpoints[0] != want {
			t.Errorf("%s on node %d: partition error %d, current leader %d epoch %d, endpoints %v; want NOT_LEADER_OR_FOLLOWER naming node %d epoch %d, endpoints [%s]",
				what, away.id(), code, leaderID, leaderEpoch, endpoints, st.leader, st.epoch, want)
		}
	}
	endpoint := func(id int32, host string, port int32) string {
		return fmt.Sprintf("%d@%s", id, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}

	fetch := kmsg.NewPtrShareFetchRequest()
	fetch.GroupID, fetch.MemberID = &group, &member
	fetch.MaxRecords, fetch.BatchSize = 10, 10
	ft := kmsg.NewShareFetchRequestTopic()
	ft.TopicID = topicID
	ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{kmsg.NewShareFetchRequestTopicPartition()}
	fetch.Topics = append(fetch.Topics, ft)
	fresp, err := fetch.RequestWith(ctx, onAway)
	if err != nil {
		t.Fatal(err)
	}
	if fresp.ErrorCode != 0 || len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions) != 1 {
		t.Fatalf("ShareFetch on node %d: error %d, topics %+v", away.id(), fresp.ErrorCode, fresp.Topics)
	}
	var endpoints []string
	for _, e := range fresp.NodeEndpoints {
		endpoints = append(endpoints, endpoint(e.NodeID, e.Host, e.Port))
	}
	fp := fresp.Topics[0].Partitions[0]
	check("ShareFetch", fp.ErrorCode, fp.CurrentLeader.LeaderID, fp.CurrentLeader.LeaderEpoch, endpoints)

	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.GroupID, ack.MemberID = &group, &member
	ack.ShareSessionEpoch = 1
	at := kmsg.NewShareAcknowledgeRequestTopic()
	at.TopicID = topicID
	ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
	ap.AcknowledgementBatches = []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}}}
	at.Partitions = append(at.Partitions, ap)
	ack.Topics = append(ack.Topics, at)
	aresp, err := ack.RequestWith(ctx, onAway)
	if err != nil {
		t.Fatal(err)
	}
	if aresp.ErrorCode != 0 || len(aresp.Topics) != 1 || len(aresp.Topics[0].Partitions) != 1 {
		t.Fatalf("ShareAcknowledge on node %d: error %d, topics %+v", away.id(), aresp.ErrorCode, aresp.Topics)
	}
	endpoints = nil
	for _, e := range aresp.NodeEndpoints {
		endpoints = append(endpoints, endpoint(e.NodeID, e.Host, e.Port))
	}
	ap0 := aresp.Topics[0].Partitions[0]
	check("ShareAcknowledge", ap0.ErrorCode, ap0.CurrentLeader.LeaderID, ap0.CurrentLeader.LeaderEpoch, endpoints)
}
