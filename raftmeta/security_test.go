package raftmeta

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/shoalmq/shoal/acl"
	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	sampleBinding = acl.Binding{
		Pattern: acl.Pattern{Type: acl.ResourceTopic, Name: "orders", PatternType: acl.PatternPrefixed},
		Entry:   acl.Entry{Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermissionAllow},
	}
	sampleCredential = ScramCredential{Mechanism: ScramSHA256, Salt: []byte("salt"), StoredKey: []byte("stored"), ServerKey: []byte("server"), Iterations: 4096}
)

func binding(rt acl.ResourceType, name string, pt acl.PatternType, principal string, op acl.Operation, perm acl.Permission) acl.Binding {
	return acl.Binding{Pattern: acl.Pattern{Type: rt, Name: name, PatternType: pt}, Entry: acl.Entry{Principal: principal, Host: "*", Operation: op, Permission: perm}}
}

func TestImageSecurityApply(t *testing.T) {
	id1, id2 := [16]byte{1}, [16]byte{2}
	denyBob := binding(acl.ResourceTopic, "orders", acl.PatternLiteral, "User:bob", acl.OpAll, acl.PermissionDeny)
	v1 := mustApply(t, newImage("c"), 2,
		&CreateACL{ID: id1, Binding: sampleBinding},
		&CreateACL{ID: id2, Binding: denyBob},
		&UpsertScramCredential{User: "alice", Credential: sampleCredential},
	)
	v2 := mustApply(t, v1, 3,
		&DeleteACL{ID: id2},
		&DeleteScramCredential{User: "alice", Mechanism: ScramSHA256},
	)
	if len(v1.ACLs) != 2 || len(v1.Scram) != 1 {
		t.Fatalf("v1 modified: %d ACLs, %d credentials", len(v1.ACLs), len(v1.Scram))
	}
	if !reflect.DeepEqual(v2.ACLs, map[[16]byte]acl.Binding{id1: sampleBinding}) || len(v2.Scram) != 0 {
		t.Fatalf("v2: %v %v", v2.ACLs, v2.Scram)
	}
	c, ok := v1.ScramCredential("alice", ScramSHA256)
	if !ok || !reflect.DeepEqual(c, sampleCredential) {
		t.Fatalf("credential = %+v, %v", c, ok)
	}
	if _, ok := v1.ScramCredential("alice", ScramSHA512); ok {
		t.Fatal("a credential for the other mechanism")
	}
	if u := v1.ScramUsers(); len(u) != 1 || u["alice"][0].Iterations != 4096 || u["alice"][0].Salt != nil {
		t.Fatalf("ScramUsers = %+v (must not carry keys)", u)
	}

	// The image's authorizer sees its ACLs.
	az := v1.Authorizer(acl.Config{})
	if !az.Authorize(acl.User("alice"), "1.2.3.4", acl.OpRead, acl.Resource{Type: acl.ResourceTopic, Name: "orders-eu"}).Allowed {
		t.Fatal("alice may read orders-eu through the prefixed ACL")
	}
	if az.Authorize(acl.User("bob"), "1.2.3.4", acl.OpRead, acl.Resource{Type: acl.ResourceTopic, Name: "orders"}).Allowed {
		t.Fatal("bob is denied")
	}

	mustRoundTrip(t, v1)
}

