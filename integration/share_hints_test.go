package integration

import (
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
	leaderAddr := c.node(st.leader).Addr()

	ctx := ctxT(t, opTimeout)
	onAway := cl.Broker(int(away.id()))
	group, member := topic+"-g", "0123456789abcdef0123456789abcdef"
	checkEndpoints := func(what string, ids []int32, hosts []string, ports []int32) {
		t.Helper()
		if len(ids) != 1 || ids[0] != st.leader || net.JoinHostPort(hosts[0], strconv.Itoa(int(ports[0]))) != leaderAddr {
			t.Errorf("%s: node endpoints %v %v %v, want node %d at %s", what, ids, hosts, ports, st.leader, leaderAddr)
		}
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
	fp := fresp.Topics[0].Partitions[0]
	if fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != st.leader || fp.CurrentLeader.LeaderEpoch != st.epoch {
		t.Errorf("ShareFetch on node %d: partition error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming node %d epoch %d",
			away.id(), fp.ErrorCode, fp.CurrentLeader, st.leader, st.epoch)
	}
	var ids, ports []int32
	var hosts []string
	for _, e := range fresp.NodeEndpoints {
		ids, hosts, ports = append(ids, e.NodeID), append(hosts, e.Host), append(ports, e.Port)
	}
	checkEndpoints("ShareFetch", ids, hosts, ports)

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
	apr := aresp.Topics[0].Partitions[0]
	if apr.ErrorCode != kerr.NotLeaderForPartition.Code || apr.CurrentLeader.LeaderID != st.leader || apr.CurrentLeader.LeaderEpoch != st.epoch {
		t.Errorf("ShareAcknowledge on node %d: partition error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming node %d epoch %d",
			away.id(), apr.ErrorCode, apr.CurrentLeader, st.leader, st.epoch)
	}
	ids, hosts, ports = nil, nil, nil
	for _, e := range aresp.NodeEndpoints {
		ids, hosts, ports = append(ids, e.NodeID), append(hosts, e.Host), append(ports, e.Port)
	}
	checkEndpoints("ShareAcknowledge", ids, hosts, ports)
}
