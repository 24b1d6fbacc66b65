package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/tlsconfig"
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
// after each pass, the replication throttles' rates, which the replica
// manager reads on every replica fetch, max.connection.creation.rate, which
// the accept loops read on every connection; the connection limits, which
// the broker hands to its listeners whenever an image is applied; and, per
// listener and per broker only, the key and trust stores of a TLS listener
// (listener.name.<listener>.ssl.keystore.location and the others of
// DynamicSSLKeys), which the listener loads, checks and swaps in for new
// handshakes.

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
// (read by the replica manager on every fetch), the broker-wide connection
// creation rate (read by the accept loops), the connection limits and the
// throttle of moves between log dirs (read by each copy step).
var dynamicKeys = func() map[string]bool {
	m := map[string]bool{"log.retention.minutes": true, "log.retention.hours": true, "log.roll.hours": true, "log.cleaner.backoff.ms": true,
		"leader.replication.throttled.rate": true, "follower.replication.throttled.rate": true, "max.connection.creation.rate": true,
		"max.connections": true, "max.connections.per.ip": true, "max.connections.per.ip.overrides": true,
		"replica.alter.log.dirs.io.max.bytes.per.second": true}
	for _, d := range TopicDefs {
		if d.BrokerKey != "" {
			m[d.BrokerKey] = true
		}
	}
	return m
}()

// DynamicSSLKeys are the ssl.* keys of a listener that may change at
// runtime, as Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: where the key and
// trust stores are and how they open. Each is set per listener
// (listener.name.<listener>.<key>) and per broker only: a broker's
// certificate names that broker.
var DynamicSSLKeys = []string{
	"ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
	"ssl.keystore.certificate.chain", "ssl.keystore.key",
	"ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.certificates",
}

// ListenerSSLKey splits a per-listener dynamic SSL key
// (listener.name.<listener>.<key>, <key> one of DynamicSSLKeys) into the
// listener's name, as written in the key (lower case), and the key.
func ListenerSSLKey(name string) (listener, key string, ok bool) {
	return listenerKey(name, DynamicSSLKeys)
}

// ListenerLimitDefs are a listener's own connection limits, as Kafka's
// listener.name.<listener>.max.connections and
// listener.name.<listener>.max.connection.creation.rate: checked in
// addition to the broker-wide ones and, unlike those, on the inter-broker
// listener too. Each may be set at start-up or at runtime, per broker or
// cluster-wide.
var ListenerLimitDefs = []Def{
	{Name: "listener.name.<listener>.max.connections", Type: Int, Default: "2147483647", Doc: "Connections one listener holds at once, in addition to max.connections; the listener name in lower case. As max.connections, a new connection past it is not refused: the listener stops accepting until one of its connections closes, while other listeners go on. Applies to the inter-broker listener too. The listener must be one of listeners. Dynamic: per broker or cluster-wide.", Check: atLeast(0)},
	{Name: "listener.name.<listener>.max.connection.creation.rate", Type: Int, Default: "2147483647", Doc: "New connections one listener accepts per second, in addition to max.connection.creation.rate; past it, its accept loop waits. Applies to the inter-broker listener too. The listener must be one of listeners. Dynamic: per broker or cluster-wide.", Check: atLeast(0)},
}

// listenerLimitKeys are the keys of ListenerLimitDefs without their
// listener prefix.
var listenerLimitKeys = []string{"max.connections", "max.connection.creation.rate"}

// ListenerLimitKey splits a listener's own connection limit
// (listener.name.<listener>.max.connections or
// listener.name.<listener>.max.connection.creation.rate) into the
// listener's name, as written in the key (lower case), and the key.
func ListenerLimitKey(name string) (listener, key string, ok bool) {
	return listenerKey(name, listenerLimitKeys)
}

// listenerLimitDef is the definition of a listener's own connection
// limit named by key without its prefix.
func listenerLimitDef(key string) *Def {
	return &ListenerLimitDefs[slices.Index(listenerLimitKeys, key)]
}

