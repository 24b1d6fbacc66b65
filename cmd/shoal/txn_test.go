package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// openHangingTxn creates a topic with one partition and leaves a
// transaction open in it, with one record at offset 0; it returns the
// topic and the transactional id.
func openHangingTxn(t *testing.T, suffix string) (string, string) {
	t.Helper()
	topic := topicName(t, suffix)
	createTopic(t, topic, 1)
	id := topic + "-tx"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("hanging")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return topic, id
}

// A hanging transaction (its producer went away without ending it) shows in
// txn list and describe, holds the partition's last stable offset back, and
// txn abort ends it in the partition, as kafka-transactions.sh --abort does.
func TestTxnListDescribeAbort(t *testing.T) {
	topic, id := openHangingTxn(t, "t")
	ctx := testCtx(t)

	var listed []listedTxn
	if err := json.Unmarshal([]byte(ok(t, "--output", "json", "txn", "list", "--state", "Ongoing").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range listed {
		found = found || (l.TransactionalID == id && l.State == "Ongoing")
	}
	if !found {
		t.Fatalf("txn list --state Ongoing: %+v, want %s", listed, id)
	}
	var d describedTxn
	if err := json.Unmarshal([]byte(ok(t, "--output", "json", "txn", "describe", id).stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != "Ongoing" || len(d.Partitions) != 1 || d.Partitions[0].Topic != topic || d.StartTimestamp < 0 {
		t.Fatalf("txn describe: %+v", d)
	}

	_, adm := testAdmin(t)
	lso := func() (int64, int64) {
		l, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		h, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		lo, _ := l.Lookup(topic, 0)
		ho, _ := h.Lookup(topic, 0)
		return lo.Offset, ho.Offset
	}
	if l, h := lso(); l != 0 || h != 1 {
		t.Fatalf("with the transaction open: LSO %d, HW %d; want 0 and 1", l, h)
	}

	fails(t, shoal(t, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "5"), "no open transaction")
	r := ok(t, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
	if !strings.Contains(r.stdout, "aborted the transaction") {
		t.Fatalf("txn abort printed %q", r.stdout)
	}
	if l, h := lso(); l != h || h != 2 {
		t.Fatalf("after the abort: LSO %d, HW %d; want both 2 (the record and the marker)", l, h)
	}
	fails(t, shoal(t, "txn", "describe", "no-such-id"), "TRANSACTIONAL_ID_NOT_FOUND")
}
