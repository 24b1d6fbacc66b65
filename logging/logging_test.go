package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevels(t *testing.T) {
	lv, err := ParseLevels("warn, request=debug ,raftmeta=INFO")
	if err != nil {
		t.Fatal(err)
	}
	if lv.Default != slog.LevelWarn || lv.Components["request"] != slog.LevelDebug || lv.Components["raftmeta"] != slog.LevelInfo {
		t.Fatalf("parsed %+v", lv)
	}
	if lv, err := ParseLevels(""); err != nil || lv.Default != slog.LevelInfo {
		t.Fatalf("empty: %+v %v", lv, err)
	}
	for _, bad := range []string{"loud", "info,debug", "=debug", "request=verbose"} {
		if _, err := ParseLevels(bad); err == nil {
			t.Errorf("ParseLevels(%q) accepted", bad)
		}
	}
}

// TestComponentLevels: a component's own level applies to its logger and
// the loggers derived from it; others keep the default.
func TestComponentLevels(t *testing.T) {
	lv, _ := ParseLevels("warn,request=debug")
	var buf bytes.Buffer
	l, err := New(&buf, "json", lv)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped: default is warn")
	l.Warn("kept: default")
	req := l.With(ComponentKey, "request")
	req.With("remote", "x").Debug("kept: request debug")
	l.With(ComponentKey, "raftmeta").Info("dropped: raftmeta at default")
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		msgs = append(msgs, m["msg"].(string))
	}
	if strings.Join(msgs, "|") != "kept: default|kept: request debug" {
		t.Fatalf("logged %q", msgs)
	}
	if _, err := New(&buf, "xml", lv); err == nil {
		t.Fatal("log format xml accepted")
	}
}
