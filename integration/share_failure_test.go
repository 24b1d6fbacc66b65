package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareKilledWorkerRecordsRedelivered kills (SIGKILL) a worker process
// while it holds a batch: the records it held, and only those, go to the
// surviving worker, at the latest once the 2s lock runs out (the broker also
// releases them when the dead worker's connection closes).
func TestShareKilledWorkerRecordsRedelivered(t *testing.T) {
	const (
		total = 40
		lock  = 2 * time.Second
	)
	n, topic, group, admin := startShareTopic(t, 1, "share.auto.offset.reset=earliest",
		fmt.Sprintf("share.record.lock.duration.ms=%d", lock.Milliseconds()))
	// Everything is in the log before the worker's first fetch, which
	// takes it all (the fetch budget is 500 records).
	produceSpread(t, n, topic, 1, total)

	w := startShareWorker(t, n, group, topic)
	w.waitHolding(t)
	held := w.held()
	if len(held) == 0 {
		t.Fatal("share worker reported holding nothing")
	}
	for k, c := range held {
		if c != 1 {
			t.Errorf("worker got %d/%d with delivery count %d, want 1", k[0], k[1], c)
		}
	}

	// The survivor joins while the worker still holds its records: it must
	// not get any of them before the kill.
	type got struct {
		at    time.Time
		count int32
	}
	recs := make(chan *kgo.Record, 1000)
	surv := shareClient(t, n, group, topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pollDone := pollShareRecords(ctx, surv, func(r *kgo.Record) { recs <- r })
	// Give the survivor a chance to fetch (and wrongly get something)
	// before the kill: wait until it is a member with an assignment.
	waitFor(t, 10*time.Second, "survivor assigned", func() (bool, string) {
		d := describeShareGroup(t, admin, group)
		return len(d.Members) == 2 && assignedCount(d) == 2, fmt.Sprintf("%d members", len(d.Members))
	})

	killedAt := time.Now()
	w.kill9()
	received := map[[2]int64]got{}
	deadline := time.After(lock + 15*time.Second)
	for len(received) < len(held) {
		select {
		case r := <-recs:
			k := [2]int64{int64(r.Partition), r.Offset}
			if _, dup := received[k]; dup {
				t.Errorf("survivor got %d/%d twice", k[0], k[1])
			}
			received[k] = got{time.Now(), r.DeliveryCount()}
		case <-deadline:
			t.Fatalf("survivor got %d of the %d records the killed worker held", len(received), len(held))
		}
	}
	surv.MarkAcks(kgo.AckAccept)
	if err := surv.FlushAcks(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("flush acks: %v", err)
	}
	// All records are accepted once the survivor's acks are in; nothing
	// else may arrive.
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: total}, 20*time.Second)
	cancel()
	<-pollDone
	close(recs)
	for r := range recs {
		t.Errorf("survivor got %d/%d (delivery %d) after everything was accepted", r.Partition, r.Offset, r.DeliveryCount())
	}

	var latest time.Duration
	for k, g := range received {
		if _, ok := held[k]; !ok {
			t.Errorf("survivor got %d/%d, which the killed worker did not hold", k[0], k[1])
		}
		if g.at.Before(killedAt) {
			t.Errorf("survivor got %d/%d before the worker holding it was killed", k[0], k[1])
		}
		// Kafka 4.1 does not count an attempt ended by a dropped session,
		// later versions do: 1 or 2.
		if g.count < 1 || g.count > 2 {
			t.Errorf("survivor got %d/%d with delivery count %d, want 1 or 2", k[0], k[1], g.count)
		}
		latest = max(latest, g.at.Sub(killedAt))
	}
	for k := range held {
		if _, ok := received[k]; !ok {
			t.Errorf("record %d/%d held by the killed worker never reached the survivor", k[0], k[1])
		}
	}
	t.Logf("killed worker held %d records; survivor got them all within %v of the kill", len(held), latest.Round(time.Millisecond))
}

