package replica

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// A follower elected leader knows only the high watermark its last fetch
// told it, which may lie below records the previous leader acknowledged.
// Until the HW reaches the offset at which the new epoch began, a client's
// ListOffsets for the latest offset, or for a time whose record is not
// below the HW, gets OFFSET_NOT_AVAILABLE (retriable) rather than an end
// offset that moved backwards, as Kafka's Partition.fetchOffsetForTimestamp
// answers; earliest and lookups found below the HW are answered. Once the
// followers fetch from the epoch's start, the answer is the true HW.
func TestListOffsetNotAvailableUntilHighWatermarkReachesEpochStart(t *testing.T) {
	id := [16]byte{1}
	img := &raftmeta.Image{
		Brokers:  map[int32]*raftmeta.Broker{1: {ID: 1}, 2: {ID: 2}, 3: {ID: 3}},
		Topics:   map[string]*raftmeta.Topic{"t": {Name: "t", ID: id, Partitions: []raftmeta.PartitionState{{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: -1, LeaderEpoch: 1}}}},
		TopicIDs: map[[16]byte]string{id: "t"},
	}
	n := startTestNode(t, 1, newTestMeta(img), nil)
	p := n.m.logs.Partition("t", 0)
	if p == nil {
		t.Fatal("no replica created")
	}
	// As a follower of epoch 1, node 1 copied offsets 0-4 and learnt HW 3.
	for _, b := range [][]byte{replicatedBatch(0, 1, 3, 1000), replicatedBatch(3, 1, 2, 2000)} {
		if _, err := p.AppendReplicated(b, n.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	p.SetHighWatermarkFollower(3)

	// It is elected leader of epoch 2; its followers have not fetched yet.
	n.meta.publish(func(img *raftmeta.Image) {
		ps := &img.Topics["t"].Partitions[0]
		ps.Leader, ps.LeaderEpoch, ps.PartitionEpoch = 1, 2, ps.PartitionEpoch+1
	})
	n.m.Reconcile()
	_, ps := n.leader(t)
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("HW %d before the followers fetch, want the follower's 3", hw)
	}

	type answer struct {
		offset, timestamp int64
		err               error
	}
	check := func(when string, q OffsetQuery, want answer) {
		t.Helper()
		off, ts, _, err := n.m.ListOffset(p, ps, q)
		if off != want.offset || ts != want.timestamp || !errors.Is(err, want.err) {
			t.Errorf("%s: %+v answered offset %d timestamp %d err %v, want %d %d %v", when, q, off, ts, err, want.offset, want.timestamp, want.err)
		}
	}
	notYet := answer{-1, -1, kerr.OffsetNotAvailable}
	const lagging = "HW 3 below the epoch start 5"
	check(lagging, OffsetQuery{Timestamp: specLatest, Client: true}, notYet)
	check(lagging, OffsetQuery{Timestamp: specLatest, Client: true, ReadCommitted: true}, notYet)
	check(lagging, OffsetQuery{Timestamp: specEarliest, Client: true}, answer{0, -1, nil})
	check(lagging, OffsetQuery{Timestamp: specEarliestLocal, Client: true}, answer{0, -1, nil})
	check(lagging, OffsetQuery{Timestamp: 1000, Client: true}, answer{0, 1000, nil})
	check(lagging, OffsetQuery{Timestamp: 2000, Client: true}, notYet)
	check(lagging, OffsetQuery{Timestamp: 5000, Client: true}, notYet)
	check(lagging, OffsetQuery{Timestamp: specMaxTimestamp, Client: true}, notYet)
	// A broker's (or the debugging) request reads the whole log.
	check(lagging, OffsetQuery{Timestamp: specLatest}, answer{5, -1, nil})

	// Both followers fetch from the end: the HW reaches the epoch start.
	for _, r := range []int32{2, 3} {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset = 5
		pr := kmsg.NewFetchResponseTopicPartition()
		if _, err := n.m.ReadForFollower(r, n.meta.Image().Topics["t"], rp, &pr, nil, p, ps, 1<<20, nil); err != nil {
			t.Fatal(err)
		}
	}
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("HW %d once every follower fetched from 5, want 5", hw)
	}
	const caughtUp = "HW at the epoch start"
	check(caughtUp, OffsetQuery{Timestamp: specLatest, Client: true}, answer{5, -1, nil})
	check(caughtUp, OffsetQuery{Timestamp: 2000, Client: true}, answer{3, 2000, nil})
	check(caughtUp, OffsetQuery{Timestamp: 5000, Client: true}, answer{-1, -1, nil})
	check(caughtUp, OffsetQuery{Timestamp: specMaxTimestamp, Client: true}, answer{3, 2000, nil})
}

