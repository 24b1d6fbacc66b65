package bench

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceTxnKfake checks how ProduceTxn shares the work out: producer i
// writes only partitions i, i+producers, ..., each group goes whole to one
// partition, in turn, and each transactional group is a transaction of its
// own (one commit marker each in the partition's log).
func TestProduceTxnKfake(t *testing.T) {
	addrs, ctx := onKfake(t)
	// 1,050 records for 2 producers on 4 partitions: 525 each, in groups
	// of 100, 100, 100, 100, 100 and 25; producer 0 writes groups 0, 2, 4
	// to partition 0 and groups 1, 3, 5 to partition 2 (producer 1 the
	// same on partitions 1 and 3).
	records := map[int32]int64{0: 300, 1: 300, 2: 225, 3: 225}
	groups := map[int32]int64{0: 3, 1: 3, 2: 3, 3: 3}
	for _, transactional := range []bool{false, true} {
		topic := "txn-shape-idempotent"
		if transactional {
			topic = "txn-shape-transactional"
		}
		o := Options{Brokers: addrs, Topic: topic, Partitions: 4, Records: 1050, RecordSize: 16}
		res, err := ProduceTxn(ctx, o, 100, 2, transactional)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		if res.Records != 1050 || res.Bytes != 1050*16 {
			t.Errorf("%s: %d records, %d bytes acknowledged; want 1050, %d", topic, res.Records, res.Bytes, 1050*16)
		}
		// 525 records a producer: five groups of 100 and one of 25 each.
		if res.Latency.Count != 12 || res.Latency.P50 <= 0 {
			t.Errorf("%s: %d group times (median %s), want 12", topic, res.Latency.Count, res.Latency.P50)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range records {
			if transactional {
				want += groups[p] // a commit marker per transaction
			}
			end, _ := ends.Lookup(topic, p)
			if end.Offset != want {
				t.Errorf("%s[%d] ends at %d, want %d", topic, p, end.Offset, want)
			}
		}
	}
	if _, err := ProduceTxn(ctx, Options{Brokers: addrs, Topic: "txn-shape-idempotent", Partitions: 4}, 100, 5, false); err == nil {
		t.Error("5 producers for 4 partitions: no error")
	}
}
