package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestClusterDescribeQuorum(t *testing.T) {
	r := ok(t, "cluster", "describe")
	for _, want := range []string{"Metadata quorum: leader 1, epoch ", "LOG-END-OFFSET", "LAST-CAUGHT-UP"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster describe output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !hasRow(r.stdout, "1", "leader") {
		t.Errorf("no row for voter 1 as leader:\n%s", r.stdout)
	}

	r = ok(t, "--output", "json", "cluster", "describe")
	var info clusterInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	q := info.Quorum
	if q == nil || info.QuorumError != "" {
		t.Fatalf("no quorum in %s", r.stdout)
	}
	if q.LeaderID != 1 || q.LeaderEpoch < 1 || q.HighWatermark < 1 || len(q.Voters) != 1 || len(q.Observers) != 0 {
		t.Fatalf("unexpected quorum %+v", q)
	}
	v := q.Voters[0]
	if v.ID != 1 || v.Role != "leader" || v.LogEndOffset == nil || *v.LogEndOffset < q.HighWatermark || v.Lag == nil || *v.Lag != 0 {
		t.Fatalf("unexpected voter %+v", v)
	}
	if v.LastFetchTimestamp == nil || time.Since(time.UnixMilli(*v.LastFetchTimestamp)) > time.Minute {
		t.Fatalf("voter last fetch %v, want about now", v.LastFetchTimestamp)
	}
	// Observers are an empty list, not null, for scripts that iterate.
	if !strings.Contains(r.stdout, `"observers": []`) {
		t.Errorf("observers not an empty list:\n%s", r.stdout)
	}
}

// TestClusterDescribeQuorumLag checks the lag and unknown values of a
// three-voter quorum with an observer, as a multi-node controller reports
// them.
func TestClusterDescribeQuorumLag(t *testing.T) {
	rs := func(id int32, end, fetch int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp = id, end, fetch, fetch
		return r
	}
	now := time.UnixMilli(1_000_000)
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = 2, 7, 95
	p.CurrentVoters = append(p.CurrentVoters, rs(3, -1, -1), rs(2, 100, 1_000_000), rs(1, 90, 999_750))
	p.Observers = append(p.Observers, rs(4, 100, 999_000))
	q := quorumFromResponse(p)

	if len(q.Voters) != 3 || len(q.Observers) != 1 {
		t.Fatalf("quorum %+v, want 3 voters and an observer", q)
	}
	if got := []int32{q.Voters[0].ID, q.Voters[1].ID, q.Voters[2].ID}; !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("voters not sorted by id: %v", got)
	}
	if v := q.Voters[0]; v.Role != "follower" || *v.Lag != 10 {
		t.Errorf("voter 1: %+v, want a follower 10 behind", v)
	}
	if v := q.Voters[1]; v.Role != "leader" || *v.Lag != 0 {
		t.Errorf("voter 2: %+v, want the leader with lag 0", v)
	}
	if v := q.Voters[2]; v.LogEndOffset != nil || v.Lag != nil || v.LastFetchTimestamp != nil {
		t.Errorf("voter 3: %+v, want unknowns", v)
	}
	if o := q.Observers[0]; o.Role != "observer" || *o.Lag != 0 {
		t.Errorf("observer: %+v", o)
	}

	var buf bytes.Buffer
	if err := printQuorum(&buf, q, "", now); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range [][]string{
		{"Metadata quorum: leader 2, epoch 7, high watermark 95"},
		{"1", "follower", "90", "10", "250 ms ago"},
		{"2", "leader", "100", "0", "0 ms ago"},
		{"3", "follower", "-", "-", "-"},
		{"4", "observer", "100", "0", "1000 ms ago"},
	} {
		if !hasRow(out, line...) {
			t.Errorf("no line with %q in:\n%s", line, out)
		}
	}

	buf.Reset()
	printQuorum(&buf, nil, "UNSUPPORTED_VERSION: no", now)
	if got := buf.String(); got != "Metadata quorum: unavailable (UNSUPPORTED_VERSION: no)\n" {
		t.Errorf("unavailable quorum printed as %q", got)
	}
}

