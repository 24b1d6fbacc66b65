package raftmeta

import (
	"context"
	"slices"
	"time"
)

// Fast failure detection.
//
// A session timeout (broker.session.timeout.ms, 9 s by default) is the only
// signal a controller has when a broker's machine vanishes. But a broker
// whose process died on a machine that still answers is gone for certain
// the moment its listener refuses connections, and waiting out the session
// then only delays the failover. The broker layer probes brokers that look
// gone (their heartbeat connection closed, or their heartbeats are late) and
// reports a refused connection here; the fencing decision is the same as
// for an expired session.

// BrokerProbe is a broker the controller should check is still running, at
// the registration epoch it was last known by.
type BrokerProbe struct {
	ID    int32
	Epoch int64
}

// LateBrokers returns the unfenced brokers whose last heartbeat is more
// than late ago, to be probed. It returns nothing on a node that is not the
// active controller.
func (c *Controller) LateBrokers(late time.Duration) []BrokerProbe {
	if !c.n.IsLeader() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.n.Image()
	lastSeen := c.sessions()
	now := c.now()
	var out []BrokerProbe
	for id, b := range img.Brokers {
		if !b.Fenced && now.Sub(lastSeen[id]) > late {
			out = append(out, BrokerProbe{ID: id, Epoch: b.Epoch})
		}
	}
	slices.SortFunc(out, func(a, b BrokerProbe) int { return int(a.ID) - int(b.ID) })
	return out
}

// UnfencedBrokers returns every unfenced broker, for the probe a new active
// controller makes of all brokers when it takes over (the sessions it
// inherits start afresh, so a broker that died with the old controller
// would otherwise keep its leaderships for a whole session timeout).
func (c *Controller) UnfencedBrokers() []BrokerProbe {
	img := c.n.Image()
	var out []BrokerProbe
	for id, b := range img.Brokers {
		if !b.Fenced {
			out = append(out, BrokerProbe{ID: id, Epoch: b.Epoch})
		}
	}
	slices.SortFunc(out, func(a, b BrokerProbe) int { return int(a.ID) - int(b.ID) })
	return out
}

// FenceGone fences broker p.ID because its process is gone (its listener
// refused a connection), moving its leaderships to in-sync replicas as an
// expired session would. It does nothing when the broker registered again
// since the probe (another epoch: a new process that is running) or is
// fenced already.
func (c *Controller) FenceGone(ctx context.Context, p BrokerProbe) (bool, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return false, err
	}
	defer c.mu.Unlock()
	b := img.Brokers[p.ID]
	if b == nil || b.Fenced || b.Epoch != p.Epoch {
		return false, nil
	}
	recs := c.d.FenceBrokers(img, []int32{p.ID}, c.unclean)
	if len(recs) == 0 {
		return false, nil
	}
	c.n.log.Warn("fencing broker: its process is gone (connection refused)", "broker", p.ID, "epoch", p.Epoch)
	if _, err := c.propose(ctx, img, recs...); err != nil {
		return false, err
	}
	return true, nil
}

// Suspect queues broker p to be probed: its heartbeat connection to this
// node closed. It never blocks; when the queue is full the late-heartbeat
// check still finds the broker.
func (c *Controller) Suspect(p BrokerProbe) {
	select {
	case c.suspects <- p:
	default:
	}
}

// Suspects delivers the brokers queued by Suspect.
func (c *Controller) Suspects() <-chan BrokerProbe { return c.suspects }
