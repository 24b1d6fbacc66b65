package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIdempotentProducerStateOnFollowers: followers rebuild an idempotent
// producer's state from the batches they replicate, and, as in Kafka, any
// replica answers DescribeProducers from its own log (kafka-transactions.sh
// describe-producers --broker-id), not only the leader.
func TestIdempotentProducerStateOnFollowers(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	topic := "idem-followers"
	st := c.createLedPartition(topic, nil)
	producer := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(1))
	ctx := ctxT(t, opTimeout)
	for i := range 3 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pid, epoch, err := producer.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := c.Client(t)
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d (leader %d) describes producer %d", n.id(), st.leader, pid), func() (bool, string) {
			req := kmsg.NewPtrDescribeProducersRequest()
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			req.Topics = append(req.Topics, rt)
			resp, err := admin.Broker(int(n.id())).RetriableRequest(ctxT(t, 5*time.Second), req)
			if err != nil {
				return false, err.Error()
			}
			p := resp.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0]
			for _, ap := range p.ActiveProducers {
				if ap.ProducerID == pid && ap.ProducerEpoch == int32(epoch) && ap.LastSequence == 2 {
					return p.ErrorCode == 0, ""
				}
			}
			return false, fmt.Sprintf("%+v", p)
		})
	}
}
