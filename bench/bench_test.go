package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench/baseline"
	"github.com/shoalmq/shoal/internal/testbin"
)

// kfakeBin is the kfakeserver command, built once for the package's tests
// without the race detector. The baseline runs in a process of its own, as
// in the whole-system benchmarks: inside a test binary built with -race,
// on a loaded machine, kfake's share round trips outlasted the client's
// fetch timeout (its wait plus 5 s), and the client dropped its session.
var kfakeBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := testbin.Build("shoal-bench-test-", "github.com/shoalmq/shoal/bench/baseline/kfakeserver")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	kfakeBin = filepath.Join(dir, "kfakeserver")
	return m.Run()
}

func checkPercentiles(t *testing.T, name string, p Percentiles, count int64) {
	t.Helper()
	if p.Count != count {
		t.Errorf("%s: %d latency samples, want %d", name, p.Count, count)
	}
	if p.P50 <= 0 {
		t.Errorf("%s: p50 %s, want > 0", name, p.P50)
	}
	if !(p.P50 <= p.P90 && p.P90 <= p.P99 && p.P99 <= p.P999 && p.P999 <= p.Max) {
		t.Errorf("%s: percentiles out of order: %+v", name, p)
	}
}

// onKfake starts a kfake broker (4 partitions per auto-created topic) in a
// process of its own for the test and returns its addresses and a context
// that bounds the test to two minutes.
func onKfake(t *testing.T) ([]string, context.Context) {
	addrs, stop, err := baseline.StartKfakeProcess(kfakeBin, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return addrs, ctx
}

// volumeOptions are the options of a run of 20,000 records of 1 KiB over 4
// partitions of topic, its progress printed to progress.
func volumeOptions(addrs []string, topic string, progress *bytes.Buffer) Options {
	return Options{
		Brokers:    addrs,
		Topic:      topic,
		Partitions: 4,
		Records:    20_000,
		RecordSize: 1024,
		Progress:   ProgressPrinter(progress, false),
	}
}

// checkVolume logs the result of a run of volumeOptions and checks that it
// moved all of its records and bytes at a positive rate.
func checkVolume(t *testing.T, name string, res Result) {
	t.Helper()
	t.Log(res)
	if res.Records != 20_000 || res.Bytes != 20_000*1024 {
		t.Errorf("%s: %d records, %d bytes; want 20000, %d", name, res.Records, res.Bytes, 20_000*1024)
	}
	if res.Elapsed <= 0 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
		t.Errorf("%s: bad throughput %+v", name, res)
	}
}

