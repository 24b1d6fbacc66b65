package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ShareRun holds the results of the share-group workloads against one
// cluster: the drain (Share) and the end-to-end latency (ShareLatency).
type ShareRun struct {
	Brokers []string `json:"brokers,omitempty"`
	Share   Result   `json:"share"`
	Latency Result   `json:"latency"`
}

// ShareComparison is the outcome of CompareShare.
type ShareComparison struct {
	Baseline ShareRun `json:"baseline"`
	Target   ShareRun `json:"target"`
}

// CompareShare runs the share-group workloads against the baseline cluster
// and then against the target cluster with the same options, and writes a
// table of every figure and the ratio target/baseline to w.
//
// opts.Records, RecordSize, Partitions (default 4) and Workers (default 16)
// shape the drain; the latency run uses opts.Rate and opts.Duration (default
// 10s) with linger 0 and the same number of consumers. If opts.Topic is
// empty a fresh topic name is chosen. Each topic is deleted as soon as its
// workload is done, which also frees the memory of an in-process baseline.
func CompareShare(ctx context.Context, baseline, target []string, opts Options, w io.Writer) (ShareComparison, error) {
	if opts.Topic == "" {
		opts.Topic = fmt.Sprintf("%s-%d", DefaultTopic, time.Now().UnixNano())
	}
	o := opts.withShareDefaults()
	fmt.Fprintf(w, "workloads: %d share consumers in one group drain %d x %d B from %d partitions, ACCEPTing each record;"+
		" e2e latency through %d share consumers at %d records/s for %s (acks=all, linger 0)\n",
		o.Workers, o.Records, o.RecordSize, o.Partitions, o.Workers, o.Rate, latencyDuration(o))

	var cmp ShareComparison
	var err error
	releaseMemory()
	if cmp.Baseline, err = runShareAll(ctx, baseline, o); err != nil {
		return cmp, fmt.Errorf("baseline %s: %w", strings.Join(baseline, ","), err)
	}
	releaseMemory()
	if cmp.Target, err = runShareAll(ctx, target, o); err != nil {
		return cmp, fmt.Errorf("target %s: %w", strings.Join(target, ","), err)
	}
	cmp.WriteTable(w)
	return cmp, nil
}

func runShareAll(ctx context.Context, brokers []string, o Options) (ShareRun, error) {
	run := ShareRun{Brokers: brokers}
	o.Brokers = brokers
	latencyOpts := o
	latencyOpts.Topic = o.Topic + "-e2e"
	latencyOpts.Linger = -1 // none
	latencyOpts.Records = 0
	latencyOpts.Duration = latencyDuration(o)
	defer deleteTopics(brokers, o.Topic, latencyOpts.Topic)

	var err error
	if run.Share, err = Share(ctx, o); err != nil {
		return run, fmt.Errorf("share: %w", err)
	}
	// Free the drained topic before measuring latency.
	deleteTopics(brokers, o.Topic)
	releaseMemory()
	if run.Latency, err = ShareLatency(ctx, latencyOpts); err != nil {
		return run, fmt.Errorf("share latency: %w", err)
	}
	return run, nil
}

// WriteTable writes every figure of both runs and the ratio target/baseline.
// For throughput a ratio above 1 means the target is faster; for latency a
// ratio below 1 means it is faster.
func (c ShareComparison) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tfigure\tbaseline\ttarget\ttarget/baseline\t\n")
	row := func(workload, figure string, b, t float64, format string) {
		ratio := "-"
		if b != 0 {
			ratio = fmt.Sprintf("%.2fx", t/b)
		}
		fmt.Fprintf(tw, "%s\t%s\t"+format+"\t"+format+"\t%s\t\n", workload, figure, b, t, ratio)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b, t := c.Baseline, c.Target
	row("share", "records/s", b.Share.RecordsPerSec, t.Share.RecordsPerSec, "%.0f")
	row("share", "MB/s", b.Share.MBPerSec, t.Share.MBPerSec, "%.1f")
	row("share", "seconds", b.Share.Elapsed.Seconds(), t.Share.Elapsed.Seconds(), "%.3f")
	row("share", "duplicates", float64(b.Share.Duplicates), float64(t.Share.Duplicates), "%.0f")
	bl, tl := b.Latency.Latency, t.Latency.Latency
	row("share-e2e", "records/s", b.Latency.RecordsPerSec, t.Latency.RecordsPerSec, "%.0f")
	row("share-e2e", "p50 ms", ms(bl.P50), ms(tl.P50), "%.3f")
	row("share-e2e", "p90 ms", ms(bl.P90), ms(tl.P90), "%.3f")
	row("share-e2e", "p99 ms", ms(bl.P99), ms(tl.P99), "%.3f")
	row("share-e2e", "p99.9 ms", ms(bl.P999), ms(tl.P999), "%.3f")
	row("share-e2e", "max ms", ms(bl.Max), ms(tl.Max), "%.3f")
	row("share-e2e", "duplicates", float64(b.Latency.Duplicates), float64(t.Latency.Duplicates), "%.0f")
	tw.Flush()
	fmt.Fprintf(w, "baseline: %s\ntarget:   %s\n", strings.Join(b.Brokers, ","), strings.Join(t.Brokers, ","))
}
