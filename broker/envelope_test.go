package broker

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"path/filepath"
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

// kafkaForwardable are the APIs Kafka's ApiKeys marks forwardable: those
// a broker relays to the active controller in an Envelope.
var kafkaForwardable = map[int16]bool{
	19: true, // CreateTopics
	20: true, // DeleteTopics
	30: true, // CreateAcls
	31: true, // DeleteAcls
	33: true, // AlterConfigs
	37: true, // CreatePartitions
	38: true, // CreateDelegationToken
	39: true, // RenewDelegationToken
	40: true, // ExpireDelegationToken
	43: true, // ElectLeaders
	44: true, // IncrementalAlterConfigs
	45: true, // AlterPartitionReassignments
	46: true, // ListPartitionReassignments
	49: true, // AlterClientQuotas
	51: true, // AlterUserScramCredentials
	55: true, // DescribeQuorum
	57: true, // UpdateFeatures
	64: true, // UnregisterBroker
	67: true, // AllocateProducerIds
	80: true, // AddRaftVoter
	81: true, // RemoveRaftVoter
}

// The controller's Envelope accepts, at every version served, exactly the
// client APIs a broker relays (their table entry is marked forwarded), and
// those are the ones Kafka forwards among the APIs clients are served;
// AllocateProducerIds, which Kafka marks forwardable, is a controller RPC
// brokers send directly, and never travels in an Envelope.
func TestEnvelopeAcceptsExactlyTheForwardedAPIs(t *testing.T) {
	s := startTestServer(t)
	for key, a := range s.apis.all {
		client, served := s.apis.client[key]
		want := served && kafkaForwardable[key]
		if served && client.forwarded != want {
			t.Errorf("%s: marked forwarded %v in the API table, Kafka forwards it: %v", kmsg.NameForKey(key), client.forwarded, want)
		}
		for v := a.min; v <= a.max; v++ {
			_, _, err := s.decodeForwarded(frameOf(kmsg.RequestForKey(key), v))
			if got := err == nil; got != want {
				t.Errorf("%s v%d: an Envelope accepts it: %v, want %v (%v)", kmsg.NameForKey(key), v, got, want, err)
			}
		}
	}
}

// Only forwarding hands a handler the means to forward (forwardAdmin) and
// only it marks an API table entry forwarded, so no handler can relay a
// request the controller's Envelope refuses, nor the Envelope accept one
// brokers answer themselves.
func TestOnlyTheAPITableForwards(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name == "forwarding" || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if n.Sel.Name == "forwardAdmin" {
						t.Errorf("%s: %s calls forwardAdmin; take the forwardFunc forwarding passes", fset.Position(n.Pos()), fn.Name.Name)
					}
				case *ast.CompositeLit:
					// An api literal: named, or elided in a table.
					if typ, ok := n.Type.(*ast.Ident); n.Type != nil && (!ok || typ.Name != "api") {
						return true
					}
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "forwarded") && !isIdent(kv.Value, "false") {
							t.Errorf("%s: %s marks an API forwarded; use relayed or forwarding", fset.Position(kv.Pos()), fn.Name.Name)
						}
					}
				}
				return true
			})
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
