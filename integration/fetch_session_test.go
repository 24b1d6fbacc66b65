package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Followers fetch from their leaders within incremental fetch sessions
// (KIP-227): every node that leads partitions keeps one session per
// follower node, and records produced afterwards, to a few partitions
// while the others stay idle, still reach every replica byte for byte.
func TestClusterFollowersFetchWithSessions(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	adm := kadm.NewClient(c.Client(t))
	const partitions = 12
	c.createReplicated(adm, topic, partitions, 3, nil)

	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(p int32, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	for p := range int32(partitions) {
		produce(p, "first")
	}
	waitFor(t, 30*time.Second, "a fetch session per follower on every leader", func() (bool, string) {
		total := 0.0
		var each []float64
		for _, n := range c.nodes {
			v := metricValue(t, n, "shoal_fetch_sessions")
			each = append(each, v)
			total += v
		}
		// Each node leads some of the partitions and is followed by the
		// two others.
		return total >= 6 && each[0] >= 2 && each[1] >= 2 && each[2] >= 2, fmt.Sprint(each)
	})
	for i := range 20 {
		produce(int32(i%3), fmt.Sprint("busy-", i))
	}
	for p := range int32(3) {
		waitIdenticalLogs(t, topic, p, c.nodes...)
	}
	for _, n := range c.nodes {
		if v := metricValue(t, n, "shoal_fetch_session_evictions_total"); v != 0 {
			t.Errorf("node %d evicted %v fetch sessions", n.id(), v)
		}
	}
}
