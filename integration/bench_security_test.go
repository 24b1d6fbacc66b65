package integration

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench"
)

// TestBenchSASLSSLAgainstPlaintext is the cost of security: the produce and
// consume workloads of shoal bench through a SASL_SSL listener (TLS 1.3,
// SCRAM-SHA-512, the StandardAuthorizer) and through a PLAINTEXT listener of
// the same broker, in the same run, reported as the ratio SASL_SSL /
// PLAINTEXT. Both principals are super users, so the authorizer costs the
// same on either side and the ratio is the cost of TLS and SASL. The order of
// the sides flips every round and the best round of each counts, so a
// machine that slows down during the run favours neither. Without
// SHOAL_BENCH=1 it is a short run that checks the secured bench works
// (also through the command line's --command-config); with it:
//
//	SHOAL_BENCH=1 go test -run TestBenchSASLSSLAgainstPlaintext -v -timeout 30m ./integration/
//
// SHOAL_BENCH_RECORDS sets the records of each run (default 1,000,000 x 1 KiB)
// and SHOAL_BENCH_ROUNDS the rounds (default 3).
func TestBenchSASLSSLAgainstPlaintext(t *testing.T) {
	full := os.Getenv("SHOAL_BENCH") == "1"
	records, rounds := 5_000, 1
	if full {
		records = benchEnvInt(t, "SHOAL_BENCH_RECORDS", 1_000_000)
		rounds = benchEnvInt(t, "SHOAL_BENCH_ROUNDS", 3)
	}
	sn := startSecureNodeWith(t, nodeOpts{
		extraListener: "PLAINTEXT",
		// The PLAINTEXT listener's principal is User:ANONYMOUS.
		configFile: "super.users=User:admin;User:ANONYMOUS\n",
	})

	// The command line reaches the SASL_SSL listener with the client
	// properties of docs/security.md.
	out := sn.cli(t, "admin", "bench", "produce", "--records", "2000", "--record-size", "100", "--partitions", "2")
	if !strings.Contains(out, "produce: 2000 records") {
		t.Fatalf("shoal bench produce over SASL_SSL:\n%s", out)
	}

	sides := []struct {
		name string
		opts bench.Options
	}{
		{"PLAINTEXT", bench.Options{Brokers: []string{sn.ExtraAddr()}}},
		{"SASL_SSL", bench.Options{Brokers: []string{sn.Addr()}, ClientOpts: scramOpts(sn.caPool, "admin", "admin-secret")}},
	}
	type best struct{ produce, consume bench.Result }
	results := make([]best, len(sides))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	for round := range rounds {
		for k := range sides {
			// Odd rounds run the sides the other way round.
			i := k
			if round%2 == 1 {
				i = len(sides) - 1 - k
			}
			side := sides[i]
			o := side.opts
			o.Topic = "shoal-bench-" + strings.ToLower(strings.ReplaceAll(side.name, "_", "-")) + "-" + strconv.Itoa(round)
			o.Partitions, o.Records, o.RecordSize, o.Linger = 8, records, 1024, 5*time.Millisecond
			p, err := bench.Produce(ctx, o)
			if err != nil {
				t.Fatalf("%s produce: %v", side.name, err)
			}
			c, err := bench.Consume(ctx, o)
			if err != nil {
				t.Fatalf("%s consume: %v", side.name, err)
			}
			if p.Records != int64(records) || c.Records != int64(records) {
				t.Fatalf("%s moved %d/%d records, want %d", side.name, p.Records, c.Records, records)
			}
			if err := bench.DeleteTopics(o, o.Topic); err != nil {
				t.Logf("deleting %s: %v", o.Topic, err)
			}
			t.Logf("round %d %s:\n  %s\n  %s", round+1, side.name, p, c)
			if p.MBPerSec > results[i].produce.MBPerSec {
				results[i].produce = p
			}
			if c.MBPerSec > results[i].consume.MBPerSec {
				results[i].consume = c
			}
		}
	}
	plain, secure := results[0], results[1]
	produceRatio := secure.produce.MBPerSec / plain.produce.MBPerSec
	consumeRatio := secure.consume.MBPerSec / plain.consume.MBPerSec
	t.Logf("%d x 1 KiB, 8 partitions, acks=all, best of %d rounds:\n"+
		"  produce  PLAINTEXT %6.1f MB/s  SASL_SSL %6.1f MB/s  ratio %.2f\n"+
		"  consume  PLAINTEXT %6.1f MB/s  SASL_SSL %6.1f MB/s  ratio %.2f",
		records, rounds, plain.produce.MBPerSec, secure.produce.MBPerSec, produceRatio,
		plain.consume.MBPerSec, secure.consume.MBPerSec, consumeRatio)
	if full && (produceRatio < 0.6 || consumeRatio < 0.6) {
		t.Errorf("SASL_SSL / PLAINTEXT below the 0.6 goal: produce %.2f, consume %.2f", produceRatio, consumeRatio)
	}
}
