package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchEmptyRecordSetIsNotNull checks that a Fetch partition with no data
// (caught up, empty, or answered with an error) carries a zero-length record
// set, as Kafka sends, and never a null one: librdkafka rejects the whole
// response on a null set ("invalid MessageSetSize -1") and kafka-python
// fails on it, so a caught-up consumer of those clients would stall.
func TestFetchEmptyRecordSetIsNotNull(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	topic := topicName(t, "")
	id := createTopic(t, adm, topic, 2, nil).ID
	rc := dialRaw(t, n.Addr())
	if code, _ := rc.produceRaw(topic, id, 0, recordBatch(time.Now().UnixMilli(), []byte("one"))); code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	// v11 is the last version with an int32 record-set length, v12 the
	// first with a compact (uvarint) one; v13 names topics by id.
	for _, v := range []int16{4, 11, 12, rc.version(kmsg.NewPtrFetchRequest())} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 0
			req.MaxBytes = 1 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, id
			for _, p := range []struct {
				partition int32
				offset    int64
			}{
				{0, 1}, // caught up
				{1, 0}, // empty
				{9, 0}, // no such partition: an error
			} {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			resp := rc.request(req, v).(*kmsg.FetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
				t.Fatalf("fetch response has %d topics, want 1 with 3 partitions", len(resp.Topics))
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.RecordBatches == nil || len(p.RecordBatches) != 0 {
					t.Errorf("partition %d (error %d): record set %s, want empty and not null", p.Partition, p.ErrorCode, describeBytes(p.RecordBatches))
				}
			}
			if code := resp.Topics[0].Partitions[2].ErrorCode; code == 0 {
				t.Errorf("partition 9 of a 2-partition topic answered without error")
			}
		})
	}
}

// describeBytes tells a null byte field from an empty one.
func describeBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("of %d bytes", len(b))
}
