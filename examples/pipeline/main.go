// Command pipeline runs a three-stage processing pipeline on share groups
// with per-message retries and a dead-letter topic:
//
//	orders -> [parse] -> parsed -> [enrich] -> enriched -> [store]
//
// Each stage is a share group with two workers reading its input topic and
// producing to the next one. Failures are injected by message number:
//
//   - every message n with n%10 == 3 fails transiently in enrich on its
//     first two deliveries: the worker RELEASEs it and the broker
//     redelivers it after share.release.backoff.ms;
//   - every message n with n%25 == 7 is poison in store: the worker
//     REJECTs it and the broker copies it to the dead-letter topic
//     (dlq.*, with __dlq.errors.* headers).
//
// At the end it prints how many messages were stored, retried and
// dead-lettered, and checks them against the injected failures.
//
//	go run ./examples/pipeline --bootstrap-server 127.0.0.1:9092
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

const (
	transientFailures = 2                      // deliveries that fail before a transient message succeeds
	releaseBackoff    = 300 * time.Millisecond // share.release.backoff.ms of the enrich stage
)

func isTransient(n int) bool { return n%10 == 3 }
func isPoison(n int) bool    { return n%25 == 7 }

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	messages := flag.Int("messages", 200, "messages to send through the pipeline")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*bootstrap, *messages, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// stats are the pipeline's counters.
type stats struct {
	mu          sync.Mutex
	stored      map[int]int         // message -> times stored
	retries     map[int]int         // message -> RELEASEs in enrich
	lastRelease map[int]time.Time   // message -> when it was last released
	minGap      time.Duration       // shortest release-to-redelivery gap
	processed   map[string]int      // stage -> records handled
	rejected    map[int]bool        // messages REJECTed in store
	dlq         map[int]dlqEnvelope // dead-lettered messages, from the DLQ topic
}

type dlqEnvelope struct{ topic, reason, count string }

