package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareAdminAPIs walks a share group through ShareGroupDescribe,
// ListGroups with a type filter, AlterShareGroupOffsets (refused while
// members are in, then moving where consumption starts),
// DeleteShareGroupOffsets (consumption restarts from
// share.auto.offset.reset) and DeleteGroups.
func TestShareAdminAPIs(t *testing.T) {
	const partitions = 2
	n := startShareNode(t)
	topic := topicName(t, "")
	group := topic + "-g"
	admin := n.Client(t)
	adm := kadmOf(admin)
	created := createTopic(t, adm, topic, partitions, nil)
	produceSpread(t, n, topic, partitions, 20) // 10 records per partition
	hwm := highWatermarks(t, n, topic)

	// Two members; the default share.auto.offset.reset (latest) starts the
	// group at the end of the log.
	c1 := shareClient(t, n, group, topic, kgo.ClientID("share-admin-1"))
	c2 := shareClient(t, n, group, topic, kgo.ClientID("share-admin-2"))
	var d kmsg.ShareGroupDescribeResponseGroup
	waitFor(t, 15*time.Second, "both members assigned", func() (bool, string) {
		d = describeShareGroup(t, admin, group)
		return d.ErrorCode == 0 && len(d.Members) == 2 && assignedCount(d) == 2,
			fmt.Sprintf("error %d, %d members, %d assigned", d.ErrorCode, len(d.Members), assignedCount(d))
	})
	if d.GroupState != "Stable" {
		t.Errorf("group state %q, want Stable", d.GroupState)
	}
	if d.Assignor != "simple" {
		t.Errorf("assignor %q, want simple", d.Assignor)
	}
	if d.GroupEpoch <= 0 || d.AssignmentEpoch <= 0 || d.AssignmentEpoch > d.GroupEpoch {
		t.Errorf("group epoch %d, assignment epoch %d", d.GroupEpoch, d.AssignmentEpoch)
	}
	covered := map[int32]bool{}
	var clientIDs []string
	for _, m := range d.Members {
		clientIDs = append(clientIDs, m.ClientID)
		if m.MemberEpoch <= 0 {
			t.Errorf("member %s epoch %d", m.MemberID, m.MemberEpoch)
		}
		if !slices.Equal(m.SubscribedTopicNames, []string{topic}) {
			t.Errorf("member %s subscribed to %v, want [%s]", m.MemberID, m.SubscribedTopicNames, topic)
		}
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.Topic != topic || tp.TopicID != [16]byte(created.ID) {
				t.Errorf("member %s assigned topic %q (id %x), want %q (id %x)", m.MemberID, tp.Topic, tp.TopicID, topic, created.ID)
			}
			for _, p := range tp.Partitions {
				covered[p] = true
			}
		}
	}
	slices.Sort(clientIDs)
	if !slices.Equal(clientIDs, []string{"share-admin-1", "share-admin-2"}) {
		t.Errorf("member client ids %v", clientIDs)
	}
	if len(covered) != partitions {
		t.Errorf("assignment covers partitions %v, want all %d", covered, partitions)
	}
	// The members' fetches initialize the share-partitions at latest.
	waitStartOffsets(t, admin, group, topic, hwm, 15*time.Second)

	// ListGroups with a type filter: a classic consumer group is listed as
	// classic, the share group as share.
	classic := topic + "-classic"
	cc := n.Client(t, kgo.ConsumerGroup(classic), kgo.ConsumeTopics(topic))
	go cc.PollFetches(ctxT(t, 10*time.Second))
	waitFor(t, 15*time.Second, "classic group listed", func() (bool, string) {
		l := listGroupsOfType(t, admin, "classic")
		return l[classic].Group != "", fmt.Sprintf("%v", l)
	})
	listed := listGroupsOfType(t, admin, "share")
	if g, ok := listed[group]; !ok {
		t.Errorf("ListGroups(share) misses %s: %v", group, listed)
	} else if g.GroupType != "share" || g.GroupState != "Stable" {
		t.Errorf("ListGroups(share) lists %s as type %q state %q", group, g.GroupType, g.GroupState)
	}
	if _, ok := listed[classic]; ok {
		t.Errorf("ListGroups(share) lists the classic group %s", classic)
	}
	if l := listGroupsOfType(t, admin, "classic"); l[group].Group != "" {
		t.Errorf("ListGroups(classic) lists the share group: %v", l)
	}
	if l := listGroupsOfType(t, admin, "consumer"); l[group].Group != "" {
		t.Errorf("ListGroups(consumer) lists the share group: %v", l)
	}

	// Offsets cannot be altered or deleted while the group has members.
	if code, _ := alterShareOffsets(t, admin, group, topic, map[int32]int64{0: 3}); code != kerr.NonEmptyGroup.Code {
		t.Errorf("AlterShareGroupOffsets on a group with members: error %d, want NON_EMPTY_GROUP", code)
	}
	if code, _ := deleteShareOffsets(t, admin, group, topic); code != kerr.NonEmptyGroup.Code {
		t.Errorf("DeleteShareGroupOffsets on a group with members: error %d, want NON_EMPTY_GROUP", code)
	}

	closeAll(c1, c2)
	waitShareGroupEmpty(t, admin, group)

	// Alter on the empty group moves where consumption starts.
	start := map[int32]int64{0: 3, 1: 7}
	if code, perPart := alterShareOffsets(t, admin, group, topic, start); code != 0 || perPart != "" {
		t.Fatalf("AlterShareGroupOffsets: error %d, partitions %s", code, perPart)
	}
	got, err := shareStartOffsets(ctxT(t, opTimeout), admin, group, topic, partitions)
	if err != nil || fmtInt64s(got) != fmtInt64s(start) {
		t.Errorf("start offsets after alter: %s (%v), want %s", fmtInt64s(got), err, fmtInt64s(start))
	}
	seen := drainShare(t, n, admin, group, topic, hwm)
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < hwm[p]; o++ {
			want := 0
			if o >= start[p] {
				want = 1
			}
			if c := seen[[2]int64{int64(p), o}]; c != want {
				t.Errorf("after alter to %s: %d/%d delivered %d times, want %d", fmtInt64s(start), p, o, c, want)
			}
		}
	}
	waitShareGroupEmpty(t, admin, group)

	// Deleting the offsets makes the next consumer start over from
	// share.auto.offset.reset, now earliest.
	setGroupConfigs(t, admin, group, "share.auto.offset.reset=earliest")
	if code, perTopic := deleteShareOffsets(t, admin, group, topic); code != 0 || perTopic != "" {
		t.Fatalf("DeleteShareGroupOffsets: error %d, topics %s", code, perTopic)
	}
	got, err = shareStartOffsets(ctxT(t, opTimeout), admin, group, topic, partitions)
	if err != nil {
		t.Errorf("describe offsets after delete: %v", err)
	}
	for p, o := range got {
		if o != -1 {
			t.Errorf("after DeleteShareGroupOffsets, partition %d start offset %d, want none (-1)", p, o)
		}
	}
	seen = drainShare(t, n, admin, group, topic, hwm)
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < hwm[p]; o++ {
			if c := seen[[2]int64{int64(p), o}]; c != 1 {
				t.Errorf("after delete offsets: %d/%d delivered %d times, want 1", p, o, c)
			}
		}
	}
	waitShareGroupEmpty(t, admin, group)

	// DeleteGroups removes the group.
	dr, err := adm.DeleteGroup(ctxT(t, opTimeout), group)
	if err != nil || dr.Err != nil {
		t.Fatalf("DeleteGroups %s: %v / %v", group, err, dr.Err)
	}
	if d := describeShareGroup(t, admin, group); d.ErrorCode != kerr.GroupIDNotFound.Code && d.GroupState != "Dead" {
		t.Errorf("deleted group described with error %d, state %q, %d members", d.ErrorCode, d.GroupState, len(d.Members))
	}
	if _, ok := listGroupsOfType(t, admin, "share")[group]; ok {
		t.Errorf("deleted group still listed")
	}
}

