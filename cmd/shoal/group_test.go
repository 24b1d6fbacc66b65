package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceTo writes n records with values "v0".."v(n-1)" to one partition.
func produceTo(t *testing.T, topic string, partition int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v" + strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedOffsets is the group's committed offset per partition of topic.
func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	os, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

func wantOffsets(t *testing.T, what string, got map[int32]int64, want map[int32]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: committed %v, want %v", what, got, want)
	}
	for p, o := range want {
		if got[p] != o {
			t.Fatalf("%s: committed %v, want %v", what, got, want)
		}
	}
}

func groupName(t *testing.T) string {
	return topicName(t, "g")
}

// groupTopic creates a topic for the test with a partition per count,
// writes that many records to each (produceTo), and returns it with a
// group name for the test and an admin client.
func groupTopic(t *testing.T, counts ...int) (topic, group string, adm *kadm.Client) {
	t.Helper()
	topic, group = topicName(t, "t"), groupName(t)
	createTopic(t, topic, len(counts))
	for p, n := range counts {
		produceTo(t, topic, int32(p), n)
	}
	_, adm = testAdmin(t)
	return topic, group, adm
}

func TestGroupDescribeResetDelete(t *testing.T) {
	topic, group, adm := groupTopic(t, 10, 5)

	// A kgo group member reads everything and commits 6 on partition 0
	// and 3 on partition 1.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ClientID("lag-test"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	seen := 0
	for seen < 15 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 15 records: %v", seen, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("poll: %v", err) })
		seen += fs.NumRecords()
	}
	cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{
		topic: {0: {Epoch: -1, Offset: 6}, 1: {Epoch: -1, Offset: 3}},
	}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if err == nil {
						err = kerr.ErrorForCode(rp.ErrorCode)
					}
				}
			}
		}
		if err != nil {
			t.Errorf("commit: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	r := ok(t, "group", "list")
	if !containsLineWith(r.stdout, group) {
		t.Fatalf("group list lacks %s:\n%s", group, r.stdout)
	}
	g := okJSONListed(t, func(g listedGroup) bool { return g.Group == group }, "--output", "json", "group", "list")
	if g.Type != "classic" && g.Type != "consumer" {
		t.Fatalf("group type %q", g.Type)
	}

	d := okJSON[groupDescription](t, "--output", "json", "group", "describe", group)
	if len(d.Members) != 1 || d.Members[0].ClientID != "lag-test" || d.Members[0].Host == "" {
		t.Fatalf("members: %+v", d.Members)
	}
	if a := formatAssignment(d.Members[0].Assignment); a != topic+":0,1" {
		t.Fatalf("assignment %q", a)
	}
	if len(d.Offsets) != 2 || d.TotalLag != 6 {
		t.Fatalf("offsets: %+v (total lag %d)", d.Offsets, d.TotalLag)
	}
	for _, o := range d.Offsets {
		want := map[int32][3]int64{0: {6, 10, 4}, 1: {3, 5, 2}}[o.Partition]
		if o.Committed != want[0] || o.LogEnd != want[1] || o.Lag != want[2] || o.ClientID != "lag-test" {
			t.Fatalf("partition %d: %+v, want committed/end/lag %v", o.Partition, o, want)
		}
	}
	r = ok(t, "group", "describe", group)
	if !containsLineWith(r.stdout, topic, "0", "6", "10", "4") || !containsLineWith(r.stdout, topic, "1", "3", "5", "2") {
		t.Fatalf("describe table:\n%s", r.stdout)
	}

	// --execute needs an empty group; nothing moves.
	fails(t, shoal(t, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"), "not empty")
	fails(t, shoal(t, "group", "delete", group), "not empty")
	wantOffsets(t, "after refused reset", committedOffsets(t, adm, group, topic), map[int32]int64{0: 6, 1: 3})
	cl.Close()

	// A dry run prints the plan and changes nothing.
	r = ok(t, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run")
	if !containsLineWith(r.stdout, group, topic, "0", "6", "0") || !strings.Contains(r.stdout, "dry run") {
		t.Fatalf("dry run:\n%s", r.stdout)
	}
	wantOffsets(t, "after dry run", committedOffsets(t, adm, group, topic), map[int32]int64{0: 6, 1: 3})
	// No --execute is a dry run too.
	ok(t, "group", "reset-offsets", group, "--topic", topic, "--to-latest")
	wantOffsets(t, "after implicit dry run", committedOffsets(t, adm, group, topic), map[int32]int64{0: 6, 1: 3})

	ok(t, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
	wantOffsets(t, "after --to-earliest", committedOffsets(t, adm, group, topic), map[int32]int64{0: 0, 1: 0})
	ok(t, "group", "reset-offsets", group, "--topic", topic, "--partition", "1", "--to-offset", "4", "--execute")
	wantOffsets(t, "after --to-offset", committedOffsets(t, adm, group, topic), map[int32]int64{0: 0, 1: 4})
	// Offsets past the end are clamped to it, as in Kafka.
	ok(t, "group", "reset-offsets", group, "--topic", topic, "--to-offset", "99", "--execute")
	wantOffsets(t, "after clamped --to-offset", committedOffsets(t, adm, group, topic), map[int32]int64{0: 10, 1: 5})
	// Every record is less than an hour old: --by-duration 1h is the start.
	ok(t, "group", "reset-offsets", group, "--topic", topic, "--by-duration", "1h", "--execute")
	wantOffsets(t, "after --by-duration", committedOffsets(t, adm, group, topic), map[int32]int64{0: 0, 1: 0})
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	res := okJSON[resetResult](t, "--output", "json", "group", "reset-offsets", group, "--topic", topic, "--to-datetime", future, "--execute")
	if !res.Executed || len(res.Plan) != 2 {
		t.Fatalf("json reset: %+v", res)
	}
	wantOffsets(t, "after --to-datetime", committedOffsets(t, adm, group, topic), map[int32]int64{0: 10, 1: 5})

	// Bad command lines.
	fails(t, shoal(t, "group", "reset-offsets", group, "--topic", topic), "--to-earliest")
	fails(t, shoal(t, "group", "reset-offsets", group, "--to-earliest"), "--topic is required")
	fails(t, shoal(t, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--to-latest"), "only one")
	fails(t, shoal(t, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run", "--execute"), "not both")
	fails(t, shoal(t, "group", "describe", "no-such-group-"+group), "does not exist")

	r = ok(t, "group", "delete", group)
	if !strings.Contains(r.stdout, "deleted group") {
		t.Fatalf("delete: %s", r.stdout)
	}
	if r = ok(t, "group", "list"); containsLineWith(r.stdout, group) {
		t.Fatalf("group still listed after delete:\n%s", r.stdout)
	}
	fails(t, shoal(t, "group", "delete", group), fmt.Sprintf("group %q does not exist", group))
}

func TestConsumeGroup(t *testing.T) {
	topic, group, adm := groupTopic(t, 10)

	r := ok(t, "consume", topic, "--group", group, "--max-records", "4", "--format", `%o:%s\n`)
	if r.stdout != "0:v0\n1:v1\n2:v2\n3:v3\n" {
		t.Fatalf("first run: %q", r.stdout)
	}
	wantOffsets(t, "after 4 records", committedOffsets(t, adm, group, topic), map[int32]int64{0: 4})

	// The next member of the group resumes at the committed offset.
	r = ok(t, "consume", topic, "--group", group, "--exit-at-end", "--format", `%o `)
	if r.stdout != "4 5 6 7 8 9 " {
		t.Fatalf("second run: %q", r.stdout)
	}
	wantOffsets(t, "after the rest", committedOffsets(t, adm, group, topic), map[int32]int64{0: 10})

	// Nothing left: --exit-at-end returns at once.
	if r = ok(t, "consume", topic, "--group", group, "--exit-at-end"); r.stdout != "" {
		t.Fatalf("third run: %q", r.stdout)
	}
	// --from latest applies only without a committed offset.
	other := group + "-latest"
	if r = ok(t, "consume", topic, "--group", other, "--from", "latest", "--exit-at-end"); r.stdout != "" {
		t.Fatalf("--from latest: %q", r.stdout)
	}

	fails(t, shoal(t, "consume", topic, "--group", group, "--from", "5"), "earliest or latest")
	fails(t, shoal(t, "consume", topic, "--group", group, "--partition", "0"), "--partition")
	fails(t, shoal(t, "consume", topic, "--group", group, "--share-group", group), "not both")

	d := okJSON[groupDescription](t, "--output", "json", "group", "describe", group)
	if len(d.Offsets) != 1 || d.Offsets[0].Committed != 10 || d.Offsets[0].Lag != 0 {
		t.Fatalf("describe after consume: %+v", d.Offsets)
	}
}
