package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterShareAdmin runs the share group admin APIs on a 3-node cluster
// where the state of a group's share partitions is spread over the share
// coordinators of several nodes, none of them necessarily the group's
// coordinator (which serves the admin APIs). One share group is
// coordinated by each node; every node is used as the client's bootstrap.
// DescribeShareGroupOffsets shows every partition's start offset (with
// explicit partitions and for all of the group's topics),
// AlterShareGroupOffsets moves where every partition restarts,
// DeleteShareGroupOffsets and DeleteGroups remove the state everywhere.
func TestClusterShareAdmin(t *testing.T) {
	c := startCluster(t, 3, "group.share.heartbeat.interval.ms=500", "group.share.session.timeout.ms=10000")
	topic := topicName(t, "")
	const parts = 6
	cl := c.Client(t, kgo.RetryTimeout(30*time.Second))
	adm := kadm.NewClient(cl)
	c.createReplicated(adm, topic, parts, 3, nil)
	produceSpread(t, c.nodes[0], topic, parts, 10*parts)
	hwm := endOffsets(t, adm, topic)
	md, err := adm.Metadata(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := [16]byte(md.Topics[topic].ID)
	leaders := map[int32]int32{}
	for p, pd := range md.Topics[topic].Partitions {
		leaders[p] = pd.Leader
	}

	// A share group coordinated by each node (where the offsets topic
	// gives every node a partition to lead).
	coords := groupsByCoordinator(t, adm, topic)
	var groups []string
	for _, n := range c.nodes {
		if g, ok := coords[n.id()]; ok {
			groups = append(groups, g)
		}
	}
	if len(groups) < 2 {
		t.Fatalf("groups coordinated by %d nodes only: %v", len(groups), coords)
	}
	coordOf := map[string]int32{}
	for id, g := range coords {
		coordOf[g] = id
	}

	// Each group consumes and accepts everything.
	for _, g := range groups {
		setGroupConfigs(t, cl, g, "share.auto.offset.reset=earliest")
	}
	consumeAllShare(t, c, groups, topic, 10*parts)
	for _, g := range groups {
		waitShareGroupEmpty(t, cl, g)
	}

	// The state of each group lives with several share coordinators, among
	// them one that is not the group's coordinator.
	for _, g := range groups {
		where := shareStateCoordinators(t, c, g, topicID, parts)
		t.Logf("group %s: coordinator node %d; share state coordinators per partition %v; partition leaders %v", g, coordOf[g], where, leaders)
		elsewhere := false
		for _, id := range where {
			elsewhere = elsewhere || id != coordOf[g]
		}
		if !elsewhere {
			t.Fatalf("group %s: all share state on its coordinator node %d (%v); the test needs it spread", g, coordOf[g], where)
		}
	}

	// DescribeShareGroupOffsets, bootstrapped from every node, shows every
	// start offset: for the listed partitions and for all of the group's
	// topics.
	clients := map[int32]*kgo.Client{}
	for _, n := range c.nodes {
		clients[n.id()] = n.Client(t, kgo.RetryTimeout(30*time.Second))
	}
	for _, g := range groups {
		for _, n := range c.nodes {
			waitStartOffsets(t, clients[n.id()], g, topic, hwm, 30*time.Second)
			waitAllShareStartOffsets(t, clients[n.id()], g, topic, hwm)
		}
	}

	// With the consumers gone, AlterShareGroupOffsets moves every
	// partition's start: a new consumer gets the records from there on.
	start := map[int32]int64{}
	for p := int32(0); p < parts; p++ {
		start[p] = int64(p) + 1
	}
	for i, g := range groups {
		via := c.nodes[(i+1)%len(c.nodes)]
		if code, perPart := alterShareOffsets(t, clients[via.id()], g, topic, start); code != 0 || perPart != "" {
			t.Fatalf("AlterShareGroupOffsets %s via node %d: error %d, partitions %s", g, via.id(), code, perPart)
		}
		for _, n := range c.nodes {
			got, err := shareStartOffsets(ctxT(t, opTimeout), clients[n.id()], g, topic, parts)
			if err != nil || fmtInt64s(got) != fmtInt64s(start) {
				t.Errorf("group %s via node %d: start offsets after alter %s (%v), want %s", g, n.id(), fmtInt64s(got), err, fmtInt64s(start))
			}
		}
		seen := drainShare(t, c.nodes[i%len(c.nodes)], cl, g, topic, hwm)
		checkDelivered(t, g+" after alter", seen, hwm, start)
		waitShareGroupEmpty(t, cl, g)
	}

	// DeleteShareGroupOffsets removes the state on every coordinator: the
	// start offsets are gone everywhere and a new consumer starts over from
	// share.auto.offset.reset (earliest).
	g := groups[0]
	if code, perTopic := deleteShareOffsets(t, clients[c.nodes[2].id()], g, topic); code != 0 || perTopic != "" {
		t.Fatalf("DeleteShareGroupOffsets %s: error %d, topics %s", g, code, perTopic)
	}
	if left := persistedShareStates(t, c, g, topicID, parts); len(left) != 0 {
		t.Errorf("group %s: share state left after DeleteShareGroupOffsets: %v", g, left)
	}
	for _, n := range c.nodes {
		got, err := shareStartOffsets(ctxT(t, opTimeout), clients[n.id()], g, topic, parts)
		if err != nil {
			t.Errorf("group %s via node %d: describe after delete: %v", g, n.id(), err)
		}
		for p, o := range got {
			if o != -1 {
				t.Errorf("group %s via node %d: after DeleteShareGroupOffsets, partition %d start offset %d, want -1", g, n.id(), p, o)
			}
		}
		if all := allShareStartOffsets(t, clients[n.id()], g); len(all) != 0 {
			t.Errorf("group %s via node %d: after DeleteShareGroupOffsets, described topics %v, want none", g, n.id(), all)
		}
	}
	seen := drainShare(t, c.nodes[1], cl, g, topic, hwm)
	checkDelivered(t, g+" after delete offsets", seen, hwm, map[int32]int64{})
	waitShareGroupEmpty(t, cl, g)

	// DeleteGroups removes every group's state on every coordinator.
	for i, g := range groups {
		via := kadm.NewClient(clients[c.nodes[i%len(c.nodes)].id()])
		dr, err := via.DeleteGroup(ctxT(t, opTimeout), g)
		if err != nil || dr.Err != nil {
			t.Fatalf("DeleteGroups %s: %v / %v", g, err, dr.Err)
		}
		if left := persistedShareStates(t, c, g, topicID, parts); len(left) != 0 {
			t.Errorf("group %s: share state left after DeleteGroups: %v", g, left)
		}
		if d := describeShareGroup(t, cl, g); d.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Errorf("deleted group %s described with error %d, state %q", g, d.ErrorCode, d.GroupState)
		}
	}
}

