package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shoalmq/shoal/raftmeta"
)

// ActiveController runs, on every voter, the loops that act only while the
// voter is the active controller (the raft leader): fencing brokers whose
// sessions expired, fencing brokers whose process is gone without waiting
// for their session, and moving leadership back to preferred replicas.
//
// They live here, not next to raftmeta.Controller, because they are I/O
// and timers around its decisions: the gone-broker probe speaks the Kafka
// protocol to brokers' listeners (as the leader probe of Metadata answers
// does), and raftmeta stays free of the Kafka wire. raftmeta.Controller
// keeps the decisions (which brokers are late, fencing one, electing
// leaders); these loops only say when.
type ActiveController struct {
	cfg  ActiveConfig
	meta Metadata
	ctrl *raftmeta.Controller
}

// ActiveConfig is the node's configuration as the active controller's loops
// need it.
type ActiveConfig struct {
	NodeID              int32
	InterBrokerListener string
	// HeartbeatInterval and SessionTimeout are
	// broker.heartbeat.interval.ms and broker.session.timeout.ms.
	HeartbeatInterval, SessionTimeout time.Duration
	// UncleanLeaderElection reports a topic's
	// unclean.leader.election.enable.
	UncleanLeaderElection func(topic string) bool
	// AutoLeaderRebalance is auto.leader.rebalance.enable;
	// ImbalanceCheckInterval is leader.imbalance.check.interval.seconds.
	AutoLeaderRebalance    bool
	ImbalanceCheckInterval time.Duration
	// Now is the node's clock.
	Now    func() time.Time
	Logger *slog.Logger
}

// NewActiveController returns the active controller's loops for a voter.
func NewActiveController(cfg ActiveConfig, meta Metadata, ctrl *raftmeta.Controller) *ActiveController {
	return &ActiveController{cfg: cfg, meta: meta, ctrl: ctrl}
}

// RunSessions fences expired brokers and gone brokers while this node is
// the active controller, until ctx ends.
func (a *ActiveController) RunSessions(ctx context.Context) {
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		a.probeBrokers(ctx)
	}()
	defer func() { <-probing }()
	a.ctrl.Run(ctx, a.cfg.SessionTimeout, a.cfg.UncleanLeaderElection)
}

// probeBrokers lets the active controller fence a broker whose process is
// gone without waiting out its session: it dials the brokers that look gone
// (their heartbeat connection to this node closed, their heartbeats are
// late, or this node just took over as controller) and fences those whose
// listener refuses the connection. A refusal proves nothing is listening;
// anything else (a timeout, an unreachable host) is left to the session
// timeout, as in Kafka.
func (a *ActiveController) probeBrokers(ctx context.Context) {
	interval := a.cfg.HeartbeatInterval
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	var wasLeader bool
	var lastLate time.Time
	for {
		var probes []raftmeta.BrokerProbe
		select {
		case <-ctx.Done():
			return
		case p := <-a.ctrl.Suspects():
			probes = append(probes, p)
		case <-check.C:
		}
		leader := a.meta.IsLeader()
		switch now := a.cfg.Now(); {
		case !leader:
		case !wasLeader:
			probes = append(probes, a.ctrl.UnfencedBrokers()...)
		case now.Sub(lastLate) >= interval:
			lastLate = now
			probes = append(probes, a.ctrl.LateBrokers(interval+interval/2)...)
		}
		wasLeader = leader
		if leader && len(probes) > 0 {
			a.probe(ctx, probes)
		}
	}
}

// probe dials each broker (other than this one) concurrently and fences the
// ones that refuse.
func (a *ActiveController) probe(ctx context.Context, probes []raftmeta.BrokerProbe) {
	img := a.meta.Image()
	var wg sync.WaitGroup
	seen := map[int32]bool{}
	for _, p := range probes {
		if p.ID == a.cfg.NodeID || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		addr, err := BrokerAddr(img, p.ID, a.cfg.InterBrokerListener)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !processGone(ctx, addr) {
				return
			}
			fenceCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := a.ctrl.FenceGone(fenceCtx, p); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Info("fencing a gone broker failed", "broker", p.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// RunLeaderRebalance moves leadership back to each partition's preferred
// (first) replica every leader.imbalance.check.interval.seconds while this
// node is the active controller, until ctx ends. It returns at once unless
// auto.leader.rebalance.enable is set.
func (a *ActiveController) RunLeaderRebalance(ctx context.Context) {
	if !a.cfg.AutoLeaderRebalance {
		return
	}
	t := time.NewTicker(a.cfg.ImbalanceCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.meta.IsLeader() || !imbalanced(a.meta.Image()) {
			continue
		}
		electCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := a.ctrl.ElectLeaders(electCtx, raftmeta.PreferredElection, nil); err != nil && ctx.Err() == nil {
			a.cfg.Logger.Info("preferred leader election failed", "err", err)
		}
		cancel()
	}
}

// imbalanced reports whether some partition is led by another replica than
// its preferred one while the preferred one is in the ISR and unfenced.
func imbalanced(img *raftmeta.Image) bool {
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
