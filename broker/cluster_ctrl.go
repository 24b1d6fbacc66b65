package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Broker sessions: every node heartbeats to the active controller, which
// fences a broker whose heartbeats stop (broker.session.timeout.ms) and
// moves its leaderships away.

// clusterState is what a node keeps about the other nodes as a client of
// the controller.
type clusterState struct {
	mu        sync.Mutex
	ctrlPeers map[int32][]*peerClient

	// brokerEpoch is this broker's epoch from its latest registration.
	brokerEpoch    atomic.Int64
	stopHeartbeats chan struct{}
}

func newClusterState() *clusterState {
	return &clusterState{
		ctrlPeers:      map[int32][]*peerClient{},
		stopHeartbeats: make(chan struct{}),
	}
}

// runController fences expired brokers while this node is the active
// controller.
func (s *Server) runController() {
	defer s.wg.Done()
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		s.probeBrokers()
	}()
	defer func() { <-probing }()
	s.ctrl.Run(s.ctx, s.cfg.Millis("broker.session.timeout.ms"), func(topic string) bool {
		t := s.meta.Image().Topics[topic]
		if t == nil {
			return false
		}
		return s.cfg.EffectiveTopicConfig(t.Configs).String("unclean.leader.election.enable") == "true"
	})
}

// probeBrokers lets the active controller fence a broker whose process is
// gone without waiting out its session: it dials the brokers that look gone
// (their heartbeat connection to this node closed, their heartbeats are
// late, or this node just took over as controller) and fences those whose
// listener refuses the connection. A refusal proves nothing is listening;
// anything else (a timeout, an unreachable host) is left to the session
// timeout, as in Kafka.
func (s *Server) probeBrokers() {
	interval := s.cfg.Millis("broker.heartbeat.interval.ms")
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	var wasLeader bool
	var lastLate time.Time
	for {
		var probes []raftmeta.BrokerProbe
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.ctrl.Suspects():
			probes = append(probes, p)
		case <-check.C:
		}
		leader := s.meta.IsLeader()
		switch {
		case !leader:
		case !wasLeader:
			probes = append(probes, s.ctrl.UnfencedBrokers()...)
		case time.Since(lastLate) >= interval:
			lastLate = time.Now()
			probes = append(probes, s.ctrl.LateBrokers(interval+interval/2)...)
		}
		wasLeader = leader
		if leader && len(probes) > 0 {
			s.probe(probes)
		}
	}
}

// probe dials each broker (other than this one) concurrently and fences the
// ones that refuse.
func (s *Server) probe(probes []raftmeta.BrokerProbe) {
	img := s.meta.Image()
	var wg sync.WaitGroup
	seen := map[int32]bool{}
	for _, p := range probes {
		if p.ID == s.cfg.NodeID || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		addr, err := s.peerAddr(img, p.ID)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !processGone(s.ctx, addr) {
				return
			}
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			defer cancel()
			if _, err := s.ctrl.FenceGone(ctx, p); err != nil && s.ctx.Err() == nil {
				s.log.Info("fencing a gone broker failed", "broker", p.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// heartbeatLoop renews this broker's session every
// broker.heartbeat.interval.ms, registering again when the controller no
// longer knows this broker's epoch.
func (s *Server) heartbeatLoop() {
	defer s.wg.Done()
	interval := s.cfg.Millis("broker.heartbeat.interval.ms")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.cluster.stopHeartbeats:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, max(interval, time.Second))
		_, err := s.heartbeat(ctx, false)
		if errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered) {
			s.log.Warn("broker epoch no longer current; registering again", "err", err)
			if err := s.register(ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("registering again failed", "err", err)
			}
		} else if err != nil && s.ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Debug("heartbeat failed", "err", err)
		}
		cancel()
	}
}

// heartbeat sends one heartbeat (or, with shutdown, the controlled
// shutdown request) and returns whether this broker is fenced.
func (s *Server) heartbeat(ctx context.Context, shutdown bool) (bool, error) {
	id, epoch := s.cfg.NodeID, s.cluster.brokerEpoch.Load()
	var fenced bool
	err := s.withController(ctx, func() error {
		var err error
		if shutdown {
			fenced, err = true, s.ctrl.ControlledShutdown(ctx, id, epoch)
			return err
		}
		fenced, err = s.ctrl.Heartbeat(ctx, id, epoch)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.SetVersion(s.peerVersion(63))
		req.BrokerID, req.BrokerEpoch = id, epoch
		req.CurrentMetadataOffset = int64(s.meta.Image().Applied)
		req.WantShutdown = shutdown
		r, err := s.ctrlPeer(leader, laneHeartbeat).request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.BrokerHeartbeatResponse)
		fenced = resp.IsFenced
		return codeErr(resp.ErrorCode)
	})
	return fenced, err
}

