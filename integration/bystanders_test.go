package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Bystanders are a well-behaved producer and consumer that keep working
// against a node while a test sends it hostile input. check asserts the
// hostile input did not reach them: no client error, no stall, no
// acknowledged record lost.
//
// The stall measure is chosen to be robust on a loaded 2-core CI machine:
//
//   - producer stall: the longest gap between two successive
//     acknowledgements. The producer always has work (it produces the next
//     record as soon as the previous one is acknowledged), so any gap is time
//     the broker kept it waiting.
//   - consumer stall: the longest time an acknowledged record waited before
//     the consumer received it. A consumer with nothing to read is not
//     stalled; one behind the acknowledged head is.
//
// Both are compared with stallBound plus the longest scheduling delay the
// test process itself suffered in the same window (measured by a goroutine
// that sleeps 1 ms at a time and records how late it wakes). A delay of the
// test process delays its clients equally and says nothing about the broker;
// subtracting it keeps a GC pause or a descheduled test binary from being
// blamed on the broker, while a broker that holds a client up for longer
// than stallBound still fails.
type bystanders struct {
	t     *testing.T
	topic string

	// stopProducer ends the producer; stopRest the consumer and the lag
	// probe.
	stopProducer, stopRest context.CancelFunc
	producerDone           chan struct{}
	wg                     sync.WaitGroup

	mu       sync.Mutex
	errs     []string
	acked    map[int64]string    // offset -> value of every acknowledged record
	ackedAt  map[int64]time.Time // offset -> when its acknowledgement arrived
	consumed map[int64]string    // offset -> value the consumer received
	// consumedAt is when each offset reached the consumer.
	consumedAt  map[int64]time.Time
	lastAck     time.Time
	producerGap time.Duration
	selfLag     time.Duration
	started     time.Time
}

// stallBound is the longest a bystander may be kept waiting (issue 11: "no
// stall over 200 ms").
const stallBound = 200 * time.Millisecond

// startBystanders creates a one-partition topic on n and starts a producer
// (acks=all, one record in flight, so every gap between acknowledgements is
// broker time) and a consumer reading it from the start. name distinguishes
// several sets in one test.
func startBystanders(t *testing.T, n *node, name string) *bystanders {
	t.Helper()
	topic := topicName(t, "bystanders-"+name)
	createTopic(t, n.Admin(t), topic, 1, nil)
	prodCtx, stopProducer := context.WithCancel(context.Background())
	ctx, stopRest := context.WithCancel(context.Background())
	b := &bystanders{
		t:            t,
		topic:        topic,
		stopProducer: stopProducer,
		stopRest:     stopRest,
		producerDone: make(chan struct{}),
		acked:        map[int64]string{},
		ackedAt:      map[int64]time.Time{},
		consumed:     map[int64]string{},
		consumedAt:   map[int64]time.Time{},
	}
	t.Cleanup(b.stop)
	prod := n.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	cons := n.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()},
	}), kgo.FetchMaxWait(100*time.Millisecond))
	// The first acknowledgement also proves the clients are connected, so
	// the measured window holds no connection set-up.
	if err := prod.ProduceSync(ctxT(t, opTimeout), kgo.StringRecord("warm-up")).FirstErr(); err != nil {
		t.Fatalf("bystander producer warm-up: %v", err)
	}
	b.started = time.Now()
	b.lastAck = b.started
	b.wg.Add(2)
	go b.produce(prodCtx, prod)
	go b.consume(ctx, cons)
	go b.measureSelfLag(ctx)
	// Both clients are connected and working before the test starts its
	// hostile input: the consumer has the warm-up record.
	waitFor(t, opTimeout, "bystander consumer to start", func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.consumed[0]
		return ok, "warm-up record not consumed yet"
	})
	return b
}

func (b *bystanders) fail(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) < 20 {
		b.errs = append(b.errs, fmt.Sprintf(format, args...))
	}
}

func (b *bystanders) produce(ctx context.Context, cl *kgo.Client) {
	defer close(b.producerDone)
	for i := 0; ctx.Err() == nil; i++ {
		v := "r" + strconv.Itoa(i)
		r, err := cl.ProduceSync(ctx, kgo.StringRecord(v)).First()
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				b.fail("producer: record %s: %v", v, err)
			}
			return
		}
		b.mu.Lock()
		b.acked[r.Offset] = v
		b.ackedAt[r.Offset] = now
		b.producerGap = max(b.producerGap, now.Sub(b.lastAck))
		b.lastAck = now
		b.mu.Unlock()
	}
}

