package raftmeta

import (
	"context"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
)

// QuorumStatus is the state of the quorum as one node sees it, the data of
// a DescribeQuorum response. Only the leader knows how far each member has
// replicated; elsewhere MatchIndex is -1 for every member but this one.
type QuorumStatus struct {
	// NodeID is the node that answered.
	NodeID   int32
	LeaderID int32 // -1 if unknown
	IsLeader bool
	Term     uint64
	// CommitIndex is the highest index known committed (Kafka's high
	// watermark of the metadata log).
	CommitIndex uint64
	Voters      []ReplicaStatus
	Learners    []ReplicaStatus
}

// ReplicaStatus is one quorum member.
type ReplicaStatus struct {
	NodeID int32
	// MatchIndex is the highest log index known to be on the member (its
	// log end offset), -1 if unknown.
	MatchIndex int64
	// LastContact is when a message from the member last arrived here;
	// zero if never. For the answering node itself it is now.
	LastContact time.Time
}

// QuorumStatus asks the Ready loop for the membership and, on the leader,
// each member's replication progress.
func (n *Node) QuorumStatus(ctx context.Context) (QuorumStatus, error) {
	res := make(chan QuorumStatus, 1)
	f := func(rn *raft.RawNode) { res <- n.quorumStatus(rn) }
	select {
	case n.queryC <- f:
	case <-ctx.Done():
		return QuorumStatus{}, ctx.Err()
	case <-n.doneC:
		return QuorumStatus{}, ErrClosed
	}
	select {
	case s := <-res:
		return s, nil
	case <-ctx.Done():
		return QuorumStatus{}, ctx.Err()
	}
}

// quorumStatus runs on the Ready loop.
func (n *Node) quorumStatus(rn *raft.RawNode) QuorumStatus {
	st := rn.Status()
	now := time.Now()
	self := raftID(n.cfg.NodeID)
	qs := QuorumStatus{
		NodeID:      n.cfg.NodeID,
		LeaderID:    nodeID(st.Lead),
		IsLeader:    st.RaftState == raft.StateLeader,
		Term:        st.GetTerm(),
		CommitIndex: st.GetCommit(),
	}
	last, _ := n.st.LastIndex()
	member := func(id uint64) ReplicaStatus {
		r := ReplicaStatus{NodeID: nodeID(id), MatchIndex: -1, LastContact: n.contact[id]}
		switch {
		case id == self:
			r.MatchIndex = int64(last)
			r.LastContact = now
		case qs.IsLeader:
			if pr, ok := st.Progress[id]; ok {
				r.MatchIndex = int64(pr.Match)
			}
		}
		return r
	}
	voters := slices.Concat(n.confState.GetVoters(), n.confState.GetVotersOutgoing())
	slices.Sort(voters)
	for _, id := range slices.Compact(voters) {
		qs.Voters = append(qs.Voters, member(id))
	}
	learners := slices.Concat(n.confState.GetLearners(), n.confState.GetLearnersNext())
	slices.Sort(learners)
	for _, id := range slices.Compact(learners) {
		qs.Learners = append(qs.Learners, member(id))
	}
	return qs
}
