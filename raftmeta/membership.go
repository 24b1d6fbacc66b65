package raftmeta

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// AddLearner adds a node to the quorum as a learner through a
// configuration change in the log, and waits until this node has applied
// it. It is how a broker (process.roles=broker) that was not in the
// membership the log was created with joins: the leader then replicates
// to it, starting with a snapshot if its log was compacted. The transport
// must already know how to reach the node (TCPTransport.SetPeer). Only the
// leader may call it; adding a current member is a no-op.
func (n *Node) AddLearner(ctx context.Context, id int32) error {
	if id < 0 {
		return errorf(kerr.InvalidRequest, "invalid node id %d", id)
	}
	if n.isMember(raftID(id)) {
		return nil
	}
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: new(raftID(id))}}}
	if err := n.proposeConfChange(ctx, cc); err != nil {
		return err
	}
	_, err := n.WaitFor(ctx, func(*Image) bool { return n.isMember(raftID(id)) })
	return err
}

// RemoveLearner removes a learner from the quorum. Voters cannot be removed
// this way.
func (n *Node) RemoveLearner(ctx context.Context, id int32) error {
	cs := n.members.Load()
	if !slices.Contains(cs.GetLearners(), raftID(id)) {
		if n.isMember(raftID(id)) {
			return errorf(kerr.InvalidRequest, "node %d is a voter", id)
		}
		return nil
	}
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: new(raftID(id))}}}
	if err := n.proposeConfChange(ctx, cc); err != nil {
		return err
	}
	_, err := n.WaitFor(ctx, func(*Image) bool { return !n.isMember(raftID(id)) })
	return err
}

func (n *Node) proposeConfChange(ctx context.Context, cc *pb.ConfChangeV2) error {
	if !n.IsLeader() {
		return ErrNotController
	}
	res := make(chan error, 1)
	f := func(rn *raft.RawNode) {
		if rn.BasicStatus().RaftState != raft.StateLeader {
			res <- ErrNotController
			return
		}
		if err := rn.ProposeConfChange(cc); err != nil {
			// Another change is still pending, or leadership is moving.
			res <- errorf(kerr.NotController, "membership change refused: %v", err)
			return
		}
		res <- nil
	}
	select {
	case n.queryC <- f:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isMember reports whether raft id is a voter or learner in the applied
// membership.
func (n *Node) isMember(id uint64) bool {
	cs := n.members.Load()
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetLearners(), id) ||
		slices.Contains(cs.GetVotersOutgoing(), id) || slices.Contains(cs.GetLearnersNext(), id)
}
