package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replayedRecords reads shoal_coordinator_load_replayed_records_total from
// a node's metrics endpoint, per internal topic.
func replayedRecords(n *node) (map[string]float64, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + n.AdminAddr() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	const prefix = `shoal_coordinator_load_replayed_records_total{topic="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		topic, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, err
		}
		out[topic] = v
	}
	return out, sc.Err()
}

// persistedShareStates asks every running node for the persisted state of
// each partition of a share group's topic (ReadShareGroupStateSummary, as
// share-partition leaders do) and returns the start offsets that the node
// coordinating each one reports.
func persistedShareStates(t *testing.T, c *cluster, group string, topicID [16]byte, partitions int32) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for _, n := range c.alive() {
		for p, start := range shareStateSummary(t, n, group, topicID, partitions) {
			out[p] = start
		}
	}
	return out
}

// shareStateSummary asks node n for the persisted start offset of each of
// partitions 0..partitions-1 of a share group's topic
// (ReadShareGroupStateSummary). It holds only the partitions whose state n
// coordinates and has; an unreachable node answers nothing.
func shareStateSummary(t *testing.T, n *node, group string, topicID [16]byte, partitions int32) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = group
	rt := kmsg.NewReadShareGroupStateSummaryRequestTopic()
	rt.TopicID = topicID
	for p := range partitions {
		rp := kmsg.NewReadShareGroupStateSummaryRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	cl := n.Client(t, kgo.DialTimeout(time.Second))
	resp, err := cl.Broker(int(n.id())).Request(ctxT(t, 5*time.Second), req)
	cl.Close()
	out := map[int32]int64{}
	if err != nil {
		return out
	}
	for _, rt := range resp.(*kmsg.ReadShareGroupStateSummaryResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode == 0 && rp.StartOffset >= 0 {
				out[rp.Partition] = rp.StartOffset
			}
		}
	}
	return out
}

// internalEnds returns the end offset and leader of every partition of an
// internal topic.
func internalEnds(t *testing.T, adm *kadm.Client, topic string) (ends map[int32]int64, leaders map[int32]int32) {
	t.Helper()
	leaders = map[int32]int32{}
	waitFor(t, opTimeout, "end offsets of "+topic, func() (bool, string) {
		var err error
		if ends, err = listEndOffsets(ctxT(t, 5*time.Second), adm, topic); err != nil {
			return false, err.Error()
		}
		m, err := adm.Metadata(ctxT(t, 5*time.Second), topic)
		if err != nil {
			return false, err.Error()
		}
		for p, pd := range m.Topics[topic].Partitions {
			leaders[p] = pd.Leader
		}
		return len(leaders) == len(ends) && len(ends) > 0, fmt.Sprint(ends, leaders)
	})
	return ends, leaders
}

// TestClusterCoordFailoverReplaysOnlyTheTail: followers of
// __consumer_offsets and __share_group_state materialize what they
// replicate, so when the coordinator's node is SIGKILLed while offsets are
// being committed, the follower that takes over replays only a short log
// tail, and every acknowledged commit and the share group's state are
// still there.
func TestClusterCoordFailoverReplaysOnlyTheTail(t *testing.T) {
	c := startCluster(t, 3)
	topic := topicName(t, "")
	const parts = 3
	cl := c.Client(t, kgo.RetryTimeout(30*time.Second))
	adm := kadm.NewClient(cl)
	c.createReplicated(adm, topic, parts, 3, nil)

	// A share group consumes and accepts everything, in small polls so
	// that it writes share state many times.
	const produced = 1500
	produceChunked(t, c.nodes[0], topic, parts, produced, 100)
	hwm := endOffsets(t, adm, topic)
	shareGroup := topic + "-share"
	setGroupConfigs(t, cl, shareGroup, "share.auto.offset.reset=earliest")
	share := c.Client(t, kgo.ShareGroup(shareGroup), kgo.ConsumeTopics(topic), kgo.ShareMaxRecords(10), kgo.FetchMaxWait(200*time.Millisecond))
	got := 0
	ctx := ctxT(t, 90*time.Second)
	for got < produced && ctx.Err() == nil {
		fs := share.PollFetches(ctx)
		got += len(fs.Records())
		share.MarkAcks(kgo.AckAccept)
	}
	if got < produced {
		t.Fatalf("the share group received %d of %d records", got, produced)
	}
	if err := share.FlushAcks(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("flush acks: %v", err)
	}
	share.Close()
	md, err := adm.Metadata(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := md.Topics[topic].ID
	shareStates := persistedShareStates(t, c, shareGroup, topicID, parts)
	if len(shareStates) == 0 {
		t.Fatal("no share state persisted")
	}
	for p, so := range shareStates {
		if so != hwm[p] {
			t.Errorf("share partition %d: persisted start offset %d, want %d", p, so, hwm[p])
		}
	}

	// The node leading the share-state partition with the most records is
	// the one to kill; the consumer group is one it coordinates.
	stateEnds, stateLeaders := internalEnds(t, adm, "__share_group_state")
	var statePart int32
	for p, end := range stateEnds {
		if end > stateEnds[statePart] {
			statePart = p
		}
	}
	victimID := stateLeaders[statePart]
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("%s-group-%d", topic, i))
	}
	group := ""
	waitFor(t, opTimeout, fmt.Sprintf("a group coordinated by node %d", victimID), func() (bool, string) {
		fc := adm.FindGroupCoordinators(ctxT(t, 5*time.Second), names...)
		for _, r := range fc {
			if r.Err == nil && r.NodeID == victimID {
				group = r.Name
				return true, ""
			}
		}
		return false, fmt.Sprint(fc.Error())
	})
	if stateEnds[statePart] == 0 {
		t.Fatal("no records in __share_group_state")
	}
	t.Logf("share start offsets %v; share state: %v records per partition, partition %d led by node %d; group %s", shareStates, stateEnds, statePart, victimID, group)

	// One committer per partition commits ever higher offsets and keeps
	// the highest acknowledged one.
	var acked, attempted [parts]atomic.Int64
	var commits atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := int32(0); p < parts; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := int64(1); ; off++ {
				select {
				case <-stop:
					return
				default:
				}
				var o kadm.Offsets
				o.AddOffset(topic, p, off, -1)
				attempted[p].Store(off)
				cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := adm.CommitOffsets(cctx, group, o)
				cancel()
				if err == nil {
					err = r.Error()
				}
				if err == nil {
					acked[p].Store(off)
					commits.Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	const before = 3000
	began := time.Now()
	waitFor(t, 120*time.Second, "offset commits before the kill", func() (bool, string) {
		return commits.Load() >= before, fmt.Sprint(commits.Load())
	})
	offEnds, offLeaders := internalEnds(t, adm, "__consumer_offsets")
	var offPart int32 = -1
	for p, end := range offEnds {
		if offLeaders[p] == victimID && (offPart < 0 || end > offEnds[offPart]) {
			offPart = p
		}
	}
	written := offEnds[offPart]
	victim := c.node(victimID)
	victim.Kill9()
	atKill := commits.Load()
	t.Logf("killed node %d after %d commits (%.0f/s); __consumer_offsets-%d holds %d records", victimID, atKill,
		float64(atKill)/time.Since(began).Seconds(), offPart, written)

	// Commits resume on the new coordinator.
	waitFor(t, 60*time.Second, "commits on the new coordinator", func() (bool, string) {
		return commits.Load() >= atKill+300, fmt.Sprint(commits.Load())
	})
	close(stop)
	wg.Wait()

	survivor := c.alive()[0]
	var newCoord int32
	waitFor(t, opTimeout, "the group's new coordinator", func() (bool, string) {
		fc := kadm.NewClient(survivor.Client(t)).FindGroupCoordinators(ctxT(t, 5*time.Second), group)
		if err := fc.Error(); err != nil {
			return false, err.Error()
		}
		for _, r := range fc {
			newCoord = r.NodeID
		}
		return newCoord != victimID, fmt.Sprint(newCoord)
	})

	// Every acknowledged commit is there.
	offs := committed(t, adm, group, topic)
	for p := int32(0); p < parts; p++ {
		got := offs[p].At
		if got < acked[p].Load() || got > attempted[p].Load() {
			t.Errorf("partition %d: committed offset %d, want between the last acknowledged %d and the last attempted %d",
				p, got, acked[p].Load(), attempted[p].Load())
		}
	}
	// The share group's state survived the share coordinator's death.
	var after map[int32]int64
	waitFor(t, 60*time.Second, "the share state on the new share coordinators", func() (bool, string) {
		after = persistedShareStates(t, c, shareGroup, topicID, parts)
		return len(after) >= len(shareStates), fmt.Sprint(after)
	})
	for p, so := range shareStates {
		if after[p] != so {
			t.Errorf("share partition %d: start offset %d after the kill, %d before", p, after[p], so)
		}
	}

	// The nodes that took over replayed only the log tails.
	replayed := map[string]float64{}
	for _, n := range c.alive() {
		r, err := replayedRecords(n)
		if err != nil {
			t.Fatalf("metrics of node %d: %v", n.id(), err)
		}
		t.Logf("node %d replayed on coordinator loads: %v", n.id(), r)
		for k, v := range r {
			replayed[k] += v
		}
	}
	stateWritten := stateEnds[statePart]
	t.Logf("replayed %v of __consumer_offsets (%d records written to the group's partition), %v of __share_group_state (%d records in the victim's partition)",
		replayed["__consumer_offsets"], written, replayed["__share_group_state"], stateWritten)
	if written < before {
		t.Errorf("only %d records in the group's __consumer_offsets partition", written)
	}
	if r := replayed["__consumer_offsets"]; r*10 > float64(written) {
		t.Errorf("coordinator loads replayed %v __consumer_offsets records of %d written: the followers' stores lag", r, written)
	}
	if r := replayed["__share_group_state"]; r*10 > float64(stateWritten) {
		t.Errorf("coordinator loads replayed %v __share_group_state records of %d written: the followers' stores lag", r, stateWritten)
	}
}
