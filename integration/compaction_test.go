package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A compacted topic keeps the newest record per key at its original offset:
// after the cleaner runs, reading from the start returns fewer records, and
// each key's last value is the last one produced.
func TestCompactedTopicKeepsLatestPerKey(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{"log.cleaner.backoff.ms=100"}})
	adm := n.Admin(t)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 1, map[string]*string{
		"cleanup.policy":            strp("compact"),
		"internal.segment.bytes":    strp("4096"),
		"min.cleanable.dirty.ratio": strp("0.01"),
	})
	producer := n.Client(t, kgo.DefaultProduceTopic(topic))
	ctx := ctxT(t, opTimeout)
	const keys, rounds = 10, 40
	last := map[string]string{}
	for r := 0; r < rounds; r++ {
		var batch []*kgo.Record
		for k := 0; k < keys; k++ {
			key, val := fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", k, r)
			batch = append(batch, &kgo.Record{Key: []byte(key), Value: []byte(val)})
			last[key] = val
		}
		if err := producer.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); err == nil {
		t.Fatal("a record without a key was accepted on a compacted topic")
	}

	readAll := func() []*kgo.Record {
		cl := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		defer cl.Close()
		var out []*kgo.Record
		for len(out) == 0 || out[len(out)-1].Offset < keys*rounds-1 {
			fs := cl.PollFetches(ctxT(t, opTimeout))
			if err := fs.Err(); err != nil {
				t.Fatalf("consume: %v", err)
			}
			out = append(out, fs.Records()...)
		}
		return out
	}
	var recs []*kgo.Record
	waitFor(t, 30*time.Second, "the cleaner to compact the topic", func() (bool, string) {
		recs = readAll()
		return len(recs) < keys*rounds/2, fmt.Sprintf("%d records from the start", len(recs))
	})
	seen := map[string]string{}
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("offsets not increasing: %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		seen[string(r.Key)] = string(r.Value)
	}
	for k, v := range last {
		if seen[k] != v {
			t.Errorf("key %s: last value %q, want %q", k, seen[k], v)
		}
	}
}
