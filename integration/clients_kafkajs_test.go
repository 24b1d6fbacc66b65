package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaJSDir holds the KafkaJS driver and the packages it runs with
// (package.json, package-lock.json); .ci/run installs them with npm ci.
const kafkaJSDir = "testdata/kafkajs"

// kafkaJSDriver starts the KafkaJS driver against n, failing t when Node.js
// or the driver's packages are not installed.
func kafkaJSDriver(t *testing.T, n *node) *scriptDriver {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	if _, err := os.Stat(kafkaJSDir + "/node_modules/kafkajs"); err != nil {
		t.Fatalf("KafkaJS is not installed (.ci/run runs npm ci --prefix integration/%s): %v", kafkaJSDir, err)
	}
	return &scriptDriver{
		name: "KafkaJS",
		argv: []string{"node", kafkaJSDir + "/driver.js"},
		skips: map[string]string{
			stepProduce + "/lz4":  "KafkaJS's lz4 codec package is a native addon",
			stepProduce + "/zstd": "KafkaJS's zstd codec package is a native addon",
		},
		n: n,
	}
}

// TestClientMatrixKafkaJS runs the client matrix with KafkaJS 2.2, the
// pure-JavaScript Node.js client, one Node process per step
// (testdata/kafkajs/driver.js). KafkaJS speaks older API versions than the
// other clients (Fetch v11, JoinGroup v5, Produce v7) and only the classic
// group protocol.
func TestClientMatrixKafkaJS(t *testing.T) {
	t.Parallel()
	n := startNode(t, matrixOpts)
	runMatrix(t, n, kafkaJSDriver(t, n))
}

// KafkaJS's transactional producer, which consumes in a group: each
// transaction writes records and commits the group's input offsets with
// them (AddOffsetsToTxn, TxnOffsetCommit), each by a new producer instance
// under the same transactional id (InitProducerId bumps the epoch). The
// committed transactions' records are read by read_committed consumers of
// both clients and the aborted one's are not; the group's offsets are those
// of the last committed transaction, never the aborted one's.
func TestKafkaJSTransactions(t *testing.T) {
	t.Parallel()
	n, adm, input, _ := startNodeWithTopic(t, txnOpts, matrixPartitions)
	output := input + "-out"
	createTopic(t, adm, output, matrixPartitions, nil)
	d := kafkaJSDriver(t, n)
	group := input + "-pipeline"

	batch := func(prefix string, count int) []mRecord {
		recs := make([]mRecord, count)
		for i := range recs {
			recs[i] = mRecord{Key: fmt.Sprintf("%s-key-%d", prefix, i), Value: fmt.Sprintf("%s-%d", prefix, i), TimestampMs: 1}
		}
		return recs
	}
	transact := func(recs []mRecord, offsets map[int32]int64, abort bool) {
		t.Helper()
		d.run(t, "transact", map[string]any{"topic": output, "input": input, "group": group, "txnId": input + "-tx",
			"records": recs, "offsets": offsets, "abort": abort}, &struct{}{})
	}
	first, aborted, second := batch("first", 40), batch("aborted", 30), batch("second", 20)
	transact(first, map[int32]int64{0: 5, 1: 7, 2: 3}, false)
	transact(aborted, map[int32]int64{0: 50, 1: 70, 2: 30}, true)
	lastOffsets := map[int32]int64{0: 9, 1: 11, 2: 4}
	transact(second, lastOffsets, false)

	var want []string
	for _, r := range append(slices.Clone(first), second...) {
		want = append(want, r.Value)
	}
	slices.Sort(want)

	// read_committed with kgo, as many records as were committed: an
	// aborted record read would stand in for a committed one.
	cl := n.Client(t, kgo.ConsumeTopics(output), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []string
	ctx := ctxT(t, opTimeout)
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed read %v before timeout, want %d records", got, len(want))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kgo read_committed read %v,\nwant %v", got, want)
	}

	// read_committed with KafkaJS.
	var js []mRecord
	d.run(t, "read_committed", map[string]any{"topic": output, "group": input + "-reader", "want": len(want)}, &js)
	got = got[:0]
	for _, r := range js {
		got = append(got, r.Value)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("KafkaJS read_committed read %v,\nwant %v", got, want)
	}

	if c := kadmCommitted(t, adm, group, input); fmt.Sprint(c) != fmt.Sprint(lastOffsets) {
		t.Errorf("group %s committed %v, want the last committed transaction's %v", group, c, lastOffsets)
	}
}
