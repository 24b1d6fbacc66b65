package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pipelineEnv, set to broker addresses (comma-separated), makes the test binary run
// runPipeline instead of the tests; the other pipelineEnv* variables name
// its topics, group and transactional id.
const (
	pipelineEnv      = "EOS_PIPELINE_BROKER"
	pipelineEnvIn    = "EOS_PIPELINE_IN"
	pipelineEnvOut   = "EOS_PIPELINE_OUT"
	pipelineEnvGroup = "EOS_PIPELINE_GROUP"
)

// runPipeline is the consume-transform-produce process: franz-go's
// GroupTransactSession reads the input topic with read_committed in a
// consumer group and, in one transaction per poll, writes for every input
// record (p, o) an output record "p/o" to partition p of the output topic and
// commits the input offsets. It prints "committed" after each committed
// transaction and runs until killed.
func runPipeline(broker string) int {
	in, out, group := os.Getenv(pipelineEnvIn), os.Getenv(pipelineEnvOut), os.Getenv(pipelineEnvGroup)
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(strings.Split(broker, ",")...),
		kgo.TransactionalID(group+"-txn"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		// Static membership: a restarted process takes over its
		// predecessor's assignment without waiting for a session timeout.
		kgo.InstanceID(group+"-member"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		return 1
	}
	defer sess.Close()
	ctx := context.Background()
	// Initialize the producer id before consuming, as a Java pipeline's
	// initTransactions does: the InitProducerId fences the killed
	// predecessor and aborts its open transaction at once. franz-go would
	// otherwise initialize it only at the first produce, after fetching the
	// group's offsets, which the predecessor's pending offset commit keeps
	// unstable (UNSTABLE_OFFSET_COMMIT) until its transaction times out.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline: init producer id:", err)
		return 1
	}
	for {
		fs := sess.PollRecords(ctx, 10)
		fs.EachError(func(topic string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "pipeline: fetch %s/%d: %v\n", topic, p, err)
		})
		if err := sess.Begin(); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline: begin:", err)
			return 1
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: out, Partition: r.Partition, Value: fmt.Appendf(nil, "%d/%d", r.Partition, r.Offset)}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipeline: end:", err)
		}
		if committed && len(fs.Records()) > 0 {
			fmt.Println("committed", len(fs.Records()))
		}
	}
}

// pipelineProcess is one run of runPipeline in a child process.
type pipelineProcess struct {
	*childProc
	committed atomic.Int64
}

func startPipeline(t *testing.T, seeds []string, in, out, group string) *pipelineProcess {
	t.Helper()
	pp := &pipelineProcess{}
	pp.childProc = startChild(t, "pipeline", []string{
		pipelineEnv + "=" + strings.Join(seeds, ","),
		pipelineEnvIn + "=" + in,
		pipelineEnvOut + "=" + out,
		pipelineEnvGroup + "=" + group,
	}, func(line string) {
		if strings.HasPrefix(line, "committed") {
			pp.committed.Add(1)
		}
	}, func(stderr string) {
		t.Logf("pipeline stderr:\n%s", lastLines(stderr, 20))
	})
	return pp
}

