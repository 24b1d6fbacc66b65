package config

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// GroupDefs are the per-group keys set with IncrementalAlterConfigs on the
// GROUP resource. Each defaults to the broker key in BrokerKey.
var GroupDefs = []Def{
	{Name: "consumer.session.timeout.ms", Type: Int, BrokerKey: "group.consumer.session.timeout.ms", Check: atLeast(1)},
	{Name: "consumer.heartbeat.interval.ms", Type: Int, BrokerKey: "group.consumer.heartbeat.interval.ms", Check: atLeast(1)},
	{Name: "share.session.timeout.ms", Type: Int, BrokerKey: "group.share.session.timeout.ms", Check: atLeast(1)},
	{Name: "share.heartbeat.interval.ms", Type: Int, BrokerKey: "group.share.heartbeat.interval.ms", Check: atLeast(1)},
	{Name: "share.record.lock.duration.ms", Type: Int, BrokerKey: "group.share.record.lock.duration.ms", Check: atLeast(1000),
		Doc: "How long a share consumer holds a record before it is offered again, within the broker's group.share.min/max.record.lock.duration.ms."},
	{Name: "share.delivery.count.limit", Type: Int, BrokerKey: "group.share.delivery.count.limit", Check: atLeast(2),
		Doc: "Deliveries of a record before it is archived (and dead-lettered), within the broker's group.share.min/max.delivery.count.limit (KIP-1240)."},
	{Name: "share.partition.max.record.locks", Type: Int, BrokerKey: "group.share.partition.max.record.locks", Check: atLeast(100),
		Doc: "Most in-flight records per share partition of the group, within the broker's group.share.min/max.partition.max.record.locks (KIP-1240)."},
	{Name: "share.renew.acknowledge.enable", Type: Boolean, Default: "true",
		Doc: "Whether the group's consumers may RENEW a record's lock (KIP-1222); off, a RENEW is refused with INVALID_RECORD_STATE (KIP-1240)."},
	{Name: "share.acquire.mode", Type: String, Default: "batch_optimized", Check: oneOf("batch_optimized", "record_limit"),
		Doc: "batch_optimized hands out whole producer batches, so a ShareFetch may get more than its MaxRecords; record_limit makes MaxRecords a hard limit, splitting batches (KIP-1206). A consumer asking for record_limit in its ShareFetch gets it either way."},
	{Name: "share.auto.offset.reset", Type: String, Default: "latest", Check: autoOffsetReset,
		Doc: "Where a share group starts in a partition it has no state for: latest, earliest or by_duration:<ISO-8601 duration>."},
	{Name: "share.isolation.level", Type: String, Default: "read_uncommitted", Doc: "Which records a share group delivers: read_uncommitted delivers every record up to the high watermark; read_committed stops at the last stable offset and skips records of aborted transactions (KIP-932). Without transactional producers the two deliver the same records.", Check: oneOf("read_uncommitted", "read_committed")},
	{Name: "share.release.backoff.ms", Type: Int, Default: "0", Check: atLeast(0),
		Doc: "How long a RELEASEd record waits before it can be delivered again (shoal extension for retry pipelines)."},
	{Name: "share.delivery.ordering", Type: String, Default: "none", Check: oneOf("none", "key"),
		Doc: "none delivers a partition's records to any worker in any order (Kafka's behaviour); key holds back a record while an earlier record with the same key is in flight, so each key's records are delivered one at a time in offset order (null keys are unordered)."},
	{Name: "errors.deadletterqueue.topic.name", Type: String, Default: "",
		Doc: "Topic that rejected records and records over the delivery limit are dead-lettered to (KIP-1191); it must start with the broker's errors.deadletterqueue.topic.name.prefix."},
	{Name: "errors.deadletterqueue.copy.record.enable", Type: Boolean, Default: "false",
		Doc: "Whether a dead letter carries the record's key, value and headers; off, only the headers saying where it came from and why (KIP-1191)."},
}

// groupBounds are the group keys whose values the broker bounds, with the
// broker keys of the lowest and highest value allowed (KIP-1240).
var groupBounds = map[string][2]string{
	"share.record.lock.duration.ms":    {"group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms"},
	"share.delivery.count.limit":       {"group.share.min.delivery.count.limit", "group.share.max.delivery.count.limit"},
	"share.partition.max.record.locks": {"group.share.min.partition.max.record.locks", "group.share.max.partition.max.record.locks"},
}