// alterPartition asks the controller to change ISRs of partitions this node
// leads.
func (s *Server) alterPartition(ctx context.Context, items []raftmeta.AlterPartitionItem) ([]raftmeta.AlterPartitionResult, error) {
	areq := raftmeta.AlterPartitionRequest{BrokerID: s.cfg.NodeID, BrokerEpoch: s.cluster.brokerEpoch.Load(), Partitions: items}
	var results []raftmeta.AlterPartitionResult
	err := s.withController(ctx, func() error {
		var err error
		results, err = s.ctrl.AlterPartition(ctx, areq)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrAlterPartitionRequest()
		req.SetVersion(2)
		req.BrokerID, req.BrokerEpoch = areq.BrokerID, areq.BrokerEpoch
		for _, it := range items {
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = it.TopicID
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = it.Partition, it.LeaderEpoch, it.PartitionEpoch, it.NewISR
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		r, err := s.ctrlPeer(leader, laneISR).request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.AlterPartitionResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return err
		}
		results = results[:0]
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				results = append(results, raftmeta.AlterPartitionResult{TopicID: rt.TopidID, Partition: rp.Partition, Err: codeErr(rp.ErrorCode),
					State: raftmeta.PartitionState{ISR: rp.ISR, Leader: rp.LeaderID, LeaderEpoch: rp.LeaderEpoch, PartitionEpoch: rp.PartitionEpoch}})
			}
		}
		return nil
	})
	return results, err
}

// controlledShutdown asks the controller to move leadership away from this
// node and waits, briefly, until the metadata shows none left here.
func (s *Server) controlledShutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	close(s.cluster.stopHeartbeats)
	if _, err := s.heartbeat(ctx, true); err != nil {
		s.log.Warn("controlled shutdown failed; stopping anyway", "err", err)
		return
	}
	self := s.cfg.NodeID
	_, err := s.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		for _, t := range img.Topics {
			for _, ps := range t.Partitions {
				if ps.Leader == self && len(ps.ISR) > 1 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		s.log.Warn("leadership did not move away before shutdown", "err", err)
		return
	}
	s.log.Info("controlled shutdown: leadership moved to other replicas")
	// Let clients learn where their partitions went before the listeners
	// close.
	s.lastLeaderHint.mark()
	s.lastLeaderHint.waitQuiet(ctx, 200*time.Millisecond)
}

// leaderRebalanceLoop moves leadership back to each partition's preferred
// (first) replica every leader.imbalance.check.interval.seconds while this
// node is the active controller (auto.leader.rebalance.enable).
func (s *Server) leaderRebalanceLoop() {
	defer s.wg.Done()
	if v, _ := s.cfg.Value("auto.leader.rebalance.enable"); v != "true" {
		return
	}
	t := time.NewTicker(time.Duration(s.cfg.Int("leader.imbalance.check.interval.seconds")) * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !s.meta.IsLeader() || !s.imbalanced(s.meta.Image()) {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		if _, err := s.ctrl.ElectLeaders(ctx, raftmeta.PreferredElection, nil); err != nil && s.ctx.Err() == nil {
			s.log.Info("preferred leader election failed", "err", err)
		}
		cancel()
	}
}

// imbalanced reports whether some partition is led by another replica than
// its preferred one while the preferred one is in the ISR and unfenced.
func (s *Server) imbalanced(img *raftmeta.Image) bool {
	for _, t := range img.Topics {
		for _, ps := range t.Partitions {
			if len(ps.Replicas) == 0 || ps.Leader == ps.Replicas[0] {
				continue
			}
			pref := ps.Replicas[0]
			if b := img.Brokers[pref]; b != nil && !b.Fenced && slices.Contains(ps.ISR, pref) {
				return true
			}
		}
	}
	return false
}
