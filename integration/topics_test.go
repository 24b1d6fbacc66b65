package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const dynamicTopicConfig = kmsg.ConfigSource(1) // DYNAMIC_TOPIC_CONFIG

// topicConfigs describes one topic's configs by key.
func topicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

// configsAfter fails the test unless resp and err, the answer to an alter
// of topic's configs, say it was done, and returns the topic's configs.
func configsAfter(t *testing.T, adm *kadm.Client, topic, what string, resp kadm.AlterConfigsResponses, err error) map[string]kadm.Config {
	t.Helper()
	if err != nil || len(resp) != 1 || resp[0].Err != nil {
		t.Fatalf("%s: %v %+v", what, err, resp)
	}
	return topicConfigs(t, adm, topic)
}

// expectConfig checks a config's value and whether it is set on the topic.
func expectConfig(t *testing.T, cfgs map[string]kadm.Config, key, value string, dynamic bool) {
	t.Helper()
	c, ok := cfgs[key]
	if !ok {
		t.Errorf("config %s not described", key)
		return
	}
	if c.MaybeValue() != value {
		t.Errorf("config %s = %q, want %q", key, c.MaybeValue(), value)
	}
	if (c.Source == dynamicTopicConfig) != dynamic {
		t.Errorf("config %s has source %v; set on the topic: %v, want %v", key, c.Source, c.Source == dynamicTopicConfig, dynamic)
	}
}

// partitionCount waits until metadata shows topic with want partitions.
func waitPartitionCount(t *testing.T, adm *kadm.Client, topic string, want int) {
	t.Helper()
	waitFor(t, opTimeout, fmt.Sprintf("%s to have %d partitions", topic, want), func() (bool, string) {
		tds, err := adm.ListTopics(ctxT(t, opTimeout), topic)
		if err != nil {
			return false, err.Error()
		}
		td := tds[topic]
		if td.Err != nil {
			return false, td.Err.Error()
		}
		return len(td.Partitions) == want, fmt.Sprintf("%d partitions", len(td.Partitions))
	})
}

// waitTopicGone waits until metadata no longer knows topic.
func waitTopicGone(t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	waitFor(t, opTimeout, topic+" to disappear", func() (bool, string) {
		tds, err := adm.ListTopics(ctxT(t, opTimeout))
		if err != nil {
			return false, err.Error()
		}
		return !tds.Has(topic), "still listed"
	})
}