func TestElectLeadersCommand(t *testing.T) {
	name := topicName(t, "elect")
	createTopic(t, name, 3)

	// One broker: every partition is led by its only, preferred, replica.
	r := ok(t, "cluster", "elect-leaders", "--topic", name)
	for p := range 3 {
		if !hasRow(r.stdout, name, itoa(int64(p)), "not needed (ELECTION_NOT_NEEDED)") {
			t.Errorf("partition %d not reported as not needing an election:\n%s", p, r.stdout)
		}
	}
	res := okJSON[electOutput](t, "cluster", "elect-leaders", "--type", "unclean", "--topic", name, "--partition", "1", "--output", "json")
	want := electResult{Topic: name, Partition: 1, Result: "not_needed", Error: "ELECTION_NOT_NEEDED", Message: res.Results[0].Message}
	if res.Type != "unclean" || len(res.Results) != 1 || res.Results[0] != want {
		t.Fatalf("unclean election of partition 1: %+v", res)
	}

	// Every partition: those not needing an election are left out.
	r = ok(t, "cluster", "elect-leaders")
	if !strings.Contains(r.stdout, "no partition needed a preferred election") {
		t.Errorf("elect-leaders for every partition:\n%s", r.stdout)
	}
	r = ok(t, "--output", "json", "cluster", "elect-leaders")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Results == nil || len(res.Results) != 0 {
		t.Errorf("json for every partition: %v %+v\n%s", err, res, r.stdout)
	}

	// A missing partition fails that partition, and the command.
	r = shoal(t, "cluster", "elect-leaders", "--topic", name, "--partition", "0", "--partition", "9")
	fails(t, r, "elect leaders: 1 of 2 partitions failed")
	if r.code != exitFailure || !hasRow(r.stdout, name, "9", "failed: UNKNOWN_TOPIC_OR_PARTITION: No such partition as "+name+"-9") {
		t.Errorf("exit %d, stdout:\n%s", r.code, r.stdout)
	}
	fails(t, shoal(t, "cluster", "elect-leaders", "--topic", "no-such-topic"), `topic "no-such-topic" does not exist`)
}

func TestElectLeadersUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "dirty"}, `--type: "dirty" is not one of preferred, unclean`},
		{[]string{"--partition", "1"}, "--partition needs --topic"},
		{[]string{"--topic", "x", "--partition", "one"}, `--partition: "one" is not a partition number`},
		{[]string{"--topic", "x", "--partition", "-1"}, `--partition: "-1" is not a partition number`},
		{[]string{"--topic", ""}, "--topic: empty topic name"},
		{[]string{"orders"}, `unexpected argument "orders"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		r := shoal(t, append([]string{"cluster", "elect-leaders"}, c.args...)...)
		fails(t, r, c.want)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", c.args, r.code, exitUsage)
		}
	}
	r := shoalIn(t, "", "cluster", "elect-leaders", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--type") || strings.Contains(r.stdout, "--bootstrap-server value") {
		t.Errorf("help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = shoalIn(t, "", "--bootstrap-server", "127.0.0.1:1", "cluster", "elect-leaders")
	fails(t, r, "cannot reach broker at 127.0.0.1:1")
}

// TestElectLeadersRequest checks the broker's answers to requests the
// command never sends: bad election types, v0, null and empty topic lists.
func TestElectLeadersRequest(t *testing.T) {
	name := topicName(t, "raw")
	createTopic(t, name, 2)
	ctx := testCtx(t)
	elect := func(v int16, typ int8, topics []kmsg.ElectLeadersRequestTopic) *kmsg.ElectLeadersResponse {
		t.Helper()
		// kgo sends the highest version both sides know: cap it at v.
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(kmsg.ElectLeaders.Int16(), v)
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.MaxVersions(vs))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType, req.Topics = typ, topics
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("v%d type %d: %v", v, typ, err)
		}
		if resp.Version != v {
			t.Fatalf("sent v%d, want v%d", resp.Version, v)
		}
		return resp
	}
	partitions := func(ps ...int32) []kmsg.ElectLeadersRequestTopic {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = name, ps
		return []kmsg.ElectLeadersRequestTopic{rt}
	}
	codes := func(resp *kmsg.ElectLeadersResponse) map[int32]int16 {
		out := map[int32]int16{}
		for _, rt := range resp.Topics {
			if rt.Topic != name {
				t.Errorf("result for unasked topic %q", rt.Topic)
			}
			for _, p := range rt.Partitions {
				out[p.Partition] = p.ErrorCode
			}
		}
		return out
	}

	for v := int16(1); v <= 2; v++ {
		resp := elect(v, 7, partitions(0, 1))
		if resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("v%d election type 7: top-level error %d, want INVALID_REQUEST", v, resp.ErrorCode)
		}
		if got := codes(resp); len(got) != 2 || got[0] != kerr.InvalidRequest.Code || got[1] != kerr.InvalidRequest.Code {
			t.Errorf("v%d election type 7: partitions %v, want INVALID_REQUEST on both", v, got)
		}
	}
	// v0 has no election type: always preferred.
	resp := elect(0, 0, partitions(0, 5))
	if got := codes(resp); got[0] != kerr.ElectionNotNeeded.Code || got[5] != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("v0: %v", got)
	}
	if resp := elect(2, 0, []kmsg.ElectLeadersRequestTopic{}); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Errorf("empty topic list: %+v, want no results", resp)
	}
	if resp := elect(2, 1, nil); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Errorf("every partition, unclean: %+v, want no results (every partition has a leader)", resp)
	}
	// A partition named twice is answered twice, the second time as invalid.
	resp = elect(2, 0, partitions(1, 1))
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 || resp.Topics[0].Partitions[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("duplicate partition: %+v", resp)
	}
}

// hasRow reports whether a line of out starts with cells, each of which
// may span several space-separated fields ("0 ms ago").
func hasRow(out string, cells ...string) bool {
	return containsLineWith(out, strings.Fields(strings.Join(cells, " "))...)
}

// On one broker, topic reassign's plan round trip: --generate over broker 1
// proposes the current assignment, --execute of it completes at once,
// --verify reports it completed, and --cancel has nothing to cancel; bad
// command lines are usage errors; remove-broker refuses an unknown broker.
func TestTopicReassignCommand(t *testing.T) {
	name := topicName(t, "reassign")
	createTopic(t, name, 2)
	gen := okJSON[struct {
		Current  reassignPlan `json:"current"`
		Proposed reassignPlan `json:"proposed"`
	}](t, "--output", "json", "topic", "reassign", "--generate", "--topics", name, "--brokers", "1")
	if got := planString(gen.Proposed); got != name+"-0:[1] "+name+"-1:[1]" {
		t.Fatalf("proposed %s", got)
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	b, _ := json.Marshal(gen.Proposed)
	if err := os.WriteFile(plan, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := ok(t, "topic", "reassign", "--execute", "--plan", plan); !hasRow(r.stdout, name, "1", "completed") {
		t.Errorf("execute:\n%s", r.stdout)
	}
	if r := ok(t, "topic", "reassign", "--verify", "--plan", plan); !strings.Contains(r.stdout, "Reassignment of partition "+name+"-0 is completed.") {
		t.Errorf("verify:\n%s", r.stdout)
	}
	r := shoal(t, "topic", "reassign", "--cancel", "--plan", plan)
	fails(t, r, "topic reassign --cancel: 2 of 2 partitions not cancelled")
	if !hasRow(r.stdout, name, "0", "failed: NO_REASSIGNMENT_IN_PROGRESS: No partition reassignment is in progress.") {
		t.Errorf("cancel:\n%s", r.stdout)
	}
	r = shoal(t, "topic", "reassign", "--generate", "--topics", name, "--broker-list", "1,7")
	fails(t, r, "topic reassign --generate: broker 7 is not in the cluster")
	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, []byte(`{"version":1,"partitions":[{"topic":"`+name+`","partition":0,"replicas":[7]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = shoal(t, "topic", "reassign", "--execute", "--plan", other)
	fails(t, r, "topic reassign --execute: 1 of 1 partitions failed")
	if !hasRow(r.stdout, name, "0", "failed: INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes broker 7, but no such broker is registered.") {
		t.Errorf("execute onto an unknown broker:\n%s", r.stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "reassign"}, "give exactly one of --generate, --execute, --verify, --cancel"},
		{[]string{"topic", "reassign", "--execute", "--verify", "--plan", plan}, "give exactly one of"},
		{[]string{"topic", "reassign", "--execute"}, "--plan FILE is required"},
		{[]string{"topic", "reassign", "--generate", "--brokers", "1"}, "--topics is required"},
		{[]string{"topic", "reassign", "--generate", "--topics", name, "--brokers", "x"}, `--brokers: "x" is not a broker id`},
		{[]string{"cluster", "remove-broker"}, "expected one broker id"},
	} {
		r := shoal(t, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("shoal %s: exit %d, stderr %q, want usage error %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	fails(t, shoal(t, "cluster", "remove-broker", "42"), "cluster remove-broker: broker 42 is not registered")
}

// On one broker every replica is where it must be: rebalance proposes
// nothing, and --execute has nothing to do; contradictory flags are usage
// errors.
func TestClusterRebalanceCommand(t *testing.T) {
	name := topicName(t, "rebalance")
	createTopic(t, name, 2)
	for _, args := range [][]string{
		{"cluster", "rebalance", "--topics", name},
		{"cluster", "rebalance", "--topics", name, "--execute"},
	} {
		if r := ok(t, args...); !strings.Contains(r.stdout, "the cluster is balanced") || !hasRow(r.stdout, "1", "-", "2 -> 2", "2 -> 2") {
			t.Errorf("shoal %s:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
	res := okJSON[rebalanceOutput](t, "--output", "json", "cluster", "rebalance", "--topics", name)
	if res.Moves != 0 || len(res.Proposed.Partitions) != 0 || res.Executed || len(res.Brokers) != 1 || res.Brokers[0].Current.Replicas != 2 {
		t.Errorf("json: %+v", res)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "rebalance", "--execute", "--dry-run"}, "--execute and --dry-run exclude each other"},
		{[]string{"cluster", "rebalance", name}, "unexpected argument"},
		{[]string{"cluster", "rebalance", "--topics", ","}, "--topics: no topic names given"},
	} {
		r := shoal(t, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("shoal %s: exit %d, stderr %q, want usage error %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	fails(t, shoal(t, "cluster", "rebalance", "--topics", "no-such-topic-"+name), `topic "no-such-topic-`+name+`" does not exist`)
}
