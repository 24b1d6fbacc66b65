package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
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
		UsageText: `shoal [--bootstrap-server host:port] bench <produce|consume|latency|share> [options]

Examples:
   # 1,000,000 records of 1 KiB to 8 partitions, acks=all, idempotent, linger 5ms
   shoal --bootstrap-server 127.0.0.1:9092 bench produce --records 1000000 --record-size 1024

   # keep the topic, then read it back (consume deletes it after)
   shoal bench produce --records 1000000 --keep-topic
   shoal bench consume --records 1000000

   # end-to-end latency at 5,000 records/s for 10s, as JSON
   shoal bench latency --rate 5000 --duration 10s --output json

   # 16 share consumers drain 1,000,000 records from 4 partitions, then share-group e2e latency
   shoal bench share --records 1000000 --workers 16 --rate 5000

   # through a SASL_SSL listener, with Kafka client properties (security.protocol, sasl.*, ssl.*)
   shoal --bootstrap-server 127.0.0.1:9093 --command-config client.properties bench produce

   # what one loopback TCP stream moves on this machine
   shoal bench net`,
		Description: "Each command prints records/s, MB/s (1 MB = 2^20 bytes) and latency percentiles, with a live\n" +
			"progress line on stderr. The topic is created with replication factor 1 if it is missing, and a\n" +
			"shoal-bench* topic is deleted after the run unless --keep-topic (produce --keep-topic, then consume).",
		Subcommands: []*cli.Command{
			leaf(&cli.Command{
				Name:      "produce",
				Usage:     "produce records (acks=all, idempotent) and report throughput and produce latency",
				UsageText: "shoal bench produce [--topic shoal-bench] [--partitions 8] [--records 1000000] [--record-size 1024] [--linger 5ms] [--compression none] [--json]",
				Flags: []cli.Flag{
					keepTopicFlag(),
					topicFlag(), partitionsFlag(), recordsFlag("number of records to produce"), recordSizeFlag(),
					lingerFlag(bench.DefaultLinger, "producer linger"), jsonFlag(),
					&cli.StringFlag{Name: "compression", Value: "none", Usage: "producer batch codec: none, gzip, snappy, lz4 or zstd"},
				},
				Action: benchAction(bench.Produce),
			}),
			leaf(&cli.Command{
				Name:      "consume",
				Usage:     "read records from the start of every partition (no group) and report throughput",
				UsageText: "shoal bench consume [--topic shoal-bench] [--records 1000000] [--json]",
				Flags: []cli.Flag{
					keepTopicFlag(),
					topicFlag(), recordsFlag("number of records to read; the topic must hold at least this many"), jsonFlag(),
				},
				Action: benchAction(bench.Consume),
			}),
			leaf(&cli.Command{
				Name:  "latency",
				Usage: "send records at a fixed rate and report end-to-end latency (send to receipt) percentiles",
				UsageText: "shoal bench latency [--topic shoal-bench] [--partitions 8] [--rate 5000] [--duration 10s]\n" +
					"                    [--records N] [--record-size 1024] [--linger 0s] [--json]",
				Flags: []cli.Flag{
					keepTopicFlag(),
					topicFlag(), partitionsFlag(), recordSizeFlag(),
					&cli.IntFlag{Name: "rate", Value: bench.DefaultRate, Usage: "records per second"},
					&cli.DurationFlag{Name: "duration", Value: bench.DefaultDuration, Usage: "how long to send"},
					&cli.IntFlag{Name: "records", Usage: "stop after this many records, if before --duration", DefaultText: "no limit"},
					lingerFlag(0, "producer linger"), jsonFlag(),
				},
				Action: benchAction(bench.Latency),
			}),
			leaf(&cli.Command{
				Name: "share",
				Usage: "drain a topic with a share group (queue) ACCEPTing each record, then measure end-to-end latency " +
					"through a share group",
				UsageText: "shoal bench share [--topic shoal-bench] [--partitions 4] [--records 1000000] [--record-size 1024]\n" +
					"                  [--workers 16] [--rate 5000] [--duration 10s] [--json]\n" +
					"shoal bench share --compare-ordering [--keys 1000] [--work 1ms] [--records 100000]",
				Description: "The topic is filled up to --records records if it holds fewer; then --workers share consumers in a\n" +
					"new share group read every record it holds from the earliest offset and ACCEPT each one. Throughput\n" +
					"is timed from the first records handed out to the broker's confirmation of the last acknowledgement;\n" +
					"each record is counted once and records handed out again are reported as duplicates. Then records\n" +
					"are sent to <topic>-e2e at --rate for --duration (acks=all, linger 0) and the latency from the scheduled\n" +
					"send to the delivery to a share consumer is reported.",
				Flags: []cli.Flag{
					keepTopicFlag(),
					&cli.StringFlag{Name: "topic", Value: bench.DefaultTopic, Usage: "topic to drain; the latency part uses <topic>-e2e"},
					&cli.IntFlag{Name: "partitions", Value: bench.DefaultSharePartitions, Usage: "partitions of the topic if it has to be created"},
					recordsFlag("records to drain; the topic is filled up to this many"), recordSizeFlag(),
					&cli.IntFlag{Name: "workers", Value: bench.DefaultWorkers, Usage: "share consumers in the group"},
					&cli.IntFlag{Name: "rate", Value: bench.DefaultRate, Usage: "records per second of the latency part"},
					&cli.DurationFlag{Name: "duration", Value: bench.DefaultDuration, Usage: "how long the latency part sends"},
					&cli.IntFlag{Name: "keys", Usage: "records filled into the topic get one of this many keys (default: null keys; 1000 with --compare-ordering)"},
					&cli.BoolFlag{Name: "compare-ordering", Usage: "instead of drain and latency, drain the same records with share.delivery.ordering=none and then =key, and report both and the ratio"},
					&cli.DurationFlag{Name: "work", Usage: "time a worker of the drain spends on each record before acknowledging it, as a worker processing records would (default: none)"},
					jsonFlag(),
				},
				Action: shareAction,
			}),
			leaf(&cli.Command{
				Name:      "net",
				Usage:     "measure one loopback TCP stream on this machine: the ceiling the other figures run under",
				UsageText: "shoal bench net [--bytes 4294967296] [--chunk 1048576] [--json]",
				Flags: []cli.Flag{
					&cli.Int64Flag{Name: "bytes", Value: 4 << 30, Usage: "bytes to stream"},
					&cli.IntFlag{Name: "chunk", Value: 1 << 20, Usage: "bytes per write"},
					jsonFlag(),
				},
				Action: func(c *cli.Context) error {
					res, err := bench.Net(c.Context, c.Int64("bytes"), c.Int("chunk"))
					if err != nil {
						return cli.Exit(fmt.Sprintf("bench net: %v", err), 1)
					}
					res.Workload = "net"
					asJSON, err := benchJSON(c)
					if err != nil {
						return err
					}
					return writeBench(c, asJSON, res, res)
				},
			}),
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

func keepTopicFlag() cli.Flag {
	return &cli.BoolFlag{Name: "keep-topic", Usage: "keep a " + bench.DefaultTopic + "* topic after the run (for a later 'shoal bench consume'); other topics are always kept"}
}

// dropBenchTopics deletes, unless --keep-topic, the topics of a run that
// are the bench's own (named shoal-bench...), so a benchmark leaves the
// cluster as it found it. A topic the user named otherwise holds their
// data and is never deleted.
func dropBenchTopics(c *cli.Context, opts bench.Options, topics ...string) {
	if c.Bool("keep-topic") {
		return
	}
	var own []string
	for _, t := range topics {
		if strings.HasPrefix(t, bench.DefaultTopic) {
			own = append(own, t)
		}
	}
	if len(own) == 0 {
		return
	}
	if err := bench.DeleteTopics(opts, own...); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: deleting %s: %s\n", strings.Join(own, ", "), describeErr(err))
	}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout (same as --output json)"}
}

