package broker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Leader hints (KIP-951): a Produce (v10+), Fetch (v16+), ShareFetch or
// ShareAcknowledge partition that fails because this node does not lead it
// names the leader the latest metadata knows, and the response carries that leader's endpoint. Clients
// then move to the new leader at once instead of waiting for a metadata
// refresh, which franz-go rate-limits to one per metadata.min.age (5 s by
// default): without the hint a controlled shutdown would stall producers
// for seconds.
type leaderHints struct {
	s       *Server
	img     *raftmeta.Image
	leaders map[int32]bool
}

func (s *Server) newLeaderHints() *leaderHints {
	return &leaderHints{s: s}
}

// hint returns the current leader and epoch of partition idx of topic for a
// partition answered with code, or ok=false when there is nothing to tell:
// another error, an unknown partition, no leader, or this node itself.
func (h *leaderHints) hint(code int16, topic string, topicID [16]byte, idx int32) (leader, epoch int32, ok bool) {
	if code != kerr.NotLeaderForPartition.Code && code != kerr.FencedLeaderEpoch.Code {
		return -1, -1, false
	}
	// The image is read only once a partition needs a hint, so a response
	// without failed partitions costs nothing.
	if h.img == nil {
		h.img = h.s.meta.Image()
	}
	t := h.img.Topics[topic]
	if topic == "" {
		t = h.img.TopicByID(topicID)
	}
	if !t.HasPartition(idx) {
		return -1, -1, false
	}
	ps := t.Partitions[idx]
	if ps.Leader < 0 || ps.Leader == h.s.cfg.NodeID {
		return -1, -1, false
	}
	if h.leaders == nil {
		h.leaders = map[int32]bool{}
	}
	h.leaders[ps.Leader] = true
	h.s.lastLeaderHint.mark()
	return ps.Leader, ps.LeaderEpoch, true
}

// endpoints lists, on listener, the brokers hint named.
func (h *leaderHints) endpoints(listener string) []kmsg.MetadataResponseBroker {
	if len(h.leaders) == 0 {
		return nil
	}
	var out []kmsg.MetadataResponseBroker
	for _, b := range h.s.brokerList(h.img, listener) {
		if h.leaders[b.NodeID] {
			out = append(out, b)
		}
	}
	return out
}

// set gives a partition answered with code its hint: the leader and epoch
// go where leaderID and leaderEpoch point.
func (h *leaderHints) set(code int16, topic string, topicID [16]byte, idx int32, leaderID, leaderEpoch *int32) {
	if id, epoch, ok := h.hint(code, topic, topicID, idx); ok {
		*leaderID, *leaderEpoch = id, epoch
	}
}

// hintEndpoints lists, on listener, the brokers h named, each made into a
// response's endpoint type by mk.
func hintEndpoints[E any](h *leaderHints, listener string, mk func(b kmsg.MetadataResponseBroker) E) []E {
	var out []E
	for _, b := range h.endpoints(listener) {
		out = append(out, mk(b))
	}
	return out
}

// produceHints adds leader hints to a produce response's failed partitions.
func (s *Server) produceHints(resp *kmsg.ProduceResponse, listener string) {
	if resp.Version < 10 {
		return
	}
	h := s.newLeaderHints()
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			h.set(rp.ErrorCode, rt.Topic, rt.TopicID, rp.Partition, &rp.CurrentLeader.LeaderID, &rp.CurrentLeader.LeaderEpoch)
		}
	}
	resp.Brokers = append(resp.Brokers, hintEndpoints(h, listener, func(b kmsg.MetadataResponseBroker) kmsg.ProduceResponseBroker {
		return kmsg.ProduceResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
	})...)
}

// fetchHints adds leader hints to a fetch response's failed partitions.
func (s *Server) fetchHints(resp *kmsg.FetchResponse, listener string) {
	if resp.Version < 16 {
		return
	}
	h := s.newLeaderHints()
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			h.set(rp.ErrorCode, rt.Topic, rt.TopicID, rp.Partition, &rp.CurrentLeader.LeaderID, &rp.CurrentLeader.LeaderEpoch)
		}
	}
	resp.Brokers = append(resp.Brokers, hintEndpoints(h, listener, func(b kmsg.MetadataResponseBroker) kmsg.FetchResponseBroker {
		return kmsg.FetchResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
	})...)
}

// shareFetchHints adds leader hints to a ShareFetch response's partitions
// that failed to fetch (every version carries them): franz-go moves a
// hinted partition to its leader at once, and without the hint waits for a
// metadata refresh while the share consumer gets nothing from it.
func (s *Server) shareFetchHints(resp *kmsg.ShareFetchResponse, listener string) {
	h := s.newLeaderHints()
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			h.set(rp.ErrorCode, "", rt.TopicID, rp.Partition, &rp.CurrentLeader.LeaderID, &rp.CurrentLeader.LeaderEpoch)
		}
	}
	resp.NodeEndpoints = append(resp.NodeEndpoints, hintEndpoints(h, listener, func(b kmsg.MetadataResponseBroker) kmsg.ShareFetchResponseNodeEndpoint {
		return kmsg.ShareFetchResponseNodeEndpoint{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
	})...)
}

// hintClock remembers when a leader hint was last given.
type hintClock struct{ ns atomic.Int64 }

func (c *hintClock) mark() { c.ns.Store(time.Now().UnixNano()) }

// waitQuiet waits until no hint has been given for quiet, or ctx ends. A
// broker that handed its leaderships away calls it before closing its
// listeners: clients still sending it produce and fetch requests are told
// where the partitions went instead of seeing the connection drop, which
// would cost them a retry backoff and a metadata refresh.
func (c *hintClock) waitQuiet(ctx context.Context, quiet time.Duration) {
	for {
		idle := time.Since(time.Unix(0, c.ns.Load()))
		if idle >= quiet {
			return
		}
		t := time.NewTimer(quiet - idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
