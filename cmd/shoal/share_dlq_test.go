package main

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/redrive"
)

// TestShareDLQListShowRedrive dead-letters four records through a share
// group (rejected by a consumer), lists and shows them with the CLI, and
// redrives them back to their topic in two selections. A rerun of a
// redrive, and a redrive of everything afterwards, produce nothing twice:
// the source topic grows by exactly the four records.
func TestShareDLQListShowRedrive(t *testing.T) {
	topic := topicName(t, "t")
	dlq := "dlq." + topic
	group := groupName(t)
	createTopic(t, topic, 1)
	createTopic(t, dlq, 1, "errors.deadletterqueue.group.enable=true")
	ok(t, "share", "config", group, "--set", "share.auto.offset.reset=earliest", "--set", "errors.deadletterqueue.topic.name="+dlq,
		"--set", "errors.deadletterqueue.copy.record.enable=true")

	cl, adm := testAdmin(t)
	ctx := testCtx(t)
	var recs []*kgo.Record
	for i, kind := range []string{"a", "b", "a", "b"} {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k" + itoa(int64(i))), Value: []byte("job-" + itoa(int64(i))),
			Headers: []kgo.RecordHeader{{Key: "kind", Value: []byte(kind)}}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// A share consumer rejects every record.
	sc, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ShareGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for got := 0; got < len(recs); {
		fs := sc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("received %d of %d records: %v", got, len(recs), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got++; sc.MarkAcks(kgo.AckReject, r) })
	}
	if err := sc.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	endOf := func(name string) int64 {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup(name, 0)
		return o.Offset
	}
	// records reads a topic's committed records (transaction markers
	// skipped) up to its end offset.
	records := func(name string) []*kgo.Record {
		t.Helper()
		end := endOf(name)
		rd, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{name: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var out []*kgo.Record
		for next := int64(0); next < end; {
			fs := rd.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("reading %s: at %d of %d", name, next, end)
			}
			fs.EachRecord(func(r *kgo.Record) {
				next = r.Offset + 1
				if !r.Attrs.IsControl() {
					out = append(out, r)
				}
			})
		}
		return out
	}
	for endOf(dlq) < int64(len(recs)) {
		if ctx.Err() != nil {
			t.Fatalf("the dead-letter topic has %d of %d records", endOf(dlq), len(recs))
		}
	}

	letters := okJSON[[]redrive.Letter](t, "--output", "json", "share", "dlq", "list", dlq)
	if len(letters) != len(recs) {
		t.Fatalf("listed %d dead letters, want %d: %+v", len(letters), len(recs), letters)
	}
	for i, l := range letters {
		if l.SourceTopic != topic || l.SourcePartition != 0 || l.SourceOffset != int64(i) || l.Group != group ||
			l.Reason != "rejected" || l.DeliveryCount != 1 || string(l.Value) != "job-"+itoa(int64(i)) || l.Redriven != "" {
			t.Fatalf("dead letter %d: %+v", i, l)
		}
	}
	r := ok(t, "share", "dlq", "list", dlq, "--header", "kind=b")
	if !containsLineWith(r.stdout, "0", "1", topic+"/0@1", group, "1", "rejected", "-", "k1") ||
		!containsLineWith(r.stdout, "0", "3", topic+"/0@3") || containsLineWith(r.stdout, "0", "2") {
		t.Fatalf("list --header kind=b:\n%s", r.stdout)
	}
	r = ok(t, "share", "dlq", "show", dlq, "0", "2")
	for _, want := range []string{topic + "/0@2", "rejected", "job-2", "kind=a"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	fails(t, shoal(t, "share", "dlq", "show", dlq, "0", "99"), "no dead letter at offset 99")

	statuses := func(rs []redrive.Result) map[int64]string {
		out := map[int64]string{}
		for _, r := range rs {
			out[r.Offset] = r.Status
		}
		return out
	}
	// A dry run changes nothing.
	dry := okJSON[[]redrive.Result](t, "--output", "json", "share", "dlq", "redrive", dlq, "--header", "kind=a")
	if s := statuses(dry); len(s) != 2 || s[0] != redrive.StatusWould || s[2] != redrive.StatusWould {
		t.Fatalf("dry run: %+v", dry)
	}
	if n := len(records(topic)); n != 4 {
		t.Fatalf("a dry run produced: %d records", n)
	}

	// Redrive kind=a, twice: the second run redrives nothing.
	for run := 0; run < 2; run++ {
		res := okJSON[[]redrive.Result](t, "--output", "json", "share", "dlq", "redrive", dlq, "--header", "kind=a", "--execute")
		want := redrive.StatusRedriven
		if run == 1 {
			want = redrive.StatusAlready
		}
		if s := statuses(res); len(s) != 2 || s[0] != want || s[2] != want {
			t.Fatalf("run %d of the kind=a redrive: %+v, want %s", run, res, want)
		}
		if n := len(records(topic)); n != 6 {
			t.Fatalf("after run %d the topic has %d records, want 6", run, n)
		}
	}
	// Everything: only the kind=b ones are new.
	r = ok(t, "share", "dlq", "redrive", dlq, "--execute")
	if !containsLineWith(r.stdout, "0", "0", topic+"/0", "already", "redriven") || !containsLineWith(r.stdout, "0", "1", topic+"/0", redrive.StatusRedriven) {
		t.Fatalf("redrive of everything:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "redrive: 4 dead letters handled") {
		t.Fatalf("no progress on stderr: %q", r.stderr)
	}
	again := records(topic)
	if len(again) != 8 {
		t.Fatalf("the topic has %d records, want 8: each dead letter redriven once", len(again))
	}
	listed := okJSON[[]redrive.Letter](t, "--output", "json", "share", "dlq", "list", dlq)
	for _, l := range listed {
		if l.Redriven != topic+"/0" {
			t.Fatalf("dead letter %d listed as redriven to %q", l.Offset, l.Redriven)
		}
	}

	// The redriven records are the originals: key, value, own headers only.
	seen := map[string]int{}
	for _, r := range again[4:] {
		seen[string(r.Value)]++
		if len(r.Headers) != 1 || r.Headers[0].Key != "kind" || !strings.HasPrefix(string(r.Value), "job-") {
			t.Fatalf("redriven record %s=%s with headers %v", r.Key, r.Value, r.Headers)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("redriven values %v, want each job once", seen)
	}
}
