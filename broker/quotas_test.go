package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/quota"
)

// A forwarded admin request is charged to its client's request_percentage
// on the controller, which answers the throttle inside the Envelope (the
// forwarding broker, which serves the client, applies the longer of it and
// its own); the Envelope itself, the cluster's own request, is exempt.
func TestEnvelopeChargesClientRequestQuota(t *testing.T) {
	s := startSecureServer(t)
	host := net.ParseIP("10.1.2.3")
	alter := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
	ent.Type, ent.Name = quota.TypeUser, kmsg.StringPtr("admin")
	e.Entity = append(e.Entity, ent)
	// A millionth of a thread: any request is over it.
	e.Ops = append(e.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: quota.RequestPercentage, Value: 1e-4})
	alter.Entries = append(alter.Entries, e)
	_, r := sendEnvelope(t, s, envelopeOf(alter, "User:admin", host), alter)
	if code := r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode; code != 0 {
		t.Fatalf("AlterClientQuotas: %v", kerr.ErrorForCode(code))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, ok := s.meta.Image().ClientQuotas.Lookup("admin", "client", quota.RequestPercentage); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quota never reached the metadata image")
		}
		time.Sleep(10 * time.Millisecond)
	}

	list := kmsg.NewPtrListPartitionReassignmentsRequest()
	_, r = sendEnvelope(t, s, envelopeOf(list, "User:admin", host), list)
	if ms := r.(*kmsg.ListPartitionReassignmentsResponse).ThrottleMillis; ms <= 0 {
		t.Fatalf("forwarded request over its quota answered with throttle %d ms", ms)
	}
}

// A response that already carries a throttle (the controller's, on a
// forwarded admin request) keeps it when the client is within its quotas
// here, and the client's connection is muted for it.
func TestDeliverAppliesAnsweredThrottle(t *testing.T) {
	s := startTestServer(t)
	c := &conn{srv: s, ctx: context.Background(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), principal: acl.Anonymous}
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.ThrottleMillis = 500
	before := time.Now()
	out := c.deliver(&reqCtx{conn: c, header: requestHeader{key: req.Key(), correlationID: 3}}, req, s.now(), resp)
	got := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	got.SetVersion(req.GetVersion())
	body := out.resp[0][8:] // size, correlation id
	if got.IsFlexible() {
		body = body[1:]
	}
	if err := got.ReadFrom(body); err != nil || got.ThrottleMillis != 500 {
		t.Fatalf("answered throttle %d ms (%v), want 500", got.ThrottleMillis, err)
	}
	if muted := time.Unix(0, c.mutedUntil.Load()).Sub(before); muted < 500*time.Millisecond {
		t.Fatalf("muted for %v, want 500ms", muted)
	}
}

// Only a principal with CLUSTER_ACTION is exempt from request_percentage as
// another node: a client that merely names itself shoal-broker-N, or sends
// a fetch with a replica id, is charged like any other.
func TestRequestTimeExemptNeedsClusterAction(t *testing.T) {
	s := startSecureServer(t)
	newConn := func(p acl.Principal) *conn {
		return &conn{srv: s, ctx: context.Background(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), principal: p}
	}
	node := &reqCtx{header: requestHeader{clientID: "shoal-broker-2"}}
	meta := kmsg.NewPtrMetadataRequest()
	follower := kmsg.NewPtrFetchRequest()
	follower.ReplicaID = 2
	for _, tc := range []struct {
		who    acl.Principal
		rc     *reqCtx
		req    kmsg.Request
		exempt bool
	}{
		{acl.Principal{Type: "User", Name: "alice"}, node, meta, false},
		{acl.Principal{Type: "User", Name: "alice"}, &reqCtx{}, follower, false},
		{acl.Principal{Type: "User", Name: "admin"}, node, meta, true},
		{acl.Principal{Type: "User", Name: "admin"}, &reqCtx{}, follower, true},
		{acl.Principal{Type: "User", Name: "admin"}, &reqCtx{header: requestHeader{clientID: "admin-tool"}}, meta, false},
	} {
		c := newConn(tc.who)
		tc.rc.conn = c
		if got := c.requestTimeExempt(tc.rc, tc.req); got != tc.exempt {
			t.Errorf("%v, client id %q, %s: exempt %v, want %v", tc.who, tc.rc.header.clientID, kmsg.NameForKey(tc.req.Key()), got, tc.exempt)
		}
	}
}
