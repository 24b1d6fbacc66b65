package broker

// DescribeQuorum (key 55), v0-v2 on every listener; relayed to the active
// controller, which answers from its etcd raft status.
//
// Deviation: the quorum is etcd raft, not KRaft: the leader epoch is the raft
// term, offsets are raft indexes, and the last fetch and caught-up times are
// the last contact the leader saw.

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// metadataTopic is the name of the metadata log's one partition (index 0)
// in DescribeQuorum.
const metadataTopic = "__cluster_metadata"

func (s *Server) handleDescribeQuorum(ctx context.Context, _ *reqCtx, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	if !namesMetadataPartition(req) {
		// Kafka's raft client serves one partition: a request naming
		// anything else, or more, fails on every partition it names.
		msg := kerr.UnknownTopicOrPartition.Description
		for _, t := range req.Topics {
			rt := kmsg.NewDescribeQuorumResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeQuorumResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode, rp.ErrorMessage = kerr.UnknownTopicOrPartition.Code, &msg
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	st, err := s.meta.QuorumStatus(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumResponseTopicPartition()
	rp.LeaderID = st.LeaderID
	rp.LeaderEpoch = int32(st.Term)
	rp.HighWatermark = int64(st.CommitIndex)
	state := func(r raftmeta.ReplicaStatus) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = r.NodeID, r.MatchIndex
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1
		if !r.LastContact.IsZero() {
			rs.LastFetchTimestamp = r.LastContact.UnixMilli()
			rs.LastCaughtUpTimestamp = rs.LastFetchTimestamp
		}
		return rs
	}
	for _, v := range st.Voters {
		rp.CurrentVoters = append(rp.CurrentVoters, state(v))
	}
	for _, l := range st.Learners {
		rp.Observers = append(rp.Observers, state(l))
	}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	for _, v := range st.Voters {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.NodeID
		if addr, ok := s.cfg.Voters[v.NodeID]; ok {
			host, port, err := net.SplitHostPort(addr)
			if err == nil {
				l := kmsg.NewDescribeQuorumResponseNodeListener()
				l.Name, l.Host = "CONTROLLER", host
				p, _ := strconv.ParseUint(port, 10, 16)
				l.Port = uint16(p)
				n.Listeners = append(n.Listeners, l)
			}
		}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp, nil
}

// namesMetadataPartition reports whether req asks for exactly the metadata
// log's partition.
func namesMetadataPartition(req *kmsg.DescribeQuorumRequest) bool {
	return len(req.Topics) == 1 && req.Topics[0].Topic == metadataTopic &&
		len(req.Topics[0].Partitions) == 1 && req.Topics[0].Partitions[0].Partition == 0
}