func run(bootstrap string, messages int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	run := strconv.FormatInt(time.Now().UnixMilli(), 36)
	topics := []string{"orders-" + run, "parsed-" + run, "enriched-" + run}
	stages := []string{"parse", "enrich", "store"}
	dlq := "dlq.pipeline-" + run

	admCl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	for _, t := range topics {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, t); err != nil {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"errors.deadletterqueue.group.enable": kadm.StringPtr("true")}, dlq); err != nil {
		return fmt.Errorf("create topic %s: %w", dlq, err)
	}
	for _, st := range stages {
		cfg := map[string]string{
			"share.auto.offset.reset":           "earliest",
			"errors.deadletterqueue.topic.name": dlq,
			// Dead letters carry the order itself, not only where it
			// came from (KIP-1191's default).
			"errors.deadletterqueue.copy.record.enable": "true",
		}
		if st == "enrich" {
			cfg["share.release.backoff.ms"] = strconv.Itoa(int(releaseBackoff.Milliseconds()))
		}
		if err := setGroupConfigs(ctx, admCl, group(st, run), cfg); err != nil {
			return err
		}
	}
	fmt.Printf("stages %v over topics %v, dead letters to %s\n", stages, topics, dlq)

	s := &stats{stored: map[int]int{}, retries: map[int]int{}, lastRelease: map[int]time.Time{},
		processed: map[string]int{}, rejected: map[int]bool{}, dlq: map[int]dlqEnvelope{}, minGap: time.Hour}

	wantStored, wantRetried, wantDead := 0, 0, 0
	for n := 0; n < messages; n++ {
		switch {
		case isPoison(n):
			wantDead++
		default:
			wantStored++
		}
		if isTransient(n) {
			wantRetried++
		}
	}

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i, st := range stages {
		next := ""
		if i+1 < len(topics) {
			next = topics[i+1]
		}
		for w := 0; w < 2; w++ {
			cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap),
				kgo.ClientID(st+"-"+strconv.Itoa(w)),
				kgo.ShareGroup(group(st, run)), kgo.ConsumeTopics(topics[i]),
				kgo.DefaultProduceTopic(next), kgo.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cl.Close()
				if err := stage(workCtx, cl, st, s); err != nil {
					errs <- fmt.Errorf("%s: %w", st, err)
				}
			}()
		}
	}
	// The dead-letter reader.
	dl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer dl.Close()
		for workCtx.Err() == nil {
			dl.PollFetches(workCtx).EachRecord(func(r *kgo.Record) {
				n, _ := strconv.Atoi(string(r.Key))
				e := dlqEnvelope{}
				for _, h := range r.Headers {
					switch h.Key {
					case "__dlq.errors.topic":
						e.topic = string(h.Value)
					case "__dlq.errors.reason":
						e.reason = string(h.Value)
					case "__dlq.errors.delivery.count":
						e.count = string(h.Value)
					}
				}
				s.mu.Lock()
				s.dlq[n] = e
				s.mu.Unlock()
			})
		}
	}()

	// Feed the pipeline.
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topics[0]))
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for n := 0; n < messages; n++ {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(n)), Value: []byte("order " + strconv.Itoa(n))})
	}
	err = prod.ProduceSync(ctx, recs...).FirstErr()
	prod.Close()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Printf("sent %d messages (%d will fail transiently %d times in enrich, %d are poison in store)\n",
		messages, wantRetried, transientFailures, wantDead)

	finished := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.stored) == wantStored && len(s.dlq) == wantDead
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for !finished() {
		select {
		case err := <-errs:
			stopWork()
			wg.Wait()
			return err
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	time.Sleep(500 * time.Millisecond) // let any duplicate show up
	stopWork()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	dups, retries, reasons := 0, 0, map[string]int{}
	for _, c := range s.stored {
		dups += c - 1
	}
	for _, c := range s.retries {
		retries += c
	}
	for n, e := range s.dlq {
		reasons[e.reason]++
		if !isPoison(n) || e.topic != topics[2] {
			return fmt.Errorf("unexpected dead letter %d from %s", n, e.topic)
		}
	}
	for _, st := range stages {
		fmt.Printf("stage %-6s handled %d deliveries\n", st, s.processed[st])
	}
	fmt.Printf("dead-letter reasons: %v\n", reasons)
	gap := s.minGap
	if len(s.retries) == 0 {
		gap = 0
	}
	fmt.Printf("shortest release-to-redelivery gap: %s (share.release.backoff.ms=%d)\n", gap.Round(time.Millisecond), releaseBackoff.Milliseconds())
	fmt.Printf("pipeline: sent=%d done=%d retried=%d retries=%d dead-lettered=%d duplicates=%d\n",
		messages, len(s.stored), len(s.retries), retries, len(s.dlq), dups)
	if ctx.Err() != nil {
		return fmt.Errorf("timed out")
	}
	if len(s.stored) != wantStored || len(s.retries) != wantRetried || retries != wantRetried*transientFailures ||
		len(s.dlq) != wantDead || dups != 0 {
		return fmt.Errorf("want done=%d retried=%d retries=%d dead-lettered=%d duplicates=0",
			wantStored, wantRetried, wantRetried*transientFailures, wantDead)
	}
	if gap < releaseBackoff {
		return fmt.Errorf("a released message came back after %s, before the %s backoff", gap, releaseBackoff)
	}
	return nil
}

func group(stage, run string) string { return "pipeline-" + stage + "-" + run }

// stage runs one worker of a stage until ctx is done.
func stage(ctx context.Context, cl *kgo.Client, name string, s *stats) error {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		var err error
		fs.EachError(func(t string, p int32, e error) {
			if ctx.Err() == nil && err == nil {
				err = fmt.Errorf("%s/%d: %w", t, p, e)
			}
		})
		if err != nil {
			return err
		}
		var forward, done []*kgo.Record
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := strconv.Atoi(string(r.Key))
			s.mu.Lock()
			defer s.mu.Unlock()
			s.processed[name]++
			if t, ok := s.lastRelease[n]; ok {
				s.minGap = min(s.minGap, now.Sub(t))
				delete(s.lastRelease, n)
			}
			switch {
			case name == "enrich" && isTransient(n) && r.DeliveryCount() <= transientFailures:
				s.retries[n]++
				s.lastRelease[n] = time.Now()
				cl.MarkAcks(kgo.AckRelease, r)
			case name == "store" && isPoison(n):
				s.rejected[n] = true
				cl.MarkAcks(kgo.AckReject, r)
			case name == "store":
				s.stored[n]++
				done = append(done, r)
			default:
				forward = append(forward, &kgo.Record{Key: r.Key, Value: append([]byte(name+"d "), r.Value...)})
				done = append(done, r)
			}
		})
		if len(forward) > 0 {
			if err := cl.ProduceSync(ctx, forward...).FirstErr(); err != nil {
				if ctx.Err() != nil {
					cl.MarkAcks(kgo.AckRelease, done...)
					return nil
				}
				return err
			}
		}
		cl.MarkAcks(kgo.AckAccept, done...)
		// Send the acks now rather than with the next fetch, so released
		// messages start their backoff at once.
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.FlushAcks(fctx)
		fcancel()
		if err != nil {
			return fmt.Errorf("flushing acks: %w", err)
		}
	}
	return nil
}

// setGroupConfigs sets group configs (IncrementalAlterConfigs on the GROUP
// resource).
func setGroupConfigs(ctx context.Context, cl *kgo.Client, group string, kvs map[string]string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	for k, v := range kvs {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		res.Configs = append(res.Configs, cfg)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("configure group %s: %w", group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = ": " + *r.ErrorMessage
			}
			return fmt.Errorf("configure group %s: %w%s", group, err, msg)
		}
	}
	return nil
}
