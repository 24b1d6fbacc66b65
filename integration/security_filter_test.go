package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// grant creates ACLs as the node's administrator and fails the test on
// any error.
func (sn *secureNode) grant(t *testing.T, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := kadm.NewClient(sn.Client(t)).CreateACLs(ctxT(t, opTimeout), b)
	if err != nil {
		t.Fatalf("CreateAcls: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("CreateAcls %s %s: %v", r.Type, r.Name, r.Err)
		}
	}
}

// addUser creates a SCRAM-SHA-512 user as the administrator and returns
// a client logged in as that user.
func (sn *secureNode) addUser(t *testing.T, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	ctx := ctxT(t, opTimeout)
	res, err := kadm.NewClient(sn.Client(t)).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: user, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password,
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("creating %s: %v", user, err)
	}
	return scramClient(t, sn.caPool, sn.Addr(), user, password, opts...)
}

// DescribeTransactions shows a principal that may describe the
// transactional id only the partitions of topics it may describe, as
// Kafka does: the others would name topics Metadata hides from it.
func TestSecurityDescribeTransactionsHidesUndescribableTopics(t *testing.T) {
	t.Parallel()
	sn := startSecureNode(t)
	ctx := ctxT(t, opTimeout)
	visible, hidden, txnID := topicName(t, "visible"), topicName(t, "hidden"), "auditor-sees-this"
	adm := kadm.NewClient(sn.Client(t))
	for _, tp := range []string{visible, hidden} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			t.Fatalf("create %s: %v", tp, err)
		}
	}
	// The administrator's transaction writes to both topics and stays open.
	producer := scramClient(t, sn.caPool, sn.Addr(), "admin", "admin-secret", kgo.TransactionalID(txnID))
	if err := producer.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{visible, hidden} {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: tp, Value: []byte("in a transaction")}).FirstErr(); err != nil {
			t.Fatalf("transactional produce to %s: %v", tp, err)
		}
	}

	auditor := sn.addUser(t, "auditor", "auditor-secret")
	sn.grant(t, kadm.NewACLs().Allow("User:auditor").AllowHosts().TransactionalIDs(txnID).Topics(visible).Operations(kadm.OpDescribe))

	described, err := kadm.NewClient(auditor).DescribeTransactions(ctx, txnID)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := described[txnID]
	if !ok || d.Err != nil {
		t.Fatalf("DescribeTransactions as auditor: %+v", described)
	}
	topics := d.Topics.Topics()
	if len(topics) != 1 || topics[0] != visible {
		t.Fatalf("the auditor sees the transaction's partitions in %v, want only %s", topics, visible)
	}
	// The administrator sees both.
	all, err := adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all[txnID].Topics); n != 2 {
		t.Fatalf("the administrator sees %d topics of the transaction, want 2", n)
	}
}