// listenerKey splits listener.name.<listener>.<key>, <key> one of keys,
// into the listener's name (lower case, as Kafka writes it) and the key.
func listenerKey(name string, keys []string) (listener, key string, ok bool) {
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return "", "", false
	}
	listener, key, ok = strings.Cut(rest, ".")
	if !ok || listener == "" || listener != strings.ToLower(listener) || !slices.Contains(keys, key) {
		return "", "", false
	}
	return listener, key, true
}

// DynamicBrokerKeys lists the broker keys that may change at runtime, in
// name order; the per-listener SSL keys are not listed (see
// DynamicSSLKeys).
func DynamicBrokerKeys() []string { return slices.Sorted(maps.Keys(dynamicKeys)) }

// IsDynamicBrokerKey reports whether a broker key may change at runtime.
func IsDynamicBrokerKey(name string) bool {
	_, _, ssl := ListenerSSLKey(name)
	_, _, limit := ListenerLimitKey(name)
	return dynamicKeys[name] || ssl || limit
}

// IsSensitiveBrokerKey reports a broker key whose value is secret (a
// password, an inline private key): never described, never logged.
func IsSensitiveBrokerKey(name string) bool {
	d := brokerKeyDef(name)
	return d != nil && d.Type == Password
}

// BrokerKeyDef returns the definition of any broker key, listener-prefixed
// security keys included, or nil.
func BrokerKeyDef(name string) *Def { return brokerKeyDef(name) }

