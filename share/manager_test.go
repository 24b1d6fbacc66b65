package share

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/internal/testwait"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// jobsHarness is a harness with topic "jobs" (one partition, led here, the
// given records in it) and a local __share_group_state; group g reads from
// the earliest offset, with the extra group configs.
func jobsHarness(t *testing.T, groupConfigs map[string]string, records ...string) (*harness, *raftmeta.Topic, TopicPart) {
	h := newHarness(t)
	topic := h.addTopic("jobs", 1, 1, self, nil)
	h.addTopic(StateTopic, 2, 1, self, nil)
	gc := map[string]string{"share.auto.offset.reset": "earliest"}
	maps.Copy(gc, groupConfigs)
	h.setGroupConfig("g", gc)
	h.produce(topic, 0, records...)
	return h, topic, TopicPart{ID: topic.ID, Partition: 0}
}

// openSession opens member's share session on topic partitions of t.
func (h *harness) openSession(group, member string, tps ...TopicPart) *Session {
	h.t.Helper()
	sess, _, kerrv := h.m.OpenSession(group, member, 0, true, h)
	if kerrv != nil {
		h.t.Fatal(kerrv)
	}
	h.m.EditSession(sess, func(parts map[TopicPart]bool) {
		for _, tp := range tps {
			parts[tp] = true
		}
	})
	return sess
}

func (h *harness) acquire(group, member string, sess *Session) *collect {
	out := newCollect()
	if poll := h.m.Acquire(context.Background(), AcquireRequest{Group: group, Member: member, MaxRecords: 500, BatchSize: 500}, sess, out); poll != nil {
		h.t.Fatal("no wait was asked for, yet a poll came back")
	}
	return out
}

// A record whose lock runs out on the runtime's clock goes back to the
// queue and to the next member, with its delivery count; the change is
// persisted with the leader epoch it was loaded under, and no step looks the
// leader partition up under the share partition's lock.
func TestLockExpiryRedeliversOnInjectedClock(t *testing.T) {
	h, topic, tp := jobsHarness(t, nil, "a", "b", "c")

	got := h.acquire("g", "m1", h.openSession("g", "m1", tp))
	if want := [][2]int64{{0, 2}}; len(got.acquired[tp]) != 1 || got.acquired[tp][0] != want[0] {
		t.Fatalf("m1 acquired %v, failed %v; want %v", got.acquired, got.failed, want)
	}
	sess2 := h.openSession("g", "m2", tp)
	if got := h.acquire("g", "m2", sess2); len(got.acquired) != 0 {
		t.Fatalf("m2 acquired %v while m1 holds every record", got.acquired)
	}

	h.clock.Advance(29 * time.Second)
	h.tick()
	if got := h.acquire("g", "m2", sess2); len(got.acquired) != 0 {
		t.Fatalf("m2 acquired %v before the 30s lock ran out", got.acquired)
	}
	h.clock.Advance(time.Second)
	h.tick()
	got = h.acquire("g", "m2", sess2)
	if len(got.acquired[tp]) != 1 || got.acquired[tp][0] != [2]int64{0, 2} || got.counts[0] != 2 {
		t.Fatalf("after expiry m2 acquired %v (counts %v), want 0-2 at delivery count 2", got.acquired, got.counts)
	}
	st := h.coord.last()
	if st.LeaderEpoch != 5 || len(st.Batches) != 1 || st.Batches[0].DeliveryCount != 1 {
		t.Fatalf("persisted after expiry %+v, want leader epoch 5 and the records available at count 1", st)
	}

	// Accepting them moves the start offset past them, durably.
	ack := h.m.Acknowledge(context.Background(), "g", "m2", topic, 0, []queue.AckBatch{{First: 0, Last: 2, Types: []queue.AckType{queue.AckAccept}}}, false)
	if err := ack.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.coord.last(); st.StartOffset != 3 || len(st.Batches) != 0 {
		t.Fatalf("persisted after accept %+v, want start offset 3", st)
	}
	if start, complete, ok := h.m.Progress(coordinator.ShareKey{Group: "g", TopicID: topic.ID, Partition: 0}); !ok || start != 3 || complete != 0 {
		t.Fatalf("progress %d %d %v, want start 3", start, complete, ok)
	}
}

