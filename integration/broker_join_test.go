package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A broker-only node joins a running three-node cluster under an acks=all
// producer: it follows the metadata quorum as a learner and registers;
// `shoal topic reassign --generate --broker-list 1,2,3,4` proposes moving
// replicas onto it, --execute moves them, and once the old replica beside
// it on the busy partition is killed, every acknowledged record is read
// back from the new broker.
func TestBrokerJoinsAndReceivesPartitions(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.Client(t)
	topic := topicName(t, "")
	current := [][]int32{{1, 2}, {2, 3}, {3, 1}, {1, 2}}
	c.createAssigned(cl, topic, current...)
	acks, stopLoad := startClusterLoad(t, c.Client(t, clusterProducerOpts(topic)...), 1000, "before the new broker joins")

	b4 := c.addBroker()
	waitQuorum(t, c.node(1), []int32{1, 2, 3}, []int32{4})

	err, out := runShoalCLI(t, c.node(2), "--output", "json", "topic", "reassign", "--generate", "--topics", topic, "--broker-list", "1,2,3,4")
	if err != nil {
		t.Fatalf("reassign --generate: %v\n%s", err, out)
	}
	var gen struct {
		Proposed planJSON `json:"proposed"`
	}
	if err := json.Unmarshal([]byte(out), &gen); err != nil {
		t.Fatalf("generate output: %v\n%s", err, out)
	}
	// Eight replicas over four brokers: two each, so brokers 1 and 2 each
	// hand one to broker 4, the busy partition 0 among them.
	perBroker := map[int32]int{}
	for _, p := range gen.Proposed.Partitions {
		for _, r := range p.Replicas {
			perBroker[r]++
		}
	}
	if len(gen.Proposed.Partitions) != len(current) || perBroker[4] != 2 || !slices.Contains(gen.Proposed.Partitions[0].Replicas, 4) {
		t.Fatalf("proposed %+v, want two replicas on broker 4, one of partition 0", gen.Proposed)
	}
	b, _ := json.Marshal(gen.Proposed)
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err, out := runShoalCLI(t, c.node(2), "topic", "reassign", "--execute", "--plan", plan, "--timeout", "25s"); err != nil {
		t.Fatalf("reassign --execute: %v\n%s", err, out)
	}
	for _, p := range gen.Proposed.Partitions {
		c.waitPartition(b4, topic, p.Partition, fmt.Sprintf("partition %d on %v with a full ISR, as broker 4 sees it", p.Partition, p.Replicas), func(s partitionState) bool {
			return slices.Equal(s.replicas, p.Replicas) && len(s.isr) == len(p.Replicas)
		})
	}

	moved := acks.count()
	waitFor(t, opTimeout, "records acknowledged after the move", func() (bool, string) {
		return acks.count() >= moved+500, fmt.Sprint(acks.count() - moved)
	})
	stopLoad()
	// Broker 4 holds partition 0 beside one old replica: with that one
	// gone, broker 4 alone serves it.
	other := slices.DeleteFunc(slices.Clone(gen.Proposed.Partitions[0].Replicas), func(r int32) bool { return r == 4 })[0]
	c.node(other).Kill9()
	c.waitPartition(b4, topic, 0, "broker 4 leading partition 0", func(s partitionState) bool { return s.leader == 4 })
	// A leader just elected may answer with the high watermark it had as a
	// follower until it has taken over (as a Kafka leader's may lag after
	// a failover): wait until its end offset covers every acknowledged
	// record before reading back up to it.
	adm := adminOn(t, b4)
	waitFor(t, opTimeout, "partition 0's end offset on broker 4 to cover the acknowledged records", func() (bool, string) {
		ends, err := listEndOffsets(ctxT(t, 5*time.Second), adm, topic)
		if err != nil {
			return false, err.Error()
		}
		return ends[0] >= int64(acks.count()), fmt.Sprintf("end offset %d, %d acknowledged", ends[0], acks.count())
	})
	checkAcked(t, c, topic, acks)
	t.Logf("%d acknowledged records read back from broker 4 (%d before the move completed)", acks.count(), moved)
}
