package integration

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerConfig describes one key of a BROKER resource (a broker id, or nil
// for the cluster default).
func brokerConfig(t *testing.T, adm *kadm.Client, key string, broker ...int32) (kadm.Config, bool) {
	t.Helper()
	rs, err := adm.DescribeBrokerConfigs(ctxT(t, opTimeout), broker...)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("describe broker configs %v: %v %+v", broker, err, rs)
	}
	for _, c := range rs[0].Configs {
		if c.Key == key {
			return c, true
		}
	}
	return kadm.Config{}, false
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) kadm.Config {
	t.Helper()
	rs, err := adm.DescribeTopicConfigs(ctxT(t, opTimeout), topic)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("describe topic configs: %v %+v", err, rs)
	}
	for _, c := range rs[0].Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("topic has no %s", key)
	return kadm.Config{}
}

// A cluster-wide dynamic log.retention.ms applies without a restart: the
// retention pass deletes the records of a topic that has no retention.ms
// of its own, as ListOffsets' log start offset shows. A per-broker value
// beats the cluster default; both survive a restart.
func TestDynamicBrokerRetention(t *testing.T) {
	n, adm, topic, _ := startNodeWithTopic(t, nodeOpts{set: []string{"log.retention.check.interval.ms=200"}}, 1)
	cl := n.Client(t, kgo.DefaultProduceTopic(topic))
	const records = 20
	for i := range records {
		if err := cl.ProduceSync(ctxT(t, opTimeout), kgo.StringRecord("r"+string(rune('a'+i)))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if c := topicConfig(t, adm, topic, "retention.ms"); c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms before = %s (source %v)", c.MaybeValue(), c.Source)
	}

	set := func(key, value string, broker ...int32) error {
		rs, err := adm.AlterBrokerConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, broker...)
		if err != nil {
			return err
		}
		return rs[0].Err
	}
	if err := set("log.retention.ms", "1000"); err != nil {
		t.Fatalf("set cluster default log.retention.ms: %v", err)
	}
	waitFor(t, 20*time.Second, "records deleted by retention", func() (bool, string) {
		offs, err := adm.ListStartOffsets(ctxT(t, opTimeout), topic)
		if err != nil {
			return false, err.Error()
		}
		o, _ := offs.Lookup(topic, 0)
		return o.Offset == records, "log start offset " + strconv.FormatInt(o.Offset, 10)
	})
	if c := topicConfig(t, adm, topic, "retention.ms"); c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("topic retention.ms = %s (source %v), want the cluster default", c.MaybeValue(), c.Source)
	}
	if c, ok := brokerConfig(t, adm, "log.retention.ms"); !ok || c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("cluster default resource: %+v %v", c, ok)
	}

	// Per broker beats the cluster default.
	if err := set("log.retention.ms", "86400000", 1); err != nil {
		t.Fatalf("set broker 1 log.retention.ms: %v", err)
	}
	waitFor(t, 10*time.Second, "per-broker value described", func() (bool, string) {
		c, _ := brokerConfig(t, adm, "log.retention.ms", 1)
		return c.MaybeValue() == "86400000" && c.Source == kmsg.ConfigSourceDynamicBrokerConfig, fmt.Sprintf("%+v", c)
	})

	// A key that cannot change at runtime is refused as Kafka refuses it.
	err := set("node.id", "7")
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("set node.id: %v, want INVALID_REQUEST", err)
	}
	rs, _ := adm.AlterBrokerConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "node.id", Value: strp("7")}})
	if len(rs) != 1 || !strings.Contains(rs[0].ErrMessage, "Cannot update these configs dynamically") {
		t.Fatalf("node.id refusal message: %+v", rs)
	}

	n.Stop()
	n.Restart()
	adm = n.Admin(t)
	if c, _ := brokerConfig(t, adm, "log.retention.ms", 1); c.MaybeValue() != "86400000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("after restart: %+v", c)
	}
}

// In a cluster, client quotas and broker configs altered through any node
// reach the active controller and then every node's image: each describes
// them, a per-broker config only on its own broker.
func TestClusterQuotasAndBrokerConfigs(t *testing.T) {
	c := startCluster(t, 3)
	via := adminOn(t, c.node(2))
	client := "cluster-client"
	res, err := via.AlterClientQuotas(ctxT(t, opTimeout), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &client}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 4096}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter quotas via node 2: %v %+v", err, res)
	}
	cluster, own := "3600000", "7200000"
	for _, a := range []struct {
		value   *string
		brokers []int32
	}{{&cluster, nil}, {&own, []int32{3}}} {
		rs, err := via.AlterBrokerConfigs(ctxT(t, opTimeout), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.cleaner.delete.retention.ms", Value: a.value}}, a.brokers...)
		if err != nil || rs[0].Err != nil {
			t.Fatalf("alter broker configs %v via node 2: %v %+v", a.brokers, err, rs)
		}
	}
	for _, n := range c.nodes {
		adm := adminOn(t, n)
		id := n.id()
		want, src := cluster, kmsg.ConfigSourceDynamicDefaultBrokerConfig
		if id == 3 {
			want, src = own, kmsg.ConfigSourceDynamicBrokerConfig
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d describes the quota and its config", id), func() (bool, string) {
			d, err := adm.DescribeClientQuotas(ctxT(t, opTimeout), false, nil)
			if err != nil || len(d) != 1 {
				return false, fmt.Sprintf("quotas %v %v", d, err)
			}
			cfg, _ := brokerConfig(t, adm, "log.cleaner.delete.retention.ms", id)
			return cfg.MaybeValue() == want && cfg.Source == src, fmt.Sprintf("%s %v", cfg.MaybeValue(), cfg.Source)
		})
	}
}