// readRawLog reads a partition's whole log with read_uncommitted Fetch
// requests and returns its records and markers in order (batches must be
// uncompressed, as the pipeline writes them).
func readRawLog(t *testing.T, cl *kgo.Client, topic string, partition int32) []rawEntry {
	t.Helper()
	details, err := kadm.NewClient(cl).ListTopics(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := cl.Broker(int(details[topic].Partitions[partition].Leader))
	var out []rawEntry
	ctx := ctxT(t, opTimeout)
	for offset := int64(0); ; {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, details[topic].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = partition, offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := req.RequestWith(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		pr := kresp.Topics[0].Partitions[0]
		if pr.ErrorCode != 0 {
			t.Fatalf("raw fetch of %s/%d at %d: error %d", topic, partition, offset, pr.ErrorCode)
		}
		if offset >= pr.HighWatermark {
			return out
		}
		for b := pr.RecordBatches; len(b) > 0; {
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(b); err != nil {
				break // a partial batch at the end of the response
			}
			size := 12 + int(batch.Length)
			b = b[size:]
			if batch.Attributes&0x7 != 0 {
				t.Fatalf("compressed batch at %d", batch.FirstOffset)
			}
			control := batch.Attributes&0x20 != 0
			recs := batch.Records
			for i := range int(batch.NumRecords) {
				l, n := binary.Varint(recs)
				if n <= 0 || int(l) > len(recs)-n {
					t.Fatalf("bad record %d of the batch at %d", i, batch.FirstOffset)
				}
				var r kmsg.Record
				if err := r.ReadFrom(recs[:n+int(l)]); err != nil { // the length prefix included
					t.Fatal(err)
				}
				recs = recs[n+int(l):]
				e := rawEntry{Offset: batch.FirstOffset + int64(r.OffsetDelta), ProducerID: batch.ProducerID, Value: string(r.Value)}
				if control {
					e.Marker = true
					e.Commit = len(r.Key) == 4 && r.Key[3] == 1
				}
				out = append(out, e)
			}
			offset = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
		}
	}
}

// readCommitted reads every partition of topic with read_committed up to
// the last stable offsets, which must be the ends of the partitions (no
// transaction open).
func readCommitted(t *testing.T, client clientFunc, topic string, partitions int32) []eosRead {
	t.Helper()
	adm := kadm.NewClient(client(t))
	lso, err := adm.ListCommittedOffsets(ctxT(t, opTimeout), topic)
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	// Read until every partition's position passes its last data record:
	// each partition ends with a marker at LSO-1.
	var out []eosRead
	next := map[int32]int64{}
	pending := func() bool {
		for p := range partitions {
			l, _ := lso.Lookup(topic, p)
			if l.Offset > 0 && next[p] < l.Offset-1 {
				return true
			}
		}
		return false
	}
	ctx := ctxT(t, opTimeout)
	for pending() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed reader stuck at %v (LSOs %v)", next, lso)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, eosRead{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// clientFunc makes a kgo client of a node or a cluster (node.Client,
// cluster.Client).
type clientFunc func(*testing.T, ...kgo.Opt) *kgo.Client

// The exactly-once pipeline A -> B survives kill -9 of the pipeline process
// at random points: a read_committed reader of B sees every input's output
// exactly once, in per-partition order, and never a record of an aborted
// transaction; the log of B holds a marker for every transaction.
func TestTxnExactlyOncePipelineKill9(t *testing.T) {
	t.Parallel()
	n := startNode(t, txnOpts)
	runEOSPipeline(t, []string{n.Addr()}, n.Client, 1, func(int, *pipelineProcess) {})
}

// runEOSPipeline runs the pipeline over fresh topics of rf replicas,
// kill -9'ing the pipeline process three times at random moments, with
// disrupt called before each restart (it may kill brokers too), then checks
// exactly-once.
func runEOSPipeline(t *testing.T, seeds []string, client clientFunc, rf int16, disrupt func(round int, pp *pipelineProcess)) {
	in, out := topicName(t, "a"), topicName(t, "b")
	const partitions, perPartition = 3, 500
	adm := kadm.NewClient(client(t, kgo.RetryTimeout(30*time.Second)))
	for _, topic := range []string{in, out} {
		if _, err := adm.CreateTopic(ctxT(t, opTimeout), partitions, rf, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	prod := client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(partitions) {
		for i := range perPartition {
			recs = append(recs, &kgo.Record{Topic: in, Partition: p, Value: fmt.Appendf(nil, "in-%d", i)})
		}
	}
	if err := prod.ProduceSync(ctxT(t, opTimeout), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	group := topicName(t, "g")
	start := time.Now()
	pp := startPipeline(t, seeds, in, out, group)
	for round := range 3 {
		// Let it commit a few transactions, then kill it at a random
		// moment of the next ones.
		target := pp.committed.Load() + 3
		waitFor(t, 60*time.Second, fmt.Sprintf("pipeline run %d commits", round), func() (bool, string) {
			return pp.committed.Load() >= target, fmt.Sprintf("%d transactions committed", pp.committed.Load())
		})
		t.Logf("%v: pipeline run %d committed %d transactions", time.Since(start).Round(time.Millisecond), round, pp.committed.Load())
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond) // a random point, not a wait for a condition
		disrupt(round, pp)
		pp.kill9()
		pp = startPipeline(t, seeds, in, out, group)
	}

	inputs := map[int32]int64{}
	for p := range int32(partitions) {
		inputs[p] = perPartition
	}
	committed := map[int32]int64{}
	waitFor(t, 90*time.Second, "the pipeline commits every input offset", func() (bool, string) {
		offs, err := adm.FetchOffsets(ctxT(t, opTimeout), group)
		if err != nil {
			return false, err.Error()
		}
		done := true
		for p := range int32(partitions) {
			o, _ := offs.Lookup(in, p)
			committed[p] = o.At
			done = done && o.At == perPartition
		}
		return done, fmt.Sprintf("committed %v", committed)
	})
	t.Logf("%v: every input offset committed", time.Since(start).Round(time.Millisecond))
	pp.kill9()

	// The pipeline was idle when killed, so every transaction has ended.
	raw := client(t)
	logs := map[int32][]rawEntry{}
	for p := range int32(partitions) {
		logs[p] = readRawLog(t, raw, out, p)
	}
	read := readCommitted(t, client, out, partitions)
	if bad := checkEOS(inputs, committed, logs, read, true); len(bad) > 0 {
		t.Fatalf("%d violations, first: %v", len(bad), bad[:min(len(bad), 10)])
	}
	aborted := 0
	for _, entries := range logs {
		for _, e := range entries {
			if e.Marker && !e.Commit {
				aborted++
			}
		}
	}
	t.Logf("%d outputs read exactly once; %d aborted transactions' markers in the log", len(read), aborted)
}

// The pipeline on three nodes: besides the pipeline process, a broker is
// kill -9'd (and restarted) while the pipeline runs in each round: the node
// coordinating its transactional id, so the transactions move to a new
// coordinator, then the leader of an output partition, then the leader of
// an input partition, so markers, produces and fetches move to new leaders.
func TestTxnExactlyOncePipelineClusterKill9(t *testing.T) {
	c := startCluster(t, 3, "transaction.state.log.num.partitions=3", "transaction.state.log.min.isr=2")
	var seeds []string
	for _, nd := range c.nodes {
		seeds = append(seeds, nd.Addr())
	}
	runEOSPipeline(t, seeds, c.Client, 3, func(round int, pp *pipelineProcess) {
		adm := kadm.NewClient(c.Client(t))
		var victim int32 = -1
		switch round {
		case 0:
			fc := adm.FindTxnCoordinators(ctxT(t, opTimeout), pipelineGroup(pp)+"-txn")
			for _, r := range fc {
				if r.Err == nil {
					victim = r.NodeID
				}
			}
		case 1, 2:
			topic := envOf(pp.cmd.Env, pipelineEnvOut)
			if round == 2 {
				topic = envOf(pp.cmd.Env, pipelineEnvIn)
			}
			md, err := adm.Metadata(ctxT(t, opTimeout), topic)
			if err != nil {
				t.Fatal(err)
			}
			victim = md.Topics[topic].Partitions[int32(round)].Leader
		}
		if victim < 1 {
			t.Fatalf("round %d: no node to kill", round)
		}
		t.Logf("round %d kills node %d", round, victim)
		nd := c.node(victim)
		nd.Kill9()
		nd.Restart()
		c.waitBrokers(c.nodes...)
	})
}

// pipelineGroup is the group a pipeline process was started with.
func pipelineGroup(pp *pipelineProcess) string { return envOf(pp.cmd.Env, pipelineEnvGroup) }

func envOf(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
