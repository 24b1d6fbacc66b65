package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// leafCommands lists every runnable command path ("topic create") of the
// app, except serve and help.
func leafCommands(prefix string, cmds []*cli.Command) []string {
	var out []string
	for _, c := range cmds {
		path := strings.TrimSpace(prefix + " " + c.Name)
		switch {
		case c.Name == "serve" || c.Name == "help":
		case len(c.Subcommands) > 0:
			out = append(out, leafCommands(path, c.Subcommands)...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// parsesAsJSON reports whether s is one JSON value or JSON lines (one value
// per line).
func parsesAsJSON(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	if json.Valid([]byte(s)) {
		return true
	}
	for _, line := range strings.Split(s, "\n") {
		if !json.Valid([]byte(line)) {
			return false
		}
	}
	return true
}

// TestEveryCommandHonoursOutputJSON runs every command with the global
// --output json (given after the command, where users type it) and parses
// what it prints on stdout.
func TestEveryCommandHonoursOutputJSON(t *testing.T) {
	topic := topicName(t, "json")
	other := topicName(t, "json-add")
	group := "json-group-" + topic
	share := "json-share-" + topic
	dlq := "dlq." + topic
	bt := topicName(t, "bench")
	txnTopic, txnID := openHangingTxn(t, "json-txn")
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"`+topic+`","partition":0,"replicas":[1]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		cmd   string // the leaf command it covers
		stdin string
		args  []string
	}{
		{"topic create", "", []string{"topic", "create", topic, "--partitions", "2"}},
		{"topic create", "", []string{"topic", "create", other}},
		{"produce", "k1:a\nk2:b\n", []string{"produce", topic, "--key-separator", ":"}},
		{"topic list", "", []string{"topic", "list"}},
		{"topic describe", "", []string{"topic", "describe", topic}},
		{"topic alter", "", []string{"topic", "alter", topic, "--set", "retention.ms=3600000"}},
		{"topic add-partitions", "", []string{"topic", "add-partitions", other, "--total", "2"}},
		{"consume", "", []string{"consume", topic, "--exit-at-end"}},
		{"consume", "", []string{"consume", topic, "--group", group, "--exit-at-end"}},
		{"group list", "", []string{"group", "list"}},
		{"group describe", "", []string{"group", "describe", group}},
		{"group reset-offsets", "", []string{"group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"}},
		{"group delete", "", []string{"group", "delete", group}},
		{"share config", "", []string{"share", "config", share, "--set", "share.auto.offset.reset=earliest"}},
		{"consume", "", []string{"consume", topic, "--share-group", share, "--max-records", "1"}},
		{"share list", "", []string{"share", "list"}},
		{"share describe", "", []string{"share", "describe", share}},
		{"share reset-offsets", "", []string{"share", "reset-offsets", share, "--topic", topic, "--to-earliest", "--execute"}},
		{"share delete", "", []string{"share", "delete", share}},
		{"cluster describe", "", []string{"cluster", "describe"}},
		{"cluster elect-leaders", "", []string{"cluster", "elect-leaders", "--topic", topic}},
		{"topic reassign", "", []string{"topic", "reassign", "--generate", "--topics", topic, "--brokers", "1"}},
		{"topic reassign", "", []string{"topic", "reassign", "--execute", "--plan", plan}},
		{"topic reassign", "", []string{"topic", "reassign", "--verify", "--plan", plan}},
		{"topic move-dir", "", []string{"topic", "move-dir", topic, "--broker", "1", "--dir", logDir}},
		{"cluster rebalance", "", []string{"cluster", "rebalance", "--topics", topic}},
		{"cluster remove-broker", "", []string{"cluster", "remove-broker", "99", "--if-registered"}},
		{"log dump", "", []string{"log", "dump", filepath.Join(logDir, topic+"-0")}},
		{"bench produce", "", []string{"bench", "produce", "--topic", bt, "--records", "200", "--partitions", "1"}},
		{"bench consume", "", []string{"bench", "consume", "--topic", bt, "--records", "200"}},
		{"bench latency", "", []string{"bench", "latency", "--topic", bt + "-lat", "--rate", "200", "--duration", "500ms"}},
		{"bench share", "", []string{"bench", "share", "--topic", bt + "-share", "--records", "200", "--workers", "2", "--rate", "200", "--duration", "500ms"}},
		{"bench net", "", []string{"bench", "net", "--bytes", "1048576"}},
		{"acl create", "", []string{"acl", "create", "--allow-principal", "User:alice", "--operation", "READ", "--topic", topic}},
		{"acl list", "", []string{"acl", "list", "--principal", "User:alice"}},
		{"acl delete", "", []string{"acl", "delete", "--allow-principal", "User:alice", "--topic", topic}},
		{"user scram set", "", []string{"user", "scram", "set", "--name", "alice", "--password", "alice-secret"}},
		{"user scram list", "", []string{"user", "scram", "list"}},
		{"user scram delete", "", []string{"user", "scram", "delete", "--name", "alice"}},
		{"quota set", "", []string{"quota", "set", "--client-id", "json-client", "--set", "producer_byte_rate=1048576"}},
		{"quota list", "", []string{"quota", "list", "--client-id", "json-client"}},
		{"config set", "", []string{"config", "set", "--cluster", "--set", "log.cleaner.min.cleanable.ratio=0.4"}},
		{"config describe", "", []string{"config", "describe", "--cluster"}},
		{"storage format", "", []string{"storage", "format", "--set", "log.dirs=" + t.TempDir(), "--add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret]"}},
		{"txn list", "", []string{"txn", "list"}},
		{"txn describe", "", []string{"txn", "describe", txnID}},
		{"txn abort", "", []string{"txn", "abort", "--topic", txnTopic, "--partition", "0", "--start-offset", "0"}},
		{"topic create", "", []string{"topic", "create", dlq}},
		{"produce", "k:v\n", []string{"produce", dlq, "--key-separator", ":", "--header", "__dlq.errors.topic=" + other,
			"--header", "__dlq.errors.partition=0", "--header", "__dlq.errors.offset=0", "--header", "__dlq.errors.reason=rejected"}},
		{"share dlq list", "", []string{"share", "dlq", "list", dlq}},
		{"share dlq show", "", []string{"share", "dlq", "show", dlq, "0", "0"}},
		{"share dlq redrive", "", []string{"share", "dlq", "redrive", dlq, "--execute"}},
		{"topic delete", "", []string{"topic", "delete", topic, other, dlq}},
	}
	covered := map[string]bool{}
	for _, r := range runs {
		covered[r.cmd] = true
		args := append([]string{"--bootstrap-server", brokerAddr}, r.args...)
		args = append(args, "--output", "json")
		res := shoalIn(t, r.stdin, args...)
		if res.code != 0 {
			t.Errorf("shoal %s: exit %d: %s", strings.Join(r.args, " "), res.code, res.stderr)
			continue
		}
		if !parsesAsJSON(res.stdout) {
			t.Errorf("shoal %s --output json: stdout is not JSON:\n%s", strings.Join(r.args, " "), res.stdout)
		}
	}
	for _, c := range leafCommands("", newApp().Commands) {
		if !covered[c] {
			t.Errorf("command %q has no --output json case here", c)
		}
	}
}

// TestConsumeJSONRecords: consume --output json prints one object per
// record with its fields, bytes as --encoding says.
func TestConsumeJSONRecords(t *testing.T) {
	topic := topicName(t, "t")
	createTopic(t, topic, 1)
	r := shoalIn(t, "k:v\x01\n:\n", "--bootstrap-server", brokerAddr, "produce", topic, "--key-separator", ":", "--header", "h=x")
	if r.code != 0 {
		t.Fatalf("produce: %s", r.stderr)
	}
	for _, c := range []struct {
		encoding string
		key      string
		value    string
	}{
		{"utf8", "k", "v\x01"},
		{"base64", "aw==", "dgE="},
		{"hex", "6b", "7601"},
	} {
		out := ok(t, "consume", topic, "--exit-at-end", "--output", "json", "--encoding", c.encoding).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %d lines, want 2:\n%s", c.encoding, len(lines), out)
		}
		var rec jsonRecord
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatalf("%s: %v: %s", c.encoding, err, lines[0])
		}
		if rec.Topic != topic || rec.Partition != 0 || rec.Offset != 0 || rec.Timestamp <= 0 ||
			rec.Key == nil || *rec.Key != c.key || rec.Value == nil || *rec.Value != c.value ||
			len(rec.Headers) != 1 || rec.Headers[0].Key != "h" {
			t.Errorf("%s: record %s", c.encoding, lines[0])
		}
	}
	fails(t, shoal(t, "consume", topic, "--exit-at-end", "--format", "json"), "--format")
	fails(t, shoal(t, "consume", topic, "--exit-at-end", "--output", "json", "--format", "%s"), "not both")
	fails(t, shoal(t, "consume", topic, "--exit-at-end", "--output", "json", "--encoding", "rot13"), "--encoding")
}

// TestCLIForgivesKafkaHabits: produce creates a missing topic when the
// broker allows it (as Kafka's console producer does), topic commands take
// --topic, and an unknown top-level command is named.
func TestCLIForgivesKafkaHabits(t *testing.T) {
	topic := topicName(t, "auto")
	r := shoalIn(t, "hello\n", "--bootstrap-server", brokerAddr, "produce", topic)
	if r.code != 0 {
		t.Fatalf("produce to a missing topic: exit %d: %s", r.code, r.stderr)
	}
	if out := ok(t, "consume", topic, "--exit-at-end").stdout; out != "hello\n" {
		t.Errorf("consumed %q, want the produced record", out)
	}

	viaFlag := topicName(t, "flag")
	ok(t, "topic", "create", "--topic", viaFlag, "--partitions", "2")
	if out := ok(t, "--output", "json", "topic", "describe", viaFlag).stdout; !strings.Contains(out, viaFlag) {
		t.Errorf("topic created with --topic not described: %s", out)
	}
	fails(t, shoal(t, "topic", "create", "a", "--topic", "b"), "not both")

	r = shoal(t, "bogus")
	fails(t, r, `unknown command "bogus"`)
	if r.code != exitUsage {
		t.Errorf("shoal bogus: exit %d, want %d", r.code, exitUsage)
	}
}

// TestProduceTooLargeNamesLimit: a record over the topic's limit fails
// with the limit and the config that sets it.
func TestProduceTooLargeNamesLimit(t *testing.T) {
	topic := topicName(t, "big")
	createTopic(t, topic, 1, "max.message.bytes=2000")
	r := shoalIn(t, strings.Repeat("x", 5000)+"\n", "--bootstrap-server", brokerAddr, "produce", topic)
	if r.code == 0 {
		t.Fatalf("a 5000-byte record to a topic with max.message.bytes=2000 succeeded")
	}
	for _, want := range []string{"MESSAGE_TOO_LARGE", "max.message.bytes", "2000"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error does not name %s:\n%s", want, r.stderr)
		}
	}
}

