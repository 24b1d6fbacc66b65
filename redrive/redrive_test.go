package redrive

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A dead letter parses with Kafka's header names or shoal's older ones,
// keeps only its own headers, and redrives to its source partition; one
// with neither key, value nor own headers is header-only.
func TestParseAndRecord(t *testing.T) {
	dlqHeaders := func(group string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: "__dlq.errors.topic", Value: []byte("jobs")},
			{Key: "__dlq.errors.partition", Value: []byte("3")},
			{Key: "__dlq.errors.offset", Value: []byte("42")},
			{Key: group, Value: []byte("g")},
			{Key: "__dlq.errors.reason", Value: []byte("rejected")},
		}
	}
	copied := &kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: append([]kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}, dlqHeaders("__dlq.errors.group")...)}
	l, err := Parse(copied)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Copied || l.Group != "g" || l.SourceOffset != 42 || len(l.Headers) != 1 {
		t.Fatalf("parsed %+v", l)
	}
	out := record(l, "")
	if out.Topic != "jobs" || out.Partition != 3 || string(out.Key) != "k" || string(out.Value) != "v" ||
		len(out.Headers) != 1 || out.Headers[0].Key != "trace" {
		t.Fatalf("redriven record %+v", out)
	}

	headerOnly, err := Parse(&kgo.Record{Headers: dlqHeaders("__dlq.errors.group.id")})
	if err != nil || headerOnly.Copied || headerOnly.Group != "g" {
		t.Fatalf("header-only dead letter %+v %v", headerOnly, err)
	}

	for _, bad := range [][]kgo.RecordHeader{
		nil,
		{{Key: "__dlq.errors.topic", Value: []byte("jobs")}},
		{{Key: "__dlq.errors.topic", Value: []byte("jobs")}, {Key: "__dlq.errors.partition", Value: []byte("x")}},
	} {
		if _, err := Parse(&kgo.Record{Headers: bad}); err == nil {
			t.Errorf("headers %v: parsed as a dead letter", bad)
		}
	}
}
