package main

import (
	"strings"
	"testing"
)

// shoal quota set stores a quota that quota list then shows, by entity
// and as JSON; a key the entity does not take fails with Kafka's answer.
func TestQuotaSetAndList(t *testing.T) {
	ok(t, "--bootstrap-server", brokerAddr, "quota", "set", "--user", "quota-alice", "--client-id-default",
		"--set", "consumer_byte_rate=2097152", "--set", "producer_byte_rate=1048576")
	type quota struct {
		Entity string             `json:"entity"`
		Values map[string]float64 `json:"values"`
	}
	q := okJSONListed(t, func(q quota) bool { return q.Entity == "user=quota-alice,client-id=<default>" },
		"--bootstrap-server", brokerAddr, "quota", "list", "--user", "quota-alice", "--output", "json")
	if q.Values["consumer_byte_rate"] != 2097152 || q.Values["producer_byte_rate"] != 1048576 || len(q.Values) != 2 {
		t.Fatalf("listed %+v", q)
	}
	ok(t, "--bootstrap-server", brokerAddr, "quota", "set", "--user", "quota-alice", "--client-id-default", "--delete", "producer_byte_rate")
	q = okJSONListed(t, func(q quota) bool { return q.Entity == "user=quota-alice,client-id=<default>" },
		"--bootstrap-server", brokerAddr, "quota", "list", "--user", "quota-alice", "--output", "json")
	if len(q.Values) != 1 {
		t.Fatalf("after delete: %+v", q)
	}
	fails(t, shoal(t, "--bootstrap-server", brokerAddr, "quota", "set", "--ip", "10.1.2.3", "--set", "producer_byte_rate=5"), "INVALID_REQUEST")
	fails(t, shoal(t, "--bootstrap-server", brokerAddr, "quota", "set", "--set", "producer_byte_rate=5"), "name an entity")
}

// shoal config set changes a broker config at runtime; config describe
// shows where each value comes from, and every layer that sets it.
func TestConfigSetAndDescribe(t *testing.T) {
	type synonym struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	}
	type entry struct {
		Name     string    `json:"name"`
		Value    *string   `json:"value"`
		Source   string    `json:"source"`
		Synonyms []synonym `json:"synonyms"`
	}
	ok(t, "--bootstrap-server", brokerAddr, "config", "set", "--cluster", "--set", "log.cleaner.delete.retention.ms=3600000")
	ok(t, "--bootstrap-server", brokerAddr, "config", "set", "--broker", "1", "--set", "log.cleaner.delete.retention.ms=7200000")
	e := okJSONListed(t, func(e entry) bool { return e.Name == "log.cleaner.delete.retention.ms" },
		"--bootstrap-server", brokerAddr, "config", "describe", "--cluster", "--output", "json")
	if deref(e.Value) != "3600000" || e.Source != "DYNAMIC_DEFAULT_BROKER_CONFIG" {
		t.Fatalf("cluster default: %s %s", deref(e.Value), e.Source)
	}
	e = okJSONListed(t, func(e entry) bool { return e.Name == "log.cleaner.delete.retention.ms" },
		"--bootstrap-server", brokerAddr, "config", "describe", "--broker", "1", "--output", "json")
	if deref(e.Value) != "7200000" || e.Source != "DYNAMIC_BROKER_CONFIG" {
		t.Fatalf("broker 1: %s %s", deref(e.Value), e.Source)
	}
	var layers []string
	for _, sy := range e.Synonyms {
		layers = append(layers, sy.Source+":"+sy.Name+"="+deref(sy.Value))
	}
	if want := "DYNAMIC_BROKER_CONFIG:log.cleaner.delete.retention.ms=7200000 DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.delete.retention.ms=3600000 DEFAULT_CONFIG:log.cleaner.delete.retention.ms=86400000"; strings.Join(layers, " ") != want {
		t.Errorf("broker 1 synonyms: %s, want %s", strings.Join(layers, " "), want)
	}
	ok(t, "--bootstrap-server", brokerAddr, "config", "set", "--broker", "1", "--delete", "log.cleaner.delete.retention.ms")
	e = okJSONListed(t, func(e entry) bool { return e.Name == "log.cleaner.delete.retention.ms" },
		"--bootstrap-server", brokerAddr, "config", "describe", "--broker", "1", "--output", "json")
	if deref(e.Value) != "3600000" || e.Source != "DYNAMIC_DEFAULT_BROKER_CONFIG" {
		t.Fatalf("broker 1 after delete: %s %s", deref(e.Value), e.Source)
	}
	ok(t, "--bootstrap-server", brokerAddr, "config", "set", "--cluster", "--delete", "log.cleaner.delete.retention.ms")
	fails(t, shoal(t, "--bootstrap-server", brokerAddr, "config", "set", "--cluster", "--set", "node.id=3"), "Cannot update these configs dynamically")
	fails(t, shoal(t, "--bootstrap-server", brokerAddr, "config", "describe"), "--broker N or --cluster")
}
