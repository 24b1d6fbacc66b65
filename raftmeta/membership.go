package raftmeta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Member addresses.
//
// A voter's address is configuration (controller.quorum.voters), the same
// on every node. A learner added later brings its own: AddLearnerAt puts
// the address in the context of the configuration change, so every member
// learns it at the log position where the learner joins, and tells its
// transport (PeerSetter). The addresses also travel in every snapshot taken
// afterwards (encodeSnapshot), so a member that catches up from a snapshot,
// or restarts from one, knows them too; entries after the snapshot are
// re-applied on restart, re-teaching the changes they carry.
//
// Invariants (Ready loop state):
//   - addrs holds exactly the learners of confState that were added with an
//     address, each with the address of the latest change that named it.
//   - Every address in addrs has been given to the transport, and every
//     learner removed from addrs that is not a configured voter has been
//     taken away from it.
//   - A voter is never turned into a learner: AddLearnerAt refuses voters,
//     so configured voters keep their configured addresses.

// PeerSetter is implemented by transports that learn member addresses at
// run time (TCPTransport). The Ready loop calls it; like Send, it must not
// block or call back into the Node.
type PeerSetter interface {
	SetPeer(id int32, addr string)
	RemovePeer(id int32)
}

// AddLearner adds a node to the quorum as a learner through a
// configuration change in the log, and waits until this node has applied
// it. The transport must already know how to reach the node; see
// AddLearnerAt to hand every member its address. Only the leader may call
// it; adding a current learner is a no-op, naming a voter is an error.
func (n *Node) AddLearner(ctx context.Context, id int32) error {
	return n.AddLearnerAt(ctx, id, "")
}

// AddLearnerAt adds node id as a learner reachable at addr (host:port of
// the listener where its transport accepts raft connections): the
// address is part of the configuration change, so every member's
// transport learns it when it applies the change. It is how a broker
// (process.roles=broker) joins: the leader then replicates to it, starting
// with a snapshot if its log was compacted.
//
// It is idempotent: a learner already known at addr is left alone; one
// known at another address (a restart on a new port) is re-added, which
// only updates its address. Only the leader may call it; a voter cannot
// be made a learner (kerr.InvalidRequest).
func (n *Node) AddLearnerAt(ctx context.Context, id int32, addr string) error {
	if id < 0 {
		return errorf(kerr.InvalidRequest, "invalid node id %d", id)
	}
	if n.IsVoter(id) {
		return errorf(kerr.InvalidRequest, "node %d is a voter", id)
	}
	done := func() bool {
		if !n.IsLearner(id) {
			return false
		}
		if addr == "" {
			return true
		}
		got, _ := n.LearnerAddr(id)
		return got == addr
	}
	if done() {
		return nil
	}
	cc := &pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: new(raftID(id))}},
		Context: encodeMemberContext(addr),
	}
	if err := n.proposeConfChange(ctx, cc); err != nil {
		return err
	}
	// raft accepts a change proposed while another is still unapplied but
	// turns it into an empty entry, so it may never take effect: wait a
	// bounded time, then let the caller retry (a retry after the change
	// did apply is a no-op).
	wctx, cancel := context.WithTimeout(ctx, confChangeWait)
	defer cancel()
	if _, err := n.WaitFor(wctx, func(*Image) bool { return done() }); err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		return errorf(kerr.NotController, "membership change adding node %d did not take effect; retry", id)
	}
	return nil
}

// confChangeWait bounds the wait for a membership change to apply.
const confChangeWait = 3 * time.Second

