package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// planJSON is a reassignment plan in Kafka's JSON.
type planJSON struct {
	Version    int `json:"version"`
	Partitions []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Replicas  []int32 `json:"replicas"`
	} `json:"partitions"`
}

// rebalanceJSON is the part of shoal cluster rebalance's --output json
// answer the test reads.
type rebalanceJSON struct {
	Brokers []struct {
		ID       int32 `json:"id"`
		Proposed struct {
			Replicas int `json:"replicas"`
		} `json:"proposed"`
	} `json:"brokers"`
	Moves     int      `json:"moves"`
	Proposed  planJSON `json:"proposed"`
	Executed  bool     `json:"executed"`
	Elections []struct {
		Result string `json:"result"`
	} `json:"elections"`
}

// rebalance runs shoal cluster rebalance against n with args and decodes
// its JSON answer.
func rebalance(t *testing.T, n *node, args ...string) rebalanceJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, append([]string{"--bootstrap-server", n.Addr(), "--output", "json", "cluster", "rebalance"}, args...)...)
	cmd.Env = childEnv(nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("shoal cluster rebalance %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var res rebalanceJSON
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("rebalance output: %v\n%s", err, stdout.String())
	}
	return res
}

// replicaCounts is how many replicas and how many leaders each broker
// holds over every topic, internal ones included, as adm answers, and
// whether every partition is led by its first replica.
func replicaCounts(t *testing.T, adm *kadm.Client) (replicas, leaders map[int32]int, preferredLead bool, err error) {
	tds, err := adm.ListTopicsWithInternal(ctxT(t, 5*time.Second))
	if err != nil {
		return nil, nil, false, err
	}
	replicas, leaders, preferredLead = map[int32]int{}, map[int32]int{}, true
	for _, td := range tds {
		if td.Err != nil {
			return nil, nil, false, td.Err
		}
		for _, pd := range td.Partitions {
			for _, r := range pd.Replicas {
				replicas[r]++
			}
			leaders[pd.Leader]++
			preferredLead = preferredLead && len(pd.Replicas) > 0 && pd.Leader == pd.Replicas[0]
		}
	}
	return replicas, leaders, preferredLead, nil
}

// withinOne reports whether the counts of brokers 1..n differ by at most one.
func withinOne(counts map[int32]int, n int32) bool {
	var all []int
	for id := int32(1); id <= n; id++ {
		all = append(all, counts[id])
	}
	return slices.Max(all)-slices.Min(all) <= 1
}

// A 3-node cluster whose topic lives only on nodes 1 and 2 (node 3 has
// just joined, in effect): the dry run proposes moves onto node 3 and
// changes nothing; rebalance --execute under an acks=all producer then
// leaves every broker's replica count and leader count within one of the
// others, each partition led by its first replica, and every acknowledged
// record readable.
func TestRebalanceOntoEmptyBroker(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.Client(t)
	topic := topicName(t, "")
	c.createAssigned(cl, topic, []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1})
	via := c.nonController()
	adm := adminOn(t, via)
	before, _, _, err := replicaCounts(t, adm)
	if err != nil {
		t.Fatal(err)
	}

	acks := newClusterAcks()
	stop := make(chan struct{})
	wait := clusterProducer(c.Client(t, clusterProducerOpts(topic)...), acks, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()
	waitFor(t, opTimeout, "records acknowledged before the rebalance", func() (bool, string) {
		return acks.count() >= 2000, fmt.Sprint(acks.count())
	})

	dry := rebalance(t, via)
	if dry.Executed || dry.Moves == 0 || len(dry.Proposed.Partitions) == 0 {
		t.Fatalf("dry run proposed %+v", dry)
	}
	for _, b := range dry.Brokers {
		if b.ID == 3 && b.Proposed.Replicas == 0 {
			t.Errorf("the plan leaves node 3 empty: %+v", dry.Brokers)
		}
	}
	if now, _, _, err := replicaCounts(t, adm); err != nil || now[3] != before[3] {
		t.Fatalf("the dry run moved replicas: %v -> %v (%v)", before, now, err)
	}

	res := rebalance(t, via, "--execute", "--timeout", "80s")
	if !res.Executed || res.Moves != dry.Moves || len(res.Elections) != len(res.Proposed.Partitions) {
		t.Errorf("execute answered %+v, dry run %+v", res, dry)
	}
	for _, e := range res.Elections {
		if e.Result == "failed" {
			t.Errorf("election after the moves: %+v", res.Elections)
		}
	}
	waitFor(t, opTimeout, "replicas and leaders within one per broker, leaders preferred", func() (bool, string) {
		replicas, leaders, preferred, err := replicaCounts(t, adm)
		if err != nil {
			return false, err.Error()
		}
		return withinOne(replicas, 3) && withinOne(leaders, 3) && preferred,
			fmt.Sprintf("replicas %v, leaders %v, every partition led by its first replica: %v", replicas, leaders, preferred)
	})
	if again := rebalance(t, via); len(again.Proposed.Partitions) != 0 {
		t.Errorf("rebalancing a balanced cluster proposes %+v", again.Proposed)
	}

	moved := acks.count()
	waitFor(t, opTimeout, "records acknowledged after the rebalance", func() (bool, string) {
		return acks.count() >= moved+500, fmt.Sprint(acks.count() - moved)
	})
	close(stop)
	wait()
	stopped = true
	checkAcked(t, c, topic, acks)
	t.Logf("%d replicas moved; %d acknowledged records read back (%d before the rebalance finished)", res.Moves, acks.count(), moved)
}

// Racks outrank balance: with node 2 alone in rack b, every RF=2
// partition keeps a replica there, so rebalance onto node 3 (rack a, like
// node 1) takes half of node 1's replicas and none of node 2's. The racks
// come from DescribeCluster (broker.rack).
func TestRebalanceRackAware(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "b", 3: "a"}
	c := startClusterWith(t, 3, nodeOpts{beforeFirstStart: func(n *node) {
		n.opts.set = append(n.opts.set, "broker.rack="+racks[n.id()])
	}})
	cl := c.Client(t)
	topic := topicName(t, "")
	c.createAssigned(cl, topic, []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1}, []int32{1, 2}, []int32{2, 1})
	via := c.nonController()
	res := rebalance(t, via, "--topics", topic, "--execute", "--timeout", "60s")
	if res.Moves != 3 {
		t.Errorf("%d replicas moved, want 3: %+v", res.Moves, res.Proposed)
	}
	adm := adminOn(t, via)
	waitFor(t, opTimeout, "each partition on both racks, node 1 and node 3 with three replicas each", func() (bool, string) {
		var got []string
		perBroker := map[int32]int{}
		spans := true
		for p := range int32(6) {
			st, err := partitionOn(t, adm, topic, p)
			if err != nil {
				return false, err.Error()
			}
			rackSet := map[string]bool{}
			for _, r := range st.replicas {
				perBroker[r]++
				rackSet[racks[r]] = true
			}
			spans = spans && len(rackSet) == 2 && len(st.replicas) == 2 && st.leader == st.replicas[0]
			got = append(got, fmt.Sprint(st.replicas))
		}
		return spans && perBroker[1] == 3 && perBroker[2] == 6 && perBroker[3] == 3, strings.Join(got, " ")
	})
}
