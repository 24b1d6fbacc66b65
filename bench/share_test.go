package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestShareKfake(t *testing.T) {
	addrs, ctx := onKfake(t)

	var progress bytes.Buffer
	opts := volumeOptions(addrs, "bench-share-test", &progress)
	opts.Workers = 4
	res, err := Share(ctx, opts)
	if err != nil {
		t.Fatalf("share: %v", err)
	}
	checkVolume(t, "share", res)
	if res.Duplicates != 0 {
		t.Errorf("share: %d records handed out twice", res.Duplicates)
	}
	if res.Elapsed > time.Minute {
		t.Errorf("share: took %s", res.Elapsed)
	}
	if !strings.Contains(progress.String(), "share") || !strings.Contains(progress.String(), "20000/20000") {
		t.Errorf("progress output lacks a final share line:\n%s", progress.String())
	}

	// A second run drains the same records again, in a group of its own,
	// without producing more.
	again, err := Share(ctx, opts)
	if err != nil {
		t.Fatalf("second share run: %v", err)
	}
	if again.Records != 20_000 || again.Duplicates != 0 {
		t.Errorf("second share run: %d records, %d duplicates; want 20000, 0", again.Records, again.Duplicates)
	}

	// With work per record, the workers together spend at least records
	// times work before the last acknowledgement.
	opts.Records, opts.Work = 2000, time.Millisecond
	opts.Topic = "bench-share-work"
	worked, err := Share(ctx, opts)
	if err != nil {
		t.Fatalf("share with work: %v", err)
	}
	if least := time.Duration(worked.Records) * opts.Work / time.Duration(opts.Workers); worked.Records != 2000 || worked.Elapsed < least {
		t.Errorf("share with work: %d records in %s; want 2000 in at least %s", worked.Records, worked.Elapsed, least)
	}
}

func TestShareLatencyKfake(t *testing.T) {
	addrs, ctx := onKfake(t)

	var progress bytes.Buffer
	res, err := ShareLatency(ctx, Options{
		Brokers:    addrs,
		Topic:      "bench-share-latency-test",
		Partitions: 4,
		RecordSize: 1024,
		Workers:    4,
		Rate:       5000,
		Duration:   time.Second,
		Progress:   ProgressPrinter(&progress, false),
	})
	if err != nil {
		t.Fatalf("share latency: %v", err)
	}
	t.Log(res)
	if res.Records != 5000 || res.Duplicates != 0 {
		t.Errorf("share latency: %d records, %d duplicates; want 5000, 0", res.Records, res.Duplicates)
	}
	checkPercentiles(t, "share latency", res.Latency, res.Records)
	// Paced, it cannot end before the last record's slot; how much later
	// it ends depends on the machine's load, so that is not checked.
	if res.Elapsed < time.Second-time.Millisecond {
		t.Errorf("share latency: run took %s, want at least the paced 1s", res.Elapsed)
	}
	if !strings.Contains(progress.String(), "share-e2e") || !strings.Contains(progress.String(), "done") {
		t.Errorf("progress output lacks a final share-e2e line:\n%s", progress.String())
	}
}

func TestCompareShareKfake(t *testing.T) {
	base, _ := onKfake(t)
	target, ctx := onKfake(t)

	var out strings.Builder
	cmp, err := CompareShare(ctx, base, target, Options{
		Records:  5_000,
		Workers:  4,
		Rate:     2000,
		Duration: 500 * time.Millisecond,
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]ShareRun{"baseline": cmp.Baseline, "target": cmp.Target} {
		if run.Share.Records != 5_000 || run.Latency.Records != 1_000 {
			t.Errorf("%s: drained %d, e2e %d; want 5000, 1000", name, run.Share.Records, run.Latency.Records)
		}
	}
	for _, s := range []string{"share", "share-e2e", "p99 ms", "target/baseline"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
}