func TestWorkloadsKfake(t *testing.T) {
	addrs, ctx := onKfake(t)

	var progress bytes.Buffer
	opts := volumeOptions(addrs, "bench-test", &progress)
	prod, err := Produce(ctx, opts)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	checkVolume(t, "produce", prod)
	checkPercentiles(t, "produce", prod.Latency, 20_000)

	cons, err := Consume(ctx, opts)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Log(cons)
	if cons.Records != prod.Records || cons.Bytes != prod.Bytes {
		t.Errorf("consume: %d records, %d bytes; produced %d, %d", cons.Records, cons.Bytes, prod.Records, prod.Bytes)
	}
	if cons.Elapsed <= 0 || cons.MBPerSec <= 0 {
		t.Errorf("consume: bad throughput %+v", cons)
	}

	// Asking for more records than the topic holds fails at once.
	tooMany := opts
	tooMany.Records = 30_000
	if _, err := Consume(ctx, tooMany); err == nil {
		t.Error("consume of more records than produced: no error")
	}

	lopts := opts
	lopts.Records = 0
	lopts.Duration = time.Second
	lopts.Rate = 5000
	lat, err := Latency(ctx, lopts)
	if err != nil {
		t.Fatalf("latency: %v", err)
	}
	t.Log(lat)
	// 5000 records/s for 1s.
	if lat.Records != 5000 {
		t.Errorf("latency: %d records received, want 5000", lat.Records)
	}
	checkPercentiles(t, "latency", lat.Latency, lat.Records)
	// The pace must hold: the last record is scheduled at 0.9998s.
	// Paced, it cannot end before the last record's slot; how much later
	// it ends depends on the machine's load, so that is not checked.
	if lat.Elapsed < time.Second-time.Millisecond {
		t.Errorf("latency: run took %s, want at least the paced 1s", lat.Elapsed)
	}

	// Count-bounded latency run.
	lopts.Duration = 0
	lopts.Records = 500
	lat, err = Latency(ctx, lopts)
	if err != nil {
		t.Fatalf("latency by count: %v", err)
	}
	if lat.Records != 500 {
		t.Errorf("latency by count: %d records, want 500", lat.Records)
	}
	checkPercentiles(t, "latency by count", lat.Latency, 500)

	for _, w := range []string{"produce", "consume", "latency"} {
		if !strings.Contains(progress.String(), w) || !strings.Contains(progress.String(), "done") {
			t.Errorf("progress output lacks a final %s line:\n%s", w, progress.String())
		}
	}

	js, err := json.Marshal(prod)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"records":20000`, `"mb_per_sec"`, `"p99_ns"`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON %s lacks %s", js, k)
		}
	}
}

func TestNoBrokers(t *testing.T) {
	if _, err := Produce(context.Background(), Options{}); err == nil {
		t.Error("produce without brokers: no error")
	}
}

func TestComputePercentiles(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[len(s)-1-i] = time.Duration(i + 1) // 1000..1, unsorted
	}
	p := computePercentiles(s)
	want := Percentiles{Count: 1000, Mean: 500, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if p := computePercentiles([]time.Duration{7}); p.P50 != 7 || p.P999 != 7 || p.Max != 7 {
		t.Errorf("one sample: %+v", p)
	}
	if p := computePercentiles(nil); p.Count != 0 {
		t.Errorf("no samples: %+v", p)
	}
}

func TestProgressPrinter(t *testing.T) {
	var term, plain bytes.Buffer
	pt, pp := ProgressPrinter(&term, true), ProgressPrinter(&plain, false)
	for i := 1; i <= 20; i++ {
		p := Progress{Workload: "produce", Records: int64(i * 100), Bytes: int64(i * 100 * 1024),
			Target: 2000, Elapsed: time.Duration(i) * 250 * time.Millisecond}
		pt(p)
		pp(p)
	}
	done := Progress{Workload: "produce", Records: 2000, Bytes: 2000 * 1024, Target: 2000,
		Elapsed: 5 * time.Second, Done: true}
	pt(done)
	pp(done)

	if got := strings.Count(term.String(), "\r"); got != 21 {
		t.Errorf("terminal: %d line rewrites, want 21", got)
	}
	if got := strings.Count(term.String(), "\n"); got != 1 {
		t.Errorf("terminal: %d newlines, want 1 (the final line)", got)
	}
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	// One line every 2s of a 5s run, plus the final one.
	if len(lines) != 3 || strings.Contains(plain.String(), "\r") {
		t.Errorf("plain: want 3 lines without \\r, got %q", plain.String())
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "2000/2000") || !strings.Contains(last, "done") {
		t.Errorf("plain: final line %q", last)
	}
}

// TestCompareKfake runs the full-size comparison: 1,000,000 records of 1 KiB
// to 8 partitions (acks=all, idempotent, linger 5ms), consumed back, then
// end-to-end latency at 5,000 records/s with linger 0 for 10s. The baseline
// is an in-process kfake cluster. It runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestCompareKfake -v ./bench/                 # kfake vs kfake
//	SHOAL_BENCH_TARGET=127.0.0.1:9092 go test -run TestCompareKfake -v ./bench/
func TestCompareKfake(t *testing.T) {
	targetAddr := os.Getenv("SHOAL_BENCH_TARGET")
	if targetAddr == "" && os.Getenv("SHOAL_BENCH") != "1" {
		t.Skip("set SHOAL_BENCH=1 (kfake vs kfake) or SHOAL_BENCH_TARGET=host:port to run the full comparison")
	}
	base, stop := baseline.StartKfake(DefaultPartitions)
	defer stop()
	target := ParseBrokers(targetAddr)
	if len(target) == 0 {
		var stopTarget func()
		target, stopTarget = baseline.StartKfake(DefaultPartitions)
		defer stopTarget()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	opts := Options{
		Partitions: 8,
		Records:    1_000_000,
		RecordSize: 1024,
		Linger:     5 * time.Millisecond,
		Rate:       5000,
		Duration:   10 * time.Second,
	}
	if testing.Verbose() {
		opts.Progress = ProgressPrinter(os.Stderr, false)
	}
	var out strings.Builder
	cmp, err := Compare(ctx, base, target, opts, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]Run{"baseline": cmp.Baseline, "target": cmp.Target} {
		if run.Produce.Records != 1_000_000 || run.Consume.Records != 1_000_000 {
			t.Errorf("%s: produced %d, consumed %d, want 1000000", name, run.Produce.Records, run.Consume.Records)
		}
		checkPercentiles(t, name+" e2e", run.Latency.Latency, run.Latency.Records)
	}
}

func TestPacer(t *testing.T) {
	p := newPacer()
	defer p.close()
	// The steps alternate between the pacer and the runtime's timers, so
	// that both see the same load: on a busy machine any wake-up is late
	// by whatever the scheduler gives, and only the comparison says
	// something about the pacer.
	var lags, runtimeLags []time.Duration
	start := time.Now()
	for i := range 2000 {
		sched := start.Add(time.Duration(i) * 200 * time.Microsecond)
		if i%2 == 1 {
			time.Sleep(time.Until(sched))
			runtimeLags = append(runtimeLags, time.Since(sched))
			continue
		}
		if err := p.sleepUntil(context.Background(), sched); err != nil {
			t.Fatal(err)
		}
		lag := time.Since(sched)
		if lag < 0 {
			t.Fatalf("woke %s before the schedule", -lag)
		}
		lags = append(lags, lag)
	}
	lat, runtimeLat := computePercentiles(lags), computePercentiles(runtimeLags)
	t.Logf("pacer lag: %s", lat)
	t.Logf("runtime timers' lag: %s", runtimeLat)
	// The runtime's timers alone give a median lag of about half a
	// millisecond on an idle machine.
	if limit := max(5*time.Millisecond, 2*runtimeLat.P50); lat.P50 > limit {
		t.Errorf("median pacer lag %s, over %s", lat.P50, limit)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.sleepUntil(ctx, time.Now().Add(time.Hour)); err == nil {
		t.Error("sleep with a cancelled context: no error")
	}
}
