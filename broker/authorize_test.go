package broker

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	kplain "github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/internal/testclock"
)

// itemRefusal is the code an API checked per item answers for the item
// refusalRequest names.
var itemRefusal = func() map[kmsg.Key]int16 {
	byCode := map[int16][]kmsg.Key{
		kerr.TopicAuthorizationFailed.Code: {
			kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions, kmsg.DeleteRecords,
			kmsg.DescribeConfigs, kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs,
			kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetForLeaderEpoch,
			kmsg.DescribeProducers,
		},
		kerr.GroupAuthorizationFailed.Code: {
			kmsg.DescribeGroups, kmsg.DeleteGroups,
			kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.OffsetDelete, kmsg.FindCoordinator,
			kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.LeaveGroup,
			kmsg.ConsumerGroupHeartbeat, kmsg.ConsumerGroupDescribe,
			kmsg.ShareGroupHeartbeat, kmsg.ShareGroupDescribe, kmsg.ShareFetch, kmsg.ShareAcknowledge,
			kmsg.DescribeShareGroupOffsets, kmsg.AlterShareGroupOffsets, kmsg.DeleteShareGroupOffsets,
		},
		kerr.TransactionalIDAuthorizationFailed.Code: {
			kmsg.EndTxn, kmsg.AddOffsetsToTxn, kmsg.TxnOffsetCommit, kmsg.DescribeTransactions,
		},
		// InitProducerID without a transactional id needs IDEMPOTENT_WRITE on
		// the cluster; from v4 only brokers send AddPartitionsToTxn:
		// CLUSTER_ACTION.
		kerr.ClusterAuthorizationFailed.Code: {kmsg.InitProducerID, kmsg.AddPartitionsToTxn},
		// ListTransactions names nothing: alice's answer is filtered.
		0: {kmsg.ListTransactions},
	}
	m := map[kmsg.Key]int16{}
	for code, keys := range byCode {
		for _, k := range keys {
			m[k] = code
		}
	}
	return m
}()

const plainUsersJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";`

// startSecureServer runs a single node whose client and inter-broker
// listeners are SASL_PLAINTEXT with PLAIN users admin (a super user) and
// alice (no ACLs), and the StandardAuthorizer on.
func startSecureServer(t *testing.T, set ...string) *Server {
	t.Helper()
	return startTestServer(t, secureSettings(set...)...)
}

// secureSettings are startSecureServer's settings followed by set.
func secureSettings(set ...string) []string {
	return append([]string{
		"listeners=CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=INTERNAL",
		"sasl.enabled.mechanisms=PLAIN",
		"sasl.mechanism.inter.broker.protocol=PLAIN",
		"sasl.jaas.config=" + plainUsersJAAS,
		"authorizer.class.name=" + "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:admin",
		"connection.failed.authentication.delay.ms=0",
	}, set...)
}

// rawConn is a connection that speaks frames by hand.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc}
}

