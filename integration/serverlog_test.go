package integration

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// logLines returns the lines of out that carry every one of parts.
func logLines(out string, parts ...string) []string {
	var found []string
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			found = append(found, line)
		}
	}
	return found
}

// TestServerLogAdminChangesAndQuietRestart: an operator reads INFO. Every
// administrative change made through the admin APIs is one INFO line; a
// client closing its connections, first group use and a restart of a
// default single node log no warning and no per-partition noise.
func TestServerLogAdminChangesAndQuietRestart(t *testing.T) {
	n := startNode(t, nodeOpts{})
	cl := n.Client(t)
	adm := kadm.NewClient(cl)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 3, nil)
	if err := cl.ProduceSync(ctxT(t, opTimeout), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// First group use loads the group coordinator's partitions.
	if _, err := adm.CommitOffsets(ctxT(t, opTimeout), "log-group", kadm.OffsetsFromRecords(kgo.Record{Topic: topic, Offset: 0})); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, err := adm.AlterTopicConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{{Name: "retention.ms", Value: strp("3600000")}}, topic); err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	if _, err := adm.DeleteTopics(ctxT(t, opTimeout), topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	// A client that goes away closes its connections.
	cl.Close()
	waitFor(t, opTimeout, "the topic deletion logged", func() (bool, string) {
		return len(logLines(n.Output(), `msg="deleted topic"`, "topic="+topic)) > 0, n.Output()
	})
	out := n.Output()
	for _, what := range []string{`msg="created topic"`, `msg="altered topic configs"`, `msg="deleted topic"`} {
		if got := logLines(out, "level=INFO", what, "topic="+topic+" "); len(got) != 1 {
			t.Errorf("%s: %d INFO lines for %s, want 1:\n%s", what, len(got), topic, strings.Join(got, "\n"))
		}
	}
	if got := logLines(out, `msg="altered topic configs"`, "retention.ms=3600000"); len(got) != 1 {
		t.Errorf("the config change line does not name the new value:\n%s", out)
	}
	if got := logLines(out, "level=INFO", "coordinator partition loaded"); len(got) > 0 {
		t.Errorf("%d INFO lines of coordinator loads, want none", len(got))
	}
	if got := logLines(out, "component=request"); len(got) > 0 {
		t.Errorf("request lines at the default level: %s", got[0])
	}

	n.Stop()
	n.Restart()
	// A client that connects and leaves after the restart.
	adm2 := n.Admin(t)
	if _, err := adm2.ListTopics(ctxT(t, opTimeout)); err != nil {
		t.Fatalf("list topics: %v", err)
	}
	waitFor(t, opTimeout, "start-up summary", func() (bool, string) {
		return len(logLines(n.Output(), `msg="shoal started"`)) == 2, ""
	})
	all := n.Output()
	for _, line := range strings.Split(all, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("warning in the log of a default single node: %s", line)
		}
	}
	restarted := all[strings.LastIndex(all, "----- start #2"):]
	summary := logLines(restarted, `msg="shoal started"`)
	if len(summary) != 1 {
		t.Fatalf("no start-up summary after the restart:\n%s", restarted)
	}
	for _, key := range []string{"listeners=", "controller.listener=", "log.dirs=", "admin.addr=", "process.roles=", "cluster.id="} {
		if !strings.Contains(summary[0], key) {
			t.Errorf("start-up summary lacks %s: %s", key, summary[0])
		}
	}
}