// drainShare consumes the group with a fresh share consumer until the start
// offsets reach ends, accepting everything, and returns how often each
// (partition, offset) was delivered. The consumer is closed on return.
func drainShare(t *testing.T, n *node, admin *kgo.Client, group, topic string, ends map[int32]int64) map[[2]int64]int {
	t.Helper()
	cl := shareClient(t, n, group, topic)
	seen := map[[2]int64]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := pollShareRecords(ctx, cl, func(r *kgo.Record) {
		seen[[2]int64{int64(r.Partition), r.Offset}]++
		cl.MarkAcks(kgo.AckAccept, r)
	})
	defer func() {
		cancel()
		<-done
		cl.Close()
	}()
	waitStartOffsets(t, admin, group, topic, ends, 30*time.Second)
	cancel()
	<-done
	return seen
}

// waitShareGroupEmpty waits until the share group has no members.
func waitShareGroupEmpty(t *testing.T, cl *kgo.Client, group string) {
	t.Helper()
	waitFor(t, 15*time.Second, group+" empty", func() (bool, string) {
		d := describeShareGroup(t, cl, group)
		return d.ErrorCode == 0 && d.GroupState == "Empty" && len(d.Members) == 0,
			fmt.Sprintf("error %d, state %q, %d members", d.ErrorCode, d.GroupState, len(d.Members))
	})
}