// Closing a session releases what its member holds at once, and a rejected
// record goes to the group's dead-letter topic with headers saying where it
// came from and why (Kafka's, and shoal's older names), and with its value
// as the group asks errors.deadletterqueue.copy.record.enable.
func TestReleaseAndDeadLetter(t *testing.T) {
	h, topic, tp := jobsHarness(t, map[string]string{"errors.deadletterqueue.topic.name": "dlq.jobs", "errors.deadletterqueue.copy.record.enable": "true"}, "a", "b")
	h.addTopic("dlq.jobs", 3, 1, self, map[string]string{"errors.deadletterqueue.group.enable": "true"})

	sess := h.openSession("g", "m1", tp)
	if got := h.acquire("g", "m1", sess); len(got.acquired[tp]) != 1 {
		t.Fatalf("acquired %v", got.acquired)
	}
	ack := h.m.Acknowledge(context.Background(), "g", "m1", topic, 0, []queue.AckBatch{{First: 1, Last: 1, Types: []queue.AckType{queue.AckReject}}}, false)
	if err := ack.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	var batches [][]byte
	testwait.For(t, "the dead letter is written", func() bool {
		h.replicas.mu.Lock()
		defer h.replicas.mu.Unlock()
		batches = h.replicas.appended["dlq.jobs"]
		return len(batches) > 0
	})
	if len(batches) != 1 {
		t.Fatalf("%d dead-letter batches, want 1", len(batches))
	}
	bh, recs, err := log.DecodeRecords(batches[0])
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "b" {
		t.Fatalf("dead letters %+v %v, want record b", recs, err)
	}
	if bh.ProducerID < 0 || bh.BaseSequence != 0 {
		t.Fatalf("dead-letter batch from producer %d at sequence %d, want an idempotent producer at 0", bh.ProducerID, bh.BaseSequence)
	}
	hdrs := map[string]string{}
	for _, hd := range recs[0].Headers {
		hdrs[hd.Key] = string(hd.Value)
	}
	if hdrs[DLQHeaderTopic] != "jobs" || hdrs[DLQHeaderPartition] != "0" || hdrs[DLQHeaderOffset] != "1" || hdrs[DLQHeaderGroup] != "g" ||
		hdrs[DLQHeaderCount] != "1" || hdrs[DLQHeaderMessage] == "" || hdrs[DLQHeaderGroupID] != "g" || hdrs[DLQHeaderReason] != queue.ReasonRejected {
		t.Fatalf("dead-letter headers %v", hdrs)
	}

	// Record 0 is still held; closing the session releases it.
	if _, closing, kerrv := h.m.OpenSession("g", "m1", -1, true, h); !closing || kerrv != nil {
		t.Fatalf("close: %v %v", closing, kerrv)
	}
	h.m.ReleaseSession("g", "m1", sess)
	sess2 := h.openSession("g", "m2", tp)
	got := h.acquire("g", "m2", sess2)
	if len(got.acquired[tp]) != 1 || got.acquired[tp][0] != [2]int64{0, 0} || got.counts[0] != 2 {
		t.Fatalf("after release m2 acquired %v (counts %v), want record 0 at count 2", got.acquired, got.counts)
	}
}

