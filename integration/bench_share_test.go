package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench"
)

// TestBenchShareAgainstKfake is the whole-system share-group (queue)
// benchmark: 16 share consumers drain a topic of 4 partitions, ACCEPTing
// every record, and then the end-to-end latency through a share group at
// 5,000 records/s, against a real shoal process (persisting every
// acknowledgement) and against franz-go's kfake broker in a process of its own, with the
// ratio printed. It runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestBenchShareAgainstKfake -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS scales the drain (default 1,000,000) and
// SHOAL_BENCH_SET adds one broker setting. With SHOAL_BENCH_PROFILE=file the
// test instead runs only the drain against shoal, with a 10s CPU profile of
// the shoal process taken from its admin listener during the drain and
// written to file (go tool pprof file).
func TestBenchShareAgainstKfake(t *testing.T) {
	skipUnlessBench(t, "the whole-system share-group benchmark")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 1_000_000)
	set := benchSettings()
	opts := bench.Options{
		Partitions: 4,
		Records:    records,
		RecordSize: 1024,
		Workers:    16,
		Rate:       5000,
		Duration:   10 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	if profile := os.Getenv("SHOAL_BENCH_PROFILE"); profile != "" {
		profileShareDrain(ctx, t, set, opts, profile)
		return
	}

	n := startNode(t, nodeOpts{set: set, noAdmin: true})
	base := startKfake(t, 4)
	var out bytes.Buffer
	cmp, err := bench.CompareShare(ctx, base, []string{n.Addr()}, opts, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := cmp.Target.Share.Records; got != int64(records) {
		t.Fatalf("shoal's share group drained %d records, want %d", got, records)
	}
	if d := cmp.Target.Share.Duplicates + cmp.Target.Latency.Duplicates; d != 0 {
		t.Logf("shoal handed out %d records more than once", d)
	}
}

// profileShareDrain runs the drain against a shoal node with its admin
// listener on and saves a CPU profile taken while the consumers run.
func profileShareDrain(ctx context.Context, t *testing.T, set []string, opts bench.Options, path string) {
	n := startNode(t, nodeOpts{set: set})
	opts.Brokers = []string{n.Addr()}
	opts.Topic = fmt.Sprintf("shoal-bench-profile-%d", time.Now().UnixNano())

	var (
		once    sync.Once
		fetched = make(chan error, 1)
	)
	printer := bench.ProgressPrinter(os.Stderr, false)
	opts.Progress = func(p bench.Progress) {
		printer(p)
		if p.Workload == "share" && p.Records > 0 {
			once.Do(func() { go func() { fetched <- fetchProfile(ctx, n.AdminAddr(), path) }() })
		}
	}
	res, err := bench.Share(ctx, opts)
	t.Log(res)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fetched:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("CPU profile of the drain written to %s", path)
	case <-time.After(30 * time.Second):
		t.Fatal("no CPU profile")
	}
}

func fetchProfile(ctx context.Context, admin, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/profile?seconds=10", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching profile: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
