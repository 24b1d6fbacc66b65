package replica

import (
	"time"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/quota"
	"github.com/shoalmq/shoal/raftmeta"
)

// Replication throttles (KIP-73), as Kafka applies them during partition
// reassignment. Each broker has one leader-side and one follower-side
// rate (quota.Replication) with bounds from its dynamic configs
// leader.replication.throttled.rate and follower.replication.throttled.rate;
// a topic's leader/follower.replication.throttled.replicas says which of
// its partitions each broker throttles. A throttled replica is held back
// only while it is out of sync and the side's rate is over its bound:
//
//   - leader side (Kafka's shouldLeaderThrottle): a fetch from a follower
//     outside the ISR gets no records, only the HW and log start;
//   - follower side (Kafka's shouldFollowerThrottle): the fetcher leaves the
//     partition out of its next fetch while it has not caught up with the
//     leader's HW.
//
// Both sides count every byte of throttled partitions, in sync or not, so
// the total replication traffic of throttled partitions stays within the
// bound.

const (
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
)

// replicationWindow is the sampling of both throttles' rates.
func replicationWindow(cfg *config.Broker) quota.Window {
	return quota.Window{Samples: int(cfg.Int("replication.quota.window.num")), Size: time.Duration(cfg.Int("replication.quota.window.size.seconds")) * time.Second}
}

// holdBack is the throttling decision of both sides: a replica of a
// partition throttled on this broker (listed), not in sync, while the
// side's rate is over its bound. exceeded is asked only when it matters:
// replicas of unlisted partitions never touch the shared rate.
func holdBack(listed, inSync bool, exceeded func() bool) bool {
	return listed && !inSync && exceeded()
}

// leaderListed reports whether this broker, as leader, throttles partition
// idx of t.
func (m *Manager) leaderListed(t *raftmeta.Topic, idx int32) bool {
	v, ok := t.Configs[leaderThrottledReplicas]
	return ok && config.ReplicaThrottled(v, idx, m.node)
}

// followerListed reports whether this broker, as follower, throttles
// partition idx of t.
func (m *Manager) followerListed(t *raftmeta.Topic, idx int32) bool {
	v, ok := t.Configs[followerThrottledReplicas]
	return ok && config.ReplicaThrottled(v, idx, m.node)
}

// leaderHoldsBack reports whether a fetch by follower replica of a
// partition listed for the leader throttle (listed) gets no records now.
func (m *Manager) leaderHoldsBack(listed, inISR bool, now time.Time) bool {
	return holdBack(listed, inISR, func() bool {
		return m.leaderQuota.Exceeded(float64(m.cfg.Int(leaderThrottledRate)), now)
	})
}

// followerHoldsBack reports whether the fetcher leaves a partition listed
// for the follower throttle out of its next fetch, and if so, how long
// until the rate is back within bound.
func (m *Manager) followerHoldsBack(listed, caughtUp bool, now time.Time) (bool, time.Duration) {
	var bound float64
	if !holdBack(listed, caughtUp, func() bool {
		bound = float64(m.cfg.Int(followerThrottledRate))
		return m.followerQuota.Exceeded(bound, now)
	}) {
		return false, 0
	}
	return true, m.followerQuota.Delay(bound, now)
}
