package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceFileConsume(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 2)

	input := "k1:v1\nk2:v2:with:colons\nno-key-here\nk4:\n:v5\r\n"
	path := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(path, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ok(t, "produce", name, "--file", path, "--key-separator", ":",
		"--header", "source=file", "--header", "n=1", "--partition", "1")
	if !strings.Contains(r.stderr, "produced 5 records") || !strings.Contains(r.stderr, "0 failed") {
		t.Fatalf("produce summary: %q", r.stderr)
	}

	r = ok(t, "consume", name, "--from", "earliest", "--max-records", "5",
		"--format", `%t|%p|%o|%k|%s|%h|%K|%S\n`)
	want := strings.Join([]string{
		name + "|1|0|k1|v1|source=file,n=1|2|2",
		name + "|1|1|k2|v2:with:colons|source=file,n=1|2|14",
		name + "|1|2||no-key-here|source=file,n=1|-1|11",
		name + "|1|3|k4||source=file,n=1|2|0",
		name + "|1|4||v5|source=file,n=1|0|2",
	}, "\n") + "\n"
	if r.stdout != want {
		t.Fatalf("consumed:\n%s\nwant:\n%s", r.stdout, want)
	}

	// The default format is the value and a newline; --exit-at-end stops
	// at the end without --max-records.
	r = ok(t, "consume", name, "--exit-at-end")
	if r.stdout != "v1\nv2:with:colons\nno-key-here\n\nv5\n" {
		t.Fatalf("default format: %q", r.stdout)
	}

	// Start at an offset, and N before the end.
	if r = ok(t, "consume", name, "--partition", "1", "--from", "3", "--exit-at-end", "--format", `%o `); r.stdout != "3 4 " {
		t.Fatalf("--from 3: %q", r.stdout)
	}
	if r = ok(t, "consume", name, "--from", "-2", "--exit-at-end", "--format", `%o `); r.stdout != "3 4 " {
		t.Fatalf("--from -2: %q", r.stdout)
	}
	// Partition 0 is empty.
	if r = ok(t, "consume", name, "--partition", "0", "--exit-at-end"); r.stdout != "" {
		t.Fatalf("partition 0: %q", r.stdout)
	}
	if r = ok(t, "consume", name, "--from", "latest", "--exit-at-end"); r.stdout != "" {
		t.Fatalf("--from latest --exit-at-end: %q", r.stdout)
	}

	// topic describe shows the offsets.
	d := okJSON[topicDescription](t, "--output", "json", "topic", "describe", name)
	if d.Partitions[0].HighWatermark != 0 || d.Partitions[1].HighWatermark != 5 || d.Partitions[1].LogStartOffset != 0 {
		t.Fatalf("offsets after producing: %+v", d.Partitions)
	}
	r = ok(t, "topic", "describe", name)
	if !containsLineWith(r.stdout, "1", "1", "0", "1", "1", "0", "5") {
		t.Fatalf("describe table lacks partition 1 with HW 5:\n%s", r.stdout)
	}
}

func TestProduceStdinOptions(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 3)
	var want []string
	for _, c := range []struct{ acks, compression string }{
		{"all", "none"}, {"1", "gzip"}, {"all", "snappy"}, {"1", "lz4"}, {"all", "zstd"}, {"0", "none"},
	} {
		var in strings.Builder
		for i := 0; i < 20; i++ {
			line := c.compression + "-" + c.acks + "-" + itoa(int64(i))
			in.WriteString(line + "\n")
			want = append(want, line)
		}
		r := shoalIn(t, in.String(), "--bootstrap-server", brokerAddr, "produce", name, "--acks", c.acks, "--compression", c.compression)
		if r.code != 0 || !strings.Contains(r.stderr, "produced 20 records") {
			t.Fatalf("produce --acks %s --compression %s: exit %d: %s", c.acks, c.compression, r.code, r.stderr)
		}
	}
	// acks=0 records are not acknowledged, so wait for them to land
	// before reading up to the end.
	_, adm := testAdmin(t)
	deadline := time.Now().Add(cmdTimeout)
	for {
		ends, err := adm.ListEndOffsets(testCtx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadmListedOffset) { total += o.Offset })
		if total == int64(len(want)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records arrived", total, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := ok(t, "consume", name, "--exit-at-end")
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("consumed %d records %v\nwant %d %v", len(got), got, len(want), want)
	}
}

