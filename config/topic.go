package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// TopicDefs are the per-topic keys. Each takes its default from the broker
// key named in BrokerKey, as in Kafka, so a broker-wide setting such as
// log.retention.hours changes every topic that does not override it.
var TopicDefs = []Def{
	{Name: "cleanup.policy", Type: List, BrokerKey: "log.cleanup.policy", Check: listOf("delete", "compact")},
	{Name: "retention.ms", Type: Long, BrokerKey: "log.retention.ms", Check: atLeast(-1)},
	{Name: "retention.bytes", Type: Long, BrokerKey: "log.retention.bytes", Check: atLeast(-1)},
	{Name: "segment.bytes", Type: Int, BrokerKey: "log.segment.bytes", Doc: "Defaults to the broker's `log.segment.bytes`; at least 1 MiB (1048576), Kafka 4's bound (KIP-1030).", Check: atLeast(MinSegmentBytes)},
	{Name: "internal.segment.bytes", Type: Int, Internal: true, Doc: "Kafka 4's internal key for tests: when set, the segment size, without segment.bytes' 1 MiB minimum. Not listed by DescribeConfigs.", Check: atLeast(legacyRecordOverhead)},
	{Name: "segment.ms", Type: Long, BrokerKey: "log.roll.ms", Check: atLeast(1)},
	{Name: "segment.index.bytes", Type: Int, BrokerKey: "log.index.size.max.bytes", Check: atLeast(4)},
	{Name: "index.interval.bytes", Type: Int, BrokerKey: "log.index.interval.bytes", Check: atLeast(0)},
	{Name: "flush.messages", Type: Long, BrokerKey: "log.flush.interval.messages", Check: atLeast(1)},
	{Name: "flush.ms", Type: Long, BrokerKey: "log.flush.interval.ms", Check: atLeast(0)},
	{Name: "max.message.bytes", Type: Int, BrokerKey: "message.max.bytes", Check: atLeast(0)},
	{Name: "message.timestamp.type", Type: String, BrokerKey: "log.message.timestamp.type", Check: oneOf("CreateTime", "LogAppendTime")},
	{Name: "message.timestamp.before.max.ms", Type: Long, BrokerKey: "log.message.timestamp.before.max.ms", Check: atLeast(0)},
	{Name: "message.timestamp.after.max.ms", Type: Long, BrokerKey: "log.message.timestamp.after.max.ms", Check: atLeast(0)},
	{Name: "min.insync.replicas", Type: Int, BrokerKey: "min.insync.replicas", Check: atLeast(1)},
	{Name: "delete.retention.ms", Type: Long, BrokerKey: "log.cleaner.delete.retention.ms", Check: atLeast(0)},
	{Name: "min.compaction.lag.ms", Type: Long, BrokerKey: "log.cleaner.min.compaction.lag.ms", Check: atLeast(0)},
	{Name: "max.compaction.lag.ms", Type: Long, BrokerKey: "log.cleaner.max.compaction.lag.ms", Check: atLeast(1)},
	{Name: "min.cleanable.dirty.ratio", Type: Double, BrokerKey: "log.cleaner.min.cleanable.ratio", Check: ratio},
	{Name: "compression.type", Type: String, BrokerKey: "compression.type", Check: oneOf("producer")},
	{Name: "unclean.leader.election.enable", Type: Boolean, BrokerKey: "unclean.leader.election.enable"},
	{Name: "leader.replication.throttled.replicas", Type: List, Default: "", Doc: "Replicas whose leader throttles what it sends them to its broker's leader.replication.throttled.rate, as partition:broker pairs naming the leader's broker (0:101,1:102), or * for every replica of the topic. Followers in the ISR are never throttled by it.", Check: throttledReplicas},
	{Name: "follower.replication.throttled.replicas", Type: List, Default: "", Doc: "Replicas that throttle their fetches to their broker's follower.replication.throttled.rate while not caught up, as partition:broker pairs (0:101,1:102), or * for every replica of the topic.", Check: throttledReplicas},
	{Name: "errors.deadletterqueue.group.enable", Type: Boolean, Default: "false", Doc: "Whether share groups may use this topic as their dead-letter topic (KIP-1191)."},
}

var topicIndex = index(TopicDefs)

// MinSegmentBytes is the smallest segment.bytes (and log.segment.bytes)
// Kafka 4 accepts (KIP-1030): smaller segments only multiply files and
// descriptors.
const MinSegmentBytes = 1 << 20

// legacyRecordOverhead is Kafka's lower bound for internal.segment.bytes,
// the overhead of a v0 record (LegacyRecord.RECORD_OVERHEAD_V0).
const legacyRecordOverhead = 14

func ratio(v string) error {
	switch f, _ := strconv.ParseFloat(v, 64); {
	case f < 0:
		return errors.New("Value must be at least 0")
	case f > 1:
		return errors.New("Value must be no more than 1")
	}
	return nil
}

// TopicDef returns the definition of a topic key, or nil.
func TopicDef(name string) *Def { return topicIndex[name] }

// ValidateTopicConfig checks one topic key and value. A nil value means "reset
// to default" and is valid for every known key.
func ValidateTopicConfig(name string, value *string) error {
	d := TopicDef(name)
	if d == nil {
		return fmt.Errorf("Unknown topic config name: %s", name)
	}
	if value == nil {
		return nil
	}
	return d.Validate(*value)
}

// Source tells where an effective value comes from, with Kafka's
// DescribeConfigs codes.
type Source int8

