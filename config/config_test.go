package config

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.properties")
	props := "# comment\nnum.partitions=2\nlog.dirs=/a,/b\nauto.create.topics.enable = false\n"
	if err := os.WriteFile(file, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, []string{"SHOAL_NUM_PARTITIONS=3", "SHOAL_DEFAULT_REPLICATION_FACTOR=1", "PATH=/bin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumPartitions != 3 {
		t.Errorf("env should beat the file: num.partitions = %d, want 3", cfg.NumPartitions)
	}
	if strings.Join(cfg.LogDirs, ",") != "/a,/b" || cfg.AutoCreateTopics {
		t.Errorf("file values not applied: %v %v", cfg.LogDirs, cfg.AutoCreateTopics)
	}
	cfg, err = Load(file, []string{"SHOAL_NUM_PARTITIONS=3"}, []string{"num.partitions=7"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumPartitions != 7 {
		t.Errorf("--set should beat env: num.partitions = %d, want 7", cfg.NumPartitions)
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		env, set []string
		want     string
	}{
		{set: []string{"bogus.key=1"}, want: `"bogus.key"`},
		{set: []string{"num.partitions=abc"}, want: "num.partitions"},
		{set: []string{"num.partitions=0"}, want: "num.partitions"},
		{set: []string{"auto.create.topics.enable=yes"}, want: "auto.create.topics.enable"},
		{set: []string{"listeners=PLAINTEXT://127.0.0.1"}, want: "listeners"},
		{set: []string{"listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}, want: "ssl.keystore.location"},
		{set: []string{"listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "ssl.keystore.location=/x.jks"}, want: "ssl.keystore.type"},
		{set: []string{"node.id=2"}, want: "controller.quorum.voters"},
		{set: []string{"noequals"}, want: "key=value"},
		{set: []string{"listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093"}, want: "advertised.listeners"},
		{set: []string{"listeners=PLAINTEXT://[::]:9092,CONTROLLER://127.0.0.1:9093"}, want: "advertised.listeners"},
		{set: []string{"advertised.listeners=PLAINTEXT://0.0.0.0:9092"}, want: "advertised.listeners"},
		{set: []string{"max.connections.per.ip.overrides=10.0.0.1"}, want: "max.connections.per.ip.overrides"},
		{set: []string{"max.connections.per.ip.overrides=10.0.0.1:-2"}, want: "max.connections.per.ip.overrides"},
		{set: []string{"max.connections.per.ip=0"}, want: "max.connections.per.ip"},
		{set: []string{"queued.max.request.bytes=0"}, want: "queued.max.request.bytes"},
		{set: []string{"connections.max.idle.ms=0"}, want: "connections.max.idle.ms"},
		{env: []string{"SHOAL_NOT_A_KEY=1"}, want: "SHOAL_NOT_A_KEY"},
	} {
		_, err := Load("", tc.env, tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v set %v: error %v, want one naming %s", tc.env, tc.set, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error should be one line: %q", err)
		}
	}
}

func TestDefaultsAreASingleNodeCluster(t *testing.T) {
	cfg, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bind, adv := cfg.ClientListeners()
	if len(bind) != 1 || bind[0].Addr() != "127.0.0.1:9092" || adv[0].Name != "PLAINTEXT" {
		t.Errorf("client listeners = %+v", bind)
	}
	if cfg.NodeID != 1 || !cfg.HasRole("broker") || !cfg.HasRole("controller") || cfg.Voters[1] != "127.0.0.1:9093" {
		t.Errorf("roles/voters: %+v", cfg)
	}
	if cfg.LogDirs[0] != "./shoal-data" {
		t.Errorf("log.dirs = %v", cfg.LogDirs)
	}
}

// A listener bound to every interface is advertised only with an explicit
// routable address; an empty host advertises the machine's hostname, as
// Kafka does.
func TestWildcardListenerAdvertisement(t *testing.T) {
	cfg, err := Load("", nil, []string{"listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093", "advertised.listeners=PLAINTEXT://broker1.example.com:9092"})
	if err != nil {
		t.Fatal(err)
	}
	bind, adv := cfg.ClientListeners()
	if bind[0].Host != "0.0.0.0" || adv[0].Host != "broker1.example.com" {
		t.Errorf("bind %+v advertised %+v", bind, adv)
	}
	cfg, err = Load("", nil, []string{"listeners=PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093"})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if _, adv := cfg.ClientListeners(); adv[0].Host != host || host == "" {
		t.Errorf("advertised %+v, want the hostname %q", adv, host)
	}
}

func TestConnectionLimitKeys(t *testing.T) {
	cfg, err := Load("", nil, []string{"max.connections.per.ip=0", "max.connections.per.ip.overrides=127.0.0.1:3, [::1]:4,monitor.example.com:0", "connections.max.idle.ms=-1", "queued.max.request.bytes=-1"})
	if err != nil {
		t.Fatal(err)
	}
	lim := cfg.ConnectionLimits()
	ov, err := ParseConnectionOverrides(lim.Overrides)
	want := map[string]int{"127.0.0.1": 3, "::1": 4, "monitor.example.com": 0}
	if err != nil || !maps.Equal(ov, want) || lim.PerIP != 0 {
		t.Errorf("overrides %v (%v) per IP %d, want %v", ov, err, lim.PerIP, want)
	}
	if cfg.ConnectionsMaxIdle != 0 || cfg.QueuedMaxRequestBytes != -1 || lim.Max != math.MaxInt32 {
		t.Errorf("idle %v queued %d max %d", cfg.ConnectionsMaxIdle, cfg.QueuedMaxRequestBytes, lim.Max)
	}
}

func TestTopicDefaultsFollowBrokerKeys(t *testing.T) {
	cfg, err := Load("", nil, []string{"log.retention.hours=1", "log.segment.bytes=1048576"})
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.EffectiveTopicConfig(map[string]string{"retention.bytes": "100"})
	if got := tc["retention.ms"]; got.Value != "3600000" || got.Source != SourceStaticBroker {
		t.Errorf("retention.ms = %+v", got)
	}
	if got := tc["retention.bytes"]; got.Value != "100" || got.Source != SourceDynamicTopic {
		t.Errorf("retention.bytes = %+v", got)
	}
	if got := tc["cleanup.policy"]; got.Value != "delete" || got.Source != SourceDefault {
		t.Errorf("cleanup.policy = %+v", got)
	}
	def, _ := Load("", nil, nil)
	if got := def.EffectiveTopicConfig(nil)["retention.ms"].Value; got != "604800000" {
		t.Errorf("default retention.ms = %s, want Kafka's 604800000", got)
	}
	if err := ValidateTopicConfig("retention.ms", strPtr("abc")); err == nil {
		t.Error("retention.ms=abc accepted")
	}
	if err := ValidateTopicConfig("no.such", strPtr("1")); err == nil {
		t.Error("unknown topic key accepted")
	}
}

func strPtr(s string) *string { return &s }

// TestDeliveryOrderingValidation checks share.delivery.ordering accepts only
// Kafka-style lowercase enum values and defaults to none.
func TestDeliveryOrderingValidation(t *testing.T) {
	for _, v := range []string{"none", "key"} {
		if err := testBroker(t).ValidateGroupConfig("share.delivery.ordering", &v); err != nil {
			t.Errorf("%q rejected: %v", v, err)
		}
	}
	for _, v := range []string{"", "KEY", "keys", "partition"} {
		if err := testBroker(t).ValidateGroupConfig("share.delivery.ordering", &v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	if d := GroupDef("share.delivery.ordering"); d == nil || d.Default != "none" {
		t.Fatalf("default: %+v", d)
	}
}

// testBroker is a broker configuration with the given --set overrides.
func testBroker(t *testing.T, set ...string) *Broker {
	t.Helper()
	b, err := Load("", nil, set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShareGroupLimits checks the KIP-1240 group configs against the
// broker's group.share.min/max limits, and that contradictory broker
// limits stop start-up.
func TestShareGroupLimits(t *testing.T) {
	b := testBroker(t, "group.share.max.delivery.count.limit=6", "group.share.min.partition.max.record.locks=200")
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"share.delivery.count.limit", "2", true},
		{"share.delivery.count.limit", "6", true},
		{"share.delivery.count.limit", "7", false},
		{"share.delivery.count.limit", "1", false},
		{"share.partition.max.record.locks", "200", true},
		{"share.partition.max.record.locks", "199", false},
		{"share.partition.max.record.locks", "4000", true},
		{"share.partition.max.record.locks", "4001", false},
		{"share.renew.acknowledge.enable", "false", true},
		{"share.renew.acknowledge.enable", "maybe", false},
		{"share.acquire.mode", "record_limit", true},
		{"share.acquire.mode", "strict", false},
		{"errors.deadletterqueue.copy.record.enable", "true", true},
		{"share.record.lock.duration.ms", "15000", true},
		{"share.record.lock.duration.ms", "14999", false},
		{"share.record.lock.duration.ms", "60001", false},
	} {
		err := b.ValidateGroupConfig(tc.name, &tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%s: err %v, want ok=%t", tc.name, tc.value, err, tc.ok)
		}
	}
	if v := "7"; b.ValidateGroupConfig("share.delivery.count.limit", &v) == nil ||
		!strings.Contains(b.ValidateGroupConfig("share.delivery.count.limit", &v).Error(), "group.share.max.delivery.count.limit") {
		t.Errorf("out-of-bounds error does not name the broker limit")
	}
	if e := testBroker(t).EffectiveGroupConfig(nil); e.String("share.renew.acknowledge.enable") != "true" ||
		e.String("share.acquire.mode") != "batch_optimized" || e.Int64("share.partition.max.record.locks") != 2000 ||
		e.String("errors.deadletterqueue.copy.record.enable") != "false" {
		t.Errorf("defaults: %+v", e)
	}
	for _, set := range [][]string{
		{"group.share.max.delivery.count.limit=5", "group.share.delivery.count.limit=6"},
		{"group.share.min.delivery.count.limit=5", "group.share.delivery.count.limit=4"},
		{"group.share.max.partition.max.record.locks=2000", "group.share.partition.max.record.locks=3000"},
		{"group.share.record.lock.duration.ms=10000"},
	} {
		if _, err := Load("", nil, set); err == nil {
			t.Errorf("%v accepted", set)
		}
	}
}

// TestShareAutoOffsetReset checks share.auto.offset.reset against Kafka's
// rules: latest, earliest, or by_duration with a non-negative ISO-8601
// duration of days, hours, minutes and seconds.
func TestShareAutoOffsetReset(t *testing.T) {
	for in, want := range map[string]string{
		"latest":                        "latest 0s",
		"earliest":                      "earliest 0s",
		"LATEST":                        "latest 0s",
		"by_duration:PT1H":              "by_duration 1h0m0s",
		"by_duration:P1D":               "by_duration 24h0m0s",
		"by_duration:PT30M":             "by_duration 30m0s",
		"by_duration:P1DT2H3M4.5S":      "by_duration 26h3m4.5s",
		"by_duration:pt15s":             "by_duration 15s",
		"by_duration:PT0S":              "by_duration 0s",
		"by_duration:-PT1H":             "error",
		"by_duration:PT-1H":             "error",
		"by_duration:P":                 "error",
		"by_duration:PT":                "error",
		"by_duration:PT1":               "error",
		"by_duration:1H":                "error",
		"by_duration:P1H":               "error",
		"by_duration:PT1S2M":            "error",
		"by_duration:P1W":               "error",
		"by_duration:":                  "error",
		"by_duration:PT99999999999999H": "error",
		"none":                          "error",
		"by_duration":                   "error",
	} {
		kind, d, err := ParseShareAutoOffsetReset(in)
		got := fmt.Sprintf("%s %s", kind, d)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
		if verr := testBroker(t).ValidateGroupConfig("share.auto.offset.reset", &in); (verr == nil) != (want != "error") {
			t.Errorf("%q: validation %v", in, verr)
		}
	}
}

// A refused topic config is worded as Kafka's brokers word it, which is
// what an admin client shows its operator.
func TestValidateTopicConfigMessages(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"},
		{"min.insync.replicas", "x", "Invalid value x for configuration min.insync.replicas: Not a number of type INT"},
		{"min.insync.replicas", "0", "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"},
		{"unclean.leader.election.enable", "yes", "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"},
		{"min.cleanable.dirty.ratio", "2", "Invalid value 2 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"},
		{"min.cleanable.dirty.ratio", "x", "Invalid value x for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE"},
		{"cleanup.policy", "delete,squash", "Invalid value delete,squash for configuration cleanup.policy: String must be one of: delete, compact"},
		{"no.such.key", "1", "Unknown topic config name: no.such.key"},
	} {
		err := ValidateTopicConfig(c.key, &c.value)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s=%s: %v, want %q", c.key, c.value, err, c.want)
		}
	}
}