// roundTrip sends req at version and decodes the answer.
func (c *rawConn) roundTrip(req kmsg.Request, version int16) kmsg.Response {
	c.t.Helper()
	c.corr++
	writeRequest(c.t, c.nc, c.corr, req, version)
	corr, body := readCorrelation(c.t, c.nc)
	if corr != c.corr {
		c.t.Fatalf("correlation %d, want %d", corr, c.corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:] // the response header's empty tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decoding %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// plainLogin authenticates with SASL PLAIN and returns the
// SaslAuthenticate answer.
func (c *rawConn) plainLogin(user, password string) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	c.handshake("PLAIN")
	return c.authenticate([]byte("\x00" + user + "\x00" + password))
}

// loggedIn dials s and logs in with PLAIN as user, failing the test if the
// login is refused.
func loggedIn(t *testing.T, s *Server, user, password string) *rawConn {
	t.Helper()
	c := dialRaw(t, s.Addrs()[0])
	if r := c.plainLogin(user, password); r.ErrorCode != 0 {
		t.Fatalf("%s: %v", user, kerr.ErrorForCode(r.ErrorCode))
	}
	return c
}

// createTopic creates topic name with one partition and one replica,
// failing the test if it is refused.
func (c *rawConn) createTopic(name string) {
	c.t.Helper()
	if r := c.roundTrip(createTopicsRequest(1, name), 7).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		c.t.Fatalf("CreateTopics %s: %v", name, kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
}

// createTopicsRequest asks to create topics of partitions partitions and
// one replica.
func createTopicsRequest(partitions int32, topics ...string) *kmsg.CreateTopicsRequest {
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 5000
	for _, name := range topics {
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = name, partitions, 1
		create.Topics = append(create.Topics, tp)
	}
	return create
}

// allow creates the ACL that allows principal op on the resources of type
// typ that name and pattern match, from any host, failing the test if it
// is refused.
func (c *rawConn) allow(typ kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation) {
	c.t.Helper()
	grant := kmsg.NewPtrCreateACLsRequest()
	acl := kmsg.NewCreateACLsRequestCreation()
	acl.ResourceType, acl.ResourceName, acl.ResourcePatternType = typ, name, pattern
	acl.Principal, acl.Host, acl.Operation, acl.PermissionType = principal, "*", op, kmsg.ACLPermissionTypeAllow
	grant.Creations = append(grant.Creations, acl)
	if r := c.roundTrip(grant, 3).(*kmsg.CreateACLsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
		c.t.Fatalf("CreateAcls: %+v", r)
	}
}

// handshake sends SaslHandshake v1 for mechanism, which must be accepted.
func (c *rawConn) handshake(mechanism string) {
	c.t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = mechanism
	if r := c.roundTrip(hs, 1).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		c.t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// authenticate sends one SaslAuthenticate v2 step.
func (c *rawConn) authenticate(b []byte) *kmsg.SASLAuthenticateResponse {
	c.t.Helper()
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SASLAuthBytes = b
	return c.roundTrip(au, 2).(*kmsg.SASLAuthenticateResponse)
}

// closed reports whether the peer closed the connection without another
// byte.
func (c *rawConn) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := c.nc.Read(b[:])
	return err == io.EOF
}

// refusalRequest is a request of key naming at least one item, so a
// refusal has somewhere to put its error code.
func refusalRequest(key int16) kmsg.Request {
	req := kmsg.RequestForKey(key)
	switch r := req.(type) {
	case *kmsg.DeleteRecordsRequest, *kmsg.FetchRequest, *kmsg.ListOffsetsRequest, *kmsg.OffsetForLeaderEpochRequest,
		*kmsg.InitializeShareGroupStateRequest, *kmsg.ReadShareGroupStateRequest, *kmsg.WriteShareGroupStateRequest,
		*kmsg.DeleteShareGroupStateRequest, *kmsg.ReadShareGroupStateSummaryRequest:
		addTopicPartition(reflect.ValueOf(r).Elem().FieldByName("Topics").Addr().Interface())
	case *kmsg.CreateACLsRequest:
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		r.Creations = append(r.Creations, c)
	case *kmsg.DeleteACLsRequest:
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		r.Filters = append(r.Filters, f)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = "alice", 1
		r.Deletions = append(r.Deletions, d)
	case *kmsg.AlterClientQuotasRequest:
		e := kmsg.NewAlterClientQuotasRequestEntry()
		c := kmsg.NewAlterClientQuotasRequestEntryEntity()
		c.Type, c.Name = "client-id", kmsg.StringPtr("c")
		e.Entity = append(e.Entity, c)
		e.Ops = append(e.Ops, kmsg.AlterClientQuotasRequestEntryOp{Key: "producer_byte_rate", Value: 1})
		r.Entries = append(r.Entries, e)
	case *kmsg.CreateTopicsRequest:
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = "t", 1, 1
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteTopicsRequest:
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr("t")
		r.Topics = append(r.Topics, t)
		r.TopicNames = append(r.TopicNames, "t")
	case *kmsg.CreatePartitionsRequest:
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = "t", 2
		r.Topics = append(r.Topics, t)
	case *kmsg.AlterReplicaLogDirsRequest:
		d := kmsg.NewAlterReplicaLogDirsRequestDir()
		d.Dir = "/data"
		t := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
		t.Topic, t.Partitions = "t", []int32{0}
		d.Topics = append(d.Topics, t)
		r.Dirs = append(r.Dirs, d)
	case *kmsg.DescribeConfigsRequest:
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, res)
	case *kmsg.AlterConfigsRequest:
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, res)
	case *kmsg.IncrementalAlterConfigsRequest:
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, res)
	case *kmsg.DescribeGroupsRequest:
		r.Groups = append(r.Groups, "g")
	case *kmsg.DeleteGroupsRequest:
		r.Groups = append(r.Groups, "g")
	case *kmsg.ProduceRequest:
		addTopicPartition(&r.Topics)
		r.Acks, r.TimeoutMillis = -1, 5000
	case *kmsg.MetadataRequest:
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr("t")
		r.Topics = append(r.Topics, t)
	case *kmsg.OffsetCommitRequest:
		r.Group = "g"
		addTopicPartition(&r.Topics)
	case *kmsg.OffsetFetchRequest:
		r.Group = "g"
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "g"
		r.Groups = append(r.Groups, g)
	case *kmsg.OffsetDeleteRequest:
		r.Group = "g"
	case *kmsg.FindCoordinatorRequest:
		r.CoordinatorKey, r.CoordinatorKeys = "g", []string{"g"}
	case *kmsg.JoinGroupRequest:
		r.Group, r.ProtocolType = "g", "consumer"
	case *kmsg.SyncGroupRequest:
		r.Group = "g"
	case *kmsg.HeartbeatRequest:
		r.Group = "g"
	case *kmsg.LeaveGroupRequest:
		r.Group = "g"
	case *kmsg.ConsumerGroupHeartbeatRequest:
		r.Group = "g"
	case *kmsg.ConsumerGroupDescribeRequest:
		r.Groups = []string{"g"}
	case *kmsg.ShareGroupHeartbeatRequest:
		r.GroupID = "g"
	case *kmsg.ShareGroupDescribeRequest:
		r.GroupIDs = []string{"g"}
	case *kmsg.ShareFetchRequest:
		r.GroupID = kmsg.StringPtr("g")
	case *kmsg.ShareAcknowledgeRequest:
		r.GroupID = kmsg.StringPtr("g")
	case *kmsg.DescribeShareGroupOffsetsRequest:
		g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		g.GroupID = "g"
		r.Groups = append(r.Groups, g)
	case *kmsg.AlterShareGroupOffsetsRequest:
		r.GroupID = "g"
	case *kmsg.DeleteShareGroupOffsetsRequest:
		r.GroupID = "g"
	case *kmsg.EndTxnRequest:
		r.TransactionalID = "x"
	case *kmsg.AddOffsetsToTxnRequest:
		r.TransactionalID, r.Group = "x", "g"
	case *kmsg.TxnOffsetCommitRequest:
		r.TransactionalID, r.Group = "x", "g"
		addTopicPartition(&r.Topics)
	case *kmsg.AddPartitionsToTxnRequest:
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID = "x"
		r.Transactions = append(r.Transactions, tx)
	case *kmsg.DescribeProducersRequest:
		t := kmsg.NewDescribeProducersRequestTopic()
		t.Topic, t.Partitions = "t", []int32{0}
		r.Topics = append(r.Topics, t)
	case *kmsg.DescribeTransactionsRequest:
		r.TransactionalIDs = []string{"x"}
	case *kmsg.DescribeACLsRequest:
		r.ResourceType, r.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		r.Operation, r.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	case *kmsg.WriteTxnMarkersRequest:
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.Topics = append(m.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: "t", Partitions: []int32{0}})
		r.Markers = append(r.Markers, m)
	}
	return req
}

