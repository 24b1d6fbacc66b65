package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// txnOpts keep the transaction coordinator's topic small, so a test node
// creates and loads it in moments.
var txnOpts = nodeOpts{set: []string{
	"transaction.state.log.num.partitions=3",
	"offsets.topic.num.partitions=3",
}}

// produceTxn produces values in one transaction and commits or aborts it.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx := ctxT(t, opTimeout)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// readIsolated reads a topic's single partition, whose records are all
// transactional, from the start with the isolation level and returns the
// values. The read is complete once it passes the last record the level
// delivers, found in the stored log with its markers (readRawLog).
func readIsolated(t *testing.T, n *node, topic string, committed bool) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	raw := readRawLog(t, n.Client(t), topic, 0)
	outcome, _ := txnOutcomes(raw)
	last := int64(-1)
	for _, e := range raw {
		if !e.Marker && (!committed || outcome[e.Offset]) {
			last = e.Offset
		}
	}
	cl := n.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	var out []string
	ctx := ctxT(t, opTimeout)
	for next := int64(0); next <= last; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v of %s up to %d: stuck at %d", out, topic, last, next)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			next = r.Offset + 1
		})
	}
	return out
}

// A committed transaction's records are read by read_committed consumers,
// an aborted one's are not; read_uncommitted consumers read both, and
// ListOffsets answers the last stable offset to read_committed.
func TestTxnCommitAndAbort(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, txnOpts, 1)
	cl := n.Client(t, kgo.TransactionalID(topic+"-tx"), kgo.DefaultProduceTopic(topic))
	produceTxn(t, cl, topic, true, "c1", "c2")
	produceTxn(t, cl, topic, false, "a1", "a2")
	produceTxn(t, cl, topic, true, "c3")

	if got, want := fmt.Sprint(readIsolated(t, n, topic, true)), "[c1 c2 c3]"; got != want {
		t.Errorf("read_committed read %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(readIsolated(t, n, topic, false)), "[c1 c2 a1 a2 c3]"; got != want {
		t.Errorf("read_uncommitted read %s, want %s", got, want)
	}

	// An open transaction holds the LSO back: read_committed latest stays
	// below its records while read_uncommitted latest passes them.
	ctx := ctxT(t, opTimeout)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := n.Admin(t)
	lso, hw, err := stableAndEndOffsets(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := hw.Lookup(topic, 0)
	l, _ := lso.Lookup(topic, 0)
	if l.Offset >= h.Offset {
		t.Errorf("with a transaction open: LSO %d, HW %d; want LSO below the HW", l.Offset, h.Offset)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, opTimeout, "LSO reaches the HW", func() (bool, string) {
		lso, hw, err := stableAndEndOffsets(ctx, adm, topic)
		if err != nil {
			return false, err.Error()
		}
		l, _ := lso.Lookup(topic, 0)
		h, _ := hw.Lookup(topic, 0)
		return l.Offset == h.Offset, fmt.Sprintf("LSO %d, HW %d", l.Offset, h.Offset)
	})
}

// stableAndEndOffsets lists topic's last stable offsets (what a
// read_committed consumer may read up to) and high watermarks.
func stableAndEndOffsets(ctx context.Context, adm *kadm.Client, topic string) (lso, hw kadm.ListedOffsets, err error) {
	if lso, err = adm.ListCommittedOffsets(ctx, topic); err != nil {
		return nil, nil, err
	}
	hw, err = adm.ListEndOffsets(ctx, topic)
	return lso, hw, err
}

// When EndTxn answers, the transaction is complete: its markers are in
// every partition (the LSO is at the HW, so read_committed readers see the
// records at once) and the coordinator holds CompleteCommit or
// CompleteAbort, so the producer's next transaction starts without being
// told CONCURRENT_TRANSACTIONS. Many transactions in a row, since a
// coordinator that wrote markers after answering would be caught only in
// some of them.
func TestTxnEndAnswersWithMarkersWritten(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, txnOpts, 2)
	id := topic + "-tx"
	cl := n.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := n.Admin(t)
	ctx := ctxT(t, opTimeout)
	for i := range 30 {
		commit := i%3 != 2
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", i, p)}).FirstErr(); err != nil {
				t.Fatalf("transaction %d: produce: %v", i, err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("transaction %d: end (commit %v): %v", i, commit, err)
		}
		described, err := adm.DescribeTransactions(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := "CompleteAbort"
		if commit {
			want = "CompleteCommit"
		}
		if d, _ := described.On(id, nil); d.State != want {
			t.Fatalf("transaction %d: right after EndTxn the coordinator holds %s, want %s", i, d.State, want)
		}
		lso, hw, err := stableAndEndOffsets(ctx, adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			h, _ := hw.Lookup(topic, p)
			l, _ := lso.Lookup(topic, p)
			if l.Offset != h.Offset {
				t.Fatalf("transaction %d: right after EndTxn partition %d has LSO %d, HW %d: a marker is missing", i, p, l.Offset, h.Offset)
			}
		}
	}
}

// Zombie fencing: a second producer with the same transactional id fences
// the first; the first's later writes fail and none becomes visible.
func TestTxnZombieFenced(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, txnOpts, 1)
	id := topic + "-tx"
	old := n.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic))
	ctx := ctxT(t, opTimeout)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie-before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The new producer's InitProducerId aborts the old transaction and
	// bumps the epoch.
	fresh := n.Client(t, kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic))
	produceTxn(t, fresh, topic, true, "fresh")

	// The zombie keeps writing and tries to commit: it must fail.
	perr := old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie-after")}).FirstErr()
	cerr := old.EndTransaction(ctx, kgo.TryCommit)
	if perr == nil && cerr == nil {
		t.Fatal("the fenced producer's produce and commit both succeeded")
	}
	for _, err := range []error{perr, cerr} {
		if err != nil && !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) &&
			!errors.Is(err, kerr.InvalidProducerIDMapping) && !errors.Is(err, kerr.InvalidTxnState) && !errors.Is(err, context.Canceled) {
			t.Logf("zombie error: %v", err)
		}
	}
	if got, want := fmt.Sprint(readIsolated(t, n, topic, true)), "[fresh]"; got != want {
		t.Errorf("read_committed read %s, want %s", got, want)
	}
}

