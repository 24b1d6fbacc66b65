package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// rf3Throttle is the five-node reassignment's throttle, bytes/s: low
// enough that five nodes under the race detector on two busy cores keep
// up with it.
const rf3Throttle = 2_000_000

// An RF=3 topic on nodes 1, 2 and 3 of a five-node cluster moves with
// `shoal topic reassign --execute --throttle` so that every partition
// gains replicas on nodes 4 and 5 and loses those on 1 and 2, under an
// acks=all producer: each new broker replicates at the follower throttle
// (within 20%, after the first window's burst), --verify clears the
// throttles once every partition has moved, and every acknowledged
// record is read back from the new replicas with an old one killed.
func TestReassignRF3FiveNodesThrottled(t *testing.T) {
	// The throttle lets a follower's fetch through whole while its rate
	// is within the bound: at 1 MB a partition (the default), three
	// leaders' fetches would be a whole second's worth at once, so the
	// rate would swing by that much around the bound; 256 kB fetches
	// keep it close.
	c := startCluster(t, 5, "replication.quota.window.num=2", "replica.fetch.max.bytes=262144")
	cl := c.Client(t)
	adm := adminOn(t, c.node(3))
	topic := topicName(t, "")
	parts := []int32{0, 1, 2}
	// Each partition led by a different old broker, so each new broker
	// fetches from three leaders at once and its own follower throttle is
	// the bound that binds (each leader sends it a third of that).
	c.createAssigned(cl, topic, []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})
	// Three partitions of 5.3 MB: 16 MB for each new broker, eight seconds
	// at the throttle.
	fillTopic(t, c, topic, 16_000_000)
	total := replicaBytes(t, adm, 3, topic, parts...)

	acks, stopLoad := startClusterLoad(t, c.Client(t, clusterProducerOpts(topic)...), 1000, "before the move")

	target := [][]int32{{3, 4, 5}, {4, 5, 3}, {5, 3, 4}}
	var entries []string
	for p, r := range target {
		entries = append(entries, fmt.Sprintf(`{"topic":%q,"partition":%d,"replicas":[%d,%d,%d]}`, topic, p, r[0], r[1], r[2]))
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[`+strings.Join(entries, ",")+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err, out := runShoalCLI(t, c.node(1), "topic", "reassign", "--execute", "--plan", plan, "--throttle", fmt.Sprint(rf3Throttle), "--wait=false"); err != nil {
		t.Fatalf("reassign --execute: %v\n%s", err, out)
	}
	// The throttle's rate remembers replication.quota.window.num samples
	// of a second: once they have passed, the burst a fresh rate lets
	// through at the start is paid back, and the rate is measured from
	// there.
	afterBurst := func(_ int64, at time.Time) bool { return at.Sub(start) >= 2*time.Second }
	rates, took := catchUp(t, total, afterBurst, start,
		func() int64 { return replicaBytes(t, adm, 4, topic, parts...) },
		func() int64 { return replicaBytes(t, adm, 5, topic, parts...) })
	for i, rate := range rates {
		t.Logf("broker %d: %d bytes in %v, %.0f B/s after the first two seconds (throttle %d B/s)", i+4, total, took, rate, rf3Throttle)
		if rate < rf3Throttle*0.8 || rate > rf3Throttle*1.2 {
			t.Errorf("broker %d replicated at %.0f B/s, want within 20%% of %d", i+4, rate, rf3Throttle)
		}
	}

	if out := verifyComplete(t, c.node(1), plan, 30*time.Second); !strings.Contains(out, "Clearing broker-level throttles on brokers [1 2 3 4 5]") {
		t.Errorf("verify output:\n%s", out)
	}
	// --verify clears the topic throttles through the controller; the
	// node adm asks answers from its own metadata, which may not have
	// caught up yet.
	waitFor(t, opTimeout, "the topic throttles cleared by --verify", func() (bool, string) {
		tcs, err := adm.DescribeTopicConfigs(ctxT(t, 5*time.Second), topic)
		if err != nil {
			return false, err.Error()
		}
		got, _ := tcs.On(topic, nil)
		return !slices.ContainsFunc(got.Configs, func(cv kadm.Config) bool {
			return strings.HasSuffix(cv.Key, ".replication.throttled.replicas") && cv.MaybeValue() != ""
		}), fmt.Sprintf("topic configs %v", got.Configs)
	})
	for p, r := range target {
		c.waitPartition(c.node(3), topic, int32(p), fmt.Sprintf("partition %d on %v, led by one of them, full ISR", p, r), func(s partitionState) bool {
			return slices.Equal(s.replicas, r) && slices.Contains(r, s.leader) && len(s.isr) == 3
		})
	}

	// The producer goes on with the new replicas, then an old replica
	// dies: the data is all on nodes 3, 4 and 5.
	moved := acks.count()
	waitFor(t, opTimeout, "records acknowledged after the move", func() (bool, string) {
		return acks.count() >= moved+500, fmt.Sprint(acks.count() - moved)
	})
	stopLoad()
	c.node(1).Kill9()
	waitIdenticalLogs(t, topic, 0, c.node(3), c.node(4), c.node(5))
	checkAcked(t, c, topic, acks)
	t.Logf("%d acknowledged records read back (%d before the move completed)", acks.count(), moved)
}
