package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/redrive"
)

// TestShareDLQRedriveHeaderOnly: with errors.deadletterqueue.copy.record.enable
// off (Kafka's default) a dead letter holds only its __dlq.errors.* headers,
// and a redrive reads the source record again by its topic, partition and
// offset, producing its key, value and headers. A dead letter whose source
// record retention removed is not redriven, and its result says so; a second
// redrive finds the others already redriven.
func TestShareDLQRedriveHeaderOnly(t *testing.T) {
	n := startShareNode(t)
	topic, dlq, group, admin := setUpDeadLettering(t, n)
	adm := kadmOf(admin)

	const total = 3
	prod := n.Client(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i)),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte(fmt.Sprint("h", i))}}})
	}
	ctx := ctxT(t, 2*time.Minute)
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	cl := shareClient(t, n, group, topic)
	pctx, cancel := context.WithCancel(context.Background())
	done := pollShareRecords(pctx, cl, func(r *kgo.Record) { cl.MarkAcks(kgo.AckReject, r) })
	dead := consumeN(t, n.Client(t, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), total, opTimeout)
	cancel()
	<-done
	for _, d := range dead {
		if d.Key != nil || d.Value != nil {
			t.Fatalf("dead letter at %d holds key %q value %q, want header-only", d.Offset, d.Key, d.Value)
		}
	}

	// Retention removes the first source record.
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1})
	if res, err := adm.DeleteRecords(ctx, del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}

	opts := append([]kgo.Opt{kgo.SeedBrokers(n.Addr())}, n.opts.clientOpts...)
	results, err := redrive.Redrive(ctx, opts, dlq, redrive.Options{Selector: redrive.Selector{To: -1}})
	if err != nil {
		t.Fatalf("redrive: %v (%+v)", err, results)
	}
	status := map[int64]string{}
	for _, r := range results {
		status[r.Offset] = r.Status
	}
	gone := status[dead[0].Offset]
	if !strings.Contains(gone, "not redriven") || !strings.Contains(gone, "retention") || !strings.Contains(gone, fmt.Sprintf("%s/0@0", topic)) {
		t.Errorf("dead letter of the deleted record: %q, want it not redriven because retention removed %s/0@0 (results %+v)", gone, topic, results)
	}
	for _, d := range dead[1:] {
		if status[d.Offset] != redrive.StatusRedriven {
			t.Errorf("dead letter %d: %q, want redriven (results %+v)", d.Offset, status[d.Offset], results)
		}
	}

	// The source topic gets records 1 and 2 again, as produced.
	again := consumeN(t, n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(total)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())), total-1, opTimeout)
	for i, r := range again {
		want := recs[i+1]
		if string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) || len(r.Headers) != 1 ||
			r.Headers[0].Key != "origin" || string(r.Headers[0].Value) != string(want.Headers[0].Value) {
			t.Errorf("redriven record %d: key %q value %q headers %v, want %q %q origin=%s", i, r.Key, r.Value, r.Headers, want.Key, want.Value, want.Headers[0].Value)
		}
	}

	// A second redrive produces nothing new.
	results, err = redrive.Redrive(ctx, opts, dlq, redrive.Options{Selector: redrive.Selector{To: -1}})
	if err != nil {
		t.Fatalf("second redrive: %v", err)
	}
	for _, r := range results {
		if r.Offset != dead[0].Offset && r.Status != redrive.StatusAlready {
			t.Errorf("second redrive of dead letter %d: %q, want already redriven", r.Offset, r.Status)
		}
	}
}
