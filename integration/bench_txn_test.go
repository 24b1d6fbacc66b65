package integration

import (
	"context"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench"
	"github.com/shoalmq/shoal/bench/baseline"
)

// TestBenchTxnAgainstKfake measures transactional produce (transactions of
// 100 records of 1 KiB) against idempotent produce of the same groups, on a
// real shoal process and on franz-go's in-process kfake broker (which
// implements transactions), in one run. It runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestBenchTxnAgainstKfake -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS sets the records per workload (default 200,000).
func TestBenchTxnAgainstKfake(t *testing.T) {
	skipUnlessBench(t, "the transaction benchmark")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 200_000)
	n := startNode(t, nodeOpts{set: benchSettings(), noAdmin: true})
	base, stop := baseline.StartKfake(8)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	run := func(brokers []string, topic string, transactional bool) bench.Result {
		t.Helper()
		res, err := bench.ProduceTxn(ctx, bench.Options{Brokers: brokers, Topic: topic, Partitions: 8, Records: records, RecordSize: 1024},
			bench.DefaultTxnSize, transactional)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != int64(records) {
			t.Fatalf("%s acknowledged %d of %d records", res.Workload, res.Records, records)
		}
		return res
	}
	shoalIdem := run([]string{n.Addr()}, "bench-idem", false)
	shoalTxn := run([]string{n.Addr()}, "bench-txn", true)
	kfakeIdem := run(base, "bench-idem", false)
	kfakeTxn := run(base, "bench-txn", true)
	t.Logf("\nshoal %s\nshoal %s\nkfake %s\nkfake %s\n"+
		"transactional / idempotent on shoal: %.2fx (goal >= 0.7)\n"+
		"transactional, shoal / kfake: %.2fx (goal >= 1.5)",
		shoalIdem, shoalTxn, kfakeIdem, kfakeTxn,
		shoalTxn.RecordsPerSec/shoalIdem.RecordsPerSec, shoalTxn.RecordsPerSec/kfakeTxn.RecordsPerSec)
}