// ListTransactions filters by transactional id pattern (v2, KIP-1152: the
// whole id must match; a bad pattern is INVALID_REGULAR_EXPRESSION) and by
// duration, and DescribeProducers shows an open transaction's first offset,
// then none once it commits, with the producer's epoch and last sequence.
func TestTxnListPatternAndDescribeProducers(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, txnOpts, 1)
	produceTxn(t, n.Client(t, kgo.TransactionalID(topic+"-done")), topic, true, "c1")
	open := n.Client(t, kgo.TransactionalID(topic+"-open"), kgo.DefaultProduceTopic(topic))
	ctx := ctxT(t, opTimeout)
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte("o1")}, &kgo.Record{Value: []byte("o2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	list := func(pattern *string, durationMs int64) ([]string, int16) {
		t.Helper()
		req := kmsg.NewPtrListTransactionsRequest()
		req.SetVersion(2)
		req.TransactionalIDPattern, req.DurationFilterMillis = pattern, durationMs
		resp, err := req.RequestWith(ctx, n.Client(t))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range resp.TransactionStates {
			ids = append(ids, s.TransactionalID+"="+s.TransactionState)
		}
		slices.Sort(ids)
		return ids, resp.ErrorCode
	}
	both := []string{topic + "-done=CompleteCommit", topic + "-open=Ongoing"}
	for _, tc := range []struct {
		pattern  *string
		duration int64
		want     []string
		code     int16
	}{
		{nil, -1, both, 0},
		{kmsg.StringPtr(""), -1, both, 0},
		{kmsg.StringPtr(topic + "-o.*"), -1, both[1:], 0},
		{kmsg.StringPtr("open"), -1, nil, 0}, // a substring is not a match
		{kmsg.StringPtr(topic + "-(done|open)"), -1, both, 0},
		{kmsg.StringPtr("[unclosed"), -1, nil, kerr.InvalidRegularExpression.Code},
		// The open transaction is younger than an hour.
		{kmsg.StringPtr(topic + "-open"), time.Hour.Milliseconds(), nil, 0},
	} {
		got, code := list(tc.pattern, tc.duration)
		if code != tc.code || !slices.Equal(got, tc.want) {
			t.Errorf("pattern %q duration %d: %v code %d, want %v code %d", derefOr(tc.pattern, "<null>"), tc.duration, got, code, tc.want, tc.code)
		}
	}

	describe := func() kadm.DescribedProducer {
		t.Helper()
		pid, epoch, err := open.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		described, err := n.Admin(t).DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		var found *kadm.DescribedProducer
		described.EachProducer(func(p kadm.DescribedProducer) {
			if p.ProducerID == pid {
				found = &p
			}
		})
		if found == nil {
			t.Fatalf("producer %d (epoch %d) not described: %+v", pid, epoch, described)
		}
		return *found
	}
	// c1 and the commit marker are at 0 and 1: the open transaction
	// starts at 2.
	if p := describe(); p.CurrentTxnStartOffset != 2 || p.LastSequence != 1 || p.Leader != n.id() {
		t.Fatalf("open transaction described as %+v, want start offset 2, last sequence 1", p)
	}
	if err := open.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, opTimeout, "the commit marker ends the transaction in the partition", func() (bool, string) {
		p := describe()
		return p.CurrentTxnStartOffset == -1 && p.CoordinatorEpoch >= 0, fmt.Sprintf("%+v", p)
	})
}

