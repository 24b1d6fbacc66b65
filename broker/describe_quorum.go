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

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

func (s *Server) handleDescribeQuorum(ctx context.Context, _ *reqCtx, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	st, err := s.meta.QuorumStatus(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = "__cluster_metadata"
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
