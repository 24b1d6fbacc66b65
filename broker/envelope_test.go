package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

// envelopeOf wraps req for principal from host, as a forwarding broker
// does (cluster.Origin).
func envelopeOf(req kmsg.Request, principal string, host net.IP) *kmsg.EnvelopeRequest {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("client")).AppendRequest(nil, req, 7)
	typ, name, _ := strings.Cut(principal, ":")
	pd := kmsg.DefaultPrincipalData{Type: typ, Name: name}
	env := kmsg.NewPtrEnvelopeRequest()
	env.RequestData, env.RequestPrincipal, env.ClientHostAddress = frame[4:], pd.AppendTo(nil), host.To4()
	return env
}

// sendEnvelope runs env on the controller listener as the forwarding
// broker (admin, a super user) and decodes the response inside.
func sendEnvelope(t *testing.T, s *Server, env *kmsg.EnvelopeRequest, inner kmsg.Request) (*kmsg.EnvelopeResponse, kmsg.Response) {
	t.Helper()
	c := &conn{srv: s, listener: "CONTROLLER", apis: s.apis.controller, ctx: context.Background(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), principal: acl.User("admin"), host: "127.0.0.1"}
	resp, wait, err := c.process(&reqCtx{conn: c, header: requestHeader{key: envelopeKey}}, env)
	if err != nil {
		t.Fatal(err)
	}
	if wait != nil {
		if resp, err = wait(); err != nil {
			t.Fatal(err)
		}
	}
	er := resp.(*kmsg.EnvelopeResponse)
	if er.ErrorCode != 0 || inner == nil {
		return er, nil
	}
	r := inner.ResponseKind()
	r.SetVersion(inner.GetVersion())
	body := er.ResponseData[4:] // the correlation id
	if r.IsFlexible() {
		body = body[1:]
	}
	if err := r.ReadFrom(body); err != nil {
		t.Fatalf("decoding the enveloped %s response: %v", kmsg.NameForKey(inner.Key()), err)
	}
	return er, r
}

// An Envelope's request runs as the principal it names: admin (a super
// user) creates an ACL letting alice create topics named alice-*; alice's
// CreateTopics then succeeds and bob's is refused, both sent by the same
// forwarding connection. A principal that does not decode, an address
// of the wrong length and a request brokers never forward are refused.
func TestEnvelopeRunsAsItsPrincipal(t *testing.T) {
	s := startSecureServer(t)
	host := net.ParseIP("10.1.2.3")

	acls := kmsg.NewPtrCreateACLsRequest()
	acls.SetVersion(3)
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "alice-", kmsg.ACLResourcePatternTypePrefixed
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "10.1.2.3", kmsg.ACLOperationCreate, kmsg.ACLPermissionTypeAllow
	acls.Creations = append(acls.Creations, cr)
	_, r := sendEnvelope(t, s, envelopeOf(acls, "User:admin", host), acls)
	if code := r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode; code != 0 {
		t.Fatalf("CreateAcls as admin: %v", kerr.ErrorForCode(code))
	}

	create := func(principal, topic string, from net.IP) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		req.Topics = append(req.Topics, rt)
		_, r := sendEnvelope(t, s, envelopeOf(req, principal, from), req)
		return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	if code := create("User:alice", "alice-orders", host); code != 0 {
		t.Errorf("alice: %v", kerr.ErrorForCode(code))
	}
	if code := create("User:bob", "alice-bobs", host); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("bob: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}
	// The ACL names alice's host: from another address she is refused.
	if code := create("User:alice", "alice-elsewhere", net.ParseIP("10.9.9.9")); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("alice from another host: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}

	meta := kmsg.NewPtrMetadataRequest()
	for name, tc := range map[string]struct {
		env  *kmsg.EnvelopeRequest
		want int16
	}{
		"undecodable principal": {func() *kmsg.EnvelopeRequest {
			e := envelopeOf(acls, "User:admin", host)
			e.RequestPrincipal = []byte{0xff}
			return e
		}(), kerr.PrincipalDeserializationFailure.Code},
		"address of 3 bytes": {func() *kmsg.EnvelopeRequest {
			e := envelopeOf(acls, "User:admin", host)
			e.ClientHostAddress = []byte{1, 2, 3}
			return e
		}(), kerr.InvalidRequest.Code},
		"a request brokers do not forward": {envelopeOf(meta, "User:admin", host), kerr.InvalidRequest.Code},
		"a truncated request": {func() *kmsg.EnvelopeRequest {
			e := envelopeOf(acls, "User:admin", host)
			e.RequestData = e.RequestData[:len(e.RequestData)-3]
			return e
		}(), kerr.InvalidRequest.Code},
	} {
		if er, _ := sendEnvelope(t, s, tc.env, nil); er.ErrorCode != tc.want {
			t.Errorf("%s: %v, want %v", name, kerr.ErrorForCode(er.ErrorCode), kerr.ErrorForCode(tc.want))
		}
	}
}
