package raftmeta

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// run is the Ready loop, the only goroutine that touches the RawNode. Each
// iteration takes one input (a tick, a proposal, a peer message, a report)
// and then drains every Ready it produced.
func (n *Node) run() {
	defer close(n.doneC)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()

	err := n.drain()
	for err == nil {
		select {
		case <-ticker.C:
			n.rn.Tick()
			n.tickLeaderGone(n.rn)
		case p := <-n.proposeC:
			n.propose(p)
			n.proposeMore()
		case m := <-n.stepC:
			n.contact[m.GetFrom()] = time.Now()
			// Errors here are stale or foreign messages; raft has
			// already ignored them.
			_ = n.rn.Step(m)
		case f := <-n.queryC:
			f(n.rn)
		case f := <-n.reportC:
			f(n.rn)
		case <-n.stopC:
			n.failPending(ErrClosed)
			return
		}
		err = n.drain()
	}
	n.log.Error("metadata raft loop stopped", "err", err)
	n.loopErr = err
	n.failPending(ErrClosed)
}

// proposeMore takes the proposals already waiting, so that they share one
// Ready and one fsync instead of paying for one each.
func (n *Node) proposeMore() {
	for range maxProposalsPerReady - 1 {
		select {
		case p := <-n.proposeC:
			n.propose(p)
		default:
			return
		}
	}
}

const maxProposalsPerReady = 256

func (n *Node) propose(p *proposal) {
	if n.rn.BasicStatus().RaftState != raft.StateLeader {
		p.done <- proposalResult{err: ErrNotController}
		return
	}
	n.seq++
	p.seq = n.seq
	data := encodeEntry(entry{proposer: n.proposer, seq: p.seq, records: p.records})
	if err := n.rn.Propose(data); err != nil {
		// ErrProposalDropped: leadership is being transferred or the
		// uncommitted log is full.
		p.done <- proposalResult{err: ErrNotController}
		return
	}
	n.pending[p.seq] = p
}

func (n *Node) failPending(err error) {
	for seq, p := range n.pending {
		p.done <- proposalResult{err: err}
		delete(n.pending, seq)
	}
}

func (n *Node) drain() error {
	for n.rn.HasReady() {
		if err := n.handleReady(n.rn.Ready()); err != nil {
			return err
		}
	}
	return nil
}

// handleReady processes one Ready in the order raft requires: persist
// (synchronously when MustSync) before sending messages and before applying
// committed entries, then Advance.
func (n *Node) handleReady(rd raft.Ready) error {
	if err := n.st.save(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync); err != nil {
		return fmt.Errorf("raftmeta: persist raft state: %w", err)
	}
	n.updateStatus(rd)

	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.restoreSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if len(rd.Messages) > 0 {
		n.transport.Send(rd.Messages)
	}
	if err := n.applyCommitted(rd.CommittedEntries); err != nil {
		return err
	}
	n.rn.Advance(rd)
	return nil
}

func (n *Node) updateStatus(rd raft.Ready) {
	old := n.status.Load()
	s := *old
	if rd.SoftState != nil {
		s.leader = rd.SoftState.Lead
		s.isLeader = rd.SoftState.RaftState == raft.StateLeader
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		s.term = rd.HardState.GetTerm()
		s.commit = max(s.commit, rd.HardState.GetCommit())
	}
	if s.leader == old.leader && s.isLeader == old.isLeader && s.term == old.term && s.commit == old.commit {
		return
	}
	if old.isLeader && !s.isLeader {
		n.failPending(ErrLeadershipLost)
	}
	s.changed = make(chan struct{})
	n.status.Store(&s)
	close(old.changed)
}

// restoreSnapshot replaces the image with one received from the leader.
func (n *Node) restoreSnapshot(snap *pb.Snapshot) error {
	img, addrs, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return fmt.Errorf("raftmeta: restore snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
	}
	img.Applied = snap.GetMetadata().GetIndex()
	n.confState = proto.CloneOf(snap.GetMetadata().GetConfState())
	n.members.Store(n.confState)
	n.setAddrs(addrs)
	n.snapshotsReceived.Add(1)
	n.log.Info("metadata snapshot received from the leader", "index", img.Applied)
	n.publish(img)
	return nil
}

// applyCommitted applies committed entries to the image, publishes the
// result once, answers the proposals among them, and snapshots when due.
// Waiters are answered after publishing so that Image() already reflects
// their entry when Propose returns.
func (n *Node) applyCommitted(ents []*pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	img := n.Image()
	type answer struct {
		p *proposal
		r proposalResult
	}
	var answers []answer
	// A membership change is followed by a snapshot, so that a member it
	// adds can be sent one whose membership includes it (raft refuses a
	// snapshot that does not).
	confChanged := false
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= img.Applied {
			continue // already in the image (restored from a snapshot)
		}
		switch e.GetType() {
		case pb.EntryNormal:
			if len(e.GetData()) == 0 {
				// The empty entry a new leader appends.
				next := *img
				next.Applied = idx
				img = &next
				continue
			}
			en, err := decodeEntry(e.GetData())
			if err != nil {
				// A committed entry this node cannot read; applying
				// past it would diverge from the other nodes.
				return fmt.Errorf("raftmeta: decode entry %d: %w", idx, err)
			}
			next, aerr := img.apply(idx, en.records)
			if aerr != nil {
				n.log.Warn("metadata entry rejected", "index", idx, "err", aerr)
			}
			img = next
			if en.proposer == n.proposer {
				if p, ok := n.pending[en.seq]; ok {
					delete(n.pending, en.seq)
					r := proposalResult{img: img, err: aerr}
					if aerr != nil {
						r.img = nil
					}
					answers = append(answers, answer{p, r})
				}
			}
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			var cc pb.ConfChangeI
			if e.GetType() == pb.EntryConfChange {
				c := &pb.ConfChange{}
				if err := proto.Unmarshal(e.GetData(), c); err != nil {
					return fmt.Errorf("raftmeta: decode conf change %d: %w", idx, err)
				}
				cc = c
			} else {
				c := &pb.ConfChangeV2{}
				if err := proto.Unmarshal(e.GetData(), c); err != nil {
					return fmt.Errorf("raftmeta: decode conf change %d: %w", idx, err)
				}
				cc = c
			}
			n.applyConfChange(cc)
			confChanged = true
			if err := n.st.setConfState(n.confState); err != nil {
				return fmt.Errorf("raftmeta: persist membership: %w", err)
			}
			next := *img
			next.Applied = idx
			img = &next
		}
	}
	n.publish(img)
	for _, a := range answers {
		a.p.done <- a.r
	}
	return n.maybeSnapshot(img, confChanged)
}

func (n *Node) publish(img *Image) {
	old := n.pub.Load()
	if old.img == img {
		return
	}
	n.pub.Store(&published{img: img, changed: make(chan struct{})})
	close(old.changed)
}

// maybeSnapshot snapshots the image and compacts the log once SnapshotEvery
// entries have been applied since the last snapshot, or when forced. The image is small
// and encoding it is synchronous; metadata rates make that cheap enough not
// to need a background writer.
func (n *Node) maybeSnapshot(img *Image, force bool) error {
	first, _ := n.st.FirstIndex()
	if img.Applied+1-first < n.cfg.SnapshotEvery && !(force && img.Applied >= first) {
		return nil
	}
	if err := n.st.snapshotAndCompact(img.Applied, n.confState, encodeSnapshot(img, n.addrs)); err != nil {
		return fmt.Errorf("raftmeta: snapshot at %d: %w", img.Applied, err)
	}
	n.log.Debug("metadata snapshot taken", "index", img.Applied)
	return nil
}
