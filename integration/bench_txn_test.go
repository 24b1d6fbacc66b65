package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shoalmq/shoal/bench"
)

// TestBenchTxnAgainstKfake measures transactional produce (transactions of
// 100 records of 1 KiB) against idempotent produce of the same groups, on a
// real shoal process and on franz-go's kfake broker in a process of its own (which
// implements transactions), in one run, in two shapes on 8 partitions:
//
//   - one producer writing every partition, a transaction at a time, so
//     each transaction's EndTxn round trip is on the critical path;
//   - 4 producers at once, each writing its own pair of partitions, as a
//     pipeline runs one producer per input partition; every side (shoal
//     and kfake, idempotent and transactional) runs the same 4.
//
// It runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestBenchTxnAgainstKfake -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS sets the records per workload (default 200,000).
func TestBenchTxnAgainstKfake(t *testing.T) {
	skipUnlessBench(t, "the transaction benchmark")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 200_000)
	n := startNode(t, nodeOpts{set: benchSettings(), noAdmin: true})
	base := startKfake(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	run := func(brokers []string, topic string, producers int, transactional bool) bench.Result {
		t.Helper()
		res, err := bench.ProduceTxn(ctx, bench.Options{Brokers: brokers, Topic: topic, Partitions: 8, Records: records, RecordSize: 1024},
			bench.DefaultTxnSize, producers, transactional)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != int64(records) {
			t.Fatalf("%s acknowledged %d of %d records", res.Workload, res.Records, records)
		}
		// Each workload starts from an empty broker: kfake keeps every
		// record in memory, which would otherwise grow by 200 MB a run.
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).DeleteTopic(ctx, topic); err != nil {
			t.Fatalf("deleting %s: %v", topic, err)
		}
		return res
	}
	var report strings.Builder
	for _, producers := range []int{1, 4} {
		idem, txn := fmt.Sprintf("bench-idem-%d", producers), fmt.Sprintf("bench-txn-%d", producers)
		shoalIdem := run([]string{n.Addr()}, idem, producers, false)
		shoalTxn := run([]string{n.Addr()}, txn, producers, true)
		kfakeIdem := run(base, idem, producers, false)
		kfakeTxn := run(base, txn, producers, true)
		fmt.Fprintf(&report, "\n%d producer(s):\nshoal %s\nshoal %s\nkfake %s\nkfake %s\n"+
			"transactional / idempotent on shoal: %.2fx (goal >= 0.7)\n"+
			"transactional, shoal / kfake: %.2fx (goal >= 1.5)\n",
			producers, shoalIdem, shoalTxn, kfakeIdem, kfakeTxn,
			shoalTxn.RecordsPerSec/shoalIdem.RecordsPerSec, shoalTxn.RecordsPerSec/kfakeTxn.RecordsPerSec)
	}
	t.Log(report.String())
}
