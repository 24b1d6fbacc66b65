package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "create"}, "missing topic name"},
		{[]string{"topic", "create", "x", "--partitions", "abc"}, `--partitions: "abc" is not an integer`},
		{[]string{"topic", "create", "--partitions", "abc", "x"}, `--partitions: "abc" is not an integer`},
		{[]string{"topic", "create", "x", "--replication-factor", "0"}, "--replication-factor"},
		{[]string{"topic", "create", "x", "--config", "novalue"}, "is not key=value"},
		{[]string{"topic", "create", "x", "--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"topic", "create", "--bogus", "x"}, "flag provided but not defined"},
		{[]string{"topic", "create", "a", "b"}, "expected one topic name"},
		{[]string{"topic", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"topic", "add-partitions", name}, "--total N is required"},
		{[]string{"topic", "describe"}, "missing topic name"},
		{[]string{"--output", "yaml", "topic", "list"}, `--output: "yaml"`},
		{[]string{"consume"}, "expected one topic name"},
		{[]string{"consume", name, "--from", "yesterday"}, "--from"},
		{[]string{"consume", name, "--from", "-1x"}, "--from"},
		{[]string{"consume", name, "--format", "%z"}, "unknown directive %z"},
		{[]string{"consume", name, "--max-records", "0"}, "--max-records"},
		{[]string{"consume", name, "--partition", "x"}, "--partition"},
		{[]string{"produce", name, "--acks", "2"}, "--acks"},
		{[]string{"produce", name, "--compression", "brotli"}, "--compression"},
		{[]string{"produce", name, "--header", "nokv"}, "--header"},
		{[]string{"log", "dump"}, "missing PATH"},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--bogus", "topic", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"bench", "produce", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"consume", name, "--format", "json"}, "--format"},
	} {
		start := time.Now()
		r := shoal(t, c.args...)
		fails(t, r, c.want)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", c.args, r.code, exitUsage)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%v: took %s", c.args, time.Since(start))
		}
	}
}

func TestOperationErrors(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 2)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", "no-such-topic", "--exit-at-end"}, `topic "no-such-topic" does not exist`},
		{[]string{"produce", name, "--partition", "7"}, "has no partition 7"},
		{[]string{"consume", name, "--partition", "7"}, "has no partition 7"},
		{[]string{"produce", name, "--file", filepath.Join(t.TempDir(), "none.txt")}, "no such file"},
		{[]string{"topic", "describe", "no-such-topic"}, "does not exist"},
		{[]string{"topic", "alter", "no-such-topic", "--set", "retention.ms=1"}, "does not exist"},
	} {
		r := shoal(t, c.args...)
		fails(t, r, c.want)
		if r.code != exitFailure {
			t.Errorf("%v: exit %d, want %d", c.args, r.code, exitFailure)
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	for _, args := range [][]string{
		{"cluster", "describe"},
		{"topic", "list"},
		{"topic", "create", "x"},
		{"topic", "describe", "x"},
		{"consume", "x"},
		{"produce", "x"},
	} {
		r := shoalIn(t, "a\n", append([]string{"--bootstrap-server", "127.0.0.1:1"}, args...)...)
		fails(t, r, "cannot reach broker at 127.0.0.1:1")
		if r.took > 10*time.Second {
			t.Errorf("%v: took %s to fail", args, r.took)
		}
	}
	// A malformed address is reported before any connection attempt.
	r := shoalIn(t, "", "--bootstrap-server", "not-an-address", "topic", "list")
	fails(t, r, "is not host:port")
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"topic", "create", "--help"},
		{"topic", "list", "--help"},
		{"topic", "describe", "--help"},
		{"topic", "alter", "--help"},
		{"topic", "add-partitions", "--help"},
		{"topic", "delete", "--help"},
		{"produce", "--help"},
		{"consume", "--help"},
		{"cluster", "describe", "--help"},
		{"log", "dump", "--help"},
		{"topic", "create", "x", "--help"},
	} {
		r := shoalIn(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "shoal ") || !strings.Contains(strings.ToLower(r.stdout), "usage") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "--output value") || strings.Contains(r.stdout, "--bootstrap-server value") {
			t.Errorf("%v: help shows the hidden copy of a global flag:\n%s", args, r.stdout)
		}
	}
}