// benchJSON reports whether the result goes out as JSON: the global
// --output json, or bench's own older --json.
func benchJSON(c *cli.Context) (bool, error) {
	out, err := outputMode(c)
	return out == outputJSON || c.Bool("json"), err
}

// benchSetup reads what the workload commands share: whether the result
// goes out as JSON, and the workload's options.
func benchSetup(c *cli.Context) (asJSON bool, opts bench.Options, err error) {
	if asJSON, err = benchJSON(c); err != nil {
		return false, bench.Options{}, err
	}
	opts, err = benchOptions(c)
	return asJSON, opts, err
}

type workload func(context.Context, bench.Options) (bench.Result, error)

func benchAction(run workload) cli.ActionFunc {
	return func(c *cli.Context) error {
		name := "bench " + c.Command.Name
		asJSON, opts, err := benchSetup(c)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := run(ctx, opts)
		dropBenchTopics(c, opts, opts.Topic)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), 1)
		}
		return writeBench(c, asJSON, res, res)
	}
}

// shareAction is `shoal bench share`: the drain, then the end-to-end latency
// through a share group on the same topic.
func shareAction(c *cli.Context) error {
	name := "bench " + c.Command.Name
	asJSON, opts, err := benchSetup(c)
	if err != nil {
		return err
	}
	opts.Linger = 0 // the default linger for filling the topic; the latency part sends without
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Bool("compare-ordering") {
		run, err := bench.ShareOrdering(ctx, opts)
		dropBenchTopics(c, opts, opts.Topic)
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), 1)
		}
		if asJSON {
			return writeJSON(c.App.Writer, run)
		}
		printResult(c.App.Writer, run.None)
		printResult(c.App.Writer, run.Key)
		fmt.Fprintf(c.App.Writer, "ordering key / none: %.2fx\n", run.Ratio)
		return nil
	}
	var run bench.ShareRun
	if run.Share, err = bench.Share(ctx, opts); err != nil {
		dropBenchTopics(c, opts, opts.Topic)
		return cli.Exit(fmt.Sprintf("%s: drain: %v", name, err), 1)
	}
	// The latency part has a topic of its own, so that its records do not
	// add to what the next drain of --topic finds.
	latencyOpts := opts
	latencyOpts.Topic = opts.Topic + "-e2e"
	latencyOpts.Records = 0 // the latency part is bounded by --duration
	if latencyOpts.Duration <= 0 {
		latencyOpts.Duration = bench.DefaultDuration
	}
	run.Latency, err = bench.ShareLatency(ctx, latencyOpts)
	dropBenchTopics(c, opts, opts.Topic, latencyOpts.Topic)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: latency: %v", name, err), 1)
	}
	return writeBench(c, asJSON, run, run.Share, run.Latency)
}

