package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareKeyOrderedDelivery runs a share group with
// share.delivery.ordering=key: a worker process takes the first records and
// is killed (SIGKILL) while holding them, and three workers then drain the
// topic, releasing the first delivery of every fourth record. Each key's
// records must be processed (accepted) in offset order, and every record
// processed. With ordering none the releases alone reorder keys.
func TestShareKeyOrderedDelivery(t *testing.T) {
	const (
		partitions = 2
		keys       = 8
		total      = 400
		workers    = 3
	)
	n, topic, group, admin := startShareTopic(t, partitions, "share.auto.offset.reset=earliest", "share.delivery.ordering=key")

	// Record i has key k<i%keys>, on partition (i%keys)%partitions, so
	// each partition interleaves keys/partitions keys.
	prod := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := make([]*kgo.Record, total)
	for i := range recs {
		k := i % keys
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(k % partitions), Key: []byte("k" + strconv.Itoa(k)), Value: []byte(strconv.Itoa(i))}
	}
	if err := prod.ProduceSync(ctxT(t, opTimeout), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	hwm := highWatermarks(t, n, topic)

	crashed := startShareWorker(t, n, group, topic)
	crashed.waitHolding(t)
	if held := crashed.held(); len(held) > keys {
		t.Errorf("the first worker got %d records of %d keys: more than one per key in flight", len(held), keys)
	}

	type pk struct {
		partition int32
		key       string
	}
	var (
		mu        sync.Mutex
		processed = map[pk][]int64{} // accepted offsets per partition and key, in processing order
		done      = map[[2]int64]bool{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allDone := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	cls := make([]*kgo.Client, workers)
	for w := range cls {
		cls[w] = shareClient(t, n, group, topic)
		wg.Add(1)
		go func(cl *kgo.Client) {
			defer wg.Done()
			for ctx.Err() == nil {
				var release, accept []*kgo.Record
				for _, r := range cl.PollFetches(ctx).Records() {
					if r.Offset%4 == 0 && r.DeliveryCount() == 1 {
						release = append(release, r)
						continue
					}
					accept = append(accept, r)
				}
				// Processing happens before the accept is sent, so a
				// later record of the key must not have been handed out.
				mu.Lock()
				for _, r := range accept {
					k := pk{r.Partition, string(r.Key)}
					processed[k] = append(processed[k], r.Offset)
					done[[2]int64{int64(r.Partition), r.Offset}] = true
				}
				if len(done) == total {
					once.Do(func() { close(allDone) })
				}
				mu.Unlock()
				if len(release) > 0 {
					cl.MarkAcks(kgo.AckRelease, release...)
				}
				if len(accept) > 0 {
					cl.MarkAcks(kgo.AckAccept, accept...)
				}
			}
		}(cls[w])
	}
	// Kill the first worker once the others are members, so they fetch
	// while it holds the heads of its keys.
	waitFor(t, 10*time.Second, "workers assigned", func() (bool, string) {
		d := describeShareGroup(t, admin, group)
		return assignedCount(d) == workers+1, fmt.Sprintf("%d assigned", assignedCount(d))
	})
	crashed.kill9()

	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Errorf("only %d of %d records processed after 60s", len(done), total)
		mu.Unlock()
	}
	cancel()
	wg.Wait()
	flushAcksAndClose(t, cls, admin, group, topic, hwm)

	mu.Lock()
	defer mu.Unlock()
	for k, offs := range processed {
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				t.Errorf("partition %d key %s processed out of offset order: %v", k.partition, k.key, offs)
				break
			}
		}
	}
	if len(processed) != keys {
		t.Errorf("%d keys processed, want %d", len(processed), keys)
	}
}
