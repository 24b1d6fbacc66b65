package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// failOverLeader kills leader, the leader of topic's partition 0, while
// producer (made with clusterProducerOpts) writes batch records and more
// to it. It waits for a surviving node to name a new leader and for batch
// more records to be acknowledged within timeout, then restarts the old
// leader, waits for it to rejoin the full ISR, and checks that every
// acknowledged record is on the partition once, in order.
func failOverLeader(t *testing.T, c *cluster, topic string, leader int32, producer *kgo.Client, batch int, timeout time.Duration) {
	t.Helper()
	acks, stopLoad := startClusterLoad(t, producer, batch, "before the kill")
	victim := c.node(leader)
	victim.Kill9()
	before := acks.count()
	t.Logf("killed leader %d after %d acknowledged records", leader, before)
	survivor := c.alive()[0]
	c.waitPartition(survivor, topic, 0, "a new leader", func(s partitionState) bool {
		return s.leader > 0 && s.leader != leader
	})
	waitFor(t, timeout, "producing to continue on the new leader", func() (bool, string) {
		return acks.count() >= before+batch, fmt.Sprint(acks.count())
	})
	stopLoad()

	// The old leader comes back as a follower, truncates what it had
	// beyond the new leader's epoch boundary and catches up.
	victim.Restart()
	c.waitPartition(survivor, topic, 0, "the old leader back in the ISR", func(s partitionState) bool { return len(s.isr) == len(c.nodes) })
	checkAcked(t, c, topic, acks)
}
