package raftmeta

import (
	"context"
	"errors"
	"time"
)

// DefaultSessionTimeout is broker.session.timeout.ms's default.
const DefaultSessionTimeout = 9 * time.Second

// sessions returns the broker sessions of the current term, starting them
// afresh when this node became leader since they were last used: every
// registered broker gets a full session timeout from now. A broker this
// Controller has not seen yet (registered through another path) starts its
// session now too. Called with mu held, after begin.
func (c *Controller) sessions() map[int32]time.Time {
	term := c.n.Term()
	if c.lastSeen == nil || c.sessionTerm != term {
		c.sessionTerm = term
		c.lastSeen = map[int32]time.Time{}
		c.shuttingDown = map[int32]int64{}
	}
	brokers := c.n.Image().Brokers
	var now time.Time
	for id := range brokers {
		if _, ok := c.lastSeen[id]; !ok {
			if now.IsZero() {
				now = c.now()
			}
			c.lastSeen[id] = now
		}
	}
	for id := range c.lastSeen {
		if _, ok := brokers[id]; !ok {
			delete(c.lastSeen, id)
		}
	}
	return c.lastSeen
}

// Heartbeat handles a broker heartbeat: it renews the broker's session and
// unfences a fenced broker (which may then lead partitions that had no
// leader). It returns whether the broker is fenced afterwards. A broker that
// went through ControlledShutdown stays fenced until it registers again.
func (c *Controller) Heartbeat(ctx context.Context, id int32, epoch int64) (fenced bool, err error) {
	img, err := c.begin(ctx)
	if err != nil {
		return true, err
	}
	defer c.mu.Unlock()
	lastSeen := c.sessions()
	recs, fenced, err := c.d.BrokerHeartbeat(img, id, epoch, c.unclean)
	if err != nil {
		return fenced, err
	}
	lastSeen[id] = c.now()
	if e, ok := c.shuttingDown[id]; ok {
		if e == epoch {
			return img.Brokers[id].Fenced, nil
		}
		delete(c.shuttingDown, id)
	}
	if err := c.proposeAny(ctx, img, recs); err != nil {
		return true, err
	}
	return fenced, nil
}

// AlterPartition applies a partition leader's ISR changes. The error is a
// request-level failure (NOT_CONTROLLER, STALE_BROKER_EPOCH); per-partition
// outcomes are in the results.
func (c *Controller) AlterPartition(ctx context.Context, req AlterPartitionRequest) ([]AlterPartitionResult, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	recs, results, err := c.d.AlterPartition(img, req)
	if err != nil {
		return nil, err
	}
	if err := c.proposeAny(ctx, img, recs); err != nil {
		return nil, err
	}
	return results, nil
}

// ControlledShutdown moves leadership and ISR membership away from a broker
// that is about to stop, and fences it; its heartbeats do not unfence it
// until it registers again. epoch must be the broker's current epoch.
func (c *Controller) ControlledShutdown(ctx context.Context, id int32, epoch int64) error {
	img, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	c.sessions()
	recs, err := c.d.ControlledShutdown(img, id, epoch, c.unclean)
	if err != nil {
		return err
	}
	if err := c.proposeAny(ctx, img, recs); err != nil {
		return err
	}
	c.shuttingDown[id] = img.Brokers[id].Epoch
	return nil
}

// ElectLeaders runs preferred or unclean leader elections; parts nil means
// every partition (see Decider.ElectLeaders). The error is a request-level
// failure.
func (c *Controller) ElectLeaders(ctx context.Context, typ ElectionType, parts []TopicPartition) ([]ElectLeadersResult, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	recs, results := c.d.ElectLeaders(img, typ, parts)
	if err := c.proposeAny(ctx, img, recs); err != nil {
		return nil, err
	}
	return results, nil
}

// FenceExpired fences the brokers whose session has expired now. Run calls
// it periodically; it is exported for callers with their own schedule.
func (c *Controller) FenceExpired(ctx context.Context, sessionTimeout time.Duration) error {
	img, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	recs := c.d.FenceExpired(img, c.sessions(), c.now(), sessionTimeout, c.unclean)
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if f, ok := r.(*FenceBroker); ok {
			c.n.log.Warn("fencing broker: session expired", "broker", f.ID, "epoch", f.Epoch, "timeout", sessionTimeout)
		}
	}
	_, err = c.propose(ctx, img, recs...)
	return err
}

// Run fences brokers whose session expires (no heartbeat for
// sessionTimeout; 0 means DefaultSessionTimeout) while this node is the
// active controller, until ctx ends. uncleanOK says whether a topic allows
// unclean leader election; it is used by every decision of this
// Controller that elects leaders. Run it on every quorum voter: it does
// nothing on followers.
func (c *Controller) Run(ctx context.Context, sessionTimeout time.Duration, uncleanOK func(topic string) bool) {
	if sessionTimeout <= 0 {
		sessionTimeout = DefaultSessionTimeout
	}
	c.mu.Lock()
	c.unclean = uncleanOK
	c.mu.Unlock()
	ticker := time.NewTicker(min(max(sessionTimeout/8, 10*time.Millisecond), time.Second))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.n.Done():
			return
		case <-ticker.C:
		}
		if !c.n.IsLeader() {
			continue
		}
		if err := c.FenceExpired(ctx, sessionTimeout); err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotController) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrClosed) {
			c.n.log.Warn("fencing expired brokers failed", "err", err)
		}
	}
}