// RemoveLearner removes a learner from the quorum. Voters cannot be removed
// this way.
func (n *Node) RemoveLearner(ctx context.Context, id int32) error {
	if !n.IsLearner(id) {
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

// IsVoter reports whether node id is a voter in the applied membership.
func (n *Node) IsVoter(id int32) bool {
	cs := n.members.Load()
	return slices.Contains(cs.GetVoters(), raftID(id)) || slices.Contains(cs.GetVotersOutgoing(), raftID(id))
}

// IsLearner reports whether node id is a learner in the applied membership.
func (n *Node) IsLearner(id int32) bool {
	cs := n.members.Load()
	return slices.Contains(cs.GetLearners(), raftID(id)) || slices.Contains(cs.GetLearnersNext(), raftID(id))
}

// LearnerAddr returns the address a learner was added with, as of the
// applied log.
func (n *Node) LearnerAddr(id int32) (string, bool) {
	addrs := n.addrsPub.Load()
	if addrs == nil {
		return "", false
	}
	a, ok := (*addrs)[id]
	return a, ok
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

// applyConfChange runs on the Ready loop for a committed configuration
// change: raft's membership, then the member addresses it carries.
func (n *Node) applyConfChange(cc pb.ConfChangeI) {
	n.confState = n.rn.ApplyConfChange(cc)
	n.members.Store(n.confState)
	next := memberAddrsAfter(n.addrs, cc.AsV2(), n.confState)
	n.setAddrs(next)
}

// memberAddrsAfter is the address book after a configuration change: a
// learner added with an address gets it, a node no longer a learner loses
// its entry. It does not modify addrs.
func memberAddrsAfter(addrs map[int32]string, cc *pb.ConfChangeV2, cs *pb.ConfState) map[int32]string {
	next := maps.Clone(addrs)
	if next == nil {
		next = map[int32]string{}
	}
	addr := decodeMemberContext(cc.GetContext())
	for _, c := range cc.GetChanges() {
		if c.GetType() == pb.ConfChangeType_ConfChangeAddLearnerNode && addr != "" {
			next[nodeID(c.GetNodeId())] = addr
		}
	}
	for id := range next {
		r := raftID(id)
		if !slices.Contains(cs.GetLearners(), r) && !slices.Contains(cs.GetLearnersNext(), r) {
			delete(next, id)
		}
	}
	return next
}

// setAddrs replaces the address book and brings the transport in line
// with it. Ready loop only.
func (n *Node) setAddrs(next map[int32]string) {
	ps, _ := n.transport.(PeerSetter)
	for id, addr := range next {
		if old, ok := n.addrs[id]; (!ok || old != addr) && ps != nil {
			ps.SetPeer(id, addr)
		}
	}
	for id := range n.addrs {
		if _, ok := next[id]; !ok && ps != nil {
			if _, voter := n.cfg.Voters[id]; !voter {
				ps.RemovePeer(id)
			}
		}
	}
	n.addrs = next
	pub := maps.Clone(next)
	n.addrsPub.Store(&pub)
}

// The context of a membership change made by AddLearnerAt: a version byte
// and the learner's address. An empty context (changes made without an
// address, or by an older build) carries none.
const memberContextVersion = 1

func encodeMemberContext(addr string) []byte {
	if addr == "" {
		return nil
	}
	e := &encoder{}
	e.u8(memberContextVersion)
	e.str(addr)
	return e.b
}

// decodeMemberContext returns the address in a change's context, "" if
// there is none or it cannot be read (a change must apply on every node
// alike, so an unreadable context is ignored rather than fatal).
func decodeMemberContext(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	d := &decoder{b: b}
	if d.u8() != memberContextVersion {
		return ""
	}
	addr := d.str()
	if d.done() != nil {
		return ""
	}
	return addr
}

// Snapshot data. A snapshot without member addresses is the encoded image
// alone (as every bootstrap snapshot is). One with addresses is wrapped:
//
//	snapshotEnvelope  1 byte (never a valid image version)
//	version           1 byte (1)
//	count             uvarint, then count × (node id varint, address string)
//	image             the rest: the encoded image
const (
	snapshotEnvelope        = 0xF0
	snapshotEnvelopeVersion = 1
)

func encodeSnapshot(img *Image, addrs map[int32]string) []byte {
	if len(addrs) == 0 {
		return encodeImage(img)
	}
	e := &encoder{}
	e.u8(snapshotEnvelope)
	e.u8(snapshotEnvelopeVersion)
	e.uvarint(uint64(len(addrs)))
	for _, id := range slices.Sorted(maps.Keys(addrs)) {
		e.i32(id)
		e.str(addrs[id])
	}
	return append(e.b, encodeImage(img)...)
}

func decodeSnapshot(b []byte) (*Image, map[int32]string, error) {
	addrs := map[int32]string{}
	if len(b) > 0 && b[0] == snapshotEnvelope {
		d := &decoder{b: b}
		d.u8()
		if v := d.u8(); v != snapshotEnvelopeVersion && d.err == nil {
			return nil, nil, fmt.Errorf("raftmeta: unknown snapshot envelope version %d", v)
		}
		for range d.count() {
			id := d.i32()
			addrs[id] = d.str()
		}
		if d.err != nil {
			return nil, nil, d.err
		}
		b = d.b
	}
	img, err := decodeImage(b)
	if err != nil {
		return nil, nil, err
	}
	return img, addrs, nil
}
