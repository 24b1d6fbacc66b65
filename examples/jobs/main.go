// Command jobs uses a shoal topic as a work queue: it creates a topic with
// two partitions, produces 10,000 jobs, and runs eight share-group workers
// (more workers than partitions) that each ACCEPT the jobs they finish. It
// prints how many jobs each worker did and checks that every job was done
// exactly once.
//
//	go run ./examples/jobs --bootstrap-server 127.0.0.1:9092
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	jobs := flag.Int("jobs", 10000, "jobs to produce")
	workers := flag.Int("workers", 8, "share-group workers")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*bootstrap, *jobs, *workers, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

// jobTime is how long one job takes.
const jobTime = 200 * time.Microsecond

func run(bootstrap string, jobs, workers int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	run := strconv.FormatInt(time.Now().UnixMilli(), 36)
	topic, group := "jobs-"+run, "job-workers-"+run

	admCl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// A share group starts at the end of the log unless told otherwise;
	// these jobs are produced before the workers start.
	if err := setGroupConfig(ctx, admCl, group, "share.auto.offset.reset", "earliest"); err != nil {
		return err
	}
	fmt.Printf("topic %s (2 partitions), share group %s\n", topic, group)

	// The workers. Each marks a job ACCEPTed once it has done it.
	var (
		mu        sync.Mutex
		doneBy    = make(map[string]int) // job -> times done
		perWorker = make([]int, workers)
		allDone   = make(chan struct{})
	)
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap),
			kgo.ClientID("worker-"+strconv.Itoa(w)),
			kgo.ShareGroup(group), kgo.ConsumeTopics(topic),
			kgo.ShareMaxRecords(50), kgo.ShareMaxRecordsStrict())
		if err != nil {
			return err
		}
		wg.Add(1)
		go func(w int, cl *kgo.Client) {
			defer wg.Done()
			defer cl.Close()
			for workCtx.Err() == nil {
				fs := cl.PollFetches(workCtx)
				fs.EachError(func(t string, p int32, err error) {
					if workCtx.Err() == nil {
						errs <- fmt.Errorf("worker %d: %s/%d: %w", w, t, p, err)
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					// "Do" the job, then accept it.
					time.Sleep(jobTime)
					cl.MarkAcks(kgo.AckAccept, r)
					mu.Lock()
					doneBy[string(r.Value)]++
					perWorker[w]++
					if len(doneBy) == jobs {
						select {
						case <-allDone:
						default:
							close(allDone)
						}
					}
					mu.Unlock()
				})
			}
			// Send the last acks before leaving the group.
			fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer fcancel()
			if err := cl.FlushAcks(fctx); err != nil {
				errs <- fmt.Errorf("worker %d: flushing acks: %w", w, err)
			}
		}(w, cl)
	}

	// Wait until all workers have joined and been given partitions, so
	// the jobs are shared by all of them.
	if err := waitForMembers(ctx, adm, group, workers); err != nil {
		stopWork()
		wg.Wait()
		return err
	}
	fmt.Printf("%d workers joined the share group\n", workers)

	// Produce the jobs, spread over both partitions by key.
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	recs := make([]*kgo.Record, jobs)
	for i := range recs {
		id := "job-" + strconv.Itoa(i)
		recs[i] = &kgo.Record{Key: []byte(id), Value: []byte(id)}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		prod.Close()
		return fmt.Errorf("produce: %w", err)
	}
	prod.Close()
	fmt.Printf("produced %d jobs\n", jobs)

	select {
	case <-allDone:
	case err := <-errs:
		stopWork()
		wg.Wait()
		return err
	case <-ctx.Done():
		stopWork()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("timed out with %d of %d jobs done", len(doneBy), jobs)
	}
	// Give in-flight polls a moment to show any duplicate delivery, then
	// stop the workers.
	time.Sleep(500 * time.Millisecond)
	stopWork()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}

	total, dups := 0, 0
	for w, n := range perWorker {
		fmt.Printf("worker-%d: %d jobs\n", w, n)
		total += n
	}
	for _, n := range doneBy {
		dups += n - 1
	}

	// Every job acknowledged: the group's start offsets reach the log end.
	var lag int64 = -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		offs, err := adm.DescribeShareGroupOffsets(ctx, group)
		if err != nil {
			continue
		}
		lag = 0
		for _, ps := range offs[group].Offsets {
			for _, o := range ps {
				lag += o.Lag
			}
		}
		if lag == 0 {
			break
		}
	}
	fmt.Printf("jobs: produced=%d done=%d unique=%d duplicates=%d workers=%d lag=%d\n",
		jobs, total, len(doneBy), dups, workers, lag)
	if total != jobs || len(doneBy) != jobs || dups != 0 || lag != 0 {
		return fmt.Errorf("expected every job done exactly once and no lag")
	}
	return nil
}

// setGroupConfig sets one group config (IncrementalAlterConfigs on the
// GROUP resource).
func setGroupConfig(ctx context.Context, cl *kgo.Client, group, key, value string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = key, kmsg.StringPtr(value)
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("set %s on group %s: %w", key, group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("set %s on group %s: %w", key, group, err)
		}
	}
	return nil
}

// waitForMembers waits until the share group has n members, each with an
// assignment.
func waitForMembers(ctx context.Context, adm *kadm.Client, group string, n int) error {
	for {
		ds, err := adm.DescribeShareGroups(ctx, group)
		if err == nil {
			g := ds[group]
			ready := 0
			for _, m := range g.Members {
				if len(m.Assignment) > 0 {
					ready++
				}
			}
			if ready == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d workers to join group %s: %w", n, group, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