func TestImageSecurityRejects(t *testing.T) {
	base := mustApply(t, newImage("c"), 2, &CreateACL{ID: [16]byte{1}, Binding: sampleBinding})
	bad := sampleCredential
	bad.Iterations = 100
	for name, tc := range map[string]struct {
		rec  Record
		code *kerr.Error
	}{
		"zero ACL id":           {&CreateACL{Binding: sampleBinding}, kerr.InvalidRequest},
		"ACL id in use":         {&CreateACL{ID: [16]byte{1}, Binding: sampleBinding}, kerr.InvalidRequest},
		"invalid binding":       {&CreateACL{ID: [16]byte{2}, Binding: acl.Binding{}}, kerr.InvalidRequest},
		"delete unknown ACL":    {&DeleteACL{ID: [16]byte{9}}, kerr.ResourceNotFound},
		"bad iterations":        {&UpsertScramCredential{User: "a", Credential: bad}, kerr.UnacceptableCredential},
		"empty user":            {&UpsertScramCredential{Credential: sampleCredential}, kerr.UnacceptableCredential},
		"delete unknown scram":  {&DeleteScramCredential{User: "a", Mechanism: ScramSHA256}, kerr.ResourceNotFound},
		"unknown scram version": {&UpsertScramCredential{User: "a", Credential: ScramCredential{Mechanism: 3, Salt: []byte("s"), StoredKey: []byte("k"), ServerKey: []byte("k"), Iterations: 4096}}, kerr.UnsupportedSaslMechanism},
	} {
		next, err := base.apply(3, []Record{tc.rec})
		if !errors.Is(err, tc.code) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.code)
		}
		if len(next.ACLs) != 1 || len(next.Scram) != 0 {
			t.Errorf("%s: a rejected record changed the image", name)
		}
	}
}

func seqIDs() func() [16]byte {
	var n byte
	return func() [16]byte { n++; return [16]byte{n} }
}

func TestDecideCreateACLs(t *testing.T) {
	d := &Decider{NewTopicID: seqIDs()}
	img := mustApply(t, newImage("c"), 2, &CreateACL{ID: [16]byte{1}, Binding: sampleBinding})
	other := binding(acl.ResourceGroup, "g", acl.PatternLiteral, "User:alice", acl.OpRead, acl.PermissionAllow)
	invalid := binding(acl.ResourceCluster, "not-kafka-cluster", acl.PatternLiteral, "User:alice", acl.OpAlter, acl.PermissionAllow)
	recs, results := d.CreateACLs(img, []acl.Binding{sampleBinding, other, invalid, other})
	// The existing binding and the repeat succeed without records; the
	// first id the decider draws ({1}) is in use, so {2} is taken.
	if len(recs) != 1 || !reflect.DeepEqual(recs[0], &CreateACL{ID: [16]byte{2}, Binding: other}) {
		t.Fatalf("records %+v", recs)
	}
	if results[0].Err != nil || results[1].Err != nil || results[3].Err != nil || !errors.Is(results[2].Err, kerr.InvalidRequest) {
		t.Fatalf("results %+v", results)
	}
	next := mustApply(t, img, 3, recs...)
	if len(next.ACLs) != 2 {
		t.Fatalf("ACLs %v", next.ACLs)
	}
}

func TestDecideDeleteACLs(t *testing.T) {
	d := &Decider{NewTopicID: seqIDs()}
	lit := binding(acl.ResourceTopic, "orders", acl.PatternLiteral, "User:bob", acl.OpWrite, acl.PermissionAllow)
	grp := binding(acl.ResourceGroup, "g", acl.PatternLiteral, "User:bob", acl.OpRead, acl.PermissionAllow)
	img := mustApply(t, newImage("c"), 2,
		&CreateACL{ID: [16]byte{1}, Binding: sampleBinding},
		&CreateACL{ID: [16]byte{2}, Binding: lit},
		&CreateACL{ID: [16]byte{3}, Binding: grp},
	)
	name := "orders"
	bob := "User:bob"
	matchOrders := acl.Filter{ResourceType: acl.ResourceTopic, Name: &name, PatternType: acl.PatternMatch, Operation: acl.OpAny, Permission: acl.PermissionAny}
	allBob := acl.Filter{ResourceType: acl.ResourceAny, PatternType: acl.PatternAny, Principal: &bob, Operation: acl.OpAny, Permission: acl.PermissionAny}
	invalid := acl.Filter{ResourceType: acl.ResourceUnknown, PatternType: acl.PatternAny, Operation: acl.OpAny, Permission: acl.PermissionAny}
	recs, results := d.DeleteACLs(img, []acl.Filter{matchOrders, allBob, invalid})
	// MATCH orders hits the prefixed "orders" and the literal "orders";
	// bob's filter hits the literal again and the group ACL: each deleted once.
	if want := []Record{&DeleteACL{ID: [16]byte{1}}, &DeleteACL{ID: [16]byte{2}}, &DeleteACL{ID: [16]byte{3}}}; !reflect.DeepEqual(recs, want) {
		t.Fatalf("records %+v", recs)
	}
	if len(results[0].Matched) != 2 || len(results[1].Matched) != 2 || !errors.Is(results[2].Err, kerr.InvalidRequest) {
		t.Fatalf("results %+v", results)
	}
	if next := mustApply(t, img, 3, recs...); len(next.ACLs) != 0 {
		t.Fatalf("left %v", next.ACLs)
	}
}