func TestConsumeFromTime(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 2)
	now := time.Now()
	var recs []*kgo.Record
	for i, c := range []struct {
		ago   time.Duration
		value string
	}{
		{2 * time.Hour, "old-a"}, {2 * time.Hour, "old-b"}, {90 * time.Minute, "old-c"},
		{10 * time.Minute, "new-a"}, {10 * time.Minute, "new-b"}, {time.Minute, "new-c"},
	} {
		recs = append(recs, &kgo.Record{Topic: name, Partition: int32(i % 2), Value: []byte(c.value), Timestamp: now.Add(-c.ago)})
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	// One record per produce call, so each is its own batch and the
	// timestamp lookup has to pick a batch, not just a partition.
	for _, r := range recs {
		if err := pcl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	check := func(from string, want ...string) {
		t.Helper()
		r := ok(t, "consume", name, "--from", from, "--exit-at-end")
		got := strings.Fields(r.stdout)
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("--from %s: got %v, want %v", from, got, want)
		}
	}
	check("-1h", "new-a", "new-b", "new-c")
	check("-100m", "old-c", "new-a", "new-b", "new-c")
	check("-5m", "new-c")
	check("-3h", "old-a", "old-b", "old-c", "new-a", "new-b", "new-c")
	check("@"+itoa(now.Add(-30*time.Minute).UnixMilli()), "new-a", "new-b", "new-c")
	check("@"+now.Add(-30*time.Minute).UTC().Format(time.RFC3339), "new-a", "new-b", "new-c")
	check("@" + itoa(now.Add(time.Hour).UnixMilli()))

	// %T prints the record's own timestamp.
	r := ok(t, "consume", name, "--from", "-5m", "--exit-at-end", "--format", `%T`)
	if r.stdout != itoa(now.Add(-time.Minute).UnixMilli()) {
		t.Fatalf("%%T = %s, want %d", r.stdout, now.Add(-time.Minute).UnixMilli())
	}
}

// TestConsumeFollow checks that consume without --exit-at-end waits for new
// records, stops at --max-records, and exits cleanly on SIGINT.
func TestConsumeFollow(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 1)

	cmd := exec.Command(shoalBin, "--bootstrap-server", brokerAddr, "consume", name, "--max-records", "2", "--format", `%k=%s\n`)
	cmd.Env = testEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	cl, _ := testAdmin(t)
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: name, Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	timeout := time.After(cmdTimeout)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			got = append(got, l)
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("consume --max-records 2 did not exit; printed %v", got)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume: %v: %s", err, stderr.String())
	}
	if strings.Join(got, ",") != "k=a,k=b" {
		t.Fatalf("printed %v, want k=a,k=b", got)
	}

	// Following an idle topic until SIGINT.
	follow := startShoal(t, "consume", name, "--from", "latest")
	select {
	case err := <-follow.exited:
		t.Fatalf("consume exited on its own: %v: %s", err, follow.stderr.String())
	case <-time.After(500 * time.Millisecond): // it is following
	}
	follow.interrupt(t)
}

// TestProduceReportsFailures checks that every failed record is reported
// with its line and that the exit status says so.
func TestProduceReportsFailures(t *testing.T) {
	name := topicName(t, "t")
	createTopic(t, name, 1, "max.message.bytes=200")
	big := strings.Repeat("x", 1000)
	r := shoalIn(t, big+"\n"+big+"\n"+big+"\n", "--bootstrap-server", brokerAddr, "produce", name)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailure, r.stderr)
	}
	for _, want := range []string{
		"line 1: record failed: MESSAGE_TOO_LARGE",
		"line 2: record failed: MESSAGE_TOO_LARGE",
		"line 3: record failed: MESSAGE_TOO_LARGE",
		"produced 0 records",
		"3 failed",
		"shoal: produce: 3 of 3 records failed",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// Small records still go through.
	if r := shoalIn(t, "small\n", "--bootstrap-server", brokerAddr, "produce", name); r.code != 0 {
		t.Fatalf("small record: exit %d: %s", r.code, r.stderr)
	}
}

// TestFlagForms checks short aliases and flags after positional arguments,
// and that repeatable key=value flags keep commas in their values.
func TestFlagForms(t *testing.T) {
	name := topicName(t, "t")
	ok(t, "topic", "create", name, "-p", "1", "-c", "cleanup.policy=compact,delete", "--config=retention.ms=5000000")
	wantConfig(t, name, "cleanup.policy", "compact,delete")
	wantConfig(t, name, "retention.ms", "5000000")

	r := shoalIn(t, "k:v\n", "--bootstrap-server", brokerAddr, "produce", name, "-K", ":", "-H", "list=a,b,c", "--header=x=y")
	if r.code != 0 {
		t.Fatalf("produce: %s", r.stderr)
	}
	for _, args := range [][]string{
		{"consume", name, "-e", "-F", `%k %s %h\n`},
		{"consume", "-e", "-F", `%k %s %h\n`, name},
		{"consume", name, "--exit-at-end=true", "--format=%k %s %h\\n"},
		{"consume", name, "-o", "earliest", "-n", "1", "--format", `%k %s %h\n`},
	} {
		if r := ok(t, args...); r.stdout != "k v list=a,b,c,x=y\n" {
			t.Errorf("%v: %q", args, r.stdout)
		}
	}
	// --output json prints JSON records: a --format beside it is a
	// contradiction, not silently ignored.
	fails(t, shoal(t, "consume", name, "--output", "json", "-n", "1", "--format", `%k %s %h\n`), "not both")
	// A "--" after the topic ends the flags.
	fails(t, shoal(t, "consume", name, "--", "-e"), "expected one topic name")
}
