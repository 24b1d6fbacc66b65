package raftmeta

import (
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Campaigning when the leader's process is gone.
//
// raft finds a dead leader by its silence: a follower campaigns once no
// heartbeat arrived for its randomized election timeout (1-2 s at the
// default tick). When the leader's process died on a host that still
// answers, the transport knows within milliseconds: the leader's
// connection to this node closed and its listener refuses new ones
// (TCPTransport reports PeerGone). Waiting out the timeout then only keeps
// the cluster without an active controller, and every broker the dead node
// led partitions for waits with it.
//
// Campaigning at once is not enough by itself. With check-quorum the other
// followers, which heard from the leader within the election timeout,
// ignore vote requests (their leader lease); and if every survivor
// campaigned at the same moment they would split the vote and wait out the
// timeout anyway. So:
//
//   - The campaign is the one a leadership transfer starts (raft's
//     MsgTimeoutNow, here on behalf of the gone leader): it skips pre-vote
//     and carries the flag that overrides the other voters' lease, as the
//     old leader would when handing over. Pre-vote and the lease protect a
//     healthy leader from a follower that merely lost touch with it; the
//     refused connection says there is no leader left to protect. A wrong
//     report costs one extra election, never safety: raft's voting rules
//     still keep a node without the committed log from winning.
//   - The survivors take turns by node id: the lowest voter other than the
//     gone leader campaigns at once, the next goneStaggerTicks later, and
//     so on, each only while the term has not moved and it still follows
//     the gone leader (otherwise someone campaigned, and raft's own rules
//     finish the job).
//
// Only voters campaign; a learner never does.

// goneStaggerTicks is how many ticks apart the survivors campaign: long
// enough for the first campaign's vote round trip (and its fsyncs) on a
// loaded machine, short against the election timeout it replaces.
const goneStaggerTicks = 2

// goneLeader is a leader this node found gone and will campaign to replace
// once ticks run out. Owned by the Ready loop; lead is raft.None when
// there is none.
type goneLeader struct {
	lead  uint64 // raft id of the leader that is gone
	term  uint64 // the term it led
	ticks int    // ticks left before this node campaigns
}

// PeerGone tells the node that a peer's process is gone (see the comment
// above). It never blocks; a report that does not fit the queue is
// dropped, and the next refused redial reports again.
func (n *Node) PeerGone(id int32) {
	n.report(func(rn *raft.RawNode) { n.peerGone(rn, raftID(id)) })
}

// peerGone runs on the Ready loop.
func (n *Node) peerGone(rn *raft.RawNode, id uint64) {
	st := rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != id || st.Lead == raft.None {
		return
	}
	if n.gone.lead == id && n.gone.term == st.GetTerm() {
		return // already counting down for this leader
	}
	rank := -1
	others := 0
	for _, v := range slices.Sorted(slices.Values(n.confState.GetVoters())) {
		if v == id {
			continue
		}
		if v == st.ID {
			rank = others
		}
		others++
	}
	if rank < 0 {
		return // not a voter
	}
	n.gone = goneLeader{lead: id, term: st.GetTerm(), ticks: rank * goneStaggerTicks}
	n.log.Warn("metadata leader's process is gone; campaigning without waiting for the election timeout",
		"leader", nodeID(id), "term", st.GetTerm(), "after_ticks", n.gone.ticks)
	n.campaignIfLeaderGone(rn)
}

// tickLeaderGone counts down to this node's turn; the Ready loop calls it on
// every tick.
func (n *Node) tickLeaderGone(rn *raft.RawNode) {
	if n.gone.lead == raft.None {
		return
	}
	n.gone.ticks--
	n.campaignIfLeaderGone(rn)
}

// campaignIfLeaderGone campaigns when it is this node's turn and nothing
// has happened since the leader was found gone.
func (n *Node) campaignIfLeaderGone(rn *raft.RawNode) {
	g := n.gone
	if g.ticks > 0 {
		return
	}
	n.gone = goneLeader{}
	st := rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != g.lead || st.GetTerm() != g.term {
		return
	}
	_ = rn.Step(&pb.Message{Type: pb.MsgTimeoutNow.Enum(), From: new(g.lead), To: new(st.ID), Term: new(g.term)})
}
