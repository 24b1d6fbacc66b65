package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/bench"
)

// benchCommand is `shoal bench`: load generators that measure a running
// cluster (shoal or any Kafka-compatible broker) from a client's side.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure produce and consume throughput and end-to-end latency of a cluster",
		UsageText: `shoal [--bootstrap-server host:port] bench <produce|consume|latency> [options]

Examples:
   # 1,000,000 records of 1 KiB to 8 partitions, acks=all, idempotent, linger 5ms
   shoal --bootstrap-server 127.0.0.1:9092 bench produce --records 1000000 --record-size 1024

   # read them back
   shoal bench consume --records 1000000

   # end-to-end latency at 5,000 records/s for 10s, as JSON
   shoal bench latency --rate 5000 --duration 10s --json`,
		Description: "Each command prints records/s, MB/s (1 MB = 2^20 bytes) and latency percentiles, with a live\n" +
			"progress line on stderr. The topic is created with replication factor 1 if it is missing.",
		Subcommands: []*cli.Command{
			{
				Name:      "produce",
				Usage:     "produce records (acks=all, idempotent, no compression) and report throughput and produce latency",
				UsageText: "shoal bench produce [--topic shoal-bench] [--partitions 8] [--records 1000000] [--record-size 1024] [--linger 5ms] [--json]",
				Flags: []cli.Flag{
					topicFlag(), partitionsFlag(), recordsFlag("number of records to produce"), recordSizeFlag(),
					lingerFlag(bench.DefaultLinger, "producer linger"), jsonFlag(),
				},
				Action: benchAction(bench.Produce),
			},
			{
				Name:      "consume",
				Usage:     "read records from the start of every partition (no group) and report throughput",
				UsageText: "shoal bench consume [--topic shoal-bench] [--records 1000000] [--json]",
				Flags: []cli.Flag{
					topicFlag(), recordsFlag("number of records to read; the topic must hold at least this many"), jsonFlag(),
				},
				Action: benchAction(bench.Consume),
			},
			{
				Name:  "latency",
				Usage: "send records at a fixed rate and report end-to-end latency (send to receipt) percentiles",
				UsageText: "shoal bench latency [--topic shoal-bench] [--partitions 8] [--rate 5000] [--duration 10s]\n" +
					"                    [--records N] [--record-size 1024] [--linger 0s] [--json]",
				Flags: []cli.Flag{
					topicFlag(), partitionsFlag(), recordSizeFlag(),
					&cli.IntFlag{Name: "rate", Value: bench.DefaultRate, Usage: "records per second"},
					&cli.DurationFlag{Name: "duration", Value: bench.DefaultDuration, Usage: "how long to send"},
					&cli.IntFlag{Name: "records", Usage: "stop after this many records, if before --duration", DefaultText: "no limit"},
					lingerFlag(0, "producer linger"), jsonFlag(),
				},
				Action: benchAction(bench.Latency),
			},
		},
	}
}

func topicFlag() cli.Flag {
	return &cli.StringFlag{Name: "topic", Value: bench.DefaultTopic, Usage: "topic to use"}
}

func partitionsFlag() cli.Flag {
	return &cli.IntFlag{Name: "partitions", Value: bench.DefaultPartitions, Usage: "partitions of the topic if it has to be created"}
}

func recordsFlag(usage string) cli.Flag {
	return &cli.IntFlag{Name: "records", Value: bench.DefaultRecords, Usage: usage}
}

func recordSizeFlag() cli.Flag {
	return &cli.IntFlag{Name: "record-size", Value: bench.DefaultRecordSize, Usage: "bytes in each record value"}
}

func lingerFlag(def time.Duration, usage string) cli.Flag {
	return &cli.DurationFlag{Name: "linger", Value: def, Usage: usage}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"}
}

type workload func(context.Context, bench.Options) (bench.Result, error)

func benchAction(run workload) cli.ActionFunc {
	return func(c *cli.Context) error {
		name := "bench " + c.Command.Name
		brokers := bench.ParseBrokers(c.String("bootstrap-server"))
		if len(brokers) == 0 {
			return cli.Exit(name+": no --bootstrap-server given", 1)
		}
		opts := bench.Options{
			Brokers:    brokers,
			Topic:      c.String("topic"),
			Partitions: c.Int("partitions"),
			Records:    c.Int("records"),
			RecordSize: c.Int("record-size"),
			Linger:     c.Duration("linger"),
			Rate:       c.Int("rate"),
			Duration:   c.Duration("duration"),
			Progress:   bench.ProgressPrinter(c.App.ErrWriter, isTerminal(c.App.ErrWriter)),
		}
		if opts.Linger == 0 {
			opts.Linger = -1 // an explicit 0 means no linger, not the default
		}
		for _, f := range []string{"partitions", "records", "record-size", "rate"} {
			if c.IsSet(f) && c.Int(f) <= 0 {
				return cli.Exit(fmt.Sprintf("%s: --%s must be positive", name, f), 1)
			}
		}
		if c.IsSet("duration") && c.Duration("duration") <= 0 {
			return cli.Exit(name+": --duration must be positive", 1)
		}

		ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := run(ctx, opts)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), 1)
		}
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		printResult(c.App.Writer, res)
		return nil
	}
}

func printResult(w io.Writer, r bench.Result) {
	fmt.Fprintf(w, "%s: %d records, %.1f MB in %s\n", r.Workload, r.Records, float64(r.Bytes)/bench.MB,
		r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  throughput  %.0f records/s  %.1f MB/s\n", r.RecordsPerSec, r.MBPerSec)
	if r.Latency.Count > 0 {
		fmt.Fprintf(w, "  latency     %s  (mean %.3fms, %d samples)\n", r.Latency,
			float64(r.Latency.Mean)/float64(time.Millisecond), r.Latency.Count)
	}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