// writeBench writes run as JSON with --output json, and its results as
// text otherwise.
func writeBench(c *cli.Context, asJSON bool, run any, results ...bench.Result) error {
	if asJSON {
		return writeJSON(c.App.Writer, run)
	}
	for _, r := range results {
		printResult(c.App.Writer, r)
	}
	return nil
}

// benchOptions builds the workload options from the command's flags.
func benchOptions(c *cli.Context) (bench.Options, error) {
	name := "bench " + c.Command.Name
	brokers := bench.ParseBrokers(globalString(c, "bootstrap-server"))
	if len(brokers) == 0 {
		return bench.Options{}, cli.Exit(name+": no --bootstrap-server given", 1)
	}
	opts := bench.Options{
		Brokers:    brokers,
		Topic:      c.String("topic"),
		Partitions: c.Int("partitions"),
		Records:    c.Int("records"),
		RecordSize: c.Int("record-size"),
		Linger:     c.Duration("linger"),
		// Only bench produce has the flag; elsewhere it reads as empty.
		Compression: c.String("compression"),
		Rate:        c.Int("rate"),
		Duration:    c.Duration("duration"),
		Workers:     c.Int("workers"),
		Keys:        c.Int("keys"),
		Work:        c.Duration("work"),
		Progress:    bench.ProgressPrinter(c.App.ErrWriter, isTerminal(c.App.ErrWriter)),
	}
	// The same security settings as every other command: TLS and SASL
	// from a Kafka client properties file.
	sec, err := commandConfigOpts(c)
	if err != nil {
		return bench.Options{}, err
	}
	opts.ClientOpts = sec
	if opts.Linger == 0 {
		opts.Linger = -1 // an explicit 0 means no linger, not the default
	}
	if !bench.ValidCompression(opts.Compression) {
		return bench.Options{}, cli.Exit(fmt.Sprintf("%s: --compression %q is not none, gzip, snappy, lz4 or zstd", name, opts.Compression), 1)
	}
	for _, f := range []string{"partitions", "records", "record-size", "rate", "workers", "keys"} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return bench.Options{}, cli.Exit(fmt.Sprintf("%s: --%s must be positive", name, f), 1)
		}
	}
	if c.IsSet("duration") && c.Duration("duration") <= 0 {
		return bench.Options{}, cli.Exit(name+": --duration must be positive", 1)
	}
	if c.IsSet("work") && c.Duration("work") < 0 {
		return bench.Options{}, cli.Exit(name+": --work must not be negative", 1)
	}
	return opts, nil
}

func printResult(w io.Writer, r bench.Result) {
	fmt.Fprintf(w, "%s: %d records, %.1f MB in %s\n", r.Workload, r.Records, float64(r.Bytes)/bench.MB,
		r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  throughput  %.0f records/s  %.1f MB/s\n", r.RecordsPerSec, r.MBPerSec)
	if r.Latency.Count > 0 {
		fmt.Fprintf(w, "  latency     %s  (mean %.3fms, %d samples)\n", r.Latency,
			float64(r.Latency.Mean)/float64(time.Millisecond), r.Latency.Count)
	}
	if r.Workload == "share" || r.Workload == "share-e2e" {
		fmt.Fprintf(w, "  duplicates  %d\n", r.Duplicates)
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