// TestShareAcknowledgedNeverRedeliveredAfterKill9 accepts half of what a
// consumer got, waits until the broker confirmed those acks, kills the broker
// with SIGKILL while the other half is still held, restarts it, and drains
// the group with a new consumer: no confirmed accept may be delivered again,
// and every other record must be.
func TestShareAcknowledgedNeverRedeliveredAfterKill9(t *testing.T) {
	const (
		partitions = 2
		total      = 400
	)
	// The first consumer cannot leave (the broker is down when it goes),
	// so it keeps its share of the assignment until its session times out.
	n := startShareNode(t, "group.share.session.timeout.ms=3000")
	topic := topicName(t, "")
	group := topic + "-g"
	admin := n.Client(t)
	createTopic(t, kadmOf(admin), topic, partitions, nil)
	setGroupConfigs(t, admin, group, "share.auto.offset.reset=earliest")
	produceSpread(t, n, topic, partitions, total)
	hwm := highWatermarks(t, n, topic)

	var acks ackResults
	c1 := shareClient(t, n, group, topic, kgo.ShareAckCallback(acks.callback))
	// One poll only: a second poll would auto-accept the records left
	// unmarked by the first.
	fs := c1.PollFetches(ctxT(t, 30*time.Second))
	fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
	got := fs.Records()
	if len(got) < 20 {
		t.Fatalf("first poll returned %d records, want at least 20", len(got))
	}
	accepted := map[[2]int64]bool{}
	var accept []*kgo.Record
	for i, r := range got {
		if i%2 == 0 {
			accept = append(accept, r)
			accepted[[2]int64{int64(r.Partition), r.Offset}] = true
		}
	}
	c1.MarkAcks(kgo.AckAccept, accept...)
	if err := c1.FlushAcks(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("flush acks: %v", err)
	}
	ok, failed := acks.snapshot()
	if len(failed) > 0 || ok == 0 {
		t.Fatalf("accepts not confirmed: %d partition results ok, failures %v", ok, failed)
	}
	t.Logf("first consumer got %d records, %d accepts confirmed", len(got), len(accepted))

	n.Kill9()
	// The first consumer goes away while the broker is down, so nothing it
	// still holds is released or accepted by a goodbye.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c1.LeaveGroupContext(ctx)
	cancel()
	c1.Close()
	restartAt := time.Now()
	n.Restart()
	t.Logf("broker restarted in %v", time.Since(restartAt).Round(time.Millisecond))

	c2 := shareClient(t, n, group, topic)
	admin2 := n.Client(t)
	type delivery struct {
		count int32
		times int
	}
	second := map[[2]int64]*delivery{}
	dctx, dcancel := context.WithCancel(context.Background())
	defer dcancel()
	done := make(chan struct{})
	var pollErr error
	go func() {
		defer close(done)
		for dctx.Err() == nil {
			fs := c2.PollFetches(dctx)
			fs.EachError(func(tp string, p int32, err error) {
				if dctx.Err() == nil && pollErr == nil {
					pollErr = fmt.Errorf("fetch %s/%d: %v", tp, p, err)
				}
			})
			for _, r := range fs.Records() {
				k := [2]int64{int64(r.Partition), r.Offset}
				d := second[k]
				if d == nil {
					d = &delivery{}
					second[k] = d
				}
				d.times++
				d.count = r.DeliveryCount()
			}
			c2.MarkAcks(kgo.AckAccept)
		}
	}()
	waitStartOffsets(t, admin2, group, topic, hwm, 60*time.Second)
	dcancel()
	<-done
	if pollErr != nil {
		t.Logf("second consumer saw: %v", pollErr)
	}

	var redelivered, missing, twice int
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < hwm[p]; o++ {
			k := [2]int64{int64(p), o}
			d := second[k]
			switch {
			case accepted[k] && d != nil:
				redelivered++
				if redelivered <= 10 {
					t.Errorf("%d/%d was accepted (confirmed) before the kill and delivered again (delivery count %d)", p, o, d.count)
				}
			case !accepted[k] && d == nil:
				missing++
				if missing <= 10 {
					t.Errorf("%d/%d was never accepted but not delivered after the restart", p, o)
				}
			case d != nil && d.times > 1:
				twice++
				if twice <= 10 {
					t.Errorf("%d/%d delivered %d times to the only consumer after the restart", p, o, d.times)
				}
			}
		}
	}
	if redelivered+missing+twice > 0 {
		t.Errorf("%d confirmed accepts redelivered, %d unaccepted records lost, %d delivered twice", redelivered, missing, twice)
	}
	t.Logf("after the restart: %d records delivered, drained %v after the restart began", len(second), time.Since(restartAt).Round(time.Millisecond))
}
