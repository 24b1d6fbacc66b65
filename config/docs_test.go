package config

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/configuration.md from the config definitions")

// renderDocs renders every broker, topic and group key with its type,
// default and meaning.
func renderDocs() string {
	var b strings.Builder
	b.WriteString("# Configuration\n\n")
	b.WriteString("Generated from `config/` by `go test ./config -run TestConfigurationDocs -update-docs`; the test fails when this file and the code disagree.\n\n")
	b.WriteString("Broker keys come from `server.properties` (`shoal serve --config`), `SHOAL_<KEY>` environment variables (upper case, dots to underscores) and `--set key=value`, each beating the one before. An unknown key or a bad value stops start-up, except the Kafka keys that configure nothing in shoal (listed at the end), which are logged as ignored.\n\n")
	table := func(title, intro string, defs []Def, def func(Def) string) {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n", title, intro)
		for _, d := range defs {
			doc := d.Doc
			if doc == "" && d.BrokerKey != "" {
				doc = "Defaults to the broker's `" + d.BrokerKey + "`."
			}
			fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.Name, typeName(d.Type), def(d), doc)
		}
		b.WriteString("\n")
	}
	table("Broker", "Read at start-up; DescribeConfigs on the BROKER resource shows them. These also change at runtime, per broker or cluster-wide, with IncrementalAlterConfigs on the BROKER resource (`shoal config set`, see docs/operations.md): "+dynamicList()+".", BrokerDefs, func(d Def) string { return d.Default })
	table("Security", "TLS, SASL and authorization keys, read at start-up. Every `ssl.*` and `sasl.*` key may be set for one listener as `listener.name.<listener>.<key>` (listener name in lower case), and every `sasl.*` key for one mechanism of one listener as `listener.name.<listener>.<mechanism>.<key>`; the most specific wins. DescribeConfigs does not list them, except the key and trust stores set at runtime: `listener.name.<listener>.<key>` for "+dynamicSSLList()+" may be set per broker (not cluster-wide) with `shoal config set --broker N`, and a new key store must hold a certificate with the served one's subject and subject alternative names unless `ssl.allow.dn.changes` / `ssl.allow.san.changes` are true.", SecurityDefs, func(d Def) string { return d.Default })
	table("Per-listener connection limits", "A listener's own limits, checked in addition to the broker-wide ones, set as `listener.name.<listener>.<key>` (listener name in lower case, one of `listeners`) in `server.properties` or at runtime, per broker or cluster-wide, with `shoal config set`; DescribeConfigs lists them for every listener.", ListenerLimitDefs, func(d Def) string { return d.Default })
	defaults, _ := NewBroker(map[string]string{})
	topicDefault := func(d Def) string { v, _ := defaults.TopicDefault(d.Name); return v }
	table("Topic", "Set at CreateTopics or with (Incremental)AlterConfigs on the TOPIC resource (`shoal topic alter`).", TopicDefs, topicDefault)
	groupDefault := func(d Def) string { return defaults.EffectiveGroupConfig(nil)[d.Name].Value }
	table("Group", "Set with IncrementalAlterConfigs on the GROUP resource (`shoal share config`).", GroupDefs, groupDefault)
	b.WriteString("## Kafka keys that configure nothing here\n\nAccepted in `server.properties` and `--set` (the `ssl.*` and `sasl.*` ones also per listener) so that a Kafka broker's file starts unchanged; `shoal serve` logs each one as ignored.\n\n")
	ignored := slices.Sorted(maps.Keys(kafkaOnlyKeys))
	for _, k := range ignored {
		fmt.Fprintf(&b, "- `%s`\n", k)
	}
	return b.String()
}

func dynamicList() string {
	var out []string
	for _, k := range DynamicBrokerKeys() {
		out = append(out, "`"+k+"`")
	}
	return strings.Join(out, ", ")
}

func dynamicSSLList() string {
	var out []string
	for _, k := range DynamicSSLKeys {
		out = append(out, "`"+k+"`")
	}
	return strings.Join(out, ", ")
}

func typeName(t Type) string {
	return map[Type]string{Boolean: "boolean", String: "string", Int: "int", Short: "short", Long: "long", Double: "double", List: "list", Class: "class", Password: "password"}[t]
}

func TestConfigurationDocs(t *testing.T) {
	const path = "../docs/configuration.md"
	want := renderDocs()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run TestConfigurationDocs -update-docs)", err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is out of date: run go test ./config -run TestConfigurationDocs -update-docs")
	}
}