// ValidateDynamicBrokerConfig checks one dynamic override of the BROKER
// resource named resource (a broker id, or "" for the cluster default;
// value nil: the key is being removed) with Kafka's answers: a broker key
// that cannot change at runtime is INVALID_REQUEST ("Cannot update these
// configs dynamically"), and so are an SSL key without a listener prefix
// and a per-listener SSL key as a cluster default; an unknown key or a bad
// value is INVALID_CONFIG. Whether a new key store loads and matches the
// one served is checked by the broker that serves it.
func ValidateDynamicBrokerConfig(resource, name string, value *string) error {
	d := brokerKeyDef(name)
	if d == nil {
		return fmt.Errorf("%w: unknown broker config %q", kerr.InvalidConfig, name)
	}
	if slices.Contains(DynamicSSLKeys, name) {
		return fmt.Errorf("%w: These security configs can be dynamically updated only per-listener using the listener prefix: [%s]", kerr.InvalidRequest, name)
	}
	_, _, ssl := ListenerSSLKey(name)
	if _, _, limit := ListenerLimitKey(name); !dynamicKeys[name] && !ssl && !limit {
		return fmt.Errorf("%w: Cannot update these configs dynamically: [%s]", kerr.InvalidRequest, name)
	}
	if ssl && resource == "" {
		return fmt.Errorf("%w: Cannot update these configs at default cluster level, broker id must be specified: [%s]", kerr.InvalidRequest, name)
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

// ListenerTLS returns the TLS settings of a served listener as they stand:
// those of start-up with this broker's published dynamic overrides of
// DynamicSSLKeys, or, when overrides is not nil, with overrides instead
// (this broker's overrides as a change being checked would leave them).
func (b *Broker) ListenerTLS(listener string, overrides map[string]string) (tlsconfig.Settings, error) {
	if overrides == nil {
		if d := b.dynamic.Load(); d != nil {
			overrides = d.broker
		}
	}
	return b.listenerTLSWith(listener, overrides)
}

// CertChangesAllowed reports a listener's ssl.allow.dn.changes and
// ssl.allow.san.changes: whether a key store set at runtime may change the
// served certificate's subject or subject alternative names.
func (b *Broker) CertChangesAllowed(listener string) (dn, san bool) {
	return b.lookup(listener, "", "ssl.allow.dn.changes") == "true", b.lookup(listener, "", "ssl.allow.san.changes") == "true"
}

// ConnectionLimits are max.connections, max.connections.per.ip,
// max.connections.per.ip.overrides and the listeners' own max.connections
// as they stand.
type ConnectionLimits struct {
	Max, PerIP int
	// Overrides is max.connections.per.ip.overrides as written.
	Overrides string
	// Listeners are listener.name.<listener>.max.connections, by
	// listener name in lower case, for the listeners that have one.
	Listeners map[string]int
}

// Equal reports whether two sets of limits are the same.
func (l ConnectionLimits) Equal(o ConnectionLimits) bool {
	return l.Max == o.Max && l.PerIP == o.PerIP && l.Overrides == o.Overrides && maps.Equal(l.Listeners, o.Listeners)
}

// ListenerCreationRate is listener.name.<listener>.max.connection.creation.rate
// as it stands (math.MaxInt32, its default, when unset).
func (b *Broker) ListenerCreationRate(listener string) int64 {
	v, _, ok := b.explicit("listener.name." + strings.ToLower(listener) + ".max.connection.creation.rate")
	if !ok {
		v = listenerLimitDef("max.connection.creation.rate").Default
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// checkListenerLimits refuses a listener's own connection limit for a
// listener this node does not have, as set (a static or dynamic layer).
func (b *Broker) checkListenerLimits(set map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if l, _, ok := ListenerLimitKey(k); ok && !b.hasListener(l) {
			return fmt.Errorf("%s: this node has no listener %s in listeners", k, strings.ToUpper(l))
		}
	}
	return nil
}

// CheckListenerLimits is checkListenerLimits for a change of this
// broker's own dynamic configs: INVALID_REQUEST, as Kafka refuses a
// listener config for a listener the broker does not have.
func (b *Broker) CheckListenerLimits(set map[string]string) error {
	if err := b.checkListenerLimits(set); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
	}
	return nil
}

// hasListener reports whether lower names one of listeners.
func (b *Broker) hasListener(lower string) bool {
	return slices.ContainsFunc(b.Listeners, func(l Listener) bool { return strings.EqualFold(l.Name, lower) })
}

// ConnectionLimits returns the connection limits in effect now.
func (b *Broker) ConnectionLimits() ConnectionLimits {
	return b.connectionLimits(b.Value)
}

// CheckConnectionLimits checks the connection limits this broker would
// have with broker and cluster as its dynamic layers: as at start-up,
// max.connections.per.ip=0 needs an override, or no client could connect.
func (b *Broker) CheckConnectionLimits(broker, cluster map[string]string) error {
	l := b.connectionLimits(func(key string) (string, bool) {
		for _, layer := range []map[string]string{broker, cluster, b.Set} {
			if v, ok := layer[key]; ok {
				return v, true
			}
		}
		return brokerKeyDef(key).Default, false
	})
	ov, err := ParseConnectionOverrides(l.Overrides)
	if err != nil {
		return fmt.Errorf("%w: max.connections.per.ip.overrides: %v", kerr.InvalidConfig, err)
	}
	if err := checkPerIP(l.PerIP, ov); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}

func (b *Broker) connectionLimits(value func(string) (string, bool)) ConnectionLimits {
	num := func(key string) int {
		v, _ := value(key)
		n, _ := strconv.ParseInt(v, 10, 32)
		return int(n)
	}
	ov, _ := value("max.connections.per.ip.overrides")
	lim := ConnectionLimits{Max: num("max.connections"), PerIP: num("max.connections.per.ip"), Overrides: ov}
	for _, l := range b.Listeners {
		lower := strings.ToLower(l.Name)
		if v, ok := value("listener.name." + lower + ".max.connections"); ok {
			n, _ := strconv.ParseInt(v, 10, 32)
			if lim.Listeners == nil {
				lim.Listeners = map[string]int{}
			}
			lim.Listeners[lower] = int(n)
		}
	}
	return lim
}

// checkPerIP refuses max.connections.per.ip=0 without an override: as in
// Kafka, 0 refuses everyone unless some host is let in.
func checkPerIP(perIP int, overrides map[string]int) error {
	if perIP == 0 && len(overrides) == 0 {
		return errors.New("max.connections.per.ip: 0 needs max.connections.per.ip.overrides, or no client could connect")
	}
	return nil
}

// DynamicListenerEntries describes this broker's dynamic per-listener SSL
// overrides (the keys of DynamicSSLKeys with a listener prefix) and the
// listeners' own connection limits of every listener (set or not, as
// Kafka lists them), which BrokerEntries, listing plain broker keys, does
// not.
func (b *Broker) DynamicListenerEntries() []Entry {
	var out []Entry
	for _, l := range b.Listeners {
		for _, k := range listenerLimitKeys {
			name := "listener.name." + strings.ToLower(l.Name) + "." + k
			def := listenerLimitDef(k)
			v, src, set := b.explicit(name)
			if !set {
				v = def.Default
			}
			out = append(out, Entry{Name: name, Value: v, Source: src, Type: def.Type, Doc: def.Doc})
		}
	}
	d := b.dynamic.Load()
	if d == nil {
		return out
	}
	for _, k := range slices.Sorted(maps.Keys(d.broker)) {
		if _, _, ok := ListenerSSLKey(k); ok {
			def := brokerKeyDef(k)
			out = append(out, Entry{Name: k, Value: d.broker[k], Source: SourceDynamicBroker, Type: def.Type, Doc: def.Doc})
		}
	}
	return out
}

// Synonym is one setting behind a described config: a key and its value
// in one layer of the configuration.
type Synonym struct {
	Name, Value string
	Source      Source
}

// unitSynonyms are the broker keys that set one value in different units,
// in the order Kafka prefers them when several are set.
// log.flush.interval.ms has none: Kafka falls back to
// log.flush.scheduler.interval.ms, but shoal uses that key only as the
// flusher's period, so flush.ms never takes its value.
var unitSynonyms = [][]string{
	{"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	{"log.roll.ms", "log.roll.hours"},
}

// synonymKeys are the broker keys that stand for the same setting as key,
// in the order they take precedence: its other units, or, for a
// per-listener key, the key and then the broker-wide key it overrides.
func synonymKeys(key string) []string {
	for _, g := range unitSynonyms {
		if slices.Contains(g, key) {
			return g
		}
	}
	if base, ok := listenerBase(key); ok {
		return []string{key, base}
	}
	return []string{key}
}

// listenerBase is the broker-wide key that a per-listener key
// (listener.name.<listener>.<key>, or
// listener.name.<listener>.<mechanism>.<sasl key>) overrides.
func listenerBase(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "listener.name.")
	if !ok || brokerKeyDef(key) == nil {
		return "", false
	}
	_, rest, _ = strings.Cut(rest, ".")
	if _, sasl, ok := strings.Cut(rest, "."); ok && strings.HasPrefix(sasl, "sasl.") && securityIndex[sasl] != nil {
		return sasl, true
	}
	return rest, true
}

// BrokerSynonyms lists what sets broker key name, as Kafka's
// DescribeConfigs lists it: layer by layer, most specific first (this
// broker's dynamic overrides, the cluster default, the static
// configuration, the keys' defaults), in each layer the keys of
// synonymKeys that it sets. As in Kafka, what comes before the first
// setting of name itself is left out: log.retention.hours set above
// log.retention.ms does not decide log.retention.ms' value, and a
// coarser unit is listed under retention.ms only when log.retention.ms is
// set somewhere. The first synonym is where name's value comes from.
func (b *Broker) BrokerSynonyms(name string) []Synonym {
	keys := synonymKeys(name)
	var broker, cluster map[string]string
	if d := b.dynamic.Load(); d != nil {
		broker, cluster = d.broker, d.cluster
	}
	defaults := map[string]string{}
	for _, k := range keys {
		// Kafka's defaults are those of its broker keys; a per-listener
		// key has none of its own.
		if d := brokerKeyDef(k); d != nil && d.Default != "" && !strings.HasPrefix(k, "listener.name.") {
			defaults[k] = d.Default
		}
	}
	var out []Synonym
	for _, layer := range []struct {
		set    map[string]string
		source Source
	}{{broker, SourceDynamicBroker}, {cluster, SourceDynamicDefaultBroker}, {b.Set, SourceStaticBroker}, {defaults, SourceDefault}} {
		for _, k := range keys {
			if v, ok := layer.set[k]; ok {
				out = append(out, Synonym{Name: k, Value: v, Source: layer.source})
			}
		}
	}
	for len(out) > 0 && out[0].Name != name {
		out = out[1:]
	}
	return out
}
