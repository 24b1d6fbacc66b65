package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench/baseline"
)

func TestShareKfake(t *testing.T) {
	addrs, stop := baseline.StartKfake(4)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var progress bytes.Buffer
	opts := Options{
		Brokers:    addrs,
		Topic:      "bench-share-test",
		Partitions: 4,
		Records:    20_000,
		RecordSize: 1024,
		Workers:    4,
		Progress:   ProgressPrinter(&progress, false),
	}
	res, err := Share(ctx, opts)
	if err != nil {
		t.Fatalf("share: %v", err)
	}
	t.Log(res)
	if res.Records != 20_000 || res.Bytes != 20_000*1024 {
		t.Errorf("share: %d records, %d bytes; want 20000, %d", res.Records, res.Bytes, 20_000*1024)
	}
	if res.Duplicates != 0 {
		t.Errorf("share: %d records handed out twice", res.Duplicates)
	}
	if res.Elapsed <= 0 || res.Elapsed > time.Minute || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
		t.Errorf("share: bad throughput %+v", res)
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
}
