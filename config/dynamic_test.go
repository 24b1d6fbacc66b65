package config

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Precedence: this broker's dynamic override, then the cluster default,
// then the static configuration, then the key's default; retention.ms's
// default follows log.retention.ms/minutes/hours across all layers.
func TestDynamicBrokerPrecedence(t *testing.T) {
	b, err := NewBroker(map[string]string{"log.retention.hours": "2", "log.segment.bytes": "2097152"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(key, want string, src Source) {
		t.Helper()
		if v, s := b.TopicDefault(key); v != want || s != src {
			t.Fatalf("%s = %s (source %d), want %s (%d)", key, v, s, want, src)
		}
	}
	check("retention.ms", "7200000", SourceStaticBroker)
	check("segment.bytes", "2097152", SourceStaticBroker)
	check("delete.retention.ms", "86400000", SourceDefault)

	b.SetDynamic(5, nil, map[string]string{"log.retention.minutes": "3", "log.cleaner.delete.retention.ms": "1000"})
	check("retention.ms", "180000", SourceDynamicDefaultBroker)
	check("delete.retention.ms", "1000", SourceDynamicDefaultBroker)

	b.SetDynamic(6, map[string]string{"log.retention.ms": "42", "log.segment.bytes": "1048576"}, map[string]string{"log.retention.minutes": "3"})
	check("retention.ms", "42", SourceDynamicBroker)
	check("segment.bytes", "1048576", SourceDynamicBroker)
	check("delete.retention.ms", "86400000", SourceDefault)

	// An older image never moves the configuration back.
	b.SetDynamic(4, nil, nil)
	check("retention.ms", "42", SourceDynamicBroker)
}

func TestValidateDynamicBrokerConfig(t *testing.T) {
	v := func(s string) *string { return &s }
	for _, tc := range []struct {
		resource, key string
		value         *string
		want          error
	}{
		{"", "log.retention.ms", v("1000"), nil},
		{"", "log.retention.ms", nil, nil},
		{"", "log.cleaner.min.cleanable.ratio", v("0.2"), nil},
		{"", "log.cleaner.backoff.ms", v("500"), nil},
		{"", "message.max.bytes", v("2000000"), nil},
		{"", "log.retention.ms", v("soon"), kerr.InvalidConfig},
		{"", "log.segment.bytes", v("100"), kerr.InvalidConfig},
		{"", "no.such.key", v("1"), kerr.InvalidConfig},
		{"", "node.id", v("2"), kerr.InvalidRequest},
		{"", "listeners", nil, kerr.InvalidRequest},
		{"", "max.connections", v("100"), nil},
		{"1", "max.connections.per.ip", v("10"), nil},
		{"", "max.connections.per.ip.overrides", v("10.0.0.1:5,[::1]:2"), nil},
		{"", "max.connections.per.ip.overrides", v("10.0.0.1"), kerr.InvalidConfig},
		{"1", "max.connections", v("-1"), kerr.InvalidConfig},
		// TLS stores: per listener and per broker only, as in Kafka.
		{"1", "listener.name.ssl.ssl.keystore.location", v("/etc/shoal/ks.pem"), nil},
		{"1", "listener.name.ssl.ssl.key.password", nil, nil},
		{"1", "listener.name.ssl.ssl.truststore.certificates", v("-----BEGIN CERTIFICATE-----"), nil},
		{"", "listener.name.ssl.ssl.keystore.location", v("/etc/shoal/ks.pem"), kerr.InvalidRequest},
		{"1", "ssl.keystore.location", v("/etc/shoal/ks.pem"), kerr.InvalidRequest},
		{"1", "listener.name.ssl.ssl.client.auth", v("required"), kerr.InvalidRequest},
		{"1", "listener.name.SSL.ssl.keystore.location", v("/etc/shoal/ks.pem"), kerr.InvalidConfig},
		{"1", "listener.name.ssl.ssl.keystore.type", v("JKS"), nil},
		// A listener's own limits: per broker or cluster-wide.
		{"1", "listener.name.external.max.connections", v("5"), nil},
		{"", "listener.name.external.max.connection.creation.rate", v("20"), nil},
		{"", "listener.name.external.max.connections", v("-1"), kerr.InvalidConfig},
		{"1", "listener.name.EXTERNAL.max.connections", v("5"), kerr.InvalidConfig},
		{"1", "listener.name.external.max.connections.per.ip", v("5"), kerr.InvalidConfig},
	} {
		err := ValidateDynamicBrokerConfig(tc.resource, tc.key, tc.value)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%q %s: err = %v, want %v", tc.resource, tc.key, err, tc.want)
		}
	}
}

// The connection limits a change would leave: max.connections.per.ip=0
// needs an override in some layer.
func TestCheckConnectionLimits(t *testing.T) {
	b, err := NewBroker(map[string]string{"max.connections": "50"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckConnectionLimits(map[string]string{"max.connections.per.ip": "0"}, nil); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("per IP 0 without overrides: %v", err)
	}
	if err := b.CheckConnectionLimits(map[string]string{"max.connections.per.ip": "0"}, map[string]string{"max.connections.per.ip.overrides": "10.0.0.1:4"}); err != nil {
		t.Fatal(err)
	}
	b.SetDynamic(1, map[string]string{"max.connections.per.ip": "3"}, map[string]string{"max.connections": "7", "max.connections.per.ip": "5"})
	if got := b.ConnectionLimits(); !got.Equal(ConnectionLimits{Max: 7, PerIP: 3}) {
		t.Fatalf("limits %+v", got)
	}
}

// A listener's own limits: read by listener, refused at start-up or in a
// broker's own change for a listener the node does not have, and
// described for every listener.
func TestListenerConnectionLimits(t *testing.T) {
	base := map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:9092,EXTERNAL://127.0.0.1:9094",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
	}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	if _, err := NewBroker(with("listener.name.internal.max.connections", "5")); err == nil || !strings.Contains(err.Error(), "no listener INTERNAL") {
		t.Fatalf("a limit for a listener not in listeners: %v, want refused", err)
	}
	b, err := NewBroker(with("listener.name.external.max.connections", "5"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ConnectionLimits(); got.Listeners["external"] != 5 || len(got.Listeners) != 1 {
		t.Fatalf("listener limits %v", got.Listeners)
	}
	if err := b.CheckListenerLimits(map[string]string{"listener.name.internal.max.connections": "1"}); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("dynamic limit for a listener not in listeners: %v, want INVALID_REQUEST", err)
	}
	if got := b.ListenerCreationRate("EXTERNAL"); got != 2147483647 {
		t.Fatalf("creation rate unset: %d", got)
	}
	b.SetDynamic(1, map[string]string{"listener.name.external.max.connections": "1"}, map[string]string{"listener.name.external.max.connection.creation.rate": "20", "listener.name.plaintext.max.connections": "9"})
	if got := b.ConnectionLimits(); !got.Equal(ConnectionLimits{Max: 2147483647, PerIP: 2147483647, Listeners: map[string]int{"external": 1, "plaintext": 9}}) {
		t.Fatalf("limits %+v", got)
	}
	if got := b.ListenerCreationRate("EXTERNAL"); got != 20 {
		t.Fatalf("creation rate %d, want the cluster default 20", got)
	}
	entries := map[string]Entry{}
	for _, e := range b.DynamicListenerEntries() {
		entries[e.Name] = e
	}
	for name, want := range map[string]Entry{
		"listener.name.external.max.connections":               {Value: "1", Source: SourceDynamicBroker},
		"listener.name.external.max.connection.creation.rate":  {Value: "20", Source: SourceDynamicDefaultBroker},
		"listener.name.plaintext.max.connection.creation.rate": {Value: "2147483647", Source: SourceDefault},
	} {
		if e := entries[name]; e.Value != want.Value || e.Source != want.Source {
			t.Errorf("%s described as %q (source %d), want %q (source %d)", name, e.Value, e.Source, want.Value, want.Source)
		}
	}
}

// Whatever layers set a topic's or a group's key, the first synonym
// DescribeConfigs lists is the value the key takes; as in Kafka, a
// coarser unit is listed under a key only after the key itself.
func TestSynonymsAgreeWithEffectiveValues(t *testing.T) {
	setups := []struct {
		static, broker, cluster, topic map[string]string
	}{
		{},
		{static: map[string]string{"log.retention.hours": "2", "log.roll.hours": "3", "group.consumer.session.timeout.ms": "50000"}},
		{static: map[string]string{"log.retention.hours": "2"}, cluster: map[string]string{"log.retention.minutes": "5"}},
		{static: map[string]string{"log.retention.ms": "1000"}, broker: map[string]string{"log.retention.hours": "4", "log.roll.ms": "7000"}},
		{cluster: map[string]string{"log.retention.ms": "9000", "log.cleaner.delete.retention.ms": "10"}, broker: map[string]string{"log.retention.minutes": "1", "log.segment.bytes": "2097152"}},
		{static: map[string]string{"log.flush.interval.ms": "100"}, topic: map[string]string{"retention.ms": "1", "segment.ms": "2", "flush.ms": "3", "leader.replication.throttled.replicas": "*"}},
	}
	for i, su := range setups {
		b, err := NewBroker(su.static)
		if err != nil {
			t.Fatal(err)
		}
		b.SetDynamic(1, su.broker, su.cluster)
		for _, e := range b.EffectiveTopicConfig(su.topic) {
			syns := b.TopicSynonyms(e.Name, su.topic)
			if len(syns) > 0 && syns[0].Value != e.Value {
				t.Errorf("setup %d: topic %s = %s, first synonym %+v", i, e.Name, e.Value, syns[0])
			}
		}
		for _, e := range b.EffectiveGroupConfig(nil) {
			if syns := b.GroupSynonyms(e.Name, nil); len(syns) == 0 || syns[0].Value != e.Value {
				t.Errorf("setup %d: group %s = %s, synonyms %+v", i, e.Name, e.Value, syns)
			}
		}
	}

	b, err := NewBroker(map[string]string{"log.retention.hours": "2", "log.retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	b.SetDynamic(1, map[string]string{"log.retention.minutes": "3"}, nil)
	want := []Synonym{{"log.retention.ms", "1000", SourceStaticBroker}, {"log.retention.hours", "2", SourceStaticBroker}, {"log.retention.hours", "168", SourceDefault}}
	if got := b.TopicSynonyms("retention.ms", nil); !slices.Equal(got, want) {
		t.Errorf("retention.ms synonyms %+v, want %+v", got, want)
	}
	// Layers after the first setting of the key are listed whole.
	want = []Synonym{{"log.retention.minutes", "3", SourceDynamicBroker}, {"log.retention.ms", "1000", SourceStaticBroker}, {"log.retention.hours", "2", SourceStaticBroker}, {"log.retention.hours", "168", SourceDefault}}
	if got := b.BrokerSynonyms("log.retention.minutes"); !slices.Equal(got, want) {
		t.Errorf("log.retention.minutes synonyms %+v, want %+v", got, want)
	}
	// Unset everywhere, log.roll.ms has no synonym: log.roll.hours' default
	// is listed under it only after a setting of log.roll.ms.
	if got := b.TopicSynonyms("segment.ms", nil); len(got) != 0 {
		t.Errorf("segment.ms synonyms %+v, want none", got)
	}
}