// TestConsumeInterruptReportsCount: a consume that follows the topic says,
// on Ctrl-C, how many records it printed.
func TestConsumeInterruptReportsCount(t *testing.T) {
	topic := topicName(t, "t")
	createTopic(t, topic, 1)
	if r := shoalIn(t, "a\nb\n", "--bootstrap-server", brokerAddr, "produce", topic); r.code != 0 {
		t.Fatalf("produce: %s", r.stderr)
	}
	consume := startShoal(t, "consume", topic)
	deadline := time.Now().Add(cmdTimeout)
	for consume.stdout.String() != "a\nb\n" {
		if time.Now().After(deadline) {
			t.Fatalf("consume printed %q within %v, want both records", consume.stdout.String(), cmdTimeout)
		}
		select {
		case err := <-consume.exited:
			t.Fatalf("consume exited on its own: %v: %s", err, consume.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	consume.interrupt(t)
	if !strings.Contains(consume.stderr.String(), "consumed 2 records") {
		t.Errorf("stderr after Ctrl-C: %q, want the count of records read", consume.stderr.String())
	}
}

// TestBenchDeletesItsTopic: a bench run leaves no shoal-bench* topic
// behind unless --keep-topic, which a later bench consume reads and then
// deletes.
func TestBenchDeletesItsTopic(t *testing.T) {
	topic := "shoal-bench-" + topicName(t, "")
	exists := func() bool {
		return strings.Contains(ok(t, "topic", "list").stdout, topic)
	}
	ok(t, "bench", "produce", "--topic", topic, "--records", "100", "--partitions", "1")
	if exists() {
		t.Fatalf("bench produce left %s behind", topic)
	}
	ok(t, "bench", "produce", "--topic", topic, "--records", "100", "--partitions", "1", "--keep-topic")
	if !exists() {
		t.Fatalf("bench produce --keep-topic did not keep %s", topic)
	}
	ok(t, "bench", "consume", "--topic", topic, "--records", "100")
	if exists() {
		t.Fatalf("bench consume left %s behind", topic)
	}
}
