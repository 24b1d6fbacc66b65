package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterElectLeaders moves leadership away from preferred replicas by
// restarting a broker (with automatic rebalancing off, nothing moves it
// back), then elects preferred leaders through a node that is not the
// controller: that node relays the request to the controller.
func TestClusterElectLeaders(t *testing.T) {
	c := startCluster(t, 3, "auto.leader.rebalance.enable=false")
	topic := topicName(t, "")
	const parts = 6
	adm := kadm.NewClient(c.Client(t))
	createTopicRF(t, adm, topic, parts, 3, nil)
	preferred := map[int32]int32{}
	for p := range int32(parts) {
		st := c.waitPartition(c.nodes[0], topic, p, "a full ISR led by the preferred replica", func(s partitionState) bool {
			return len(s.isr) == 3 && len(s.replicas) == 3 && s.leader == s.replicas[0]
		})
		preferred[p] = st.replicas[0]
	}

	// Restart a broker that is not the controller and prefers to lead
	// some partition; its partitions are led elsewhere meanwhile.
	ctrl := knownController(t, c.nodes[0])
	var victim *node
	for _, n := range c.nodes {
		if n.id() != ctrl && slices.Contains(preferredLeaders(preferred), n.id()) {
			victim = n
			break
		}
	}
	if victim == nil {
		t.Fatalf("no non-controller node is a preferred leader: %v (controller %d)", preferred, ctrl)
	}
	var moved []int32
	for p, id := range preferred {
		if id == victim.id() {
			moved = append(moved, p)
		}
	}
	slices.Sort(moved)
	victim.Stop()
	observer := c.node(ctrl)
	for _, p := range moved {
		c.waitPartition(observer, topic, p, "leadership to move off the stopped broker", func(s partitionState) bool {
			return s.leader > 0 && s.leader != victim.id()
		})
	}
	victim.Restart()
	for p := range int32(parts) {
		st := c.waitPartition(observer, topic, p, "the restarted broker back in the ISR", func(s partitionState) bool {
			return len(s.isr) == 3 && s.leader > 0
		})
		if slices.Contains(moved, p) && st.leader == victim.id() {
			t.Fatalf("partition %d went back to its preferred leader on its own: %+v", p, st)
		}
	}

	via, viaNode := adminViaNonController(t, c)
	all := kadm.TopicsSet{}
	all.Add(topic, partitionNumbers(parts)...)
	res, err := via.ElectLeaders(ctxT(t, opTimeout), kadm.ElectPreferredReplica, all)
	if err != nil {
		t.Fatalf("elect leaders: %v", err)
	}
	for p := range int32(parts) {
		r, ok := res[topic][p]
		switch {
		case !ok:
			t.Errorf("partition %d: no result in %+v", p, res)
		case slices.Contains(moved, p) && r.Err != nil:
			t.Errorf("partition %d: %v %s, want elected", p, r.Err, r.ErrMessage)
		case !slices.Contains(moved, p) && !errors.Is(r.Err, kerr.ElectionNotNeeded):
			t.Errorf("partition %d: %v, want ELECTION_NOT_NEEDED", p, r.Err)
		}
	}
	for _, n := range c.nodes {
		for p := range int32(parts) {
			c.waitPartition(n, topic, p, "the preferred replica leading again", func(s partitionState) bool {
				return s.leader == preferred[p] && len(s.replicas) > 0 && s.leader == s.replicas[0]
			})
		}
	}

	// Nothing left to do: every partition says so, for either kind of
	// election, and a request for every partition leaves ours out.
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		res, err = via.ElectLeaders(ctxT(t, opTimeout), how, all)
		if err != nil {
			t.Fatalf("elect leaders again (%d): %v", how, err)
		}
		for p := range int32(parts) {
			if r := res[topic][p]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				t.Errorf("election %d, partition %d again: %v, want ELECTION_NOT_NEEDED", how, p, r.Err)
			}
		}
	}
	res, err = via.ElectLeaders(ctxT(t, opTimeout), kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatalf("elect leaders for every partition: %v", err)
	}
	if len(res[topic]) != 0 {
		t.Errorf("every partition: results for %s, which needs no election: %+v", topic, res[topic])
	}

	missing := kadm.TopicsSet{}
	missing.Add(topic, parts)
	missing.Add(topic+"-missing", 0)
	res, err = via.ElectLeaders(ctxT(t, opTimeout), kadm.ElectPreferredReplica, missing)
	if err != nil {
		t.Fatalf("elect leaders for missing partitions: %v", err)
	}
	for _, tp := range []struct {
		topic string
		p     int32
	}{{topic, parts}, {topic + "-missing", 0}} {
		if r := res[tp.topic][tp.p]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("%s-%d: %v, want UNKNOWN_TOPIC_OR_PARTITION", tp.topic, tp.p, r.Err)
		}
	}

	waitQuorumDescribed(t, viaNode, 3)
}

