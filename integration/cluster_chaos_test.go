package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The cluster scenarios: three nodes under an idempotent acks=all producer
// (RF 3, min.insync.replicas 2, several partitions), a consumer group
// committing offsets and a share group with a dead-letter topic, while one
// disruption runs; then the checker of cluster_checker_test.go judges what
// the clients saw.

const (
	chaosPartitions = 3
	// Every chaosRejectEvery-th value is rejected (and must reach the
	// dead-letter topic); every chaosReleaseEvery-th is released on its
	// first delivery (and must come back).
	chaosRejectEvery  = 50
	chaosReleaseEvery = 37
	chaosWorkers      = 2
)

// chaosRun is a running scenario: the cluster and the load on it.
type chaosRun struct {
	t     *testing.T
	c     *cluster
	topic string
	group string // consumer group
	share string // share group
	dlq   string
	acks  *clusterAcks
	rec   *chaosRecorder

	// members are the group clients, which leave their groups at the end.
	members []*kgo.Client

	errMu sync.Mutex
	errs  map[string]int // share fetch and ack errors, by text
}

// shareError counts an error a share worker saw (reported in progress
// timeouts and at the end).
func (r *chaosRun) shareError(what string, err error) {
	r.errMu.Lock()
	if r.errs == nil {
		r.errs = map[string]int{}
	}
	r.errs[what+": "+err.Error()]++
	r.errMu.Unlock()
}

func (r *chaosRun) shareErrors() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return fmt.Sprint(r.errs)
}

// chaosValue is the value of the seq-th produced record.
func chaosValue(seq int) string { return fmt.Sprintf("v-%07d", seq) }

// chaosAck is what a worker answers for a record: reject or release by its
// value, accept otherwise.
func chaosAck(value string, deliveryCount int32) kgo.AckStatus {
	seq, err := strconv.Atoi(strings.TrimPrefix(value, "v-"))
	switch {
	case err != nil:
		return kgo.AckAccept
	case seq%chaosRejectEvery == 0:
		return kgo.AckReject
	case seq%chaosReleaseEvery == 0 && deliveryCount <= 1:
		return kgo.AckRelease
	}
	return kgo.AckAccept
}