func derefOr(s *string, null string) string {
	if s == nil {
		return null
	}
	return *s
}

// A transactions-version-1 TxnOffsetCommit (v2 here) is verified with the
// transaction coordinator (KIP-890), as Kafka does: without AddOffsetsToTxn
// the group's offsets partition is not in the transaction, and the commit
// is refused with INVALID_TXN_STATE instead of leaving pending offsets no
// marker will decide. After AddOffsetsToTxn it is accepted, and the
// transaction's commit makes it visible.
func TestTxnOffsetCommitVerified(t *testing.T) {
	t.Parallel()
	n, _, topic, _ := startNodeWithTopic(t, txnOpts, 1)
	// A transactions-version-1 client: TxnOffsetCommit v2, AddPartitionsToTxn
	// and EndTxn v3.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 2)
	versions.SetMaxKeyVersion(int16(kmsg.AddPartitionsToTxn), 3)
	versions.SetMaxKeyVersion(int16(kmsg.EndTxn), 3)
	cl := n.Client(t, kgo.MaxVersions(versions))
	ctx := ctxT(t, opTimeout)
	txnID, group := topic+"-tx", topic+"-g"

	var pid int64
	var epoch int16
	waitFor(t, opTimeout, "InitProducerId", func() (bool, string) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &txnID, 60_000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		pid, epoch = resp.ProducerID, resp.ProducerEpoch
		return resp.ErrorCode == 0, fmt.Sprintf("error %d", resp.ErrorCode)
	})
	commit := func() int16 {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, group, pid, epoch
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 5
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// Not in a transaction at all, then in one without the offsets partition.
	if code := commit(); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit outside a transaction: error %d, want INVALID_TXN_STATE", code)
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = txnID, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	if resp, err := add.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, resp)
	}
	if code := commit(); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit before AddOffsetsToTxn: error %d, want INVALID_TXN_STATE", code)
	}

	addOffsets := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOffsets.TransactionalID, addOffsets.ProducerID, addOffsets.ProducerEpoch, addOffsets.Group = txnID, pid, epoch, group
	if resp, err := addOffsets.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %+v", err, resp)
	}
	if code := commit(); code != 0 {
		t.Fatalf("TxnOffsetCommit after AddOffsetsToTxn: error %d", code)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txnID, pid, epoch, true
	if resp, err := end.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %+v", err, resp)
	}
	waitFor(t, opTimeout, "the committed transaction's offset", func() (bool, string) {
		offs, err := n.Admin(t).FetchOffsets(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		o, _ := offs.Lookup(topic, 0)
		return o.At == 5, fmt.Sprintf("offset %d", o.At)
	})
}
