package integration

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/bench"
)

// Cluster benchmarks: failover time and the cost of replication, on three
// real shoal processes on this machine. They take minutes and want a quiet
// machine, so they run only when asked:
//
//	SHOAL_BENCH=1 go test -run 'TestBenchCluster' -v -timeout 30m ./integration/

// defaultClusterSettings undo clusterSettings' test-speed timeouts: the
// failover figures are for Kafka's defaults.
var defaultClusterSettings = []string{
	"broker.session.timeout.ms=9000",
	"broker.heartbeat.interval.ms=2000",
	"replica.lag.time.max.ms=30000",
	"replica.fetch.wait.max.ms=500",
}

// TestBenchClusterFailover measures how long a busy partition cannot take
// writes when its leader dies (kill -9) or stops (SIGTERM, controlled
// shutdown): the longest gap between two successful acks=all produces of a
// producer at franz-go's defaults that sends one record after the other.
func TestBenchClusterFailover(t *testing.T) {
	skipUnlessBench(t, "the cluster benchmarks")
	rounds := benchEnvInt(t, "SHOAL_BENCH_ROUNDS", 3)
	c := startCluster(t, 3, defaultClusterSettings...)
	topic := topicName(t, "")
	adm := kadm.NewClient(c.Client(t))
	// One partition per node, so some partition's leader is never the
	// active controller and another's always is.
	createTopicRF(t, adm, topic, 3, 3, map[string]*string{"min.insync.replicas": strp("2")})

	type scenario struct {
		name       string
		controller bool // the victim is the active controller
		disrupt    func(n *node)
	}
	scenarios := []scenario{
		{"kill -9 leader (not the controller)", false, (*node).Kill9},
		{"kill -9 leader (also the controller)", true, (*node).Kill9},
		{"SIGTERM leader (controlled shutdown)", false, (*node).Stop},
	}
	results := map[string][]time.Duration{}
	for round := 0; round < rounds; round++ {
		for _, sc := range scenarios {
			part, victim := c.pickLeader(t, topic, 3, sc.controller)
			moved := make(chan time.Duration, 1)
			gap := measureWriteGap(t, c, topic, part, func() {
				t0 := time.Now()
				sc.disrupt(victim)
				go func() { moved <- c.leaderMovedAfter(t, topic, part, victim.id(), t0) }()
			})
			t.Logf("round %d, %s: node %d led partition %d; metadata named a new leader after %s; writes stopped for %s",
				round+1, sc.name, victim.id(), part, (<-moved).Round(time.Millisecond), gap.Round(time.Millisecond))
			results[sc.name] = append(results[sc.name], gap)
			victim.Restart()
			for p := int32(0); p < 3; p++ {
				c.waitPartition(c.alive()[0], topic, p, "a full ISR again", func(s partitionState) bool { return len(s.isr) == 3 })
			}
		}
	}
	t.Logf("failover, writes unavailable (broker.session.timeout.ms=9000, client defaults), %d rounds:", rounds)
	for _, sc := range scenarios {
		d := slices.Clone(results[sc.name])
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		t.Logf("  %-40s median %6s  max %6s", sc.name, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
}

// pickLeader returns a partition of topic whose leader is (controller) or
// is not (!controller) the active controller, and that leader.
func (c *cluster) pickLeader(t *testing.T, topic string, partitions int32, controller bool) (int32, *node) {
	t.Helper()
	var part int32 = -1
	var leader int32
	waitFor(t, opTimeout, "a partition led by the wanted node", func() (bool, string) {
		n := c.alive()[0]
		ctrl, err := controllerOn(t, n)
		if err != nil {
			return false, err.Error()
		}
		adm := adminOn(t, n)
		for p := int32(0); p < partitions; p++ {
			st, err := partitionOn(t, adm, topic, p)
			if err != nil || st.leader <= 0 || len(st.isr) != 3 {
				continue
			}
			if (st.leader == ctrl) == controller {
				part, leader = p, st.leader
				return true, ""
			}
		}
		return false, fmt.Sprintf("controller %d", ctrl)
	})
	return part, c.node(leader)
}

// leaderMovedAfter polls a surviving node's metadata until the partition
// has a leader other than old and returns the time since t0.
func (c *cluster) leaderMovedAfter(t *testing.T, topic string, part, old int32, t0 time.Time) time.Duration {
	var survivor *node
	for _, n := range c.nodes {
		if n.id() != old {
			survivor = n
			break
		}
	}
	adm := adminOn(t, survivor)
	for time.Since(t0) < time.Minute {
		if st, err := partitionOn(t, adm, topic, part); err == nil && st.leader > 0 && st.leader != old {
			return time.Since(t0)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(t0)
}

// measureWriteGap produces to partition part one record at a time with a
// default-configured idempotent acks=all client, runs disrupt once the
// producer is going, and returns the longest time between two successful
// acks from just before disrupt until writes have flowed for 2 s again.
func measureWriteGap(t *testing.T, c *cluster, topic string, part int32, disrupt func()) time.Duration {
	t.Helper()
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.Addr())
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var mu sync.Mutex
	var acks []time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("failover")}).FirstErr()
			cancel()
			if err == nil {
				mu.Lock()
				acks = append(acks, time.Now())
				mu.Unlock()
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	// A producer in its steady state: franz-go refreshes metadata at most
	// once per metadata min age (5 s), so a client younger than that would
	// measure its own start-up.
	started := time.Now()
	waitFor(t, opTimeout, "the producer to run for 6 s", func() (bool, string) {
		return count() >= 200 && time.Since(started) > 6*time.Second, fmt.Sprint(count())
	})
	t0 := time.Now()
	disrupt()
	waitFor(t, 60*time.Second, "writes to flow for 2 s after the disruption", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if len(acks) == 0 {
			return false, "no acks"
		}
		last := acks[len(acks)-1]
		var first time.Time
		for _, a := range acks {
			if a.After(t0) {
				first = a
				break
			}
		}
		return !first.IsZero() && last.Sub(first) >= 2*time.Second && time.Since(last) < 100*time.Millisecond, fmt.Sprintf("%d acks", len(acks))
	})
	mu.Lock()
	defer mu.Unlock()
	var gap time.Duration
	prev := t0
	for i, a := range acks {
		if a.Before(t0) {
			if i+1 < len(acks) && !acks[i+1].Before(t0) {
				prev = a
			}
			continue
		}
		gap = max(gap, a.Sub(prev))
		prev = a
	}
	return gap
}

// TestBenchClusterReplication compares acks=all produce throughput to a
// topic with replication factor 3 against one with replication factor 1 on
// the same three-node cluster, in one run.
func TestBenchClusterReplication(t *testing.T) {
	skipUnlessBench(t, "the cluster benchmarks")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 300_000)
	set := benchSettings(defaultClusterSettings...)
	c := startCluster(t, 3, set...)
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.Addr())
	}
	adm := kadm.NewClient(c.Client(t))
	const partitions = 6
	runs := 0
	run := func(rf int16) bench.Result {
		runs++
		topic := topicName(t, fmt.Sprintf("rf%d-%d", rf, runs))
		c.createReplicated(adm, topic, partitions, rf, map[string]*string{"min.insync.replicas": strp(strconv.Itoa(int(min(rf, 2))))})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		res, err := bench.Produce(ctx, bench.Options{Brokers: seeds, Topic: topic, Partitions: partitions, Records: records, RecordSize: 1024, Linger: 5 * time.Millisecond})
		if err != nil {
			t.Fatalf("produce rf=%d: %v", rf, err)
		}
		if res.Records != int64(records) {
			t.Fatalf("rf=%d: %d records acknowledged, want %d", rf, res.Records, records)
		}
		t.Logf("rf=%d: %s", rf, res)
		return res
	}
	// RF 1 before and after RF 3, so a machine that slows down (page
	// cache filling, another process) does not favour either side.
	rf1a := run(1)
	rf3 := run(3)
	rf1b := run(1)
	rf1 := (rf1a.MBPerSec + rf1b.MBPerSec) / 2
	t.Logf("acks=all produce, %d x 1 KiB, %d partitions: RF=1 %.0f MB/s (%.0f, %.0f), RF=3 %.0f MB/s: ratio %.2f",
		records, partitions, rf1, rf1a.MBPerSec, rf1b.MBPerSec, rf3.MBPerSec, rf3.MBPerSec/rf1)
}
