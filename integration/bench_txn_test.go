package integration

import (
	"context"
	"fmt"
	"slices"
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
// Each shape runs in rounds, the four workloads of a round in an order that
// turns every round, so that neither warm-up nor a machine that slows down
// favours one side; the goals are compared with the median of the
// rounds' ratios. It runs only when asked:
//
//	SHOAL_BENCH=1 go test -run TestBenchTxnAgainstKfake -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS sets the records per workload (default 200,000),
// SHOAL_BENCH_ROUNDS the rounds per shape (default 3).
func TestBenchTxnAgainstKfake(t *testing.T) {
	skipUnlessBench(t, "the transaction benchmark")
	records := benchEnvInt(t, "SHOAL_BENCH_RECORDS", 200_000)
	rounds := benchEnvInt(t, "SHOAL_BENCH_ROUNDS", 3)
	if rounds < 1 {
		t.Fatalf("SHOAL_BENCH_ROUNDS=%d: want at least 1", rounds)
	}
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
	type side struct {
		name          string
		brokers       []string
		transactional bool
	}
	sides := []side{{"shoal", []string{n.Addr()}, false}, {"shoal", []string{n.Addr()}, true},
		{"kfake", base, false}, {"kfake", base, true}}
	var report strings.Builder
	for _, producers := range []int{1, 4} {
		var txnIdem, shoalKfake []float64
		fmt.Fprintf(&report, "\n%d producer(s):\n", producers)
		for round := range rounds {
			perSec := make([]float64, len(sides))
			for i := range sides {
				k := (i + round) % len(sides)
				sd := sides[k]
				topic := fmt.Sprintf("bench-%d-%d-%d", producers, round, i)
				res := run(sd.brokers, topic, producers, sd.transactional)
				fmt.Fprintf(&report, "round %d %s %s\n", round+1, sd.name, res)
				perSec[k] = res.RecordsPerSec
			}
			txnIdem = append(txnIdem, perSec[1]/perSec[0])
			shoalKfake = append(shoalKfake, perSec[1]/perSec[3])
		}
		fmt.Fprintf(&report, "transactional / idempotent on shoal: %s, median %.2fx (goal >= 0.7)\n"+
			"transactional, shoal / kfake: %s, median %.2fx (goal >= 1.5)\n",
			ratios(txnIdem), median(txnIdem), ratios(shoalKfake), median(shoalKfake))
	}
	t.Log(report.String())
}

// ratios formats the ratios of the rounds of a benchmark.
func ratios(r []float64) string {
	parts := make([]string, len(r))
	for i, x := range r {
		parts[i] = fmt.Sprintf("%.2fx", x)
	}
	return strings.Join(parts, " ")
}

// median is the middle of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
