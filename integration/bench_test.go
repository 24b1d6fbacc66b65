package integration

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench"
	"github.com/shoalmq/shoal/bench/baseline"
)

// TestBenchAgainstKfake is the whole-system benchmark: the same franz-go
// workloads against a real shoal process (writing to disk) and against
// franz-go's kfake broker (in a process of its own), in one run, with the ratio printed.
// It takes minutes and a quiet machine, so it runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestBenchAgainstKfake -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS scales the produce/consume workload (default 1,000,000)
// and SHOAL_BENCH_SET adds one broker setting (e.g. log.flush.interval.messages=1).
func TestBenchAgainstKfake(t *testing.T) {
	skipUnlessBench(t, "the whole-system benchmark")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 1_000_000)
	set := benchSettings()
	n := startNode(t, nodeOpts{set: set, noAdmin: true})
	base := startKfake(t, 8)

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmp, err := bench.Compare(ctx, base, []string{n.Addr()}, bench.Options{
		Partitions: 8,
		Records:    records,
		RecordSize: 1024,
		Linger:     5 * time.Millisecond,
		Rate:       5000,
		Duration:   10 * time.Second,
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Target.Produce.Records != int64(records) || cmp.Target.Consume.Records != int64(records) {
		t.Fatalf("shoal moved %d/%d records, want %d", cmp.Target.Produce.Records, cmp.Target.Consume.Records, records)
	}
}

// skipUnlessBench skips a whole-system benchmark unless SHOAL_BENCH=1: they
// take minutes and want a quiet machine.
func skipUnlessBench(t *testing.T, what string) {
	if os.Getenv("SHOAL_BENCH") != "1" {
		t.Skip("set SHOAL_BENCH=1 to run " + what)
	}
}

// benchEnvInt is the integer in environment variable name, or def when it
// is not set.
func benchEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// startKfake runs the kfake baseline in a process of its own, as shoal runs,
// with topics of the given number of partitions; it stops with the test.
func startKfake(t *testing.T, partitions int) []string {
	t.Helper()
	addrs, stop, err := baseline.StartKfakeProcess(kfakeBin, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addrs
}

// benchSettings is base plus the one broker setting SHOAL_BENCH_SET names,
// if any.
func benchSettings(base ...string) []string {
	set := slices.Clone(base)
	if v := os.Getenv("SHOAL_BENCH_SET"); v != "" {
		set = append(set, v)
	}
	return set
}