// Acknowledgements of records the member does not hold fail with
// INVALID_RECORD_STATE and change nothing; an unknown topic is
// UNKNOWN_TOPIC_ID, a partition led elsewhere NOT_LEADER_OR_FOLLOWER.
// Malformed batches are INVALID_REQUEST wherever the partition is: Kafka
// checks them right after the topic id, before looking the partition up.
func TestAcknowledgeErrors(t *testing.T) {
	h, topic, tp := jobsHarness(t, nil, "a")
	away := h.addTopic("away", 4, 1, 2, nil)
	if got := h.acquire("g", "m2", h.openSession("g", "m2", tp)); len(got.acquired[tp]) != 1 {
		t.Fatalf("m2 acquired %v", got.acquired)
	}
	accept := []queue.AckBatch{{First: 0, Last: 0, Types: []queue.AckType{queue.AckAccept}}}
	backwards := []queue.AckBatch{{First: 1, Last: 0, Types: []queue.AckType{queue.AckAccept}}}
	for name, tc := range map[string]struct {
		ack  Ack
		want error
	}{
		"held by another":              {h.m.Acknowledge(context.Background(), "g", "m1", topic, 0, accept, false), kerr.InvalidRecordState},
		"unknown topic":                {h.m.Acknowledge(context.Background(), "g", "m1", nil, 0, accept, false), kerr.UnknownTopicID},
		"led elsewhere":                {h.m.Acknowledge(context.Background(), "g", "m1", away, 0, accept, false), kerr.NotLeaderForPartition},
		"malformed, led elsewhere":     {h.m.Acknowledge(context.Background(), "g", "m1", away, 0, backwards, false), kerr.InvalidRequest},
		"malformed, no such partition": {h.m.Acknowledge(context.Background(), "g", "m1", topic, 9, backwards, false), kerr.InvalidRequest},
	} {
		if err := tc.ack.Settle(context.Background()); err != tc.want {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// m2 still holds the record: the failed acks changed nothing.
	holder := h.m.Acknowledge(context.Background(), "g", "m2", topic, 0, accept, false)
	if err := holder.Settle(context.Background()); err != nil {
		t.Fatalf("the holder's ack after the failed ones: %v", err)
	}
}

// A share partition an admin change made this node forget (Drop) is not
// fired later: its lock expiry would persist the forgotten state over the
// one the admin wrote.
func TestDroppedPartitionIsNotFired(t *testing.T) {
	h, topic, tp := jobsHarness(t, nil, "a")
	if got := h.acquire("g", "m1", h.openSession("g", "m1", tp)); len(got.acquired[tp]) != 1 {
		t.Fatalf("acquired %v", got.acquired)
	}
	key := coordinator.ShareKey{Group: "g", TopicID: topic.ID, Partition: 0}
	h.m.Drop(key)
	h.coord.mu.Lock()
	writes := len(h.coord.writes)
	h.coord.mu.Unlock()
	h.clock.Advance(time.Hour)
	h.tick()
	h.coord.mu.Lock()
	after := len(h.coord.writes)
	h.coord.mu.Unlock()
	if after != writes {
		t.Fatalf("the dropped partition's lock expiry wrote %d states", after-writes)
	}
}

// A rejection is answered once the record's new state (waiting for its
// dead letter) is durable, not when the dead letter is written: with the
// dead-letter partition's leader unreachable the ack still settles, the
// record is not delivered again and the start offset stays below it. Once
// the leader answers, the dead letter is written (with the share
// partition's producer id, sequence 0) and the record archived.
func TestDeadLetterOffTheAckPath(t *testing.T) {
	h, topic, tp := jobsHarness(t, map[string]string{"errors.deadletterqueue.topic.name": "dlq.jobs", "errors.deadletterqueue.copy.record.enable": "true"}, "a", "b")
	h.addTopic("dlq.jobs", 3, 1, 2, map[string]string{"errors.deadletterqueue.group.enable": "true"})
	h.peers.mu.Lock()
	gate := make(chan struct{})
	h.peers.produceGate = gate
	h.peers.mu.Unlock()

	sess := h.openSession("g", "m1", tp)
	if got := h.acquire("g", "m1", sess); len(got.acquired[tp]) != 1 {
		t.Fatalf("acquired %v", got.acquired)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ack := h.m.Acknowledge(ctx, "g", "m1", topic, 0, []queue.AckBatch{{First: 0, Last: 1, Types: []queue.AckType{queue.AckAccept, queue.AckReject}}}, false)
	if err := ack.Settle(ctx); err != nil {
		t.Fatalf("ack with the dead-letter leader unreachable: %v", err)
	}
	st := h.coord.last()
	if st.StartOffset != 1 || len(st.Batches) != 1 || st.Batches[0].State&^3 != queue.DeadLettering {
		t.Fatalf("persisted after the reject %+v, want record 1 waiting for its dead letter", st)
	}
	key := coordinator.ShareKey{Group: "g", TopicID: topic.ID, Partition: 0}
	if start, _, _ := h.m.Progress(key); start != 1 {
		t.Fatalf("start offset %d before the dead letter is written, want 1", start)
	}
	if got := h.acquire("g", "m1", sess); len(got.acquired) != 0 {
		t.Fatalf("acquired %v: a record waiting for its dead letter was delivered again", got.acquired)
	}

	close(gate)
	testwait.For(t, "the record is archived after its dead letter", func() bool {
		start, _, _ := h.m.Progress(key)
		return start == 2
	})
	h.peers.mu.Lock()
	produced := h.peers.produced
	h.peers.mu.Unlock()
	if len(produced) != 1 {
		t.Fatalf("%d dead-letter produces, want 1", len(produced))
	}
	bh, recs, err := log.DecodeRecords(produced[0])
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "b" || bh.ProducerID < 0 || bh.BaseSequence != 0 {
		t.Fatalf("dead letter %+v (producer %d seq %d) %v, want record b from an idempotent producer at 0", recs, bh.ProducerID, bh.BaseSequence, err)
	}
	testwait.For(t, "the archived state and the next sequence are persisted", func() bool {
		st := h.coord.last()
		return st.StartOffset == 2 && st.Producer.ID == bh.ProducerID && st.Producer.Sequence == 1
	})
}

// A share partition writes its state under the leader epoch it was loaded
// with, not the image's: a node that has lost leadership but not yet
// applied that keeps writing with its own epoch, which the share
// coordinator fences once the new leader has claimed the state (with the
// image's epoch the stale writes would pass). A new leader epoch in the
// image loads the partition again, claiming the state with that epoch.
func TestSharePartitionWritesUnderItsLoadEpoch(t *testing.T) {
	h, topic, tp := jobsHarness(t, nil, "a", "b", "c")
	sess := h.openSession("g", "m1", tp)
	if got := h.acquire("g", "m1", sess); len(got.acquired[tp]) != 1 {
		t.Fatalf("acquired %v, failed %v", got.acquired, got.failed)
	}

	moved := *topic
	moved.Partitions = slices.Clone(topic.Partitions)
	moved.Partitions[0].LeaderEpoch = 6
	img := *h.img.Load()
	img.Topics = maps.Clone(img.Topics)
	img.Topics[topic.Name] = &moved
	h.img.Store(&img)

	h.clock.Advance(30 * time.Second)
	h.tick()
	if st := h.coord.last(); st.LeaderEpoch != 5 {
		t.Fatalf("lock expiry persisted with leader epoch %d, want 5 (the epoch the partition was loaded under)", st.LeaderEpoch)
	}

	if got := h.acquire("g", "m1", sess); len(got.acquired[tp]) != 1 || got.counts[0] != 2 {
		t.Fatalf("after the epoch moved: acquired %v (counts %v), want the released records again", got.acquired, got.counts)
	}
	key := coordinator.ShareKey{Group: "g", TopicID: topic.ID, Partition: 0}
	h.coord.mu.Lock()
	claimed := h.coord.states[key].LeaderEpoch
	h.coord.mu.Unlock()
	if claimed != 6 {
		t.Fatalf("state's leader epoch %d after loading at epoch 6, want 6 (claimed)", claimed)
	}
	ack := h.m.Acknowledge(context.Background(), "g", "m1", &moved, 0, []queue.AckBatch{{First: 0, Last: 2, Types: []queue.AckType{queue.AckAccept}}}, false)
	if err := ack.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.coord.last(); st.LeaderEpoch != 6 || st.StartOffset != 3 {
		t.Fatalf("accept persisted %+v, want start offset 3 at leader epoch 6", st)
	}
}
