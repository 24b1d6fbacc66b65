package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterProducerOpts make a client clusterProducer's producer: to topic,
// partition by partition, each batch sent at once.
func clusterProducerOpts(topic string) []kgo.Opt {
	return []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.RequestTimeoutOverhead(5 * time.Second)}
}

// clusterProducer produces numbered records to partition 0 with cl (made
// with clusterProducerOpts), an idempotent acks=all producer, until stop
// is closed, recording every acknowledged one.
func clusterProducer(cl *kgo.Client, acks *clusterAcks, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seq := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			recs := make([]*kgo.Record, 20)
			for i := range recs {
				recs[i] = &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("v-%07d", seq))}
				seq++
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res := cl.ProduceSync(ctx, recs...)
			cancel()
			for _, r := range res {
				if r.Err == nil {
					acks.add(r.Record.Partition, string(r.Record.Value))
				}
			}
		}
	}()
	return wg.Wait
}

func TestClusterReplicatesAndSurvivesLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	st := c.createLedPartition(topic, map[string]*string{"min.insync.replicas": strp("2")})

	failOverLeader(t, c, topic, st.leader, c.Client(t, clusterProducerOpts(topic)...), 2000, 60*time.Second)
	waitIdenticalLogs(t, topic, 0, c.nodes...)
}

func TestClusterSurvivesControllerKill(t *testing.T) {
	c := startCluster(t, 3)
	var ctrl int32 = -1
	waitFor(t, opTimeout, "a controller", func() (bool, string) {
		id, err := controllerOn(t, c.nodes[0])
		if err != nil {
			return false, err.Error()
		}
		ctrl = id
		return ctrl > 0, fmt.Sprint(ctrl)
	})
	c.node(ctrl).Kill9()
	survivors := c.alive()
	for _, n := range survivors {
		waitFor(t, opTimeout, fmt.Sprintf("node %d to name a new controller", n.id()), func() (bool, string) {
			id, err := controllerOn(t, n)
			if err != nil {
				return false, err.Error()
			}
			return id > 0 && id != ctrl, fmt.Sprint(id)
		})
	}
	// DescribeQuorum names the new leader and all three voters.
	waitFor(t, opTimeout, "DescribeQuorum to show the new leader", func() (bool, string) {
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
		req.Topics = append(req.Topics, rt)
		r, err := req.RequestWith(ctxT(t, 5*time.Second), c.Client(t, kgo.SeedBrokers(survivors[0].Addr())))
		if err != nil {
			return false, err.Error()
		}
		if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return false, fmt.Sprintf("%+v", r)
		}
		qp := r.Topics[0].Partitions[0]
		return qp.LeaderID > 0 && qp.LeaderID != ctrl && len(qp.CurrentVoters) == 3, fmt.Sprintf("leader %d, %d voters", qp.LeaderID, len(qp.CurrentVoters))
	})
	// Admin requests work through either survivor: the controller's own
	// listener and a forwarding node.
	for i, n := range survivors {
		topic := topicName(t, fmt.Sprint(i))
		sadm := adminOn(t, n)
		waitFor(t, opTimeout, "CreateTopics on node "+fmt.Sprint(n.id()), func() (bool, string) {
			resp, err := sadm.CreateTopic(ctxT(t, 5*time.Second), 2, 2, nil, topic)
			switch {
			case err != nil:
				return false, err.Error()
			case errors.Is(resp.Err, kerr.TopicAlreadyExists):
				return true, ""
			case resp.Err != nil:
				return false, resp.Err.Error()
			}
			return true, ""
		})
		cl := c.Client(t, kgo.DefaultProduceTopic(topic))
		if err := cl.ProduceSync(ctxT(t, 30*time.Second), &kgo.Record{Value: []byte("after the controller died")}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

func TestClusterRefusesBelowMinISR(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	adm := kadm.NewClient(c.Client(t))
	createTopicRF(t, adm, topic, 1, 3, map[string]*string{"min.insync.replicas": strp("3")})
	// The producer below does not retry, so every node it may ask for
	// metadata must know the topic already.
	var st partitionState
	for _, n := range c.nodes {
		st = c.waitPartition(n, topic, 0, "a full ISR", func(s partitionState) bool { return len(s.isr) == 3 && s.leader > 0 })
	}
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(v string) error {
		return cl.ProduceSync(ctxT(t, 20*time.Second), &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr()
	}
	if err := produce("all in sync"); err != nil {
		t.Fatalf("produce with a full ISR: %v", err)
	}
	var follower int32
	for _, r := range st.replicas {
		if r != st.leader {
			follower = r
			break
		}
	}
	c.node(follower).Kill9()
	c.waitPartition(c.node(st.leader), topic, 0, "the ISR to shrink", func(s partitionState) bool {
		return len(s.isr) == 2 && !slices.Contains(s.isr, follower)
	})
	if err := produce("one replica down"); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("produce with 2 of 3 in sync and min.insync.replicas=3: got %v, want NOT_ENOUGH_REPLICAS", err)
	}
	c.node(follower).Restart()
	c.waitPartition(c.node(st.leader), topic, 0, "the ISR to grow back", func(s partitionState) bool { return len(s.isr) == 3 })
	waitFor(t, opTimeout, "acks=all to succeed again", func() (bool, string) {
		if err := produce("back in sync"); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// TestClusterRollingRestart restarts every node in turn (SIGTERM, so
// leadership moves away first) under the load and checks of
// runClusterScenario: no acknowledged record is lost, the consumer group's
// committed offsets never go backwards, and the share group gets every
// record with no redelivery after a confirmed acknowledgement.
func TestClusterRollingRestart(t *testing.T) {
	runClusterScenario(t, func(r *chaosRun) { rollNodes(r, (*node).Stop) })
}
