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
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return "", "", false
	}
	listener, key, ok = strings.Cut(rest, ".")
	if !ok || listener == "" || listener != strings.ToLower(listener) || !slices.Contains(DynamicSSLKeys, key) {
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
	return dynamicKeys[name] || ssl
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
	if !dynamicKeys[name] && !ssl {
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

// ConnectionLimits are max.connections, max.connections.per.ip and
// max.connections.per.ip.overrides as they stand.
type ConnectionLimits struct {
	Max, PerIP int
	// Overrides is max.connections.per.ip.overrides as written.
	Overrides string
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
		return BrokerDef(key).Default, false
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
	return ConnectionLimits{Max: num("max.connections"), PerIP: num("max.connections.per.ip"), Overrides: ov}
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
// overrides (the keys of DynamicSSLKeys with a listener prefix), which
// BrokerEntries, listing plain broker keys, does not.
func (b *Broker) DynamicListenerEntries() []Entry {
	d := b.dynamic.Load()
	if d == nil {
		return nil
	}
	var out []Entry
	for _, k := range slices.Sorted(maps.Keys(d.broker)) {
		if _, _, ok := ListenerSSLKey(k); ok {
			def := brokerKeyDef(k)
			out = append(out, Entry{Name: k, Value: d.broker[k], Source: SourceDynamicBroker, Type: def.Type, Doc: def.Doc})
		}
	}
	return out
}
