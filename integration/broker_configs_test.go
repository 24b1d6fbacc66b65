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
	n := startNode(t, nodeOpts{set: []string{"log.retention.check.interval.ms=200"}})
	adm := n.Admin(t)
	topic := topicName(t, "")
	createTopic(t, adm, topic, 1, nil)
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