var groupIndex = index(GroupDefs)

// GroupDef returns the definition of a group key, or nil.
func GroupDef(name string) *Def { return groupIndex[name] }

// ValidateGroupConfig checks one group key and value (nil: reset): its
// type and range, and, for the keys the broker bounds, that it lies within
// this broker's limits, with Kafka's wording (the lock duration's since
// Kafka 4.0, the others' since KIP-1240).
func (b *Broker) ValidateGroupConfig(name string, value *string) error {
	d := GroupDef(name)
	if d == nil {
		return fmt.Errorf("Unknown group config name: %s", name)
	}
	if value == nil {
		return nil
	}
	if err := d.Validate(*value); err != nil {
		return err
	}
	if lim, ok := groupBounds[name]; ok {
		switch n := atoi(*value); {
		case n < b.int64(lim[0]):
			return fmt.Errorf("%s must be greater than or equal to %s (%d)", name, lim[0], b.int64(lim[0]))
		case n > b.int64(lim[1]):
			return fmt.Errorf("%s must be less than or equal to %s (%d)", name, lim[1], b.int64(lim[1]))
		}
	}
	return nil
}

// checkShareLimits refuses broker limits that contradict each other: each
// group.share.* default must lie within its min and max, as Kafka checks at
// start-up.
func (b *Broker) checkShareLimits() error {
	for _, name := range slices.Sorted(maps.Keys(groupBounds)) {
		lim, def := groupBounds[name], GroupDef(name).BrokerKey
		if b.int64(def) < b.int64(lim[0]) {
			return fmt.Errorf("%s must be greater than or equal to %s", def, lim[0])
		}
		if b.int64(lim[1]) < b.int64(def) {
			return fmt.Errorf("%s must be greater than or equal to %s", lim[1], def)
		}
	}
	return nil
}

func between(lo, hi int64) func(string) error {
	return func(v string) error {
		switch n := atoi(v); {
		case n < lo:
			return fmt.Errorf("Value must be at least %d", lo)
		case n > hi:
			return fmt.Errorf("Value must be no more than %d", hi)
		}
		return nil
	}
}

func autoOffsetReset(v string) error {
	_, _, err := ParseShareAutoOffsetReset(v)
	return err
}

// GroupConfig is the effective configuration of one group.
type GroupConfig map[string]Entry

// EffectiveGroupConfig resolves every group key for a group's overrides.
func (b *Broker) EffectiveGroupConfig(overrides map[string]string) GroupConfig {
	return effectiveConfig(GroupDefs, func(d *Def) (string, Source) {
		switch v, ok := overrides[d.Name]; {
		case ok:
			return v, SourceDynamicGroup
		case d.BrokerKey != "":
			v, set := b.Value(d.BrokerKey)
			return v, sourceOf(set)
		}
		return d.Default, SourceDefault
	})
}

// Int64 returns a numeric key's value.
func (c GroupConfig) Int64(name string) int64 { return atoi(c[name].Value) }

// Millis returns a numeric key's value as milliseconds.
func (c GroupConfig) Millis(name string) time.Duration {
	return time.Duration(c.Int64(name)) * time.Millisecond
}

// String returns a key's value.
func (c GroupConfig) String(name string) string { return c[name].Value }

// Sorted returns the entries ordered by name.
func (c GroupConfig) Sorted() []Entry { return TopicConfig(c).Sorted() }

// GroupSynonyms lists what sets group key name for a group with the given
// overrides, as Kafka's DescribeConfigs does: the group's own value, then
// the synonyms of the broker key it defaults to or, for a key no broker
// key backs, its default.
func (b *Broker) GroupSynonyms(name string, overrides map[string]string) []Synonym {
	out := ownSynonym(name, overrides, SourceDynamicGroup)
	switch d := GroupDef(name); {
	case d == nil:
	case d.BrokerKey != "":
		out = append(out, b.BrokerSynonyms(d.BrokerKey)...)
	default:
		out = append(out, Synonym{Name: name, Value: d.Default, Source: SourceDefault})
	}
	return out
}