// runClusterScenario starts three nodes and the load, lets it run, calls
// disrupt (which must leave every node running again), lets the load run on,
// then drains the share group and checks everything the clients saw.
func runClusterScenario(t *testing.T, disrupt func(r *chaosRun)) {
	began := time.Now()
	// Share-state loads and claims are logged (at debug) so that the node
	// logs printed with a failure say which state each new share-partition
	// leader took over.
	c := startCluster(t, 3, "group.share.heartbeat.interval.ms=500", "group.share.session.timeout.ms=10000",
		"group.share.min.record.lock.duration.ms=1000", "log.level=info,share=debug,coordinator=debug")
	topic := topicName(t, "")
	r := &chaosRun{t: t, c: c, topic: topic, group: topic + "-group", share: topic + "-share", acks: newClusterAcks(), rec: &chaosRecorder{}}
	r.dlq = "dlq." + r.share
	admin := c.Client(t)
	adm := kadm.NewClient(admin)
	r.createTopic(adm, topic, nil)
	r.createTopic(adm, r.dlq, map[string]*string{"errors.deadletterqueue.group.enable": strp("true")})
	waitFor(t, opTimeout, "share group configs", func() (bool, string) {
		err := trySetGroupConfigs(ctxT(t, 5*time.Second), admin, r.share,
			"share.auto.offset.reset=earliest",
			"share.record.lock.duration.ms=10000",
			"errors.deadletterqueue.topic.name="+r.dlq)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	r.waitFullISR(c.nodes[0])

	// Producers and the consumer group stop at stopLoad; the share workers
	// keep going until the share group is drained, and the commit sampler
	// until the end.
	stopLoad, stopShare, stopSampler := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var loadWG, shareWG, samplerWG sync.WaitGroup
	stopped := map[chan struct{}]bool{}
	halt := func(ch chan struct{}, wg *sync.WaitGroup) {
		if !stopped[ch] {
			stopped[ch] = true
			close(ch)
		}
		wg.Wait()
	}
	defer func() {
		halt(stopLoad, &loadWG)
		halt(stopShare, &shareWG)
		halt(stopSampler, &samplerWG)
	}()
	r.startProducer(stopLoad, &loadWG)
	r.startConsumerGroup(stopLoad, &loadWG)
	r.startCommitSampler(stopSampler, &samplerWG)
	for w := 1; w <= chaosWorkers; w++ {
		r.startShareWorker(w, stopShare, &shareWG)
	}

	r.progress("the load before the disruption")
	loaded := time.Now()
	disrupt(r)
	disrupted := time.Now()
	for _, n := range c.nodes {
		if !n.Alive() {
			t.Fatalf("node %d is not running after the disruption", n.id())
		}
	}
	r.waitFullISR(c.nodes...)
	r.progress("the load after the disruption")
	halt(stopLoad, &loadWG)

	// Drain the share group: wait until every record below the end
	// offsets got an ACCEPT or a REJECT from a worker. (The share-partition
	// start offsets of DescribeShareGroupOffsets would say the same, but
	// the node answering it reports only the share partitions whose state
	// it coordinates itself.) A record that never gets one is reported by
	// the checks below rather than by the wait.
	hwm := waitEndOffsets(t, adm, topic)
	drainBy := time.Now().Add(90 * time.Second)
	for {
		left := r.undecided(hwm)
		if left == 0 {
			break
		}
		if time.Now().After(drainBy) {
			t.Errorf("share group not drained after 90s: %d records below the end offsets %v got neither an ACCEPT nor a REJECT", left, hwm)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	halt(stopShare, &shareWG)
	halt(stopSampler, &samplerWG)
	drained := time.Now()
	r.leaveGroups()

	// The checks.
	logs := readPartitions(t, c, topic)
	produced := map[int32][]loggedRecord{}
	for p, recs := range logs {
		for _, rec := range recs {
			produced[p] = append(produced[p], loggedRecord{rec.Offset, string(rec.Value)})
		}
	}
	dead := map[recordKey]bool{}
	for _, recs := range readPartitions(t, c, r.dlq) {
		for _, rec := range recs {
			k, err := deadLetterOrigin(rec, topic)
			if err != nil {
				t.Errorf("dead-letter record at %d/%d: %v", rec.Partition, rec.Offset, err)
				continue
			}
			if dead[k] {
				t.Logf("record %s dead-lettered twice", k)
			}
			dead[k] = true
		}
	}
	r.acks.mu.Lock()
	acked := map[int32][]string{}
	total := 0
	for p, vs := range r.acks.acked {
		acked[p] = slices.Clone(vs)
		total += len(vs)
	}
	r.acks.mu.Unlock()
	events, commits := r.rec.snapshot()

	report(t, "acknowledged records in the log", checkProducedLog(acked, produced))
	for p := int32(0); p < chaosPartitions; p++ {
		waitIdenticalLogs(t, topic, p, c.nodes...)
	}
	report(t, "committed offsets", checkCommitsForward(commits))
	if len(commits) == 0 {
		t.Error("the consumer group's committed offsets were never sampled")
	}
	report(t, "share group coverage", checkShareCoverage(acked, produced, events, dead))
	report(t, "share group redelivery after a confirmed ack", checkNoDeliveryAfterAck(events))

	kinds := map[string]int{}
	for _, e := range events {
		k := e.kind.String()
		if e.kind != shareDelivered {
			k += " " + e.ack.String()
		}
		kinds[k]++
	}
	t.Logf("%d acknowledged records, %d commit samples, share events %v, %d dead-lettered; load %v, disruption %v, recovery and drain %v, until checked %v",
		total, len(commits), kinds, len(dead), loaded.Sub(began).Round(time.Millisecond), disrupted.Sub(loaded).Round(time.Millisecond),
		drained.Sub(disrupted).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

func (r *chaosRun) createTopic(adm *kadm.Client, topic string, extra map[string]*string) {
	r.t.Helper()
	configs := map[string]*string{"min.insync.replicas": strp("2")}
	for k, v := range extra {
		configs[k] = v
	}
	createTopicRF(r.t, adm, topic, chaosPartitions, 3, configs)
}

// leaveGroups makes the group clients leave their groups, each bounded in
// time (a Close at cleanup could wait long on a member's goodbye).
func (r *chaosRun) leaveGroups() {
	var wg sync.WaitGroup
	for _, cl := range r.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cl.LeaveGroupContext(ctx)
		}()
	}
	wg.Wait()
}

// undecided counts the records below the end offsets that no worker
// acknowledged with ACCEPT or REJECT yet.
func (r *chaosRun) undecided(ends map[int32]int64) int {
	events, _ := r.rec.snapshot()
	decided := map[recordKey]bool{}
	for _, e := range events {
		if e.kind != shareDelivered && (e.ack == kgo.AckAccept || e.ack == kgo.AckReject) {
			decided[e.rec] = true
		}
	}
	n := 0
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			if !decided[recordKey{p, o}] {
				n++
			}
		}
	}
	return n
}

// waitFullISR waits until every given node reports all three replicas in
// sync for every partition of the topic and the dead-letter topic.
func (r *chaosRun) waitFullISR(nodes ...*node) {
	r.t.Helper()
	for _, n := range nodes {
		for _, topic := range []string{r.topic, r.dlq} {
			for p := int32(0); p < chaosPartitions; p++ {
				r.c.waitPartition(n, topic, p, fmt.Sprintf("a full ISR of %s-%d on node %d", topic, p, n.id()), func(s partitionState) bool {
					return len(s.isr) == 3 && s.leader > 0
				})
			}
		}
	}
}

// progress waits until the producer got 500 more acknowledgements and the
// share group confirmed 200 more accepts.
func (r *chaosRun) progress(what string) {
	r.t.Helper()
	acked, accepted := r.acks.count(), r.rec.countShare(shareAckOK, kgo.AckAccept)
	waitFor(r.t, 60*time.Second, what, func() (bool, string) {
		a, s := r.acks.count(), r.rec.countShare(shareAckOK, kgo.AckAccept)
		return a >= acked+500 && s >= accepted+200, fmt.Sprintf("%d more acknowledged, %d more confirmed accepts (%d deliveries in all, share errors %s)",
			a-acked, s-accepted, r.rec.countShare(shareDelivered, 0), r.shareErrors())
	})
}

// leader returns the current leader of a partition of the topic, as a
// running node reports it.
func (r *chaosRun) leader(p int32) int32 {
	r.t.Helper()
	st := r.c.waitPartition(r.c.alive()[0], r.topic, p, "a leader", func(s partitionState) bool { return s.leader > 0 })
	return st.leader
}

// controller returns the active controller as a running node reports it.
func (r *chaosRun) controller() int32 {
	r.t.Helper()
	var ctrl int32 = -1
	waitFor(r.t, opTimeout, "a controller", func() (bool, string) {
		id, err := controllerOn(r.t, r.c.alive()[0])
		if err != nil {
			return false, err.Error()
		}
		ctrl = id
		return ctrl > 0, fmt.Sprint(ctrl)
	})
	return ctrl
}

// startProducer produces numbered values round-robin over the partitions
// with an idempotent acks=all producer, recording every acknowledged one.
func (r *chaosRun) startProducer(stop <-chan struct{}, wg *sync.WaitGroup) {
	// kgo retries a record it has sent until its delivery timeout, which
	// is unbounded by default; the context only fails records not yet
	// sent. Bound it, or a cluster that never recovers would block the
	// producer (and the test's clean-up waiting on it) forever.
	cl := r.c.Client(r.t, kgo.DefaultProduceTopic(r.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RequestTimeoutOverhead(5*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 0; ; {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			recs := make([]*kgo.Record, 20)
			for i := range recs {
				recs[i] = &kgo.Record{Partition: int32(seq % chaosPartitions), Value: []byte(chaosValue(seq))}
				seq++
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			for _, res := range cl.ProduceSync(ctx, recs...) {
				if res.Err == nil {
					r.acks.add(res.Record.Partition, string(res.Record.Value))
				}
			}
			cancel()
		}
	}()
}

// startConsumerGroup runs a group member that commits as it goes.
func (r *chaosRun) startConsumerGroup(stop <-chan struct{}, wg *sync.WaitGroup) {
	cl := r.c.Client(r.t, kgo.ConsumerGroup(r.group), kgo.ConsumeTopics(r.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(200*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond))
	r.members = append(r.members, cl)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			cl.PollFetches(ctx)
			cancel()
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
}

// startCommitSampler samples the consumer group's committed offsets.
func (r *chaosRun) startCommitSampler(stop <-chan struct{}, wg *sync.WaitGroup) {
	adm := kadm.NewClient(r.c.Client(r.t))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			offs, err := adm.FetchOffsets(ctx, r.group)
			cancel()
			if err == nil {
				at := time.Now()
				offs.Each(func(o kadm.OffsetResponse) {
					if o.Err == nil && o.Topic == r.topic && o.At >= 0 {
						r.rec.commit(commitSample{at, o.Partition, o.At})
					}
				})
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

// shareAckCollector gathers what a worker's ShareAckCallback reports.
type shareAckCollector struct {
	mu  sync.Mutex
	got kgo.ShareAckResults
}

func (a *shareAckCollector) callback(_ *kgo.Client, rs kgo.ShareAckResults) {
	a.mu.Lock()
	a.got = append(a.got, rs...)
	a.mu.Unlock()
}

func (a *shareAckCollector) take() kgo.ShareAckResults {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.got
	a.got = nil
	return out
}

// startShareWorker runs a share-group member: it acknowledges every poll's
// records (by chaosAck) and flushes the acknowledgements before it polls
// again, so every callback result received during the flush belongs to
// that poll. A partition's acks count as answered with success only if
// every result reported for the partition during the flush is a success.
func (r *chaosRun) startShareWorker(id int, stop <-chan struct{}, wg *sync.WaitGroup) {
	var col shareAckCollector
	cl := r.c.Client(r.t, kgo.ShareGroup(r.share), kgo.ConsumeTopics(r.topic), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ShareAckCallback(col.callback))
	r.members = append(r.members, cl)
	ctx, cancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-stop
		cancel()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := cl.PollFetches(pctx)
			pcancel()
			fs.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					r.shareError("fetch", err)
				}
			})
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			col.take() // nothing should be pending: the last flush drained it
			var delivered []shareEvent
			byAck := map[kgo.AckStatus][]*kgo.Record{}
			for _, rec := range recs {
				v := string(rec.Value)
				delivered = append(delivered, shareEvent{worker: id, kind: shareDelivered, rec: recordKey{rec.Partition, rec.Offset}, value: v, count: rec.DeliveryCount()})
				a := chaosAck(v, rec.DeliveryCount())
				byAck[a] = append(byAck[a], rec)
			}
			r.rec.shareEvents(delivered...)
			for a, rs := range byAck {
				cl.MarkAcks(a, rs...)
			}
			for {
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
				err := cl.FlushAcks(fctx)
				fcancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return // stopping: the outcome of these acks stays unknown
				}
			}
			ok := map[int32]bool{}
			for _, res := range col.take() {
				if res.Topic != r.topic {
					continue
				}
				if res.Err != nil {
					r.shareError("ack", res.Err)
				}
				prev, seen := ok[res.Partition]
				ok[res.Partition] = res.Err == nil && (!seen || prev)
			}
			var answered []shareEvent
			for a, rs := range byAck {
				for _, rec := range rs {
					kind := shareAckSent
					if ok[rec.Partition] {
						kind = shareAckOK
					}
					answered = append(answered, shareEvent{worker: id, kind: kind, rec: recordKey{rec.Partition, rec.Offset}, value: string(rec.Value), ack: a})
				}
			}
			r.rec.shareEvents(answered...)
		}
	}()
}

// deadLetterOrigin is the partition and offset a dead-letter record came
// from, from its headers.
func deadLetterOrigin(rec *kgo.Record, topic string) (recordKey, error) {
	h := map[string]string{}
	for _, rh := range rec.Headers {
		h[rh.Key] = string(rh.Value)
	}
	if h["__dlq.errors.topic"] != topic {
		return recordKey{}, fmt.Errorf("from topic %q, want %q", h["__dlq.errors.topic"], topic)
	}
	p, err1 := strconv.ParseInt(h["__dlq.errors.partition"], 10, 32)
	o, err2 := strconv.ParseInt(h["__dlq.errors.offset"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return recordKey{}, err
	}
	return recordKey{int32(p), o}, nil
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

// TestClusterChaosLeaderKill9 kills the leader of a busy partition with
// SIGKILL and restarts it once a survivor leads.
func TestClusterChaosLeaderKill9(t *testing.T) {
	runClusterScenario(t, func(r *chaosRun) {
		leader := r.leader(0)
		victim := r.c.node(leader)
		victim.Kill9()
		r.t.Logf("killed node %d, the leader of partition 0", leader)
		r.c.waitPartition(r.c.alive()[0], r.topic, 0, "a new leader of partition 0", func(s partitionState) bool {
			return s.leader > 0 && s.leader != leader
		})
		r.progress(fmt.Sprintf("the load while node %d is down", leader))
		victim.Restart()
	})
}

// TestClusterChaosControllerKill9 kills the active controller with SIGKILL
// and restarts it once the survivors elected another.
func TestClusterChaosControllerKill9(t *testing.T) {
	runClusterScenario(t, func(r *chaosRun) {
		ctrl := r.controller()
		victim := r.c.node(ctrl)
		victim.Kill9()
		r.t.Logf("killed node %d, the active controller", ctrl)
		for _, n := range r.c.alive() {
			waitFor(r.t, opTimeout, fmt.Sprintf("node %d to name a new controller", n.id()), func() (bool, string) {
				id, err := controllerOn(r.t, n)
				if err != nil {
					return false, err.Error()
				}
				return id > 0 && id != ctrl, fmt.Sprint(id)
			})
		}
		r.progress(fmt.Sprintf("the load while node %d is down", ctrl))
		victim.Restart()
	})
}

// TestClusterChaosFollowerOutOfISR keeps a follower of a busy partition
// down (SIGKILL) for longer than replica.lag.time.max.ms, until every
// partition's ISR dropped it, then brings it back to rejoin every ISR.
func TestClusterChaosFollowerOutOfISR(t *testing.T) {
	runClusterScenario(t, func(r *chaosRun) {
		leader, ctrl := r.leader(0), r.controller()
		var follower int32
		for _, n := range r.c.nodes {
			if id := n.id(); id != leader && (follower == 0 || id != ctrl) {
				follower = id
			}
		}
		victim := r.c.node(follower)
		victim.Kill9()
		down := time.Now()
		r.t.Logf("killed node %d, a follower of partition 0 (leader %d, controller %d)", follower, leader, ctrl)
		for p := int32(0); p < chaosPartitions; p++ {
			r.c.waitPartition(r.c.alive()[0], r.topic, p, fmt.Sprintf("node %d out of the ISR of partition %d", follower, p), func(s partitionState) bool {
				return s.leader > 0 && len(s.isr) == 2 && !slices.Contains(s.isr, follower)
			})
		}
		// Down for longer than replica.lag.time.max.ms (5s in
		// clusterSettings), with the load going on.
		for lag := 5 * time.Second; time.Since(down) <= lag; {
			r.progress(fmt.Sprintf("the load while node %d is down", follower))
		}
		victim.Restart()
	})
}

// TestClusterChaosRollingKill9 kills every node in turn with SIGKILL and
// restarts it, waiting until it is back in every ISR before the next.
func TestClusterChaosRollingKill9(t *testing.T) {
	runClusterScenario(t, func(r *chaosRun) { rollNodes(r, (*node).Kill9) })
}

// rollNodes takes every node down in turn with down, keeps the load going
// without it, restarts it and waits until it is back in every ISR.
func rollNodes(r *chaosRun, down func(*node)) {
	for _, n := range r.c.nodes {
		r.t.Logf("taking node %d down", n.id())
		down(n)
		r.progress(fmt.Sprintf("the load while node %d is down", n.id()))
		n.Restart()
		r.waitFullISR(r.c.alive()...)
		r.progress(fmt.Sprintf("the load after node %d returned", n.id()))
	}
}
