package config

import (
	"errors"
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
