package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Dynamic broker configs: overrides of broker keys set at runtime with
// IncrementalAlterConfigs on BROKER resources and kept in the metadata
// quorum, for one broker (resource "<id>") or the whole cluster (resource
// ""). An effective value comes, as in Kafka, from the first of: this
// broker's dynamic override, the cluster-wide dynamic default, the static
// configuration (file, environment, flags), the key's default.
//
// Only keys whose every reader asks for the value at use time may change
// at runtime: the log defaults of topics (the broker-side synonyms of topic
// configs), which the replica manager re-reads into every partition on each
// metadata change, log.cleaner.backoff.ms, which the cleaner re-reads
// after each pass, and the replication throttles' rates, which the replica
// manager reads on every replica fetch.

// Kafka's ConfigSource codes for dynamic broker configs.
const (
	SourceDynamicBroker        Source = 2
	SourceDynamicDefaultBroker Source = 3
)

// dynamicLayer is one published set of dynamic overrides, taken from the
// metadata image at raft index applied; never modified.
type dynamicLayer struct {
	applied         uint64
	broker, cluster map[string]string
}

// SetDynamic publishes the dynamic overrides for this broker and the
// cluster default as of metadata index applied. A layer older than the one
// published is ignored, so callers racing with different images never move
// the configuration back. Safe to call while other goroutines read the
// configuration.
func (b *Broker) SetDynamic(applied uint64, broker, cluster map[string]string) {
	next := &dynamicLayer{applied: applied, broker: maps.Clone(broker), cluster: maps.Clone(cluster)}
	for {
		cur := b.dynamic.Load()
		if cur != nil && cur.applied >= applied {
			return
		}
		if b.dynamic.CompareAndSwap(cur, next) {
			return
		}
	}
}

// explicit is a key's value when something set it, and what: a dynamic
// override for this broker, the cluster-wide dynamic default, or the
// static configuration. ok is false when only the default applies.
func (b *Broker) explicit(key string) (v string, src Source, ok bool) {
	if d := b.dynamic.Load(); d != nil {
		if v, ok := d.broker[key]; ok {
			return v, SourceDynamicBroker, true
		}
		if v, ok := d.cluster[key]; ok {
			return v, SourceDynamicDefaultBroker, true
		}
	}
	if v, ok := b.Set[key]; ok {
		return v, SourceStaticBroker, true
	}
	return "", SourceDefault, false
}

// dynamicKeys are the broker keys that may change at runtime: the topic
// configs' broker synonyms, with the alternative units of retention and
// roll time, the cleaner's backoff, the replication throttles' rates
// (read by the replica manager on every fetch) and the throttle of moves
// between log dirs (read by each copy step).
var dynamicKeys = func() map[string]bool {
	m := map[string]bool{"log.retention.minutes": true, "log.retention.hours": true, "log.roll.hours": true, "log.cleaner.backoff.ms": true,
		"leader.replication.throttled.rate": true, "follower.replication.throttled.rate": true,
		"replica.alter.log.dirs.io.max.bytes.per.second": true}
	for _, d := range TopicDefs {
		if d.BrokerKey != "" {
			m[d.BrokerKey] = true
		}
	}
	return m
}()

// DynamicBrokerKeys lists the broker keys that may change at runtime, in
// name order.
func DynamicBrokerKeys() []string { return slices.Sorted(maps.Keys(dynamicKeys)) }

// IsDynamicBrokerKey reports whether a broker key may change at runtime.
func IsDynamicBrokerKey(name string) bool { return dynamicKeys[name] }

// ValidateDynamicBrokerConfig checks one dynamic broker override (value nil:
// the key is being removed) with Kafka's answers: a broker key that cannot
// change at runtime is INVALID_REQUEST ("Cannot update these configs
// dynamically"); an unknown key or a bad value is INVALID_CONFIG.
func ValidateDynamicBrokerConfig(name string, value *string) error {
	d := BrokerDef(name)
	if d == nil {
		return fmt.Errorf("%w: unknown broker config %q", kerr.InvalidConfig, name)
	}
	if !dynamicKeys[name] {
		return fmt.Errorf("%w: Cannot update these configs dynamically: [%s]", kerr.InvalidRequest, name)
	}
	if value == nil {
		return nil
	}
	if strings.TrimSpace(*value) == "" && d.Type != String && d.Type != List {
		return fmt.Errorf("%w: %s: empty value", kerr.InvalidConfig, name)
	}
	if err := d.Validate(*value); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}
