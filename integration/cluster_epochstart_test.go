package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// latestOffsetOn asks node n itself (on cl, a client seeded with it) for
// partition 0's latest offset as a read_uncommitted consumer does: the
// offset, or the partition's error code, or err when no answer came.
func latestOffsetOn(cl *kgo.Client, n *node, topic string) (int64, int16, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Broker(int(n.id())).Request(ctx, req)
	if err != nil {
		return -1, 0, err
	}
	r := resp.(*kmsg.ListOffsetsResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return -1, 0, fmt.Errorf("answer for %d topics", len(r.Topics))
	}
	p := r.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode, nil
}

// Right after its leader is killed, a partition's end offset as the new
// leader reports it (ListOffsets latest, what a consumer starting at
// "latest" and a lag tool ask) never goes below the records already
// acknowledged with acks=all: until the new leader's high watermark has
// caught up with the start of its epoch it answers OFFSET_NOT_AVAILABLE,
// which clients retry.
func TestNewLeaderEndOffsetNeverBelowAcknowledged(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	st := c.createLedPartition(topic, map[string]*string{"min.insync.replicas": strp("2")})

	// One client on each node that survives, connected before the kill.
	var survivors []*node
	clients := map[int32]*kgo.Client{}
	for _, n := range c.nodes {
		if n.id() == st.leader {
			continue
		}
		survivors = append(survivors, n)
		clients[n.id()] = n.Client(t)
		if _, _, err := latestOffsetOn(clients[n.id()], n, topic); err != nil {
			t.Fatalf("node %d: %v", n.id(), err)
		}
	}

	acks, stopLoad := startClusterLoad(t, c.Client(t, clusterProducerOpts(topic)...), 1000, "before the kill")
	c.node(st.leader).Kill9()
	t.Logf("killed leader %d after %d acknowledged records", st.leader, acks.count())

	// Ask both survivors, back to back, until one answers as leader: the
	// window before the new leader's HW catches up is short. Each answer
	// is compared with what was acknowledged before it was asked for.
	var (
		mu           sync.Mutex
		notAvailable int
		other        = map[string]int{}
		violations   []string
		end          int64 = -1
	)
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	for _, n := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := end >= 0 || len(violations) > 0
				mu.Unlock()
				if done || time.Now().After(deadline) {
					return
				}
				acked := int64(acks.count())
				off, code, err := latestOffsetOn(clients[n.id()], n, topic)
				mu.Lock()
				switch {
				case err != nil:
					other[err.Error()]++
				case code == kerr.OffsetNotAvailable.Code:
					notAvailable++
				case code != 0:
					e := kerr.ErrorForCode(code)
					if !kerr.IsRetriable(e) {
						violations = append(violations, fmt.Sprintf("node %d answered %v, which clients do not retry", n.id(), e))
					}
					other[e.Error()]++
				case off < acked:
					violations = append(violations, fmt.Sprintf("node %d answered end offset %d with %d records acknowledged before the request", n.id(), off, acked))
				default:
					end = off
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, v := range violations {
		t.Error(v)
	}
	if end < 0 && len(violations) == 0 {
		t.Fatalf("no new leader answered ListOffsets latest within 60s (other answers: %v)", other)
	}
	stopLoad()
	t.Logf("end offset %d on the new leader after %d OFFSET_NOT_AVAILABLE answers (other answers: %v)", end, notAvailable, other)
}