// Kafka's ConfigSource codes.
const (
	SourceDynamicTopic Source = 1
	SourceDynamicGroup Source = 8
	SourceStaticBroker Source = 4
	SourceDefault      Source = 5
)

// Entry is one effective config value.
type Entry struct {
	Name   string
	Value  string
	Source Source
	Type   Type
	Doc    string
}

// TopicDefault is the value a topic key takes when the topic does not
// override it, and whether a broker key set it.
func (b *Broker) TopicDefault(name string) (string, Source) {
	d := TopicDef(name)
	if d == nil {
		return "", SourceDefault
	}
	switch name {
	case "retention.ms":
		return b.retentionMs()
	case "segment.ms":
		if v, src, ok := b.explicit("log.roll.ms"); ok {
			return v, src
		}
		return b.scaled("log.roll.hours", 3600_000)
	case "flush.ms":
		if v, src, ok := b.explicit("log.flush.interval.ms"); ok {
			return v, src
		}
		return maxLong, SourceDefault
	}
	if d.BrokerKey == "" {
		return d.Default, SourceDefault
	}
	if v, src, ok := b.explicit(d.BrokerKey); ok {
		return v, src
	}
	return BrokerDef(d.BrokerKey).Default, SourceDefault
}

// retentionMs resolves retention.ms's default as Kafka does: the first of
// log.retention.ms, log.retention.minutes and log.retention.hours set
// anywhere (dynamically or statically), else log.retention.hours' default.
func (b *Broker) retentionMs() (string, Source) {
	if v, src, ok := b.explicit("log.retention.ms"); ok {
		return v, src
	}
	if _, _, ok := b.explicit("log.retention.minutes"); ok {
		return b.scaled("log.retention.minutes", 60_000)
	}
	return b.scaled("log.retention.hours", 3600_000)
}

// scaled is a time key in coarser units as milliseconds, -1 (forever)
// staying -1, with where it came from.
func (b *Broker) scaled(key string, unit int64) (string, Source) {
	v, src, ok := b.explicit(key)
	if !ok {
		v = BrokerDef(key).Default
	}
	if n := atoi(v); n >= 0 {
		return strconv.FormatInt(n*unit, 10), src
	}
	return "-1", src
}

func sourceOf(set bool) Source {
	if set {
		return SourceStaticBroker
	}
	return SourceDefault
}

func atoi(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// TopicConfig is the effective configuration of one topic: its overrides
// over the broker's defaults.
type TopicConfig map[string]Entry

// EffectiveTopicConfig resolves every topic key for a topic with the given
// overrides.
func (b *Broker) EffectiveTopicConfig(overrides map[string]string) TopicConfig {
	return effectiveConfig(TopicDefs, func(d *Def) (string, Source) {
		if v, ok := overrides[d.Name]; ok {
			return v, SourceDynamicTopic
		}
		return b.TopicDefault(d.Name)
	})
}

// effectiveConfig resolves every key of defs to an entry; value gives a
// key's value and where it comes from.
func effectiveConfig(defs []Def, value func(d *Def) (string, Source)) map[string]Entry {
	out := make(map[string]Entry, len(defs))
	for i := range defs {
		d := &defs[i]
		e := Entry{Name: d.Name, Type: d.Type, Doc: d.Doc}
		e.Value, e.Source = value(d)
		out[d.Name] = e
	}
	return out
}

// Int64 returns a numeric key's value.
func (c TopicConfig) Int64(name string) int64 { return atoi(c[name].Value) }

// Float64 returns a decimal key's value.
func (c TopicConfig) Float64(name string) float64 {
	f, _ := strconv.ParseFloat(c[name].Value, 64)
	return f
}

// String returns a key's value.
func (c TopicConfig) String(name string) string { return c[name].Value }

// Sorted returns the entries ordered by name, leaving out internal keys
// (as Kafka's DescribeConfigs does).
func (c TopicConfig) Sorted() []Entry {
	out := make([]Entry, 0, len(c))
	for _, e := range c {
		if d := TopicDef(e.Name); d != nil && d.Internal {
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// BrokerEntries lists every broker key's effective value, for DescribeConfigs
// on the BROKER resource.
func (b *Broker) BrokerEntries() []Entry {
	out := make([]Entry, 0, len(BrokerDefs))
	for i := range BrokerDefs {
		d := &BrokerDefs[i]
		v, src, set := b.explicit(d.Name)
		if !set {
			v = d.Default
		}
		out = append(out, Entry{Name: d.Name, Value: v, Source: src, Type: d.Type, Doc: d.Doc})
	}
	return out
}

// TopicSynonyms lists what sets topic key name for a topic with the given
// overrides, as Kafka's DescribeConfigs does: the topic's own value, then
// the synonyms of the broker key it defaults to. A key no broker key
// backs has none but the topic's value.
func (b *Broker) TopicSynonyms(name string, overrides map[string]string) []Synonym {
	out := ownSynonym(name, overrides, SourceDynamicTopic)
	if d := TopicDef(name); d != nil && d.BrokerKey != "" {
		out = append(out, b.BrokerSynonyms(d.BrokerKey)...)
	}
	return out
}

// ownSynonym is a resource's own value of name, if overrides sets it.
func ownSynonym(name string, overrides map[string]string, source Source) []Synonym {
	if v, ok := overrides[name]; ok {
		return []Synonym{{Name: name, Value: v, Source: source}}
	}
	return nil
}