// TestServerLogRequestsAndClosedConnections: with log.level=info,request=debug
// and log.format=json, each request is one JSON line naming the API,
// version, client id, client address, latency and error codes; connections
// the broker closes are one INFO line each, naming the reason.
func TestServerLogRequestsAndClosedConnections(t *testing.T) {
	n := startNode(t, nodeOpts{set: []string{"log.level=info,request=debug", "log.format=json"}})
	rc := dialRaw(t, n.Addr())
	missing := topicName(t, "missing")
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(missing)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp := rc.request(req, -1).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode == 0 {
		t.Fatalf("metadata of a missing topic: %+v", resp.Topics)
	}

	// A frame too short to hold a request header.
	bad := dialRaw(t, n.Addr())
	if err := bad.write([]byte{0, 0, 0, 4, 1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	bad.expectClosed("short frame", opTimeout)
	// Metadata v99.
	unsupported := dialRaw(t, n.Addr())
	frame := make([]byte, 4, 16)
	frame = binary.BigEndian.AppendUint16(frame, 3)  // Metadata
	frame = binary.BigEndian.AppendUint16(frame, 99) // version
	frame = binary.BigEndian.AppendUint32(frame, 1)  // correlation id
	frame = binary.BigEndian.AppendUint16(frame, 0)  // empty client id
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if err := unsupported.write(frame); err != nil {
		t.Fatal(err)
	}
	unsupported.expectClosed("Metadata v99", opTimeout)

	type line struct {
		Level, Msg, Component, API, ClientID, Client, Reason string
		Version                                              int
		Latency                                              any
		Errors                                               []string
		Err                                                  string
	}
	parse := func() []line {
		var out []line
		for _, s := range strings.Split(n.Output(), "\n") {
			if !strings.HasPrefix(s, "{") {
				continue
			}
			var raw map[string]any
			if err := json.Unmarshal([]byte(s), &raw); err != nil {
				t.Fatalf("log line is not JSON: %v: %s", err, s)
			}
			var l line
			l.Level, _ = raw["level"].(string)
			l.Msg, _ = raw["msg"].(string)
			l.Component, _ = raw["component"].(string)
			l.API, _ = raw["api"].(string)
			l.ClientID, _ = raw["client_id"].(string)
			l.Client, _ = raw["client"].(string)
			l.Reason, _ = raw["reason"].(string)
			l.Err, _ = raw["err"].(string)
			if v, ok := raw["version"].(float64); ok {
				l.Version = int(v)
			}
			l.Latency = raw["latency"]
			if es, ok := raw["errors"].([]any); ok {
				for _, e := range es {
					l.Errors = append(l.Errors, fmt.Sprint(e))
				}
			}
			out = append(out, l)
		}
		return out
	}
	var lines []line
	waitFor(t, opTimeout, "two closed-connection lines", func() (bool, string) {
		lines = parse()
		c := 0
		for _, l := range lines {
			if l.Component == "conn" && l.Level == "INFO" {
				c++
			}
		}
		return c >= 2, n.Output()
	})
	var sawRequest bool
	reasons := map[string]bool{}
	for _, l := range lines {
		switch {
		case l.Component == "request" && l.API == "Metadata" && slices.Contains(l.Errors, "UNKNOWN_TOPIC_OR_PARTITION"):
			sawRequest = true
			if l.Level != "DEBUG" || l.ClientID != "shoal-integration" || l.Client == "" || l.Latency == nil || l.Version != int(req.GetVersion()) {
				t.Errorf("request line lacks a field: %+v", l)
			}
		case l.Component == "conn" && l.Level == "INFO":
			reasons[l.Reason] = true
		}
	}
	if !sawRequest {
		t.Errorf("no request line for the Metadata request:\n%s", n.Output())
	}
	for _, want := range []string{"malformed frame", "unsupported version"} {
		if !reasons[want] {
			t.Errorf("no closed-connection line with reason %q (got %v)", want, reasons)
		}
	}
}

// TestServerLogLeaderChange: when a partition's leader stops, the cluster's
// logs name the move once, on the controller that decided it, and shoal
// cluster describe shows the stopped broker as fenced.
func TestServerLogLeaderChange(t *testing.T) {
	c := startCluster(t, 3, "auto.leader.rebalance.enable=false")
	topic := topicName(t, "")
	st := c.createLedPartition(topic, nil)
	old := c.node(st.leader)
	old.Stop()
	var observer *node
	for _, nd := range c.nodes {
		if nd != old {
			observer = nd
		}
	}
	c.waitPartition(observer, topic, 0, "a new leader", func(s partitionState) bool {
		return s.leader > 0 && s.leader != old.id()
	})
	changes := func() []string {
		var all []string
		for _, nd := range c.nodes {
			all = append(all, logLines(nd.Output(), "level=INFO", `msg="partition leader changed"`, "topic="+topic+" ")...)
		}
		return all
	}
	waitFor(t, opTimeout, "the leader change logged", func() (bool, string) {
		return len(changes()) > 0, ""
	})
	if got := changes(); len(got) != 1 || !strings.Contains(got[0], fmt.Sprintf("previous_leader=%d", old.id())) {
		t.Fatalf("leader change lines, want one naming the previous leader %d:\n%s", old.id(), strings.Join(got, "\n"))
	}

	// shoal cluster describe shows the stopped broker fenced, not gone.
	cmd := exec.CommandContext(ctxT(t, opTimeout), shoalBin, "--bootstrap-server", observer.Addr(), "--output", "json", "cluster", "describe")
	cmd.Env = childEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster describe: %v", err)
	}
	var desc struct {
		Brokers []struct {
			ID     int32 `json:"id"`
			Fenced bool  `json:"fenced"`
		} `json:"brokers"`
	}
	if err := json.Unmarshal(out, &desc); err != nil {
		t.Fatalf("cluster describe --output json: %v: %s", err, out)
	}
	shown := false
	for _, b := range desc.Brokers {
		if b.ID == old.id() {
			shown = true
			if !b.Fenced {
				t.Errorf("stopped broker %d not shown fenced: %s", b.ID, out)
			}
		} else if b.Fenced {
			t.Errorf("running broker %d shown fenced: %s", b.ID, out)
		}
	}
	if !shown || len(desc.Brokers) != 3 {
		t.Errorf("cluster describe lists %d brokers, want all 3 with the stopped one fenced: %s", len(desc.Brokers), out)
	}
}

// TestLockedDataDirSaysSo: a second shoal serve on a data directory in use
// stops at once with one line naming the directory and the holder's pid,
// before it opens the metadata log or anything else in it.
func TestLockedDataDirSaysSo(t *testing.T) {
	n := startNode(t, nodeOpts{})
	dataDir := filepath.Join(n.dataDir, "data")
	ctrl := freePort(t)
	ctx := ctxT(t, opTimeout)
	cmd := exec.CommandContext(ctx, shoalBin, "serve",
		"--set", "log.dirs="+dataDir,
		"--set", fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", freePort(t), ctrl),
		"--set", fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", ctrl),
		"--set", "admin.addr=")
	cmd.Env = childEnv(nil)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second serve on %s started:\n%s", dataDir, out)
	}
	n.mu.Lock()
	pid := n.cmd.Process.Pid
	n.mu.Unlock()
	want := fmt.Sprintf("%s is in use by another shoal process (pid %d); is one already running?", dataDir, pid)
	if !strings.Contains(string(out), want) {
		t.Errorf("second serve said:\n%s\nwant a line with: %s", out, want)
	}
	for _, deeper := range []string{"pebble", "raftmeta", "metadata quorum"} {
		if strings.Contains(string(out), deeper) {
			t.Errorf("second serve got as far as %s before noticing the lock:\n%s", deeper, out)
		}
	}
}

