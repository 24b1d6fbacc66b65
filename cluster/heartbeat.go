package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Broker sessions: every broker heartbeats to the active controller, which
// fences a broker whose heartbeats stop (broker.session.timeout.ms) and
// moves its leaderships away.

// RunHeartbeats renews this broker's session every
// broker.heartbeat.interval.ms until ctx ends or ControlledShutdown
// begins, registering again when the controller no longer knows this
// broker's epoch.
func (c *ControllerClient) RunHeartbeats(ctx context.Context) {
	interval := c.cfg.HeartbeatInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stopHeartbeats:
			return
		case <-t.C:
		}
		hbCtx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
		_, err := c.heartbeat(hbCtx, false)
		if errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered) {
			c.cfg.Logger.Warn("broker epoch no longer current; registering again", "err", err)
			var eps []raftmeta.Endpoint
			if p := c.endpoints.Load(); p != nil {
				eps = *p
			}
			if err := c.Register(hbCtx, eps); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Warn("registering again failed", "err", err)
			}
		} else if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			c.cfg.Logger.Debug("heartbeat failed", "err", err)
		}
		cancel()
	}
}

// heartbeat sends one heartbeat (or, with shutdown, the controlled
// shutdown request) and returns whether this broker is fenced.
func (c *ControllerClient) heartbeat(ctx context.Context, shutdown bool) (bool, error) {
	id, epoch := c.cfg.NodeID, c.brokerEpoch.Load()
	var fenced bool
	err := c.withController(ctx, func() error {
		var err error
		if shutdown {
			fenced, err = true, c.ctrl.ControlledShutdown(ctx, id, epoch)
			return err
		}
		fenced, err = c.ctrl.Heartbeat(ctx, id, epoch)
		return err
	}, func(leader int32) error {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.SetVersion(c.cfg.Version(req.Key()))
		req.BrokerID, req.BrokerEpoch = id, epoch
		req.CurrentMetadataOffset = int64(c.meta.Image().Applied)
		req.WantShutdown = shutdown
		resp, err := callController(ctx, c, laneControllerHeartbeat, leader, req, func(r *kmsg.BrokerHeartbeatResponse) int16 { return r.ErrorCode })
		if resp != nil {
			fenced = resp.IsFenced
		}
		return err
	})
	return fenced, err
}

// ControlledShutdown stops the heartbeats, asks the controller to move
// leadership away from this node and waits, until ctx ends, for the
// metadata to show none left here. It reports whether leadership moved.
func (c *ControllerClient) ControlledShutdown(ctx context.Context) bool {
	c.stopHeartbeatsOnce.Do(func() { close(c.stopHeartbeats) })
	if _, err := c.heartbeat(ctx, true); err != nil {
		c.cfg.Logger.Warn("controlled shutdown failed; stopping anyway", "err", err)
		return false
	}
	self := c.cfg.NodeID
	_, err := c.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
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
		c.cfg.Logger.Warn("leadership did not move away before shutdown", "err", err)
		return false
	}
	c.cfg.Logger.Info("controlled shutdown: leadership moved to other replicas")
	return true
}
