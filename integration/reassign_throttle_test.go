package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// throttleBytes is the reassignment throttle the test measures, bytes/s.
const throttleBytes = 3_000_000

// fillPartition writes about bytes of record data to partition 0 of topic
// and returns the partition's size on broker 1 once it is all there.
func fillPartition(t *testing.T, c *cluster, adm *kadm.Client, topic string, bytes int) int64 {
	t.Helper()
	fillTopic(t, c, topic, bytes)
	return partitionSize(t, adm, 1, topic)
}

// fillTopic writes about bytes of record data to topic in 10 kB records,
// spread over its partitions, acks=all.
func fillTopic(t *testing.T, c *cluster, topic string, bytes int) {
	t.Helper()
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond))
	pad := strings.Repeat("x", 10_000-16)
	for sent := 0; sent < bytes; {
		var recs []*kgo.Record
		for range 100 {
			// Distinct values, so a reader can tell a record stored twice.
			value := fmt.Appendf(nil, "fill-%011d%s", sent, pad)
			recs = append(recs, &kgo.Record{Value: value})
			sent += len(value)
		}
		if err := cl.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// partitionSize is the size of partition 0 of topic on broker, as
// DescribeLogDirs reports it; -1 when the broker holds none.
func partitionSize(t *testing.T, adm *kadm.Client, broker int32, topic string) int64 {
	t.Helper()
	return replicaBytes(t, adm, broker, topic, 0)
}

// replicaBytes is the total size of the given partitions of topic on
// broker, as DescribeLogDirs reports it; -1 when the broker holds none of
// them.
func replicaBytes(t *testing.T, adm *kadm.Client, broker int32, topic string, partitions ...int32) int64 {
	t.Helper()
	set := kadm.TopicsSet{}
	set.Add(topic, partitions...)
	ds, err := adm.DescribeBrokerLogDirs(ctxT(t, 5*time.Second), broker, set)
	if err != nil {
		return -1
	}
	total, found := int64(0), false
	for _, p := range partitions {
		if d, ok := ds.LookupPartition(topic, p); ok {
			total += d.Size
			found = true
		}
	}
	if !found {
		return -1
	}
	return total
}

// catchUp polls the sizes of new replicas (each replica's size in bytes,
// or -1) until every one holds total bytes, and returns for each the
// replication rate measured from the first poll that satisfies from (the
// replica's size then, the time of the poll) to the moment it held them
// all, in bytes/s, and the whole time taken since start.
func catchUp(t *testing.T, total int64, from func(size int64, at time.Time) bool, start time.Time, replicas ...func() int64) (rates []float64, took time.Duration) {
	t.Helper()
	type progress struct {
		fromAt   time.Time
		fromSize int64
		done     bool
	}
	ps := make([]progress, len(replicas))
	rates = make([]float64, len(replicas))
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := 0
		var sizes []int64
		for i, size := range replicas {
			if ps[i].done {
				continue
			}
			s := size()
			now := time.Now()
			sizes = append(sizes, s)
			p := &ps[i]
			if p.fromAt.IsZero() && from(s, now) {
				p.fromAt, p.fromSize = now, s
			}
			switch {
			case s < total:
				pending++
			case now.Equal(p.fromAt):
				rates[i], p.done = float64(total)/now.Sub(start).Seconds(), true
			default:
				rates[i], p.done = float64(s-p.fromSize)/now.Sub(p.fromAt).Seconds(), true
			}
		}
		if pending == 0 {
			return rates, time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("new replicas hold %v of %d bytes after 30s", sizes, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runShoalCLI runs the shoal command against n and returns its exit error
// and output.
func runShoalCLI(t *testing.T, n *node, args ...string) (error, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, append([]string{"--bootstrap-server", n.Addr()}, args...)...)
	cmd.Env = childEnv(nil)
	out, err := cmd.CombinedOutput()
	return err, string(out)
}

// startMoveTest starts a two-node cluster whose throttles measure over
// two one-second samples (a fresh rate lets at most one second's worth
// through before it bites, so a throttle shows within seconds), creates a
// topic with one partition on node 1, fills it with about bytes, and
// writes the plan moving it to node 2. It returns the partition's size.
func startMoveTest(t *testing.T, bytes int) (c *cluster, adm *kadm.Client, topic, plan string, total int64) {
	t.Helper()
	c = startCluster(t, 2, "replication.quota.window.num=2")
	adm = adminOn(t, c.node(1))
	topic = topicName(t, "")
	c.createAssigned(c.Client(t), topic, []int32{1})
	total = fillPartition(t, c, adm, topic, bytes)
	plan = filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"`+topic+`","partition":0,"replicas":[2]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return c, adm, topic, plan, total
}

// verifyComplete runs `shoal topic reassign --verify` until it reports
// every partition of plan completed, and returns its last output.
func verifyComplete(t *testing.T, n *node, plan string, timeout time.Duration) string {
	t.Helper()
	var out string
	waitFor(t, timeout, "reassign --verify to report every partition moved", func() (bool, string) {
		err, o := runShoalCLI(t, n, "topic", "reassign", "--verify", "--plan", plan)
		out = o
		return err == nil, o
	})
	return out
}

// A partition moved with `shoal topic reassign --execute --throttle`
// replicates at the throttle (within 20%, after the first window's
// burst), the throttle configs are set while it moves and removed by
// --verify once it is done; the same move without a throttle is much
// faster.
func TestReassignThrottled(t *testing.T) {
	c, adm, topic, plan, total := startMoveTest(t, 15_000_000)
	start := time.Now()
	if err, out := runShoalCLI(t, c.node(1), "topic", "reassign", "--execute", "--plan", plan, "--throttle", fmt.Sprint(throttleBytes), "--wait=false"); err != nil {
		t.Fatalf("reassign --execute: %v\n%s", err, out)
	}
	// The throttles are in place while the partition moves.
	checkMoveThrottled(t, adm, topic, "")
	rates, took := catchUp(t, total, func(size int64, _ time.Time) bool { return size >= total*3/10 }, start, func() int64 { return partitionSize(t, adm, 2, topic) })
	rate := rates[0]
	t.Logf("throttled at %d B/s: %d bytes moved in %v, %.0f B/s after the first 30%%", throttleBytes, total, took, rate)
	if rate < throttleBytes*0.8 || rate > throttleBytes*1.2 {
		t.Errorf("throttled replication ran at %.0f B/s, want within 20%% of %d", rate, throttleBytes)
	}

	// --verify removes the throttles once the move is complete.
	if out := verifyComplete(t, c.node(1), plan, 20*time.Second); !strings.Contains(out, "Clearing broker-level throttles on brokers [1 2]") {
		t.Errorf("verify output:\n%s", out)
	}
	tcs, err := adm.DescribeTopicConfigs(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tcs.On(topic, nil); hasConfig(got.Configs, "leader.replication.throttled.replicas", "0:1") || hasConfig(got.Configs, "follower.replication.throttled.replicas", "0:2") {
		t.Errorf("topic throttles left after --verify: %v", got.Configs)
	}
	for _, b := range []int32{1, 2} {
		bcs, err := adm.DescribeBrokerConfigs(ctxT(t, 5*time.Second), b)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range bcs {
			for _, cv := range rc.Configs {
				if strings.HasSuffix(cv.Key, ".replication.throttled.rate") && cv.Source == kmsg.ConfigSourceDynamicBrokerConfig {
					t.Errorf("broker %d still has %s=%v after --verify", b, cv.Key, cv.MaybeValue())
				}
			}
		}
	}

	// The same move without a throttle.
	free := topicName(t, "free")
	c.createAssigned(c.Client(t), free, []int32{1})
	freeTotal := fillPartition(t, c, adm, free, 15_000_000)
	move := kadm.AlterPartitionAssignmentsReq{}
	move.Assign(free, 0, []int32{2})
	start = time.Now()
	resps, err := adm.AlterPartitionAssignments(ctxT(t, 10*time.Second), move)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	_, freeTook := catchUp(t, freeTotal, func(size int64, _ time.Time) bool { return size >= freeTotal }, start, func() int64 { return partitionSize(t, adm, 2, free) })
	freeRate := float64(freeTotal) / freeTook.Seconds()
	t.Logf("unthrottled: %d bytes moved in %v, %.0f B/s", freeTotal, freeTook, freeRate)
	if freeRate < 2.5*throttleBytes {
		t.Errorf("unthrottled replication ran at %.0f B/s, want far above the %d B/s throttle", freeRate, throttleBytes)
	}
}

// hasConfig reports whether configs hold key with value want.
func hasConfig(configs []kadm.Config, key, want string) bool {
	for _, c := range configs {
		if c.Key == key && c.MaybeValue() == want {
			return true
		}
	}
	return false
}

// brokerConfigValue is broker's dynamic value of key ("" when unset).
func brokerConfigValue(t *testing.T, adm *kadm.Client, broker int32, key string) string {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t, 5*time.Second), broker)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		for _, cv := range rc.Configs {
			if cv.Key == key && cv.Source == kmsg.ConfigSourceDynamicBrokerConfig {
				return cv.MaybeValue()
			}
		}
	}
	return ""
}

// While a throttled reassignment runs, another --execute is refused
// unless --additional; --execute --additional of the same plan with a
// higher --throttle raises every broker's rate and keeps the moving
// replicas throttled, and the move then completes at the new rate.
func TestReassignAdditionalChangesThrottle(t *testing.T) {
	c, adm, topic, plan, total := startMoveTest(t, 6_000_000)
	// At 200 kB/s the move takes half a minute.
	if err, out := runShoalCLI(t, c.node(1), "topic", "reassign", "--execute", "--plan", plan, "--throttle", "200000", "--wait=false"); err != nil {
		t.Fatalf("reassign --execute: %v\n%s", err, out)
	}
	err, out := runShoalCLI(t, c.node(1), "topic", "reassign", "--execute", "--plan", plan, "--throttle", "50000000", "--wait=false")
	if err == nil || !strings.Contains(out, "topic reassign --execute: 1 partition reassignments are in progress") || !strings.Contains(out, "--additional") {
		t.Fatalf("a second --execute during the move: %v\n%s", err, out)
	}
	for _, b := range []int32{1, 2} {
		if got := brokerConfigValue(t, adm, b, "follower.replication.throttled.rate"); got != "200000" {
			t.Errorf("broker %d: follower.replication.throttled.rate=%q after the refused --execute, want 200000", b, got)
		}
	}

	if err, out := runShoalCLI(t, c.node(1), "topic", "reassign", "--execute", "--additional", "--plan", plan, "--throttle", "50000000", "--wait=false"); err != nil {
		t.Fatalf("reassign --execute --additional: %v\n%s", err, out)
	}
	for _, b := range []int32{1, 2} {
		for _, key := range []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate"} {
			if got := brokerConfigValue(t, adm, b, key); got != "50000000" {
				t.Errorf("broker %d: %s=%q after --execute --additional, want 50000000", b, key, got)
			}
		}
	}
	checkMoveThrottled(t, adm, topic, " after --execute --additional")
	// What is left would take over twenty seconds at the old rate.
	waitFor(t, 10*time.Second, "the move to complete at the new throttle", func() (bool, string) {
		size := partitionSize(t, adm, 2, topic)
		return size >= total, fmt.Sprintf("%d of %d bytes on broker 2", size, total)
	})
	verifyComplete(t, c.node(1), plan, 20*time.Second)
}

// checkMoveThrottled checks that topic's throttled replica configs name the
// move of partition 0 from broker 1 to broker 2; when says at which step.
func checkMoveThrottled(t *testing.T, adm *kadm.Client, topic, when string) {
	t.Helper()
	tcs, err := adm.DescribeTopicConfigs(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"leader.replication.throttled.replicas": "0:1", "follower.replication.throttled.replicas": "0:2"} {
		if got, err := tcs.On(topic, nil); err != nil || !hasConfig(got.Configs, key, want) {
			t.Errorf("topic config %s%s: %v (%v), want %s", key, when, got.Configs, err, want)
		}
	}
}
