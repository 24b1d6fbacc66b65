package bench

import (
	"context"
	"fmt"
	"io"
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
	o := withFreshTopic(opts).withShareDefaults()
	fmt.Fprintf(w, "workloads: %d share consumers in one group drain %d x %d B from %d partitions, ACCEPTing each record;"+
		" e2e latency through %d share consumers at %d records/s for %s (acks=all, linger 0)\n",
		o.Workers, o.Records, o.RecordSize, o.Partitions, o.Workers, o.Rate, latencyDuration(o))

	var cmp ShareComparison
	var err error
	if cmp.Baseline, cmp.Target, err = runBothSides(ctx, baseline, target, o, runShareAll); err != nil {
		return cmp, err
	}
	cmp.WriteTable(w)
	return cmp, nil
}

func runShareAll(ctx context.Context, brokers []string, o Options) (ShareRun, error) {
	run := ShareRun{Brokers: brokers}
	o.Brokers = brokers
	latencyOpts := latencyOptions(o, "-e2e")
	defer DeleteTopics(o, o.Topic, latencyOpts.Topic)

	var err error
	if run.Share, err = Share(ctx, o); err != nil {
		return run, fmt.Errorf("share: %w", err)
	}
	// Free the drained topic before measuring latency.
	_ = DeleteTopics(o, o.Topic)
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
	tab := newComparisonTable(w)
	b, t := c.Baseline, c.Target
	tab.row("share", "records/s", b.Share.RecordsPerSec, t.Share.RecordsPerSec, "%.0f")
	tab.row("share", "MB/s", b.Share.MBPerSec, t.Share.MBPerSec, "%.1f")
	tab.row("share", "seconds", b.Share.Elapsed.Seconds(), t.Share.Elapsed.Seconds(), "%.3f")
	tab.row("share", "duplicates", float64(b.Share.Duplicates), float64(t.Share.Duplicates), "%.0f")
	tab.row("share-e2e", "records/s", b.Latency.RecordsPerSec, t.Latency.RecordsPerSec, "%.0f")
	tab.percentiles("share-e2e", b.Latency.Latency, t.Latency.Latency)
	tab.row("share-e2e", "duplicates", float64(b.Latency.Duplicates), float64(t.Latency.Duplicates), "%.0f")
	tab.end(b.Brokers, t.Brokers)
}