// TestDecideAlterScramCredentials follows Kafka's ScramControlManager: a
// request alters each user once, whatever the mechanisms; a user's first
// alteration is the one checked, a valid one followed by another is
// DUPLICATE_RESOURCE, and the messages are Kafka's.
func TestDecideAlterScramCredentials(t *testing.T) {
	d := &Decider{}
	sha512 := sampleCredential
	sha512.Mechanism = ScramSHA512
	img := mustApply(t, newImage("c"), 2,
		&UpsertScramCredential{User: "alice", Credential: sampleCredential},
		&UpsertScramCredential{User: "dup", Credential: sha512},
		&UpsertScramCredential{User: "grace", Credential: sampleCredential},
	)
	few := sampleCredential
	few.Iterations = 4095
	many := sampleCredential
	many.Iterations = 16385
	unknownMech := sampleCredential
	unknownMech.Mechanism = 0
	underived := ScramCredential{Mechanism: ScramSHA256, Salt: []byte("salt"), Iterations: 4096}
	recs, results := d.AlterScramCredentials(img,
		[]ScramDeletion{
			{User: "alice", Mechanism: ScramSHA256}, // fine, then upserted too
			{User: "bob", Mechanism: ScramSHA256},   // does not exist
			{User: "dup", Mechanism: ScramSHA512},   // altered twice
			{User: "", Mechanism: ScramSHA256},      // empty, then again
			{User: "", Mechanism: ScramSHA256},
			{User: "erin", Mechanism: 10},           // unknown mechanism
			{User: "erin", Mechanism: ScramSHA256},  // after a failure: ignored
			{User: "grace", Mechanism: ScramSHA256}, // fine
		},
		[]ScramUpsertion{
			{User: "alice", Credential: sha512},
			{User: "carol", Credential: few},
			{User: "dave", Credential: many},
			{User: "dup", Credential: sha512},
			{User: "dup", Credential: sampleCredential}, // a third time: still DUPLICATE_RESOURCE
			{User: "", Credential: sampleCredential},
			{User: "frank", Credential: sampleCredential},
			{User: "heidi", Credential: underived, Invalid: "salted password is 3 bytes"},
			{User: "ivan", Credential: unknownMech, Invalid: "unknown SCRAM mechanism 0"},
			{User: "judy", Credential: sampleCredential},
			{User: "judy", Credential: sha512}, // another mechanism, same user
		})
	type outcome struct {
		code *kerr.Error
		msg  string
	}
	const dupMsg = "A user credential cannot be altered twice in the same request"
	want := []struct {
		user string
		outcome
	}{
		{"alice", outcome{kerr.DuplicateResource, dupMsg}},
		{"bob", outcome{kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"}},
		{"dup", outcome{kerr.DuplicateResource, dupMsg}},
		{"", outcome{kerr.UnacceptableCredential, "Username must not be empty"}},
		{"erin", outcome{kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"}},
		{"grace", outcome{}},
		{"carol", outcome{kerr.UnacceptableCredential, "Too few iterations"}},
		{"dave", outcome{kerr.UnacceptableCredential, "Too many iterations"}},
		{"frank", outcome{}},
		{"heidi", outcome{kerr.UnacceptableCredential, "salted password is 3 bytes"}},
		{"ivan", outcome{kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"}},
		{"judy", outcome{kerr.DuplicateResource, dupMsg}},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(results), len(want), results)
	}
	for i, w := range want {
		r := results[i]
		var got outcome
		if r.Err != nil {
			got.code, got.msg = KafkaError(r.Err)
		}
		if r.User != w.user || got != w.outcome {
			t.Errorf("result %d: user %q %v %q, want user %q %v %q", i, r.User, got.code, got.msg, w.user, w.code, w.msg)
		}
	}
	wantRecs := []Record{
		&DeleteScramCredential{User: "grace", Mechanism: ScramSHA256},
		&UpsertScramCredential{User: "frank", Credential: sampleCredential},
	}
	if !reflect.DeepEqual(recs, wantRecs) {
		t.Fatalf("records %+v", recs)
	}
	next := mustApply(t, img, 3, recs...)
	if _, ok := next.ScramCredential("grace", ScramSHA256); ok {
		t.Fatal("grace's credential survived")
	}
	if _, ok := next.ScramCredential("alice", ScramSHA256); !ok {
		t.Fatal("alice's credential was deleted by a refused request")
	}
}

// TestNodeSecurityBootstrapAndRestart runs the controller's security
// operations on a real node: the bootstrap credential of a new log, ACLs
// created and deleted through raft, and all of it back after a restart
// from a snapshot.
func TestNodeSecurityBootstrapAndRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Node {
		n, err := Start(Config{
			NodeID: 1, Dir: dir, Voters: map[int32]string{1: "127.0.0.1:9093"}, Logger: testLogger(t),
			TickInterval: 10 * time.Millisecond, SnapshotEvery: 2, ClusterID: "test-cluster",
			Bootstrap: []Record{&UpsertScramCredential{User: "admin", Credential: sampleCredential}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.WaitLeader(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start()
	if _, ok := n.Image().ScramCredential("admin", ScramSHA256); !ok {
		t.Fatal("the bootstrap credential is not in the image")
	}
	ctx := testCtx(t)
	c := NewController(n, nil)
	other := binding(acl.ResourceCluster, acl.ClusterName, acl.PatternLiteral, "User:ops", acl.OpAlter, acl.PermissionAllow)
	for _, r := range c.CreateACLs(ctx, []acl.Binding{sampleBinding, other}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	cluster := acl.ClusterName
	del := c.DeleteACLs(ctx, []acl.Filter{{ResourceType: acl.ResourceCluster, Name: &cluster, PatternType: acl.PatternLiteral, Operation: acl.OpAny, Permission: acl.PermissionAny}})
	if del[0].Err != nil || len(del[0].Matched) != 1 {
		t.Fatalf("delete: %+v", del)
	}
	sha512 := sampleCredential
	sha512.Mechanism = ScramSHA512
	if r := c.AlterScramCredentials(ctx, nil, []ScramUpsertion{{User: "alice", Credential: sha512}}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	want := n.Image()
	n.Close()

	n = start()
	defer n.Close()
	got := n.Image()
	if !reflect.DeepEqual(got.ACLs, want.ACLs) || !reflect.DeepEqual(got.Scram, want.Scram) {
		t.Fatalf("after restart:\nACLs %v\nwant %v\nscram %v\nwant %v", got.ACLs, want.ACLs, got.Scram, want.Scram)
	}
	if len(got.ACLs) != 1 || len(got.Scram) != 2 {
		t.Fatalf("ACLs %v, credentials %v", got.ACLs, got.Scram)
	}
}
