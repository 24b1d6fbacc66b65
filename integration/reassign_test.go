package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// createAssigned creates topic with an explicit replica assignment (one
// replica list per partition) and waits until node 1 sees every partition
// led with its full ISR.
func (c *cluster) createAssigned(cl *kgo.Client, topic string, assign ...[]int32) {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p, replicas := range assign {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctxT(c.t, 15*time.Second), cl)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		c.t.Fatalf("create %s: %v", topic, err)
	}
	for p, replicas := range assign {
		c.waitPartition(c.nodes[0], topic, int32(p), "a full ISR", func(s partitionState) bool {
			return len(s.isr) == len(replicas) && s.leader == replicas[0]
		})
	}
}

// nonController returns a running node other than the active controller
// and the excluded ids, so that admin requests sent to it are forwarded
// to the controller.
func (c *cluster) nonController(exclude ...int32) *node {
	c.t.Helper()
	var n *node
	waitFor(c.t, opTimeout, "a node that is not the controller", func() (bool, string) {
		ctrl, err := controllerOn(c.t, c.node(1))
		if err != nil || ctrl < 0 {
			return false, fmt.Sprint(ctrl, err)
		}
		for _, cand := range c.alive() {
			if id := cand.id(); id != ctrl && !slices.Contains(exclude, id) {
				n = cand
				return true, ""
			}
		}
		return false, fmt.Sprintf("controller %d", ctrl)
	})
	return n
}

// reassignmentsOf lists the reassignments in progress of topic's
// partitions 0..n-1, as node 1 answers.
func reassignmentsOf(t *testing.T, adm *kadm.Client, topic string, n int32) (kadm.ListPartitionReassignmentsResponses, error) {
	var parts []int32
	for p := range n {
		parts = append(parts, p)
	}
	ts := kadm.TopicsSet{}
	ts.Add(topic, parts...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return adm.ListPartitionReassignments(ctx, ts)
}

// A busy RF=1 partition moves from node 1 to node 2 under an acks=all
// producer; once the reassignment completes, node 1 is killed: every
// acknowledged record is read back from node 2. On the way, the API
// answers Kafka's errors for bad requests.
func TestReassignBusyPartitionThenKillOldReplica(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.Client(t)
	// Through a node that forwards to the controller, as most requests go.
	adm := adminOn(t, c.nonController(1))
	topic := topicName(t, "")
	c.createAssigned(cl, topic, []int32{1})

	// Kafka's errors.
	ctx := ctxT(t, 10*time.Second)
	bad := kadm.AlterPartitionAssignmentsReq{}
	bad.Assign(topic, 0, []int32{9})
	bad.Assign(topic, 7, []int32{2})
	bad.Assign("no-such-topic", 0, []int32{2})
	resps, err := adm.AlterPartitionAssignments(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		topic string
		p     int32
		err   error
	}{{topic, 0, kerr.InvalidReplicaAssignment}, {topic, 7, kerr.UnknownTopicOrPartition}, {"no-such-topic", 0, kerr.UnknownTopicOrPartition}} {
		if got := resps[w.topic][w.p].Err; !errors.Is(got, w.err) {
			t.Errorf("reassigning %s-%d: %v, want %v", w.topic, w.p, got, w.err)
		}
	}
	cancelReq := kadm.AlterPartitionAssignmentsReq{}
	cancelReq.CancelAssign(topic, 0)
	resps, err = adm.AlterPartitionAssignments(ctx, cancelReq)
	if err != nil {
		t.Fatal(err)
	}
	if got := resps[topic][0].Err; !errors.Is(got, kerr.NoReassignmentInProgress) {
		t.Errorf("cancelling with none in progress: %v, want NO_REASSIGNMENT_IN_PROGRESS", got)
	}

	acks, stopLoad := startClusterLoad(t, c.Client(t, clusterProducerOpts(topic)...), 2000, "before the move")

	move := kadm.AlterPartitionAssignmentsReq{}
	move.Assign(topic, 0, []int32{2})
	resps, err = adm.AlterPartitionAssignments(ctx, move)
	if err != nil {
		t.Fatal(err)
	}
	if err := resps[topic][0].Err; err != nil {
		t.Fatalf("reassigning to node 2: %v", err)
	}
	waitFor(t, opTimeout, "the reassignment to complete", func() (bool, string) {
		l, err := reassignmentsOf(t, adm, topic, 1)
		if err != nil {
			return false, err.Error()
		}
		st, err := partitionOn(t, adm, topic, 0)
		if err != nil {
			return false, err.Error()
		}
		return len(l) == 0 && slices.Equal(st.replicas, []int32{2}) && st.leader == 2, fmt.Sprintf("in progress %v, partition %+v", l.Sorted(), st)
	})
	// The producer follows the partition to node 2.
	moved := acks.count()
	waitFor(t, opTimeout, "records acknowledged by node 2", func() (bool, string) {
		return acks.count() >= moved+1000, fmt.Sprint(acks.count() - moved)
	})
	stopLoad()

	c.node(1).Kill9()
	checkAcked(t, c, topic, acks)
	t.Logf("%d acknowledged records read back from node 2 (%d before the move completed)", acks.count(), moved)
}

// shoal cluster remove-broker on a node that leads a partition under an
// acks=all producer: every replica on it moves to the other nodes, it is
// unregistered once stopped, DescribeCluster no longer lists it, and no
// acknowledged record is lost.
func TestRemoveLoadedBroker(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.Client(t)
	topic := topicName(t, "")
	c.createAssigned(cl, topic, []int32{3, 1}, []int32{2, 3}, []int32{1, 2})

	acks, stopLoad := startClusterLoad(t, c.Client(t, clusterProducerOpts(topic)...), 2000, "before the removal")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	via := c.nonController(3)
	cmd := exec.CommandContext(ctx, shoalBin, "--bootstrap-server", via.Addr(), "--output", "json", "cluster", "remove-broker", "3", "--timeout", "50s")
	cmd.Env = childEnv(nil)
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Once the moves are done the command asks for the broker to stop.
	waitFor(t, opTimeout, "remove-broker to move the replicas off node 3", func() (bool, string) {
		return strings.Contains(stderr.String(), "holds no replicas now"), stderr.String()
	})
	adm := adminOn(t, via)
	for p := range int32(3) {
		st, err := partitionOn(t, adm, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(st.replicas, 3) || len(st.replicas) != 2 {
			t.Errorf("partition %d: replicas %v after the moves, want two replicas, none on node 3", p, st.replicas)
		}
	}
	c.node(3).Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("remove-broker: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("remove-broker did not finish after node 3 stopped\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), `"unregistered": true`) {
		t.Errorf("remove-broker output:\n%s", stdout.String())
	}
	on1 := clientWith(t, []kgo.Opt{kgo.SeedBrokers(c.node(1).Addr())}, c.node(1).opts.clientOpts)
	waitFor(t, 10*time.Second, "DescribeCluster on node 1 to no longer list broker 3", func() (bool, string) {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		resp, err := req.RequestWith(ctxT(t, 5*time.Second), on1)
		if err != nil {
			return false, err.Error()
		}
		var ids []int32
		for _, b := range resp.Brokers {
			ids = append(ids, b.NodeID)
		}
		return !slices.Contains(ids, 3) && len(ids) == 2, fmt.Sprint(ids)
	})

	stopLoad()
	checkAcked(t, c, topic, acks)
	t.Logf("%d acknowledged records read back", acks.count())
}