// listGroupsOfType lists the groups of one type (ListGroups TypesFilter).
func listGroupsOfType(t *testing.T, cl *kgo.Client, typ string) map[string]kmsg.ListGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.TypesFilter = []string{typ}
	resp, err := req.RequestWith(ctxT(t, opTimeout), cl)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	out := map[string]kmsg.ListGroupsResponseGroup{}
	for _, g := range resp.Groups {
		out[g.Group] = g
	}
	return out
}

// alterShareOffsets sends AlterShareGroupOffsets and returns the top-level
// error code and a description of the partition errors ("" if none).
func alterShareOffsets(t *testing.T, cl *kgo.Client, group, topic string, offsets map[int32]int64) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	req.GroupID = group
	rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
		rp.Partition, rp.StartOffset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, opTimeout), cl)
	if err != nil {
		t.Fatalf("AlterShareGroupOffsets: %v", err)
	}
	var perPart string
	for _, tt := range resp.Topics {
		for _, p := range tt.Partitions {
			if p.ErrorCode != 0 {
				perPart += fmt.Sprintf("%s/%d: %d %s; ", tt.Topic, p.Partition, p.ErrorCode, strOr(p.ErrorMessage))
			}
		}
	}
	return resp.ErrorCode, perPart
}

// deleteShareOffsets sends DeleteShareGroupOffsets for one topic and returns
// the top-level error code and a description of topic errors ("" if none).
func deleteShareOffsets(t *testing.T, cl *kgo.Client, group, topic string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	req.GroupID = group
	rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
	rt.Topic = topic
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, opTimeout), cl)
	if err != nil {
		t.Fatalf("DeleteShareGroupOffsets: %v", err)
	}
	var perTopic string
	for _, tt := range resp.Topics {
		if tt.ErrorCode != 0 {
			perTopic += fmt.Sprintf("%s: %d %s; ", tt.Topic, tt.ErrorCode, strOr(tt.ErrorMessage))
		}
	}
	return resp.ErrorCode, perTopic
}

// TestAlterShareGroupOffsetsCreatesGroup positions a share group that does
// not exist yet, as Kafka 4.2 allows so operators can set where a group
// starts before its first worker does: the group is created empty with
// those start offsets, survives a restart, and its first worker starts
// there.
func TestAlterShareGroupOffsetsCreatesGroup(t *testing.T) {
	t.Parallel()
	const partitions = 2
	n, topic, group, admin := startShareTopic(t, partitions)
	produceSpread(t, n, topic, partitions, 20) // 10 records per partition

	start := map[int32]int64{0: 7, 1: 4}
	if code, perPart := alterShareOffsets(t, admin, group, topic, start); code != 0 || perPart != "" {
		t.Fatalf("AlterShareGroupOffsets on a new group: error %d, partitions %s", code, perPart)
	}
	check := func(when string) {
		t.Helper()
		got, err := shareStartOffsets(ctxT(t, opTimeout), admin, group, topic, partitions)
		if err != nil {
			t.Fatalf("%s: DescribeShareGroupOffsets: %v", when, err)
		}
		if fmtInt64s(got) != fmtInt64s(start) {
			t.Errorf("%s: start offsets %s, want %s", when, fmtInt64s(got), fmtInt64s(start))
		}
		if d := describeShareGroup(t, admin, group); d.ErrorCode != 0 || d.GroupState != "Empty" {
			t.Errorf("%s: ShareGroupDescribe: error %d, state %q; want an Empty group", when, d.ErrorCode, d.GroupState)
		}
	}
	check("right after the alter")
	n.Kill9()
	n.Restart()
	check("after kill -9 and a restart")

	// The first worker picks up where the alter put the group, not at the
	// end of the log (share.auto.offset.reset defaults to latest).
	worker := shareClient(t, n, group, topic)
	recs := map[int32][]int64{}
	waitFor(t, opTimeout, "the records after the start offsets", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		worker.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			recs[r.Partition] = append(recs[r.Partition], r.Offset)
		})
		return len(recs[0]) >= 3 && len(recs[1]) >= 6, fmt.Sprint(recs)
	})
	for p, offs := range recs {
		for _, o := range offs {
			if o < start[p] {
				t.Errorf("partition %d: delivered offset %d, before the start offset %d", p, o, start[p])
			}
		}
	}
}