// A leader that has not appended in its epoch yet answers
// OffsetForLeaderEpoch as Kafka's, which recorded the epoch's start when
// elected: its own epoch ends at the log end, an epoch between the last
// recorded one and its own ends where its own began, and only an epoch
// above its own is unknown.
func TestEndOffsetForEpochBeforeTheLeadersFirstAppend(t *testing.T) {
	// Offsets 0-4 were written in epoch 1; the node leads epoch 3.
	n, p, ps := soleReplicaLeader(t, 3, replicatedBatch(0, 1, 5, 1000))
	type answer struct {
		epoch int32
		end   int64
	}
	check := func(when string, want map[int32]answer) {
		t.Helper()
		for epoch, w := range want {
			if e, end := n.m.EndOffsetForEpoch(p, ps, epoch); e != w.epoch || end != w.end {
				t.Errorf("%s: epoch %d answered (%d, %d), want (%d, %d)", when, epoch, e, end, w.epoch, w.end)
			}
		}
	}
	check("before the first append", map[int32]answer{0: {0, 0}, 1: {1, 5}, 2: {1, 5}, 3: {3, 5}, 4: {-1, -1}})

	b, h := testBatch(t, 2)
	if _, err := n.m.AppendAsLeader(p, ps, b, h, n.clock.Now(), 1); err != nil {
		t.Fatal(err)
	}
	check("after it", map[int32]answer{1: {1, 5}, 2: {1, 5}, 3: {3, 7}, 4: {-1, -1}})
}

// ListOffsets answers each offset with the epoch it was written in, as
// Kafka does: the first epoch for the earliest, the found batch's for a
// time, the leader's for the latest (and for the start of a log nothing
// was appended to), none when nothing is found.
func TestListOffsetEpochs(t *testing.T) {
	n, p, ps := soleReplicaLeader(t, 4)
	check := func(when string, spec int64, wantOffset int64, wantEpoch int32) {
		t.Helper()
		off, _, epoch, err := n.m.ListOffset(p, ps, OffsetQuery{Timestamp: spec})
		if err != nil || off != wantOffset || epoch != wantEpoch {
			t.Errorf("%s: %d answered offset %d epoch %d err %v, want %d %d", when, spec, off, epoch, err, wantOffset, wantEpoch)
		}
	}
	check("empty log", specEarliest, 0, 4)
	check("empty log", specLatest, 0, 4)
	check("empty log", 1000, -1, -1)

	// Offsets 0-2 written in epoch 1 at 1000, 3-4 in epoch 2 at 2000.
	for _, b := range [][]byte{replicatedBatch(0, 1, 3, 1000), replicatedBatch(3, 2, 2, 2000)} {
		if _, err := p.AppendReplicated(b, n.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	check("written", specEarliest, 0, 1)
	check("written", specEarliestLocal, 0, 1)
	check("written", 1500, 3, 2)
	check("written", specMaxTimestamp, 3, 2)
	check("written", specLatest, 5, 4)
	check("written", 3000, -1, -1)
	check("written", specLatestTiered, -1, -1)
	check("written", specEarliestPendingUpload, -1, -1)
}

// soleReplicaLeader starts node 1 as the only replica of partition t-0,
// gives its log the batches as a follower of an earlier epoch would have
// copied them, then makes it the leader of epoch.
func soleReplicaLeader(t *testing.T, epoch int32, batches ...[]byte) (*testNode, *log.Partition, raftmeta.PartitionState) {
	t.Helper()
	id := [16]byte{2}
	img := &raftmeta.Image{
		Brokers:  map[int32]*raftmeta.Broker{1: {ID: 1}},
		Topics:   map[string]*raftmeta.Topic{"t": {Name: "t", ID: id, Partitions: []raftmeta.PartitionState{{Replicas: []int32{1}, ISR: []int32{1}, Leader: -1, LeaderEpoch: 1}}}},
		TopicIDs: map[[16]byte]string{id: "t"},
	}
	n := startTestNode(t, 1, newTestMeta(img), nil)
	p := n.m.logs.Partition("t", 0)
	if p == nil {
		t.Fatal("no replica created")
	}
	for _, b := range batches {
		if _, err := p.AppendReplicated(b, n.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	n.meta.publish(func(img *raftmeta.Image) {
		ps := &img.Topics["t"].Partitions[0]
		ps.Leader, ps.LeaderEpoch, ps.PartitionEpoch = 1, epoch, ps.PartitionEpoch+1
	})
	n.m.Reconcile()
	_, ps := n.leader(t)
	return n, p, ps
}
