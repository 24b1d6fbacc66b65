package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setGroupConfig sets one group config with IncrementalAlterConfigs.
func setGroupConfig(t *testing.T, cl *kgo.Client, group, key, value string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceType(resourceGroup), group
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: opSet, Value: &value}}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Resources[0].ErrorCode; c != 0 {
		t.Fatalf("setting %s=%s on group %s: error %d %v", key, value, group, c, deref(resp.Resources[0].ErrorMessage))
	}
}

// Several share consumers on a topic with fewer partitions than consumers
// get every record, each accepted once.
func TestShareGroupDeliversEveryRecordOnce(t *testing.T) {
	s := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(testClient(t, s))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "jobs"); err != nil {
		t.Fatal(err)
	}
	setGroupConfig(t, testClient(t, s), "workers", "share.auto.offset.reset", "earliest")
	prod := testClient(t, s, kgo.DefaultProduceTopic("jobs"))
	const n = 1000
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	pollCtx, allSeen := context.WithCancel(ctx)
	defer allSeen()
	for w := 0; w < 4; w++ {
		cl := testClient(t, s, kgo.ShareGroup("workers"), kgo.ConsumeTopics("jobs"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
				if len(seen) >= n {
					allSeen()
				}
				mu.Unlock()
				cl.MarkAcks(kgo.AckAccept)
			}
			cl.FlushAcks(ctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("timed out with %d of %d records", len(seen), n)
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct records, want %d", len(seen), n)
	}
	for v, c := range seen {
		if c != 1 {
			t.Errorf("record %s delivered %d times", v, c)
		}
	}
}
