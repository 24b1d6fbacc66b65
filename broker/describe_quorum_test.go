package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeQuorum sends a DescribeQuorum naming each of parts (topic and
// partition index) in its own topic entry.
func describeQuorum(t *testing.T, s *Server, parts ...struct {
	topic     string
	partition int32
}) *kmsg.DescribeQuorumResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	for _, p := range parts {
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = p.topic
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rp.Partition = p.partition
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testContext(t, 10*time.Second), testClient(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestDescribeQuorumNamesTheMetadataPartition: the quorum answers for
// __cluster_metadata-0 alone. A request naming anything else gets
// UNKNOWN_TOPIC_OR_PARTITION on each partition it names, as Kafka's raft
// client answers it.
func TestDescribeQuorumNamesTheMetadataPartition(t *testing.T) {
	s := startTestServer(t)
	type tp = struct {
		topic     string
		partition int32
	}

	resp := describeQuorum(t, s, tp{"__cluster_metadata", 0})
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("valid request: %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderID < 0 || len(p.CurrentVoters) != 1 {
		t.Fatalf("valid request: partition %+v", p)
	}

	for name, parts := range map[string][]tp{
		"other topic":     {{"metadata", 0}},
		"other partition": {{"__cluster_metadata", 1}},
		"two topics":      {{"__cluster_metadata", 0}, {"x", 3}},
	} {
		resp := describeQuorum(t, s, parts...)
		if resp.ErrorCode != 0 || len(resp.Topics) != len(parts) {
			t.Fatalf("%s: %+v", name, resp)
		}
		for i, rt := range resp.Topics {
			if rt.Topic != parts[i].topic || len(rt.Partitions) != 1 {
				t.Fatalf("%s: topic %d: %+v", name, i, rt)
			}
			p := rt.Partitions[0]
			if p.Partition != parts[i].partition || p.ErrorCode != kerr.UnknownTopicOrPartition.Code ||
				p.ErrorMessage == nil || *p.ErrorMessage != "This server does not host this topic-partition." ||
				len(p.CurrentVoters) != 0 {
				t.Errorf("%s: %s-%d answered %+v", name, rt.Topic, parts[i].partition, p)
			}
		}
		if len(resp.Nodes) != 0 {
			t.Errorf("%s: nodes %+v", name, resp.Nodes)
		}
	}
}