// describedQuorum is the quorum part of "shoal cluster describe"'s JSON.
type describedQuorum struct {
	LeaderID      int32 `json:"leader_id"`
	LeaderEpoch   int32 `json:"leader_epoch"`
	HighWatermark int64 `json:"high_watermark"`
	Voters        []struct {
		ID                 int32  `json:"id"`
		Role               string `json:"role"`
		LogEndOffset       *int64 `json:"log_end_offset"`
		Lag                *int64 `json:"lag"`
		LastFetchTimestamp *int64 `json:"last_fetch_timestamp"`
	} `json:"voters"`
}

// waitQuorumDescribed runs "shoal cluster describe" against n until it
// shows a quorum of voters voters, all known to the leader and caught up
// with the high watermark.
func waitQuorumDescribed(t *testing.T, n *node, voters int) {
	t.Helper()
	waitFor(t, opTimeout, "cluster describe to show the whole quorum", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, shoalBin, "--bootstrap-server", n.Addr(), "--output", "json", "cluster", "describe")
		cmd.Env = childEnv(nil)
		out, err := cmd.Output()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		var info struct {
			ControllerID int32            `json:"controller_id"`
			Quorum       *describedQuorum `json:"quorum"`
			QuorumError  string           `json:"quorum_error"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		q := info.Quorum
		if q == nil || q.LeaderID != info.ControllerID || q.LeaderEpoch < 1 || len(q.Voters) != voters {
			return false, string(out)
		}
		for _, v := range q.Voters {
			if v.LogEndOffset == nil || *v.LogEndOffset < q.HighWatermark || v.Lag == nil || v.LastFetchTimestamp == nil ||
				(v.Role == "leader") != (v.ID == q.LeaderID) {
				return false, string(out)
			}
		}
		return true, ""
	})
}

// knownController waits until n knows the active controller and returns it.
func knownController(t *testing.T, n *node) int32 {
	t.Helper()
	var id int32 = -1
	waitFor(t, opTimeout, "a known controller", func() (bool, string) {
		var err error
		id, err = controllerOn(t, n)
		if err != nil {
			return false, err.Error()
		}
		return id > 0, fmt.Sprintf("controller %d", id)
	})
	return id
}

// adminViaNonController returns an admin client whose every connection
// goes to a node that is not the active controller, whatever broker the
// client means to reach, so requests for the controller are relayed by
// that node.
func adminViaNonController(t *testing.T, c *cluster) (*kadm.Client, *node) {
	t.Helper()
	var via *node
	waitFor(t, opTimeout, "a node that is not the controller", func() (bool, string) {
		for _, n := range c.alive() {
			if id, err := controllerOn(t, n); err == nil && id > 0 && id != n.id() {
				via = n
				return true, ""
			}
		}
		return false, "every node is the controller or does not know it"
	})
	d := net.Dialer{Timeout: time.Second}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(via.Addr()),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, via.Addr())
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	t.Logf("admin requests go through node %d", via.id())
	return kadm.NewClient(cl), via
}

// preferredLeaders lists the values of a partition -> preferred leader map.
func preferredLeaders(m map[int32]int32) []int32 {
	var out []int32
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// partitionNumbers returns the partitions 0..n-1.
func partitionNumbers(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}
