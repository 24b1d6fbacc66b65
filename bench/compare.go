package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Run holds the results of the three workloads against one cluster.
type Run struct {
	Brokers []string `json:"brokers"`
	Produce Result   `json:"produce"`
	Consume Result   `json:"consume"`
	Latency Result   `json:"latency"`
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Baseline Run `json:"baseline"`
	Target   Run `json:"target"`
}

// Compare runs the produce, consume and latency workloads against the
// baseline cluster and then against the target cluster with the same
// options and client settings, and writes a table of every figure and the
// ratio target/baseline to w.
//
// opts.Records, RecordSize, Partitions and Linger shape the produce and
// consume runs; the latency run uses opts.Rate and opts.Duration (default
// 10s) with linger 0. If opts.Topic is empty a fresh topic name is chosen.
// The topics a run creates are deleted once its cluster is done, which also
// frees the memory of an in-process baseline.
func Compare(ctx context.Context, baseline, target []string, opts Options, w io.Writer) (Comparison, error) {
	o := withFreshTopic(opts).withDefaults()
	fmt.Fprintf(w, "workloads: produce %d x %d B to %d partitions (acks=all, idempotent, linger %s, no compression);"+
		" consume them back; e2e latency at %d records/s for %s (linger 0)\n",
		o.Records, o.RecordSize, o.Partitions, o.Linger, o.Rate, latencyDuration(o))

	var cmp Comparison
	var err error
	if cmp.Baseline, cmp.Target, err = runBothSides(ctx, baseline, target, o, runAll); err != nil {
		return cmp, err
	}
	cmp.WriteTable(w)
	return cmp, nil
}

// withFreshTopic gives o a new topic name unless it names one.
func withFreshTopic(o Options) Options {
	if o.Topic == "" {
		o.Topic = fmt.Sprintf("%s-%d", DefaultTopic, time.Now().UnixNano())
	}
	return o
}

// runBothSides runs the workloads of run against the baseline cluster and
// then against the target cluster, each from freshly released memory.
func runBothSides[R any](ctx context.Context, baseline, target []string, o Options,
	run func(context.Context, []string, Options) (R, error)) (b, t R, err error) {
	releaseMemory()
	if b, err = run(ctx, baseline, o); err != nil {
		return b, t, fmt.Errorf("baseline %s: %w", strings.Join(baseline, ","), err)
	}
	releaseMemory()
	if t, err = run(ctx, target, o); err != nil {
		return b, t, fmt.Errorf("target %s: %w", strings.Join(target, ","), err)
	}
	return b, t, nil
}

// releaseMemory returns this process's free heap to the operating system, so
// that each side starts from the same state. It matters when a cluster runs
// in this process (the kfake baseline): without it the second side would
// reuse the pages the first one faulted in and freed, and on a small machine
// page faults are a large part of an in-memory broker's cost.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func latencyDuration(o Options) time.Duration {
	if o.Duration > 0 {
		return o.Duration
	}
	return DefaultDuration
}

// latencyOptions derives the options of a comparison's latency run from
// o: its own topic (o.Topic plus suffix), no linger, and a fixed duration
// rather than a record count.
func latencyOptions(o Options, topicSuffix string) Options {
	lo := o
	lo.Topic = o.Topic + topicSuffix
	lo.Linger = -1 // none
	lo.Records = 0
	lo.Duration = latencyDuration(o)
	return lo
}

func runAll(ctx context.Context, brokers []string, o Options) (Run, error) {
	run := Run{Brokers: brokers}
	o.Brokers = brokers
	latencyOpts := latencyOptions(o, "-latency")
	defer DeleteTopics(o, o.Topic, latencyOpts.Topic)

	var err error
	if run.Produce, err = Produce(ctx, o); err != nil {
		return run, fmt.Errorf("produce: %w", err)
	}
	if run.Consume, err = Consume(ctx, o); err != nil {
		return run, fmt.Errorf("consume: %w", err)
	}
	if run.Latency, err = Latency(ctx, latencyOpts); err != nil {
		return run, fmt.Errorf("latency: %w", err)
	}
	return run, nil
}

// DeleteTopics removes the topics of a finished run. It is a best-effort
// clean-up, so it runs through a new client, bounded to ten seconds
// whatever the run's context did; the error is for a warning at most.
func DeleteTopics(o Options, topics ...string) error {
	return cleanUp(o, func(ctx context.Context, adm *kadm.Client) error {
		_, err := adm.DeleteTopics(ctx, topics...)
		return err
	})
}

// cleanUp runs a best-effort clean-up through a new admin client, bounded to
// ten seconds, whatever the run's context did.
func cleanUp(o Options, do func(context.Context, *kadm.Client) error) error {
	cl, err := o.newAdminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return do(ctx, kadm.NewClient(cl))
}

// WriteTable writes every figure of both runs and the ratio target/baseline.
// For throughput a ratio above 1 means the target is faster; for latency a
// ratio below 1 means it is faster.
func (c Comparison) WriteTable(w io.Writer) {
	tab := newComparisonTable(w)
	b, t := c.Baseline, c.Target
	tab.row("produce", "records/s", b.Produce.RecordsPerSec, t.Produce.RecordsPerSec, "%.0f")
	tab.row("produce", "MB/s", b.Produce.MBPerSec, t.Produce.MBPerSec, "%.1f")
	tab.percentiles("produce", b.Produce.Latency, t.Produce.Latency)
	tab.row("consume", "records/s", b.Consume.RecordsPerSec, t.Consume.RecordsPerSec, "%.0f")
	tab.row("consume", "MB/s", b.Consume.MBPerSec, t.Consume.MBPerSec, "%.1f")
	tab.row("e2e", "records/s", b.Latency.RecordsPerSec, t.Latency.RecordsPerSec, "%.0f")
	tab.percentiles("e2e", b.Latency.Latency, t.Latency.Latency)
	tab.end(b.Brokers, t.Brokers)
}

// comparisonTable is the table WriteTable writes: per figure, the baseline
// and target values and their ratio.
type comparisonTable struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func newComparisonTable(w io.Writer) comparisonTable {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tfigure\tbaseline\ttarget\ttarget/baseline\t\n")
	return comparisonTable{w: w, tw: tw}
}

func (c comparisonTable) row(workload, figure string, b, t float64, format string) {
	ratio := "-"
	if b != 0 {
		ratio = fmt.Sprintf("%.2fx", t/b)
	}
	fmt.Fprintf(c.tw, "%s\t%s\t"+format+"\t"+format+"\t%s\t\n", workload, figure, b, t, ratio)
}

// percentiles writes a row per latency percentile, in milliseconds.
func (c comparisonTable) percentiles(workload string, b, t Percentiles) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	c.row(workload, "p50 ms", ms(b.P50), ms(t.P50), "%.3f")
	c.row(workload, "p90 ms", ms(b.P90), ms(t.P90), "%.3f")
	c.row(workload, "p99 ms", ms(b.P99), ms(t.P99), "%.3f")
	c.row(workload, "p99.9 ms", ms(b.P999), ms(t.P999), "%.3f")
	c.row(workload, "max ms", ms(b.Max), ms(t.Max), "%.3f")
}

// end flushes the table and names the two clusters under it.
func (c comparisonTable) end(baseline, target []string) {
	c.tw.Flush()
	fmt.Fprintf(c.w, "baseline: %s\ntarget:   %s\n", strings.Join(baseline, ","), strings.Join(target, ","))
}
