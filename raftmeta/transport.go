package raftmeta

import pb "go.etcd.io/raft/v3/raftpb"

// Transport carries raft messages to other quorum members. The Ready loop
// calls Send after the entries and hard state of a Ready are durable, so a
// Transport may send asynchronously and drop messages under pressure: raft
// retries. Send must not block for long, and must not call back into the
// Node synchronously. Messages arriving from peers are handed to Node.Step.
//
// A Transport that sends a MsgSnap must report the outcome with
// Node.ReportSnapshot; one that cannot reach a peer should call
// Node.ReportUnreachable.
type Transport interface {
	Send(msgs []*pb.Message)
}

// noopTransport serves a quorum of one voter, where raft never addresses a
// message to another node.
type noopTransport struct{}

func (noopTransport) Send([]*pb.Message) {}
