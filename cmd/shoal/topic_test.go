package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestClusterDescribe(t *testing.T) {
	r := ok(t, "cluster", "describe")
	for _, want := range []string{"Cluster ID:", "Controller ID: 1", "BROKER", brokerAddr} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster describe output lacks %q:\n%s", want, r.stdout)
		}
	}

	// --output after the command works as well as before it.
	for _, args := range [][]string{
		{"--output", "json", "cluster", "describe"},
		{"cluster", "describe", "--output", "json"},
	} {
		r = ok(t, args...)
		var info struct {
			ClusterID    string `json:"cluster_id"`
			ControllerID int32  `json:"controller_id"`
			Brokers      []struct {
				ID   int32  `json:"id"`
				Host string `json:"host"`
				Port int32  `json:"port"`
			} `json:"brokers"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, r.stdout)
		}
		if info.ClusterID == "" || info.ControllerID != 1 || len(info.Brokers) != 1 || info.Brokers[0].ID != 1 {
			t.Fatalf("%v: unexpected cluster %+v", args, info)
		}
		if got := info.Brokers[0].Host + ":" + itoa(int64(info.Brokers[0].Port)); got != brokerAddr {
			t.Fatalf("broker address %s, want %s", got, brokerAddr)
		}
	}
}

func TestTopicLifecycle(t *testing.T) {
	ctx := testCtx(t)
	name := topicName(t, "orders")

	r := ok(t, "topic", "create", name, "--partitions", "3", "--config", "retention.ms=86400000", "--config", "max.message.bytes=2000000")
	if !strings.Contains(r.stdout, "created topic") {
		t.Fatalf("create output: %s", r.stdout)
	}
	// A new client per check: kadm answers from a client's metadata cache.
	_, adm := testAdmin(t)
	tds, err := adm.ListTopics(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if td := tds[name]; td.Err != nil || len(td.Partitions) != 3 {
		t.Fatalf("kadm sees %+v, want 3 partitions", td)
	}
	wantConfig(t, name, "retention.ms", "86400000")
	wantConfig(t, name, "max.message.bytes", "2000000")

	fails(t, shoal(t, "topic", "create", name), "TOPIC_ALREADY_EXISTS")
	if r := ok(t, "topic", "create", name, "--if-not-exists"); !strings.Contains(r.stdout, "already exists") {
		t.Fatalf("--if-not-exists output: %s", r.stdout)
	}

	// list: table and JSON.
	r = ok(t, "topic", "list")
	if !containsLineWith(r.stdout, name, "3", "1") {
		t.Fatalf("topic list lacks %s with 3 partitions, RF 1:\n%s", name, r.stdout)
	}
	if s := okJSONListed(t, func(s topicSummary) bool { return s.Name == name }, "--output", "json", "topic", "list"); s.Partitions != 3 || s.ReplicationFactor != 1 || s.Internal || s.ID == "" {
		t.Fatalf("listed %+v", s)
	}

	// alter: set one, change one, remove one.
	ok(t, "topic", "alter", name, "--set", "retention.ms=3600000", "--set", "cleanup.policy=compact")
	wantConfig(t, name, "retention.ms", "3600000")
	wantConfig(t, name, "cleanup.policy", "compact")
	ok(t, "topic", "alter", name, "--delete", "cleanup.policy", "--delete", "max.message.bytes")
	wantDefault(t, name, "cleanup.policy")
	wantDefault(t, name, "max.message.bytes")
	fails(t, shoal(t, "topic", "alter", name, "--set", "no.such.config=1"), "INVALID_CONFIG")
	fails(t, shoal(t, "topic", "alter", name), "nothing to change")

	// add-partitions.
	ok(t, "topic", "add-partitions", name, "--total", "5")
	_, adm = testAdmin(t)
	tds, err = adm.ListTopics(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tds[name].Partitions); n != 5 {
		t.Fatalf("after add-partitions kadm sees %d partitions, want 5", n)
	}
	fails(t, shoal(t, "topic", "add-partitions", name, "--total", "4"), "already has 5 partitions")

	// describe: JSON with partitions and only the overrides.
	d := okJSON[topicDescription](t, "--output", "json", "topic", "describe", name)
	if d.Name != name || len(d.Partitions) != 5 || d.ReplicationFactor != 1 {
		t.Fatalf("described %+v", d)
	}
	for i, p := range d.Partitions {
		if p.Partition != int32(i) || p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.HighWatermark != 0 || p.LogStartOffset != 0 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	if len(d.Configs) != 1 || d.Configs[0].Name != "retention.ms" || *d.Configs[0].Value != "3600000" || d.Configs[0].Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("configs %+v, want only retention.ms=3600000", d.Configs)
	}
	d = okJSON[topicDescription](t, "--output", "json", "topic", "describe", name, "--all-configs")
	if len(d.Configs) < 5 {
		t.Fatalf("--all-configs lists %d configs", len(d.Configs))
	}
	r = ok(t, "topic", "describe", name)
	for _, want := range []string{"Topic: " + name, "Partitions: 5", "HIGH-WATERMARK", "retention.ms", "3600000"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}

	// delete.
	ok(t, "topic", "delete", name)
	_, adm = testAdmin(t)
	tds, err = adm.ListTopics(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if td := tds[name]; !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("after delete kadm sees %+v", td)
	}
	fails(t, shoal(t, "topic", "delete", name), "does not exist")
	ok(t, "topic", "delete", name, "--if-exists")
	fails(t, shoal(t, "topic", "describe", name), "does not exist")
}

func TestTopicListInternal(t *testing.T) {
	// Without internal topics on the broker yet, --internal must at least
	// be accepted and list the ordinary topics too.
	name := topicName(t, "plain")
	createTopic(t, name, 1)
	r := ok(t, "topic", "list", "--internal")
	if !strings.Contains(r.stdout, name) {
		t.Fatalf("topic list --internal lacks %s:\n%s", name, r.stdout)
	}
}

func wantConfig(t *testing.T, topic, key, value string) {
	t.Helper()
	c := describeConfig(t, topic, key)
	if c.Value == nil || *c.Value != value || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("%s %s = %v (source %v), want %q set on the topic", topic, key, c.MaybeValue(), c.Source, value)
	}
}

func wantDefault(t *testing.T, topic, key string) {
	t.Helper()
	if c := describeConfig(t, topic, key); c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("%s %s still set on the topic (%s)", topic, key, c.MaybeValue())
	}
}

func describeConfig(t *testing.T, topic, key string) kadmConfig {
	t.Helper()
	_, adm := testAdmin(t)
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v %v", err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("%s has no config %s", topic, key)
	return kadmConfig{}
}

// containsLineWith reports whether some line holds all the fields.
func containsLineWith(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		got := strings.Fields(line)
		all := true
		for i, f := range fields {
			if i >= len(got) || got[i] != f {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
