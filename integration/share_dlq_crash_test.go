package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/crashpoint"
	"github.com/shoalmq/shoal/share"
)

// TestShareDeadLetterCrashLoop kills the broker (SIGKILL, from the crash
// point the process reaches) at every step of a rejection: before the
// rejection is persisted, after it and before the dead-letter write is
// assigned, after the write's intent is persisted and before it is sent,
// and after the dead letter is written but before the record is archived.
// Each round arms the next step, produces one more record and has a fresh
// share consumer reject whatever it gets, until the process dies at that
// step (the crash may hit the new rejection or the recovery of an earlier
// one). A last, unarmed run finishes the recovery. Every record must then
// be on the dead-letter topic exactly once: none lost at any step, none
// duplicated by a resend.
func TestShareDeadLetterCrashLoop(t *testing.T) {
	points := []string{share.CrashRejectBeforeState, share.CrashDLQBeforeIntent, share.CrashDLQAfterIntent, share.CrashDLQAfterWrite}
	armed := func(p string) []string { return []string{crashpoint.Env + "=" + p} }
	n := startNode(t, nodeOpts{
		set: []string{"group.share.heartbeat.interval.ms=500", "group.share.session.timeout.ms=10000"},
		env: armed(points[0]),
	})
	topic, dlq, group, admin := setUpDeadLettering(t, n)

	// rejectAll runs a share consumer that rejects every record it gets
	// until stop is called.
	rejectAll := func() (stop func()) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
			kgo.RetryTimeout(2*time.Second), kgo.DialTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := pollShareRecords(ctx, cl, func(r *kgo.Record) { cl.MarkAcks(kgo.AckReject, r) })
		return func() {
			cancel()
			<-done
			cl.Close()
		}
	}
	produce := func(i int) {
		cl := n.Client(t)
		defer cl.Close()
		r := &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("job-" + strconv.Itoa(i))}
		if err := cl.ProduceSync(ctxT(t, opTimeout), r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}

	for i, p := range points {
		produce(i)
		stop := rejectAll()
		waitFor(t, 30*time.Second, "the broker to crash at "+p, func() (bool, string) {
			return !n.Alive(), "still running"
		})
		t.Logf("crashed at %s", p)
		stop()
		t.Logf("consumer closed")
		if !strings.Contains(n.Output(), "crashpoint: "+p+" reached") {
			t.Fatalf("round %d: the broker died, but not at %s", i, p)
		}
		n.Kill9() // reap the process
		n.opts.env = nil
		if i+1 < len(points) {
			n.opts.env = armed(points[i+1])
		}
		n.Restart()
		t.Logf("restarted")
	}

	// Unarmed: the last rejections and every pending dead letter complete.
	total := len(points)
	stop := rejectAll()
	admin = n.Client(t)
	waitStartOffsets(t, admin, group, topic, map[int32]int64{0: int64(total)}, 60*time.Second)
	stop()

	// Every record reached the start offset only once its dead letter was
	// written, so the dead-letter topic is complete now.
	dl := n.Client(t, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, dl, total, 30*time.Second)
	seen := map[string]int{}
	for _, r := range got {
		for _, h := range r.Headers {
			if h.Key == share.DLQHeaderOffset {
				seen[string(h.Value)]++
			}
		}
	}
	for i := 0; i < total; i++ {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("record at offset %d is on the dead-letter topic %d times, want once", i, c)
		}
	}
	if ends := highWatermarks(t, n, dlq); ends[0] != int64(total) {
		t.Errorf("dead-letter topic has %d records, want %d (dead letters by offset: %s)", ends[0], total, fmt.Sprint(seen))
	}
}
