// Command replay shows a topic used as a replayable log: two independent
// consumer groups each read every record, and a replayer with no group
// starts from a point in time an hour back, skipping older history.
//
// It first produces 5 records stamped three hours ago, 5 stamped thirty
// minutes ago and 5 stamped now, so the replayer should read 10 of the 15.
//
//	go run ./examples/replay --bootstrap-server 127.0.0.1:9092
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*bootstrap, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(bootstrap string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	run := strconv.FormatInt(time.Now().UnixMilli(), 36)
	topic := "events-" + run
	groups := []string{"billing-" + run, "audit-" + run}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}

	// History: records with explicit (old) timestamps.
	now := time.Now()
	var recs []*kgo.Record
	for _, age := range []struct {
		name string
		ago  time.Duration
	}{{"3h-ago", 3 * time.Hour}, {"30m-ago", 30 * time.Minute}, {"now", 0}} {
		for i := 0; i < 5; i++ {
			recs = append(recs, &kgo.Record{
				Topic:     topic,
				Key:       []byte("user-" + strconv.Itoa(i)),
				Value:     []byte(age.name + "-" + strconv.Itoa(i)),
				Timestamp: now.Add(-age.ago),
			})
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return err
	}
	err = prod.ProduceSync(ctx, recs...).FirstErr()
	prod.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Printf("topic %s: produced %d records (5 from 3h ago, 5 from 30m ago, 5 now)\n", topic, len(recs))

	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })

	// Two consumer groups, each reading everything from the start and
	// committing; and the replayer, reading from an hour ago.
	hourAgo := now.Add(-time.Hour)
	readers := []struct {
		name string
		opts []kgo.Opt
	}{
		{"group " + groups[0], []kgo.Opt{kgo.ConsumerGroup(groups[0]), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}},
		{"group " + groups[1], []kgo.Opt{kgo.ConsumerGroup(groups[1]), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}},
		{"replayer from -1h", []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(hourAgo.UnixMilli()))}},
	}
	want := []int{total, total, 0}
	for _, r := range recs {
		if !r.Timestamp.Before(hourAgo) {
			want[2]++
		}
	}

	got := make([][]*kgo.Record, len(readers))
	var wg sync.WaitGroup
	errs := make([]error, len(readers))
	for i, rd := range readers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = read(ctx, bootstrap, rd.opts, want[i], i < len(groups))
		}(i)
	}
	wg.Wait()
	for i, rd := range readers {
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", rd.name, errs[i])
		}
		fmt.Printf("%s read %d: %s\n", rd.name, len(got[i]), describe(got[i]))
	}

	// The groups' commits are independent of each other.
	for _, g := range groups {
		lag, err := adm.Lag(ctx, g)
		if err != nil {
			return err
		}
		fmt.Printf("group %s: lag %d\n", g, lag[g].Lag.Total())
	}

	fmt.Printf("replay: %s=%d %s=%d replayer=%d total=%d\n",
		strings.SplitN(groups[0], "-", 2)[0], len(got[0]), strings.SplitN(groups[1], "-", 2)[0], len(got[1]), len(got[2]), total)
	if len(got[0]) != total || len(got[1]) != total || len(got[2]) != want[2] {
		return fmt.Errorf("want each group to read %d and the replayer %d", total, want[2])
	}
	return nil
}

// read consumes until it has n records, commits (for a group) and leaves.
func read(ctx context.Context, bootstrap string, opts []kgo.Opt, n int, isGroup bool) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap),
		kgo.FetchMaxWait(300 * time.Millisecond)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var vals []*kgo.Record
	for len(vals) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return vals, fmt.Errorf("read %d of %d records: %w", len(vals), n, ctx.Err())
		}
		if err := fs.Err(); err != nil {
			return vals, err
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, r) })
	}
	// A short extra poll shows nothing more arrives.
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	fs := cl.PollFetches(pctx)
	pcancel()
	fs.EachRecord(func(r *kgo.Record) { vals = append(vals, r) })
	if isGroup {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return vals, fmt.Errorf("commit: %w", err)
		}
	}
	return vals, nil
}

// describe lists records oldest first: "3h-ago-0 ... now-4".
func describe(rs []*kgo.Record) string {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].Timestamp.Equal(rs[j].Timestamp) {
			return rs[i].Timestamp.Before(rs[j].Timestamp)
		}
		return string(rs[i].Value) < string(rs[j].Value)
	})
	vals := make([]string, len(rs))
	for i, r := range rs {
		vals[i] = string(r.Value)
	}
	return strings.Join(vals, " ")
}