func TestTopicAdmin(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{set: []string{"auto.create.topics.enable=false"}})
	adm := n.Admin(t)
	ctx := ctxT(t, 2*time.Minute)

	t.Run("ValidateOnly", func(t *testing.T) {
		topic := topicName(t, "")
		resp, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, topic)
		if err != nil {
			t.Fatalf("validate create: %v", err)
		}
		if r := resp[topic]; r.Err != nil {
			t.Fatalf("validate create: %v (%s)", r.Err, r.ErrMessage)
		}
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		if tds.Has(topic) {
			t.Fatalf("validate-only CreateTopics created %s", topic)
		}
		if resp, err := adm.ValidateCreateTopics(ctx, 0, 1, nil, topic); err == nil && !errors.Is(resp[topic].Err, kerr.InvalidPartitions) {
			t.Errorf("validate create with 0 partitions: %v, want INVALID_PARTITIONS", resp[topic].Err)
		}
	})

	topic := topicName(t, "configs")
	created := createTopic(t, adm, topic, 2, nil)
	if created.ID == (kadm.TopicID{}) {
		t.Errorf("CreateTopics returned no topic id")
	}

	t.Run("DescribeDefaults", func(t *testing.T) {
		cfgs := topicConfigs(t, adm, topic)
		expectConfig(t, cfgs, "retention.ms", "604800000", false)
		expectConfig(t, cfgs, "retention.bytes", "-1", false)
		expectConfig(t, cfgs, "cleanup.policy", "delete", false)
		expectConfig(t, cfgs, "segment.bytes", "1073741824", false)
		expectConfig(t, cfgs, "max.message.bytes", "1048588", false)
		expectConfig(t, cfgs, "message.timestamp.type", "CreateTime", false)
	})

	t.Run("IncrementalAlter", func(t *testing.T) {
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("3600000")},
			{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("1048576")},
		}, topic)
		cfgs := configsAfter(t, adm, topic, "incremental alter", resp, err)
		expectConfig(t, cfgs, "retention.ms", "3600000", true)
		expectConfig(t, cfgs, "segment.bytes", "1048576", true)

		resp, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
		cfgs = configsAfter(t, adm, topic, "incremental delete", resp, err)
		expectConfig(t, cfgs, "retention.ms", "604800000", false)
		expectConfig(t, cfgs, "segment.bytes", "1048576", true)

		for _, bad := range []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")},
			{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("a week")},
		} {
			resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad}, topic)
			if err != nil {
				t.Fatalf("incremental alter %s: %v", bad.Name, err)
			}
			if len(resp) != 1 || !errors.Is(resp[0].Err, kerr.InvalidConfig) {
				t.Errorf("incremental alter %s=%s: %+v, want INVALID_CONFIG", bad.Name, *bad.Value, resp)
			}
		}
		expectConfig(t, topicConfigs(t, adm, topic), "retention.ms", "604800000", false)
	})

	t.Run("AlterReplace", func(t *testing.T) {
		// AlterConfigs replaces the topic's whole set: segment.bytes,
		// set above, is dropped.
		resp, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
			{Name: "cleanup.policy", Value: strp("delete")},
			{Name: "retention.bytes", Value: strp("1000000")},
		}, topic)
		cfgs := configsAfter(t, adm, topic, "alter configs", resp, err)
		expectConfig(t, cfgs, "cleanup.policy", "delete", true)
		expectConfig(t, cfgs, "retention.bytes", "1000000", true)
		expectConfig(t, cfgs, "segment.bytes", "1073741824", false)
		expectConfig(t, cfgs, "retention.ms", "604800000", false)
	})

	t.Run("CreatePartitions", func(t *testing.T) {
		resp, err := adm.UpdatePartitions(ctx, 4, topic)
		if err != nil {
			t.Fatalf("create partitions: %v", err)
		}
		if r := resp[topic]; r.Err != nil {
			t.Fatalf("create partitions to 4: %v (%s)", r.Err, r.ErrMessage)
		}
		waitPartitionCount(t, adm, topic, 4)
		for _, set := range []int{2, 4} {
			resp, err := adm.UpdatePartitions(ctx, set, topic)
			if err != nil {
				t.Fatalf("create partitions: %v", err)
			}
			if r := resp[topic]; !errors.Is(r.Err, kerr.InvalidPartitions) {
				t.Errorf("setting 4 partitions to %d: %v, want INVALID_PARTITIONS", set, r.Err)
			}
		}
		if resp, err := adm.CreatePartitions(ctx, 1, topic); err != nil || resp[topic].Err != nil {
			t.Fatalf("add one partition: %v %v", err, resp[topic].Err)
		}
		waitPartitionCount(t, adm, topic, 5)
	})

	t.Run("DescribeLogDirs", func(t *testing.T) {
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		parts := len(tds[topic].Partitions)
		producer := n.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var rs []*kgo.Record
		for p := 0; p < parts; p++ {
			for i := 0; i < 10; i++ {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
			}
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		waitFor(t, opTimeout, "every partition in DescribeLogDirs with data", func() (bool, string) {
			dirs, err := adm.DescribeAllLogDirs(ctx, nil)
			if err != nil {
				return false, err.Error()
			}
			sizes := map[int32]int64{}
			dirs.Each(func(d kadm.DescribedLogDir) {
				for p, dp := range d.Topics[topic] {
					sizes[p] += dp.Size
				}
			})
			for p := int32(0); p < int32(parts); p++ {
				if sizes[p] <= 0 {
					return false, fmt.Sprintf("partition sizes %v", sizes)
				}
			}
			return true, ""
		})
	})

	t.Run("DeleteAndRecreate", func(t *testing.T) {
		byName := topicName(t, "by-name")
		byID := topicName(t, "by-id")
		createTopic(t, adm, byName, 1, nil)
		oldID := createTopic(t, adm, byID, 2, nil).ID
		producer := n.Client(t)
		for _, tp := range []string{byName, byID} {
			var rs []*kgo.Record
			for i := 0; i < 10; i++ {
				rs = append(rs, &kgo.Record{Topic: tp, Value: []byte("old")})
			}
			if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", tp, err)
			}
		}

		resp, err := adm.DeleteTopics(ctx, byName)
		if err != nil {
			t.Fatalf("delete %s: %v", byName, err)
		}
		if r := resp[byName]; r.Err != nil {
			t.Fatalf("delete %s: %v (%s)", byName, r.Err, r.ErrMessage)
		}
		waitTopicGone(t, adm, byName)

		rc := dialRaw(t, n.Addr())
		deleteByID := func(id [16]byte) kmsg.DeleteTopicsResponseTopic {
			t.Helper()
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.TopicID = id
			req.Topics = append(req.Topics, rt)
			resp := rc.request(req, 6).(*kmsg.DeleteTopicsResponse)
			if len(resp.Topics) != 1 {
				t.Fatalf("DeleteTopics v6: %d topics in response", len(resp.Topics))
			}
			return resp.Topics[0]
		}
		r := deleteByID(oldID)
		if r.ErrorCode != 0 {
			t.Fatalf("DeleteTopics v6 by id: error %d", r.ErrorCode)
		}
		if r.Topic == nil || *r.Topic != byID {
			t.Errorf("DeleteTopics v6 by id: response names %v, want %q", r.Topic, byID)
		}
		waitTopicGone(t, adm, byID)
		if r := deleteByID([16]byte{1, 2, 3}); r.ErrorCode != kerr.UnknownTopicID.Code {
			t.Errorf("DeleteTopics v6 with an unknown id: error %d, want %d (UNKNOWN_TOPIC_ID)", r.ErrorCode, kerr.UnknownTopicID.Code)
		}

		// The same name again is a new topic: new id, no old records.
		var recreated kadm.CreateTopicResponse
		waitFor(t, opTimeout, "recreating "+byID, func() (bool, string) {
			resp, err := adm.CreateTopic(ctx, 2, 1, nil, byID)
			if err != nil {
				return false, err.Error()
			}
			if resp.Err != nil {
				if errors.Is(resp.Err, kerr.TopicAlreadyExists) {
					return false, resp.Err.Error()
				}
				t.Fatalf("recreate %s: %v (%s)", byID, resp.Err, resp.ErrMessage)
			}
			recreated = resp
			return true, ""
		})
		if recreated.ID == oldID {
			t.Errorf("recreated topic reuses the old id %v", oldID)
		}
		tds, err := adm.ListTopics(ctx, byID)
		if err != nil {
			t.Fatalf("list topics: %v", err)
		}
		if id := tds[byID].ID; id != recreated.ID {
			t.Errorf("metadata id %v, CreateTopics said %v", id, recreated.ID)
		}
		for _, list := range []func(context.Context, ...string) (kadm.ListedOffsets, error){adm.ListStartOffsets, adm.ListEndOffsets} {
			lo, err := list(ctx, byID)
			if err != nil {
				t.Fatalf("list offsets: %v", err)
			}
			lo.Each(func(o kadm.ListedOffset) {
				if o.Err != nil || o.Offset != 0 {
					t.Errorf("recreated %s/%d: offset %d (%v), want 0: old data survived", o.Topic, o.Partition, o.Offset, o.Err)
				}
			})
		}
		// A client that produced to the old topic refuses the new id
		// (by design), so a fresh client writes to the new topic.
		res := n.Client(t).ProduceSync(ctx, &kgo.Record{Topic: byID, Value: []byte("new")})
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce to recreated topic: %v", err)
		}
		if off := res[0].Record.Offset; off != 0 {
			t.Errorf("first record in the recreated topic at offset %d, want 0", off)
		}
	})
}