// TestProduceWithoutAutoCreateSaysHow: with auto.create.topics.enable=false
// produce to a missing topic fails with one line saying how to create it.
func TestProduceWithoutAutoCreateSaysHow(t *testing.T) {
	n := startNode(t, nodeOpts{set: []string{"auto.create.topics.enable=false"}})
	ctx := ctxT(t, opTimeout)
	cmd := exec.CommandContext(ctx, shoalBin, "--bootstrap-server", n.Addr(), "produce", "no-such-topic")
	cmd.Env = childEnv(nil)
	cmd.Stdin = strings.NewReader("hi\n")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("produce to a missing topic succeeded with auto-creation off:\n%s", out)
	}
	for _, want := range []string{`topic "no-such-topic" does not exist`, "auto.create.topics.enable=false", "shoal topic create no-such-topic"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("produce said:\n%s\nwant: %s", out, want)
		}
	}
}

// TestServerLogShareStateLoads: with log.level=info,share=debug,
// coordinator=debug an operator following a share partition across leader
// changes sees the state its leader loaded and the claim the share
// coordinator recorded for it, on the components named; at the default
// level neither is logged (TestServerLogAdminChangesAndQuietRestart covers
// the default node's silence).
func TestServerLogShareStateLoads(t *testing.T) {
	n := startShareNode(t, "log.level=info,share=debug,coordinator=debug")
	topic, admin := topicName(t, ""), n.Client(t)
	group := topic + "-g"
	createTopic(t, kadmOf(admin), topic, 1, nil)
	setGroupConfigs(t, admin, group, "share.auto.offset.reset=earliest")
	produceSpread(t, n, topic, 1, 1)
	seen, stop := acceptValues(t, n, group, topic, 1)
	select {
	case <-seen:
	case <-time.After(opTimeout):
		t.Fatal("the share consumer got no record")
	}
	stop()
	// The node's output reaches the test through a pipe: wait for it.
	for _, want := range [][]string{
		{"level=DEBUG", "component=share", `msg="share partition state loaded"`, "topic=" + topic + " ", "partition=0", "leader_epoch=0"},
		{"level=DEBUG", "component=coordinator", `msg="share state claimed"`, "group=" + group + " ", "partition=0", "leader_epoch=0"},
	} {
		waitFor(t, opTimeout, fmt.Sprintf("a line with %q", want), func() (bool, string) {
			return len(logLines(n.Output(), want...)) > 0, n.Output()
		})
	}
}
