package raftmeta

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A broker config change is logged with its sensitive values hidden: a key
// password set at runtime must not end up in the controller's log.
func TestLogChangeHidesSensitiveBrokerConfigs(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	r := &AlterBrokerConfigs{Broker: "1", Set: map[string]string{
		"listener.name.ssl.ssl.key.password":      "key-secret",
		"listener.name.ssl.ssl.keystore.location": "/etc/ks.pem",
	}}
	logChange(l, newImage("c"), r, func(k string) bool { return strings.HasSuffix(k, ".password") })
	out := buf.String()
	if strings.Contains(out, "key-secret") || !strings.Contains(out, "listener.name.ssl.ssl.key.password=[hidden]") || !strings.Contains(out, "/etc/ks.pem") {
		t.Fatalf("logged %s", out)
	}
	if r.Set["listener.name.ssl.ssl.key.password"] != "key-secret" {
		t.Fatal("hiding the value changed the record")
	}
}
