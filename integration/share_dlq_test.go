package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareDeliveryLimitDeadLetters releases one record every time it comes
// back and rejects another: the first is archived after its 5th delivery, the
// second at once, and both are copied to the group's dead-letter topic with
// the original key, value and headers plus the __dlq.errors.* headers. The
// other records are accepted and never dead-lettered.
func TestShareDeliveryLimitDeadLetters(t *testing.T) {
	const (
		total     = 10
		releaseAt = 3
		rejectAt  = 6
		limit     = 5
	)
	n := startShareNode(t)
	topic, dlq, group, admin := setUpDeadLettering(t, n,
		"share.delivery.count.limit="+strconv.Itoa(limit),
		"errors.deadletterqueue.copy.record.enable=true")

	prod := n.Client(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < total; i++ {
		recs = append(recs, &kgo.Record{
			Key:     []byte(fmt.Sprintf("k%d", i)),
			Value:   []byte(fmt.Sprintf("v%d", i)),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte(fmt.Sprintf("h%d", i))}},
		})
	}
	if err := prod.ProduceSync(ctxT(t, opTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	offsetOf := map[string]int64{}
	for _, r := range recs {
		offsetOf[string(r.Key)] = r.Offset
	}
	releaseKey, rejectKey := fmt.Sprintf("k%d", releaseAt), fmt.Sprintf("k%d", rejectAt)

	var acks ackResults
	cl := shareClient(t, n, group, topic, kgo.ShareAckCallback(acks.callback))
	var (
		releaseCounts []int32
		deliveries    = map[string]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := pollShareRecords(ctx, cl, func(r *kgo.Record) {
		k := string(r.Key)
		deliveries[k]++
		switch k {
		case releaseKey:
			releaseCounts = append(releaseCounts, r.DeliveryCount())
			cl.MarkAcks(kgo.AckRelease, r)
		case rejectKey:
			cl.MarkAcks(kgo.AckReject, r)
		default:
			cl.MarkAcks(kgo.AckAccept, r)
		}
	})

	// Everything ends terminal: accepted, rejected, or archived at the limit.
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: total}, 60*time.Second)

	// The dead-letter topic gets exactly the two records.
	dl := n.Client(t, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, dl, 2, 30*time.Second)
	cancel()
	<-done

	if _, failed := acks.snapshot(); len(failed) > 0 {
		t.Errorf("acknowledgements failed: %v", failed)
	}
	want := make([]int32, limit)
	for i := range want {
		want[i] = int32(i + 1)
	}
	if fmt.Sprint(releaseCounts) != fmt.Sprint(want) {
		t.Errorf("released record delivered with counts %v, want %v", releaseCounts, want)
	}
	for _, r := range recs {
		k := string(r.Key)
		if k != releaseKey && deliveries[k] != 1 {
			t.Errorf("%s delivered %d times, want 1", k, deliveries[k])
		}
	}

	byKey := map[string]*kgo.Record{}
	for _, r := range got {
		byKey[string(r.Key)] = r
	}
	check := func(key, reason string, count int) {
		t.Helper()
		r := byKey[key]
		if r == nil {
			t.Errorf("%s not on the dead-letter topic (got keys %v)", key, keysOf(byKey))
			return
		}
		i := int(offsetOf[key])
		if want := fmt.Sprintf("v%d", i); string(r.Value) != want {
			t.Errorf("dead-lettered %s: value %q, want %q", key, r.Value, want)
		}
		h := map[string]string{}
		for _, rh := range r.Headers {
			if _, dup := h[rh.Key]; dup {
				t.Errorf("dead-lettered %s: header %q twice", key, rh.Key)
			}
			h[rh.Key] = string(rh.Value)
		}
		wantH := map[string]string{
			"origin":                      fmt.Sprintf("h%d", i),
			"__dlq.errors.topic":          topic,
			"__dlq.errors.partition":      "0",
			"__dlq.errors.offset":         strconv.FormatInt(offsetOf[key], 10),
			"__dlq.errors.group":          group,
			"__dlq.errors.group.id":       group,
			"__dlq.errors.delivery.count": strconv.Itoa(count),
			"__dlq.errors.reason":         reason,
		}
		for hk, hv := range wantH {
			if got, ok := h[hk]; !ok || got != hv {
				t.Errorf("dead-lettered %s: header %s = %q (present %v), want %q", key, hk, got, ok, hv)
			}
		}
	}
	check(releaseKey, "delivery limit", limit)
	check(rejectKey, "rejected", 1)

	// Nothing else is dead-lettered: the end offset of the topic stays 2.
	if ends := highWatermarks(t, n, dlq); ends[0] != 2 {
		t.Errorf("dead-letter topic has %d records, want 2", ends[0])
	}
}

func keysOf(m map[string]*kgo.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
