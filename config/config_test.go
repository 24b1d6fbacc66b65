package config

import (
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
		{set: []string{"listeners=SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}, want: "listeners"},
		{set: []string{"node.id=2"}, want: "controller.quorum.voters"},
		{set: []string{"noequals"}, want: "key=value"},
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
