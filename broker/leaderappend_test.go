package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/share"
)

// A rejected record is archived (the share-partition start offset passes
// it) only after its copy on the dead-letter topic is written; when that
// topic asks for flush.messages=1, the copy is fsynced by then too, as a
// produce to it would be.
func TestDeadLetterWriteHonoursFlushMessages(t *testing.T) {
	s := startTestServer(t)
	ctx := testContext(t, 30*time.Second)
	const topic, dlq, group = "jobs", "dlq.jobs", "workers"
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, topic, nil)
	dlqConfigs := map[string]*string{
		"flush.messages":                      strPtr("1"),
		"errors.deadletterqueue.group.enable": strPtr("true"),
	}
	createTopic(t, ctx, adm, 1, dlq, dlqConfigs)
	setGroupConfig(t, testClient(t, s), group, "share.auto.offset.reset", "earliest")
	setGroupConfig(t, testClient(t, s), group, "errors.deadletterqueue.topic.name", dlq)
	prod := testClient(t, s, kgo.DefaultProduceTopic(topic))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("poison")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		ackErrs []error
		acked   int
	)
	cl := testClient(t, s, kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
		kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs {
				if r.Err != nil {
					ackErrs = append(ackErrs, r.Err)
				} else {
					acked++
				}
			}
		}))
	for got := 0; got == 0; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("timed out waiting for the record")
		}
		for _, r := range fs.Records() {
			cl.MarkAcks(kgo.AckReject, r)
			got++
		}
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(ackErrs) > 0 || acked == 0 {
		t.Fatalf("reject acknowledged %d times, errors %v", acked, ackErrs)
	}
	mu.Unlock()

	key := share.KeyOf(group, s.meta.Image().Topics[topic], 0)
	for {
		if start, _, ok := s.shares.Progress(key); ok && start == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the rejected record was never archived")
		case <-time.After(10 * time.Millisecond):
		}
	}
	p := s.logs.Partition(dlq, 0)
	if p == nil {
		t.Fatal("no local log for the dead-letter partition")
	}
	if leo := p.LogEndOffset(); leo != 1 {
		t.Fatalf("dead-letter topic holds %d records once the rejected record is archived, want 1", leo)
	}
	if rp := p.RecoveryPoint(); rp != 1 {
		t.Errorf("dead-letter record not fsynced when the rejected record was archived: recovery point %d, want 1 (flush.messages=1)", rp)
	}
}

// A coordinator's write to its internal topic is fsynced before it is
// answered when the topic's flush.messages (here the broker default
// log.flush.interval.messages) asks for it.
func TestInternalTopicWriteHonoursFlushMessages(t *testing.T) {
	s := startTestServer(t, "log.flush.interval.messages=1")
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(testClient(t, s))
	createTopic(t, ctx, adm, 1, "t", nil)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "t", Partition: 0, At: 7, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, "committer", offsets)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
	internal := s.meta.Image().Topics[coordruntime.OffsetsTopic]
	if internal == nil {
		t.Fatalf("%s not created by the commit", coordruntime.OffsetsTopic)
	}
	written := 0
	for i := range internal.Partitions {
		p := s.logs.Partition(coordruntime.OffsetsTopic, int32(i))
		if p == nil || p.LogEndOffset() == 0 {
			continue
		}
		written++
		if rp, leo := p.RecoveryPoint(), p.LogEndOffset(); rp != leo {
			t.Errorf("%s-%d: recovery point %d below log end %d once the commit is answered", coordruntime.OffsetsTopic, i, rp, leo)
		}
	}
	if written == 0 {
		t.Fatalf("no %s partition holds the commit", coordruntime.OffsetsTopic)
	}
}