// addTopicPartition appends to the request topics *topics points to one
// naming a single partition, both as their New functions make them, the
// topic named "t" where it is named.
func addTopicPartition(topics any) {
	list := reflect.ValueOf(topics).Elem()
	t := newDefault(list.Type().Elem())
	if name := t.FieldByName("Topic"); name.Kind() == reflect.String {
		name.SetString("t")
	}
	ps := t.FieldByName("Partitions")
	ps.Set(reflect.Append(ps, newDefault(ps.Type().Elem())))
	list.Set(reflect.Append(list, t))
}

// newDefault is a value of the kmsg struct type typ with its defaults set.
func newDefault(typ reflect.Type) reflect.Value {
	v := reflect.New(typ)
	v.MethodByName("Default").Call(nil)
	return v.Elem()
}

func hasCode(resp kmsg.Response, code int16) bool {
	found := false
	errorCodes(resp, func(c int16) { found = found || c == code })
	return found
}

// For every API a node serves, on every listener: the API has an
// authorization rule, and a principal without ACLs is refused with the
// rule's error code before the handler runs. An API added with a rule but
// no check fails the test.
func TestEveryAPIRefusesAnUnauthorizedPrincipal(t *testing.T) {
	s := startSecureServer(t)
	addrOf := map[string]string{}
	for i, l := range s.advertised {
		addrOf[l.Name] = s.Addrs()[i]
	}
	tables := []struct {
		listener string
		apis     map[int16]api
	}{{"CLIENT", s.apis.client}, {"INTERNAL", s.apis.interBroker}, {"CONTROLLER", s.apis.controller}}
	checked := map[int16]bool{}
	for _, tb := range tables {
		var rc *rawConn
		if addr := addrOf[tb.listener]; addr != "" {
			rc = dialRaw(t, addr)
			if r := rc.plainLogin("alice", "alice-secret"); r.ErrorCode != 0 {
				t.Fatalf("%s: alice: %v", tb.listener, kerr.ErrorForCode(r.ErrorCode))
			}
		}
		keys := slices.Sorted(func(yield func(int16) bool) {
			for k := range tb.apis {
				if !yield(k) {
					return
				}
			}
		})
		for _, key := range keys {
			rule, ok := acl.APIRules[kmsg.Key(key)]
			if !ok {
				t.Errorf("%s (key %d) is served without an authorization rule in acl.APIRules", kmsg.NameForKey(key), key)
				continue
			}
			if len(rule.Checks) == 0 {
				continue
			}
			check, gated := wholeRequestChecks()[key]
			_, perItem := itemGates[key]
			// Fetch's handler checks every partition of the fetch's
			// session (fetch_session.go).
			perItem = perItem || key == int16(kmsg.Fetch)
			_, perGroup := groupChecks[key]
			_, whole := requestRefusals[key]
			if perItem || perGroup || whole {
				// The request names one topic "t" or group "g".
				gated, check.denied = true, itemRefusal[kmsg.Key(key)]
			}
			if !gated {
				t.Errorf("%s has a rule in acl.APIRules but no check at the front end", kmsg.NameForKey(key))
				continue
			}
			req := refusalRequest(key)
			version := tb.apis[key].max
			if key == int16(kmsg.Fetch) {
				// By name: from v13 a topic id the node does not know
				// is UNKNOWN_TOPIC_ID before any check, as in Kafka.
				version = 12
			}
			var resp kmsg.Response
			if rc != nil {
				resp = rc.roundTrip(req, version)
			} else if perItem || perGroup || whole {
				// The gate is the same on every listener; it was
				// exercised on the client listener.
				if !checked[key] {
					t.Errorf("%s is checked per item but served on no listener the test reaches", kmsg.NameForKey(key))
				}
				continue
			} else {
				// The controller listener is the raft transport's in a
				// single node: ask the gate directly.
				req.SetVersion(version)
				c := &conn{srv: s, principal: acl.User("alice"), host: "127.0.0.1"}
				resp = c.authorizeRequest(&reqCtx{conn: c}, req)
				if resp == nil {
					t.Errorf("%s: CONTROLLER: alice was not refused", kmsg.NameForKey(key))
					continue
				}
			}
			if check.denied != 0 && !hasCode(resp, check.denied) {
				t.Errorf("%s v%d on %s: answer has no %v: %+v", kmsg.NameForKey(key), version, tb.listener, kerr.ErrorForCode(check.denied), resp)
			}
			checked[key] = true
		}
	}
	// The refused CreateAcls reached no runtime: a super user sees no ACL.
	admin := dialRaw(t, addrOf["CLIENT"])
	if r := admin.plainLogin("admin", "admin-secret"); r.ErrorCode != 0 {
		t.Fatalf("admin: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := admin.roundTrip(refusalRequest(29), 3).(*kmsg.DescribeACLsResponse); r.ErrorCode != 0 || len(r.Resources) != 0 {
		t.Fatalf("DescribeAcls as admin: %+v", r)
	}
	t.Logf("refused at the front end: %d APIs", len(checked))
}

// A wrong password is answered SASL_AUTHENTICATION_FAILED and the
// connection closes; a request other than ApiVersions and the SASL ones
// before authenticating closes the connection without an answer.
func TestSASLRefusals(t *testing.T) {
	s := startSecureServer(t)
	c := dialRaw(t, s.Addrs()[0])
	if r := c.plainLogin("alice", "wrong"); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", kerr.ErrorForCode(r.ErrorCode))
	}
	if !c.closed() {
		t.Fatal("connection still open after a failed authentication")
	}

	c = dialRaw(t, s.Addrs()[0])
	if r := c.roundTrip(apiVersionsFrom("shoal-test", "1.0"), 3).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("ApiVersions before authenticating: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	c.corr++
	writeRequest(t, c.nc, c.corr, kmsg.NewPtrMetadataRequest(), 12)
	if !c.closed() {
		t.Fatal("Metadata before authenticating was not refused with a closed connection")
	}
}

// A connection that does not authenticate within the bound is closed.
func TestSASLAuthenticationTimeout(t *testing.T) {
	s := startSecureServer(t, "socket.request.read.timeout.ms=300")
	c := dialRaw(t, s.Addrs()[0])
	start := time.Now()
	if !c.closed() {
		t.Fatal("an idle unauthenticated connection stayed open")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// A request naming items the principal may and may not touch: the
// allowed ones are handled, the others answered TOPIC_AUTHORIZATION_FAILED
// and never reach the handler.
func TestPerItemAuthorizationSplitsARequest(t *testing.T) {
	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.allow(kmsg.ACLResourceTypeTopic, "alice-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationCreate)

	alice := loggedIn(t, s, "alice", "alice-secret")
	resp := alice.roundTrip(createTopicsRequest(1, "alice-orders", "bob-orders"), 7).(*kmsg.CreateTopicsResponse)
	got := map[string]int16{}
	for _, tp := range resp.Topics {
		got[tp.Topic] = tp.ErrorCode
	}
	if len(got) != 2 || got["alice-orders"] != 0 || got["bob-orders"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("CreateTopics as alice: %+v", resp.Topics)
	}
	img := s.meta.Image()
	if img.Topics["alice-orders"] == nil || img.Topics["bob-orders"] != nil {
		t.Fatalf("topics after the request: alice-orders %v, bob-orders %v", img.Topics["alice-orders"] != nil, img.Topics["bob-orders"] != nil)
	}

	// ListGroups: alice sees the groups she may describe; admin all.
	admin.allow(kmsg.ACLResourceTypeGroup, "alice-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationDescribe)
	for _, g := range []string{"alice-g", "bob-g"} {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation = g, -1
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = "alice-orders"
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		var cr *kmsg.OffsetCommitResponse
		waitForCommit := time.Now().Add(10 * time.Second)
		for {
			// FindCoordinator creates the offsets topic on first use.
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = g
			admin.roundTrip(fc, 3)
			cr = admin.roundTrip(commit, 8).(*kmsg.OffsetCommitResponse)
			code := cr.Topics[0].Partitions[0].ErrorCode
			if code == 0 {
				break
			}
			// The offsets coordinator may still be loading.
			if !kerr.IsRetriable(kerr.ErrorForCode(code)) || time.Now().After(waitForCommit) {
				t.Fatalf("OffsetCommit %s as admin: %v", g, kerr.ErrorForCode(code))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	listed := func(c *rawConn) []string {
		var out []string
		for _, g := range c.roundTrip(kmsg.NewPtrListGroupsRequest(), 5).(*kmsg.ListGroupsResponse).Groups {
			out = append(out, g.Group)
		}
		sort.Strings(out)
		return out
	}
	if got := listed(alice); !slices.Equal(got, []string{"alice-g"}) {
		t.Fatalf("ListGroups as alice: %v, want [alice-g]", got)
	}
	if got := listed(admin); !slices.Equal(got, []string{"alice-g", "bob-g"}) {
		t.Fatalf("ListGroups as admin: %v", got)
	}
}

// KIP-368: SaslAuthenticate v1+ tells the client its session lifetime
// (connections.max.reauth.ms); re-authenticating as the same user renews
// it, as another user fails the connection, and a request after the
// lifetime without re-authenticating closes the connection.
func TestSASLReauthentication(t *testing.T) {
	const life = time.Second
	// The lifetime runs on the node's clock, which only the test moves: on
	// a real clock a stall of a second between the renewal and the next
	// request would end the session before the request that checks it is
	// still open.
	clock := testclock.New(time.Now())
	s := startTestServerWith(t, Options{Now: clock.Now}, secureSettings("connections.max.reauth.ms=1000")...)
	c := dialRaw(t, s.Addrs()[0])
	r := c.plainLogin("alice", "alice-secret")
	if r.ErrorCode != 0 || r.SessionLifetimeMillis != life.Milliseconds() {
		t.Fatalf("login: %v, session lifetime %d ms, want %d", kerr.ErrorForCode(r.ErrorCode), r.SessionLifetimeMillis, life.Milliseconds())
	}
	if r := c.plainLogin("alice", "alice-secret"); r.ErrorCode != 0 || r.SessionLifetimeMillis != life.Milliseconds() {
		t.Fatalf("re-authentication: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	clock.Advance(life - time.Millisecond)
	if m := c.roundTrip(kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse); len(m.Brokers) != 1 {
		t.Fatalf("metadata within the session: %+v", m)
	}
	clock.Advance(2 * time.Millisecond)
	c.corr++
	writeRequest(t, c.nc, c.corr, kmsg.NewPtrMetadataRequest(), 12)
	if !c.closed() {
		t.Fatal("a request after the session lifetime was served")
	}

	c = dialRaw(t, s.Addrs()[0])
	if r := c.plainLogin("alice", "alice-secret"); r.ErrorCode != 0 {
		t.Fatalf("login: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := c.plainLogin("admin", "admin-secret"); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("re-authentication as another user: %v, want SASL_AUTHENTICATION_FAILED", kerr.ErrorForCode(r.ErrorCode))
	}
	if !c.closed() {
		t.Fatal("connection open after re-authenticating as another user")
	}
}

// Without an authorizer (the default) the front end's checks allocate
// nothing and pass every request untouched.
func TestAuthorizationCostsNothingWithoutAnAuthorizer(t *testing.T) {
	c := &conn{srv: &Server{}}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.JoinGroup, kmsg.CreateACLs} {
		req := refusalRequest(int16(key))
		allocs := testing.AllocsPerRun(100, func() {
			if c.authorizeRequest(nil, req) != nil {
				t.Fatalf("%s refused without an authorizer", kmsg.NameForKey(int16(key)))
			}
			if refused, merge := c.authorizeItems(req); refused != nil || merge != nil {
				t.Fatalf("%s gated without an authorizer", kmsg.NameForKey(int16(key)))
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request without an authorizer", kmsg.NameForKey(int16(key)), allocs)
		}
	}
}

// An acks=0 Produce is never answered, so the only way to tell a producer
// that it may not write a topic is to close its connection, as Kafka does;
// a producer that is not told would keep sending into the void.
func TestAcksZeroProduceToAnUnauthorizedTopicClosesTheConnection(t *testing.T) {
	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.createTopic("orders")

	alice := loggedIn(t, s, "alice", "alice-secret")
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = 0, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pt.Partitions = append(pt.Partitions, kmsg.NewProduceRequestTopicPartition())
	produce.Topics = append(produce.Topics, pt)
	alice.corr++
	writeRequest(t, alice.nc, alice.corr, produce, 9)
	if !alice.closed() {
		t.Fatal("the connection of an acks=0 produce to a topic alice may not write is still open")
	}
}

// A share session keeps the partitions named in earlier ShareFetch
// requests, and later requests name none: the READ check must still be
// made on each of them, so an ACL removed while a share consumer runs
// stops its deliveries, as in Kafka.
func TestShareSessionRechecksReadOnEveryFetch(t *testing.T) {
	login, admin := secureLogins(t)
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(admin)
	createTopic(t, ctx, adm, 1, "jobs", nil)
	// alice reads the topic in the share group; DESCRIBE on the topic on
	// its own keeps her heartbeats going once READ is removed.
	read := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("jobs").Operations(kadm.OpRead)
	createACLs(t, ctx, adm, read,
		kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("jobs").Operations(kadm.OpDescribe),
		kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("workers").Operations(kadm.OpRead),
	)
	groupCfg := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "workers"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op, cfg.Value = "share.auto.offset.reset", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("earliest")
	res.Configs = append(res.Configs, cfg)
	groupCfg.Resources = append(groupCfg.Resources, res)
	if r, err := groupCfg.RequestWith(ctx, admin); err != nil || r.Resources[0].ErrorCode != 0 {
		t.Fatalf("share.auto.offset.reset=earliest: %v %+v", err, r)
	}
	produce := func(v string) {
		t.Helper()
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "jobs", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	produce("before")
	alice := login("alice", "alice-secret", kgo.ShareGroup("workers"), kgo.ConsumeTopics("jobs"), kgo.FetchMaxWait(100*time.Millisecond))
	pollUntil(t, ctx, alice, "alice got nothing while she may read the topic", func(fs kgo.Fetches) (got bool) {
		fs.EachRecord(func(r *kgo.Record) { got = got || string(r.Value) == "before" })
		return got
	})
	// A fetch parked before the ACL went may still be answered as it was
	// authorized; the ones after it are refused.
	revokeAndAwaitRefusal(t, ctx, adm, read, alice)
	produce("after")
	for range 3 {
		alice.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "after" {
				t.Fatal("alice's share session handed her a record of a topic she may no longer read")
			}
		})
	}
}

// createACLs creates each of bs, failing the test if one is refused.
func createACLs(t *testing.T, ctx context.Context, adm *kadm.Client, bs ...*kadm.ACLBuilder) {
	t.Helper()
	for _, b := range bs {
		if res, err := adm.CreateACLs(ctx, b); err != nil || res[0].Err != nil {
			t.Fatalf("CreateAcls: %v %+v", err, res)
		}
	}
}

// pollUntil polls cl until done accepts what one poll returned, failing
// the test with never if ctx ends first.
func pollUntil(t *testing.T, ctx context.Context, cl *kgo.Client, never string, done func(kgo.Fetches) bool) {
	t.Helper()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(never)
		}
		if done(fs) {
			return
		}
	}
}

// revokeAndAwaitRefusal deletes the ACL read and polls alice until one of
// her fetches is answered TOPIC_AUTHORIZATION_FAILED.
func revokeAndAwaitRefusal(t *testing.T, ctx context.Context, adm *kadm.Client, read *kadm.ACLBuilder, alice *kgo.Client) {
	t.Helper()
	if res, err := adm.DeleteACLs(ctx, read); err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("DeleteAcls: %v %+v", err, res)
	}
	pollUntil(t, ctx, alice, "alice's fetches were never refused after her READ was removed", func(fs kgo.Fetches) (refused bool) {
		fs.EachError(func(_ string, _ int32, err error) { refused = refused || errors.Is(err, kerr.TopicAuthorizationFailed) })
		return refused
	})
}

// secureLogins runs startSecureServer and returns what logs a franz-go
// client in to it with SASL PLAIN, and a client logged in as admin.
func secureLogins(t *testing.T) (login func(user, password string, opts ...kgo.Opt) *kgo.Client, admin *kgo.Client) {
	s := startSecureServer(t)
	login = func(user, password string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addrs()[0]),
			kgo.SASL(kplain.Auth{User: user, Pass: password}.AsMechanism())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	return login, login("admin", "admin-secret")
}

// A consumer's fetches are authorized one by one: once its READ is
// removed the next fetch of the partition it was reading is refused.
func TestFetchRechecksReadOnEveryRequest(t *testing.T) {
	login, admin := secureLogins(t)
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(admin)
	createTopic(t, ctx, adm, 1, "events", nil)
	read := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("events").Operations(kadm.OpRead)
	createACLs(t, ctx, adm, read)
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	alice := login("alice", "alice-secret", kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	pollUntil(t, ctx, alice, "alice got nothing while she may read the topic", func(fs kgo.Fetches) bool {
		return fs.NumRecords() > 0
	})
	revokeAndAwaitRefusal(t, ctx, adm, read, alice)
}

// A KIP-848 regex subscription resolves only to the topics the member's
// principal may describe, as Kafka's does, also when matching topics are
// created after it joined.
func TestRegexSubscriptionMatchesOnlyDescribableTopics(t *testing.T) {
	login, admin := secureLogins(t)
	ctx := testContext(t, 30*time.Second)
	adm := kadm.NewClient(admin)
	ids := map[[16]byte]string{}
	for _, topic := range []string{"orders-eu", "orders-us"} {
		ids[createTopic(t, ctx, adm, 1, topic, nil)] = topic
	}
	createACLs(t, ctx, adm,
		kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("regex-g").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders-eu", "orders-jp").Operations(kadm.OpDescribe),
	)

	alice := login("alice", "alice-secret")
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = "regex-g", "regex-g-member0", 0
	req.RebalanceTimeoutMillis = 30000
	req.SubscribedTopicRegex = kmsg.StringPtr("orders-.*")
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	// heartbeatUntil heartbeats as a member does until the assignment is
	// want, failing at once if it names a topic alice may not describe.
	heartbeatUntil := func(want ...string) {
		t.Helper()
		for {
			resp, err := req.RequestWith(ctx, alice)
			if err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			if resp.ErrorCode != 0 {
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			req.MemberEpoch = resp.MemberEpoch
			req.SubscribedTopicRegex, req.Topics = nil, nil
			if resp.Assignment != nil {
				var got []string
				for _, tp := range resp.Assignment.Topics {
					got = append(got, ids[tp.TopicID])
				}
				sort.Strings(got)
				for _, name := range got {
					if name != "orders-eu" && name != "orders-jp" {
						t.Fatalf("alice was assigned %v: %s is a topic she may not describe", got, name)
					}
				}
				if slices.Equal(got, want) {
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("assignment never became %v", want)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	heartbeatUntil("orders-eu")
	// Topics created while she is a member: the one she may not describe
	// is created first, so her assignment taking in the other one shows
	// both were resolved.
	ids[createTopic(t, ctx, adm, 1, "orders-asia", nil)] = "orders-asia"
	ids[createTopic(t, ctx, adm, 1, "orders-jp", nil)] = "orders-jp"
	heartbeatUntil("orders-eu", "orders-jp")
}

// A topic created by a principal that may not describe its configs is
// answered without them, its partition count and replication factor
// unset and TOPIC_AUTHORIZATION_FAILED in the config error, as Kafka
// answers it; with DESCRIBE_CONFIGS the configs come back.
func TestCreateTopicsHidesConfigsWithoutDescribeConfigs(t *testing.T) {
	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.allow(kmsg.ACLResourceTypeTopic, "alice-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationCreate)
	admin.allow(kmsg.ACLResourceTypeTopic, "alice-seen", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationDescribeConfigs)

	alice := loggedIn(t, s, "alice", "alice-secret")
	resp := alice.roundTrip(createTopicsRequest(2, "alice-hidden", "alice-seen"), 7).(*kmsg.CreateTopicsResponse)
	got := map[string]kmsg.CreateTopicsResponseTopic{}
	for _, tp := range resp.Topics {
		got[tp.Topic] = tp
	}
	hidden, seen := got["alice-hidden"], got["alice-seen"]
	if hidden.ErrorCode != 0 || hidden.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || hidden.NumPartitions != -1 || hidden.ReplicationFactor != -1 || len(hidden.Configs) != 0 {
		t.Errorf("alice-hidden answered code %d, config code %d, %d partitions, rf %d, %d configs; want created with its configuration hidden",
			hidden.ErrorCode, hidden.ConfigErrorCode, hidden.NumPartitions, hidden.ReplicationFactor, len(hidden.Configs))
	}
	if seen.ErrorCode != 0 || seen.ConfigErrorCode != 0 || seen.NumPartitions != 2 || seen.ReplicationFactor != 1 || len(seen.Configs) == 0 {
		t.Errorf("alice-seen answered code %d, config code %d, %d partitions, rf %d, %d configs; want its configuration",
			seen.ErrorCode, seen.ConfigErrorCode, seen.NumPartitions, seen.ReplicationFactor, len(seen.Configs))
	}
	if s.meta.Image().Topics["alice-hidden"] == nil {
		t.Fatal("alice-hidden was not created")
	}
}

// Metadata and DescribeGroups compute the operations the client may
// perform on each topic and group when asked, as Kafka does: those the
// ACLs allow (READ implies DESCRIBE), every one without an authorizer.
func TestDescribeAuthorizedOperations(t *testing.T) {
	const (
		read, describe = 1 << 3, 1 << 8
		allTopicOps    = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	)
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.IncludeTopicAuthorizedOperations = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	metadata.Topics = append(metadata.Topics, mt)
	groups := kmsg.NewPtrDescribeGroupsRequest()
	groups.Groups, groups.IncludeAuthorizedOperations = []string{"g"}, true

	open := startTestServer(t)
	ctx := testContext(t, 20*time.Second)
	cl := testClient(t, open)
	createTopic(t, ctx, kadm.NewClient(cl), 1, "t", nil)
	if resp, err := metadata.RequestWith(ctx, cl); err != nil || len(resp.Topics) != 1 || resp.Topics[0].AuthorizedOperations != allTopicOps {
		t.Errorf("Metadata without an authorizer: %+v, %v; want operations %#x", resp, err, allTopicOps)
	}

	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	admin.createTopic("t")
	admin.allow(kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationRead)
	admin.allow(kmsg.ACLResourceTypeGroup, "g", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationDescribe)
	alice := loggedIn(t, s, "alice", "alice-secret")
	if r := alice.roundTrip(metadata, 12).(*kmsg.MetadataResponse); len(r.Topics) != 1 || r.Topics[0].AuthorizedOperations != read|describe {
		t.Errorf("Metadata as alice: %+v, want operations %#x", r.Topics, read|describe)
	}
	// A topic refused to her is answered with its error alone: its
	// operations stay "not requested", as Kafka leaves them.
	admin.createTopic("secret")
	refused := kmsg.NewMetadataRequestTopic()
	refused.Topic = kmsg.StringPtr("secret")
	withRefused := *metadata
	withRefused.Topics = append(slices.Clone(metadata.Topics), refused)
	r := alice.roundTrip(&withRefused, 12).(*kmsg.MetadataResponse)
	for _, rt := range r.Topics {
		if deref(rt.Topic) == "secret" && (rt.ErrorCode != kerr.TopicAuthorizationFailed.Code || rt.AuthorizedOperations != math.MinInt32) {
			t.Errorf("Metadata of secret as alice: error %d, operations %#x; want TOPIC_AUTHORIZATION_FAILED and none computed", rt.ErrorCode, rt.AuthorizedOperations)
		}
	}
	// FindCoordinator creates the offsets topic, whose coordinator may
	// still be loading: ask until it answers.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	deadline := time.Now().Add(10 * time.Second)
	for {
		admin.roundTrip(fc, 3)
		r := alice.roundTrip(groups, 5).(*kmsg.DescribeGroupsResponse)
		if len(r.Groups) == 1 && kerr.IsRetriable(kerr.ErrorForCode(r.Groups[0].ErrorCode)) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if len(r.Groups) != 1 || r.Groups[0].ErrorCode != 0 || r.Groups[0].AuthorizedOperations != describe {
			t.Errorf("DescribeGroups as alice: %+v, want operations %#x", r.Groups, describe)
		}
		break
	}
}