// groupsByCoordinator finds, for each node that coordinates groups, a group
// name it coordinates.
func groupsByCoordinator(t *testing.T, adm *kadm.Client, prefix string) map[int32]string {
	t.Helper()
	var names []string
	for i := range 60 {
		names = append(names, fmt.Sprintf("%s-g%d", prefix, i))
	}
	out := map[int32]string{}
	waitFor(t, opTimeout, "group coordinators on every node", func() (bool, string) {
		fc := adm.FindGroupCoordinators(ctxT(t, 5*time.Second), names...)
		for _, name := range names {
			r, ok := fc[name]
			if ok && r.Err == nil {
				if _, have := out[r.NodeID]; !have {
					out[r.NodeID] = name
				}
			}
		}
		return len(out) == 3, fmt.Sprintf("%v (%v)", out, fc.Error())
	})
	return out
}

// consumeAllShare runs one share consumer per group until each has
// received (and accepted) want records, then closes them.
func consumeAllShare(t *testing.T, c *cluster, groups []string, topic string, want int) {
	t.Helper()
	errs := make(chan error, len(groups))
	for _, g := range groups {
		cl := c.Client(t, kgo.ShareGroup(g), kgo.ConsumeTopics(topic), kgo.ShareMaxRecords(7), kgo.FetchMaxWait(200*time.Millisecond))
		go func() {
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			got := map[[2]int64]bool{}
			for len(got) < want && ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				for _, r := range fs.Records() {
					got[[2]int64{int64(r.Partition), r.Offset}] = true
				}
				cl.MarkAcks(kgo.AckAccept)
			}
			if len(got) < want {
				errs <- fmt.Errorf("group %s received %d of %d records", g, len(got), want)
				return
			}
			errs <- cl.FlushAcks(ctx)
		}()
	}
	for range groups {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// shareStateCoordinators asks every node for the persisted state of each
// partition of the group's topic and returns which node answered for each
// (the others are not its share coordinator).
func shareStateCoordinators(t *testing.T, c *cluster, group string, topicID [16]byte, partitions int32) map[int32]int32 {
	t.Helper()
	out := map[int32]int32{}
	waitFor(t, opTimeout, "the share coordinator of every partition of "+group, func() (bool, string) {
		for _, n := range c.nodes {
			for p := range shareStateSummary(t, n, group, topicID, partitions) {
				out[p] = n.id()
			}
		}
		return len(out) == int(partitions), fmt.Sprint(out)
	})
	return out
}

// allShareStartOffsets describes the group's offsets for all its topics
// (DescribeShareGroupOffsets with null topics): start offsets by topic and
// partition.
func allShareStartOffsets(t *testing.T, cl *kgo.Client, group string) map[string]map[int32]int64 {
	t.Helper()
	out, err := describeShareStartOffsets(ctxT(t, opTimeout), cl, group, nil)
	if err != nil {
		t.Fatalf("describe all share offsets of %s: %v", group, err)
	}
	return out
}

// waitAllShareStartOffsets waits until describing all of the group's topics
// lists exactly topic, with the wanted start offsets.
func waitAllShareStartOffsets(t *testing.T, cl *kgo.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	waitFor(t, 30*time.Second, "all share start offsets of "+group, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := describeShareStartOffsets(ctx, cl, group, nil)
		if err != nil {
			return false, err.Error()
		}
		topics := make([]string, 0, len(got))
		for name := range got {
			topics = append(topics, name)
		}
		return slices.Equal(topics, []string{topic}) && fmtInt64s(got[topic]) == fmtInt64s(want), fmt.Sprint(got)
	})
}

// checkDelivered checks that each record below hwm was delivered once if
// its offset is at or past its partition's start (0 if absent), else never.
func checkDelivered(t *testing.T, what string, seen map[[2]int64]int, hwm, start map[int32]int64) {
	t.Helper()
	for p, end := range hwm {
		for o := int64(0); o < end; o++ {
			want := 0
			if o >= start[p] {
				want = 1
			}
			if n := seen[[2]int64{int64(p), o}]; n != want {
				t.Errorf("%s: %d/%d delivered %d times, want %d", what, p, o, n, want)
			}
		}
	}
}