func (b *bystanders) consume(ctx context.Context, cl *kgo.Client) {
	defer b.wg.Done()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				b.fail("consumer: fetch %s/%d: %v", topic, p, err)
			}
		})
		b.mu.Lock()
		for _, r := range fs.Records() {
			b.consumed[r.Offset] = string(r.Value)
			b.consumedAt[r.Offset] = now
		}
		b.mu.Unlock()
	}
}

// measureSelfLag records the longest the test process's own goroutines were
// kept from running: how late a 1 ms sleep wakes up.
func (b *bystanders) measureSelfLag(ctx context.Context) {
	defer b.wg.Done()
	const tick = time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		time.Sleep(tick)
		if late := time.Since(start) - tick; late > 0 {
			b.mu.Lock()
			b.selfLag = max(b.selfLag, late)
			b.mu.Unlock()
		}
	}
}

func (b *bystanders) stop() {
	b.stopProducer()
	<-b.producerDone
	b.stopRest()
	b.wg.Wait()
}

// acks reports how many records have been acknowledged so far.
func (b *bystanders) acks() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.acked)
}

// check lets the bystanders reach at least minAcks acknowledged records (so a
// test cannot pass with clients that never ran), waits for the consumer to
// receive every acknowledged record, stops both and asserts: no client
// error, no stall over stallBound (see bystanders), every acknowledged
// record consumed with its value.
func (b *bystanders) check(minAcks int) {
	b.t.Helper()
	b.checkWithin(minAcks, stallBound)
}

// checkWithin is check with another stall bound, for a test whose hostile
// side itself loads the machine (say why where it is used).
func (b *bystanders) checkWithin(minAcks int, stallBound time.Duration) {
	t := b.t
	t.Helper()
	waitFor(t, opTimeout, "bystander producer progress", func() (bool, string) {
		got := b.acks()
		return got >= minAcks, fmt.Sprintf("%d of %d records acknowledged", got, minAcks)
	})
	// Stop producing, then let the consumer catch up with what was
	// acknowledged.
	b.stopProducer()
	<-b.producerDone
	waitFor(t, opTimeout, "bystander consumer to receive every acknowledged record", func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		var missing []int64
		for off := range b.acked {
			if _, ok := b.consumed[off]; !ok {
				missing = append(missing, off)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d acknowledged records not consumed yet (e.g. offset %v)", len(missing), firstOffset(missing))
	})
	b.stop()

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Errorf("bystanders saw errors:\n  %s", strings.Join(b.errs, "\n  "))
	}
	var lost []string
	consumerStall := time.Duration(0)
	for off, v := range b.acked {
		got, ok := b.consumed[off]
		if !ok || got != v {
			lost = append(lost, fmt.Sprintf("offset %d: acknowledged %q, consumed %q", off, v, got))
			continue
		}
		consumerStall = max(consumerStall, b.consumedAt[off].Sub(b.ackedAt[off]))
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records lost or changed, e.g. %s", len(lost), lost[0])
	}
	bound := stallBound + b.selfLag
	t.Logf("bystanders: %d records in %v, producer stall %v, consumer stall %v, test-process lag %v (bound %v)",
		len(b.acked), time.Since(b.started).Round(time.Millisecond), b.producerGap, consumerStall, b.selfLag, bound)
	if b.producerGap > bound {
		t.Errorf("bystander producer stalled %v between acknowledgements (bound %v = %v + test-process lag %v)",
			b.producerGap, bound, stallBound, b.selfLag)
	}
	if consumerStall > bound {
		t.Errorf("bystander consumer received an acknowledged record %v after its acknowledgement (bound %v = %v + test-process lag %v)",
			consumerStall, bound, stallBound, b.selfLag)
	}
}

func firstOffset(s []int64) any {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// peakRSS is the shoal process's peak resident set size in bytes (VmHWM from
// /proc/<pid>/status).
func (n *node) peakRSS() int64 {
	t := n.t
	t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		t.Fatal("node is not running")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading process status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestBystanders runs the bystanders against a node that sees no hostile
// input: the baseline every hostile test compares with.
func TestBystanders(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	b := startBystanders(t, n, "baseline")
	b.check(200)
	t.Logf("peak RSS %d MiB", n.peakRSS()>>20)
}
