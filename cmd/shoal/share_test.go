package main

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// shareStart is the share group's start offset per partition of topic.
func shareStart(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ds, err := adm.DescribeShareGroupOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for p, o := range ds[group].Offsets[topic] {
		if o.Err == nil && o.StartOffset >= 0 {
			out[p] = o.StartOffset
		}
	}
	return out
}

func TestShareDescribeResetDelete(t *testing.T) {
	topic, group, adm := groupTopic(t, 6, 4)

	r := ok(t, "share", "config", group, "--set", "share.auto.offset.reset=earliest", "--set", "share.record.lock.duration.ms=15000")
	if !containsLineWith(r.stdout, "share.auto.offset.reset", "earliest", "GROUP_CONFIG") ||
		!containsLineWith(r.stdout, "share.record.lock.duration.ms", "15000") {
		t.Fatalf("share config:\n%s", r.stdout)
	}
	fails(t, shoal(t, "share", "config", group, "--set", "share.auto.offset.reset=sometimes"), "share.auto.offset.reset")

	// A kgo share consumer reads and accepts every record.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ClientID("share-test"),
		kgo.ShareGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	seen := map[string]bool{}
	for len(seen) < 10 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("received %d of 10 records: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(rune('0'+r.Partition))+string(r.Value)] = true })
		cl.MarkAcks(kgo.AckAccept)
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}

	d := okJSON[shareDescription](t, "--output", "json", "share", "describe", group)
	if len(d.Members) != 1 || d.Members[0].ClientID != "share-test" {
		t.Fatalf("members: %+v", d.Members)
	}
	if a := formatAssignment(d.Members[0].Assignment); a != topic+":0,1" {
		t.Fatalf("assignment %q", a)
	}
	if len(d.Offsets) != 2 || d.TotalLag != 0 {
		t.Fatalf("offsets: %+v", d.Offsets)
	}
	for _, o := range d.Offsets {
		end := map[int32]int64{0: 6, 1: 4}[o.Partition]
		if o.StartOffset != end || o.LogEnd != end || o.Lag != 0 {
			t.Fatalf("partition %d: %+v, want start = end = %d, lag 0", o.Partition, o, end)
		}
	}
	r = ok(t, "share", "describe", group)
	if !strings.Contains(r.stdout, "share-test") || !containsLineWith(r.stdout, topic, "0", "6", "6", "0") {
		t.Fatalf("share describe table:\n%s", r.stdout)
	}
	if r = ok(t, "share", "list"); !containsLineWith(r.stdout, group, "share") {
		t.Fatalf("share list:\n%s", r.stdout)
	}
	if r = ok(t, "group", "list", "--type", "share"); !containsLineWith(r.stdout, group, "share") {
		t.Fatalf("group list --type share:\n%s", r.stdout)
	}
	fails(t, shoal(t, "share", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"), "not empty")
	cl.Close()

	// Dry run: the plan, no change.
	r = ok(t, "share", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run")
	if !containsLineWith(r.stdout, group, topic, "0", "6", "0") || !strings.Contains(r.stdout, "dry run") {
		t.Fatalf("dry run:\n%s", r.stdout)
	}
	wantOffsets(t, "after dry run", shareStart(t, adm, group, topic), map[int32]int64{0: 6, 1: 4})

	ok(t, "share", "reset-offsets", group, "--topic", topic, "--to-offset", "2", "--partition", "0", "--execute")
	wantOffsets(t, "after --to-offset", shareStart(t, adm, group, topic), map[int32]int64{0: 2, 1: 4})
	d = okJSON[shareDescription](t, "--output", "json", "share", "describe", group)
	if d.TotalLag != 4 {
		t.Fatalf("lag after reset: %+v", d.Offsets)
	}
	// The group redelivers from the new start offset.
	r = ok(t, "consume", topic, "--share-group", group, "--max-records", "4", "--format", `%p/%o `)
	if r.stdout != "0/2 0/3 0/4 0/5 " {
		t.Fatalf("consume after reset: %q", r.stdout)
	}

	ok(t, "share", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
	wantOffsets(t, "after --to-earliest", shareStart(t, adm, group, topic), map[int32]int64{0: 0, 1: 0})

	r = ok(t, "share", "delete", group, "--topic", topic)
	if !strings.Contains(r.stdout, "deleted the offsets") {
		t.Fatalf("delete --topic: %s", r.stdout)
	}
	wantOffsets(t, "after delete --topic", shareStart(t, adm, group, topic), map[int32]int64{})
	ok(t, "share", "delete", group)
	if r = ok(t, "share", "list"); containsLineWith(r.stdout, group) {
		t.Fatalf("share group still listed:\n%s", r.stdout)
	}
}

func TestConsumeShareGroup(t *testing.T) {
	topic, group, adm := groupTopic(t, 8)
	ok(t, "share", "config", group, "--set", "share.auto.offset.reset=earliest")

	r := ok(t, "consume", topic, "--share-group", group, "--max-records", "3", "--format", `%o:%s\n`)
	if r.stdout != "0:v0\n1:v1\n2:v2\n" {
		t.Fatalf("first run: %q", r.stdout)
	}
	wantOffsets(t, "after 3 accepted", shareStart(t, adm, group, topic), map[int32]int64{0: 3})

	// Records fetched but not printed were released, not accepted: the
	// next run gets them.
	r = ok(t, "consume", topic, "--share-group", group, "--max-records", "5", "--format", `%o `)
	if r.stdout != "3 4 5 6 7 " {
		t.Fatalf("second run: %q", r.stdout)
	}
	wantOffsets(t, "after all accepted", shareStart(t, adm, group, topic), map[int32]int64{0: 8})
	d := okJSON[shareDescription](t, "--output", "json", "share", "describe", group)
	if len(d.Offsets) != 1 || d.Offsets[0].Lag != 0 {
		t.Fatalf("describe after consume: %+v", d.Offsets)
	}

	fails(t, shoal(t, "consume", topic, "--share-group", group, "--from", "earliest"), "share.auto.offset.reset")
	fails(t, shoal(t, "consume", topic, "--share-group", group, "--exit-at-end"), "--max-records")
	fails(t, shoal(t, "consume", "no-such-topic-"+topic, "--share-group", group, "--max-records", "1"), "does not exist")
}

// TestShareConfigParityKeys sets the KIP-1240, KIP-1206, KIP-1191 and
// read_committed group configs with shoal share config, reads them back as
// JSON with their source, and sees a value outside the broker's limits
// refused with a message naming the limit.
func TestShareConfigParityKeys(t *testing.T) {
	group := groupName(t)
	sets := map[string]string{
		"share.delivery.count.limit":                "3",
		"share.partition.max.record.locks":          "500",
		"share.renew.acknowledge.enable":            "false",
		"share.acquire.mode":                        "record_limit",
		"share.isolation.level":                     "read_committed",
		"share.auto.offset.reset":                   "by_duration:PT30M",
		"errors.deadletterqueue.topic.name":         "dlq.jobs",
		"errors.deadletterqueue.copy.record.enable": "true",
	}
	args := []string{"--output", "json", "share", "config", group}
	for k, v := range sets {
		args = append(args, "--set", k+"="+v)
	}
	type configs struct {
		Group   string             `json:"group"`
		Configs []groupConfigEntry `json:"configs"`
	}
	got := map[string]groupConfigEntry{}
	for _, e := range okJSON[configs](t, args...).Configs {
		got[e.Name] = e
	}
	for k, v := range sets {
		if e := got[k]; e.Value != v || e.Source != "GROUP_CONFIG" {
			t.Errorf("%s: %+v, want %s from GROUP_CONFIG", k, e, v)
		}
	}
	// The defaults of a group that sets nothing.
	other := map[string]groupConfigEntry{}
	for _, e := range okJSON[configs](t, "--output", "json", "share", "config", group+"-other").Configs {
		other[e.Name] = e
	}
	for k, v := range map[string]string{
		"share.renew.acknowledge.enable": "true", "share.acquire.mode": "batch_optimized",
		"share.partition.max.record.locks": "2000", "errors.deadletterqueue.copy.record.enable": "false",
	} {
		if other[k].Value != v {
			t.Errorf("default %s: %+v, want %s", k, other[k], v)
		}
	}
	fails(t, shoal(t, "share", "config", group, "--set", "share.delivery.count.limit=11"), "group.share.max.delivery.count.limit")
	fails(t, shoal(t, "share", "config", group, "--set", "share.partition.max.record.locks=50"), "share.partition.max.record.locks")
	if r := ok(t, "share", "config", "--help"); !strings.Contains(r.stdout, "share.acquire.mode") || !strings.Contains(r.stdout, "errors.deadletterqueue.copy.record.enable") {
		t.Errorf("share config --help does not name the new configs:\n%s", r.stdout)
	}
}
