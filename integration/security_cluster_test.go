package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Clusters whose nodes log in to each other with SASL: forwarded admin
// requests authorized as the client that sent them.

// plainCluster is the security section of a cluster whose client,
// inter-broker and controller listeners are all SASL_PLAINTEXT with PLAIN:
// the nodes log in as broker (username and password of the listeners'
// JAAS modules), the users are admin (a super user), alice and bob.
const plainClusterProperties = `listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret" user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=true
`

func plainLogin(user, password string) kgo.Opt {
	return kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism())
}

// TestSecurityForwardedAdminAuthorizedAsClient: a broker forwards a
// client's CreateTopics and CreateAcls to the active controller, which
// authorizes them as the client, not as the forwarding broker. The
// brokers' principal (User:broker) has CLUSTER_ACTION and nothing else, so
// a request authorized as the broker would be refused: alice, who may
// create topics named alice-*, creates one through a node that is not the
// controller; bob, who may not, is refused through the same node, and so
// is alice's CreateAcls.
func TestSecurityForwardedAdminAuthorizedAsClient(t *testing.T) {
	t.Parallel()
	c := startClusterWith(t, 3, nodeOpts{
		clientListener: "SASL_PLAINTEXT",
		configFile:     plainClusterProperties,
		clientOpts:     []kgo.Opt{plainLogin("admin", "admin-secret")},
	})
	ctx := ctxT(t, opTimeout)
	// sendTo sends req to node n itself on a connection logged in as
	// user: a Kafka client would send an admin request to the node
	// Metadata names as the controller, which may be any broker.
	sendTo := func(n *node, user string, req kmsg.Request) kmsg.Response {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.DialTimeout(time.Second), plainLogin(user, user+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			t.Fatalf("%s as %s to node %d: %v", kmsg.NameForKey(req.Key()), user, n.id(), err)
		}
		return resp
	}
	ctrlID, err := controllerOn(t, c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	ctrl := c.node(ctrlID)
	via := c.nodes[0]
	if via == ctrl {
		via = c.nodes[1]
	}

	// The brokers may replicate, heartbeat and forward, nothing more:
	// with an ACL on the cluster, allow.everyone.if.no.acl.found no longer
	// opens it. The ACLs are made on the controller itself.
	acls := kmsg.NewPtrCreateACLsRequest()
	for _, a := range []struct {
		typ     kmsg.ACLResourceType
		name    string
		pattern kmsg.ACLResourcePatternType
		who     string
		op      kmsg.ACLOperation
	}{
		{kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral, "User:broker", kmsg.ACLOperationClusterAction},
		{kmsg.ACLResourceTypeTopic, "alice-", kmsg.ACLResourcePatternTypePrefixed, "User:alice", kmsg.ACLOperationCreate},
	} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = a.typ, a.name, a.pattern
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = a.who, "*", a.op, kmsg.ACLPermissionTypeAllow
		acls.Creations = append(acls.Creations, cr)
	}
	for _, r := range sendTo(ctrl, "admin", acls).(*kmsg.CreateACLsResponse).Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			t.Fatalf("CreateACLs on the controller: %v", err)
		}
	}
	// Every node must know the ACLs before the requests that rely on them.
	for _, n := range c.nodes {
		waitFor(t, opTimeout, fmt.Sprintf("node %d to hold the ACLs", n.id()), func() (bool, string) {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			r := sendTo(n, "admin", req).(*kmsg.DescribeACLsResponse)
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				return false, err.Error()
			}
			got := 0
			for _, res := range r.Resources {
				got += len(res.ACLs)
			}
			return got == len(acls.Creations), fmt.Sprintf("%d ACLs", got)
		})
	}
	send := func(user string, req kmsg.Request) kmsg.Response { return sendTo(via, user, req) }
	createTopic := func(user, topic string) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 3
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 10000
		resp := send(user, req).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("CreateTopics answered %d topics", len(resp.Topics))
		}
		return kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err := createTopic("alice", "alice-orders"); err != nil {
		t.Errorf("alice creating alice-orders through node %d (controller %d): %v", via.id(), ctrlID, err)
	}
	if err := createTopic("bob", "alice-bobs"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob creating alice-bobs through node %d: %v, want TOPIC_AUTHORIZATION_FAILED", via.id(), err)
	}
	acl := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	acl.Creations = append(acl.Creations, cr)
	for _, r := range send("alice", acl).(*kmsg.CreateACLsResponse).Results {
		if err := kerr.ErrorForCode(r.ErrorCode); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("alice creating an ACL through node %d: %v, want CLUSTER_AUTHORIZATION_FAILED", via.id(), err)
		}
	}
	// The topic is there for everyone: the controller created it.
	waitFor(t, opTimeout, "alice-orders on every node", func() (bool, string) {
		for _, n := range c.nodes {
			topics, err := adminOn(t, n).ListTopics(ctx, "alice-orders")
			if err != nil {
				return false, err.Error()
			}
			if !topics.Has("alice-orders") {
				return false, fmt.Sprintf("node %d does not list it", n.id())
			}
		}
		return true, ""
	})
	t.Logf("requests sent through node %d, controller %d", via.id(), ctrlID)
	if now, err := controllerOn(t, c.nodes[0]); err == nil && now == via.id() {
		t.Logf("node %d became the controller during the test; the requests may not have been forwarded", via.id())
	}
}

// secureClusterProperties is docs/security.md's cluster section: every
// listener SASL_SSL, clients with SCRAM-SHA-512 (or PLAIN), the nodes with
// PLAIN as User:broker, a super user like admin.
const secureClusterProperties = `listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
ssl.keystore.type=PEM
ssl.keystore.location=%[1]s/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=%[1]s/ca.pem
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret" user_admin="admin-secret";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:broker
`

// TestSecurityClusterSASLSSL: three nodes whose client, inter-broker and
// controller listeners are all SASL_SSL, with the StandardAuthorizer. A
// SCRAM-SHA-512 user created at run time, with ACLs on one topic only,
// produces with acks=all to a topic of three replicas; its leader is
// killed with SIGKILL; writes go on once another replica leads; the node
// restarts and rejoins the ISR (followers fetch over SASL_SSL, the
// controller RPCs and raft travel over the SASL_SSL controller listener);
// every acknowledged record is read back.
func TestSecurityClusterSASLSSL(t *testing.T) {
	t.Parallel()
	// docs/security.md shows the same properties.
	doc, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(fmt.Sprintf(secureClusterProperties, "/etc/shoal")), "\n") {
		if !strings.Contains(string(doc), line+"\n") {
			t.Errorf("docs/security.md does not show %q", line)
		}
	}
	dir, pool := makeCertificates(t)
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pool})
	c := startClusterWith(t, 3, nodeOpts{
		clientListener: "SASL_SSL",
		configFile:     fmt.Sprintf(secureClusterProperties, dir),
		clientOpts:     []kgo.Opt{tlsOpt, plainLogin("admin", "admin-secret")},
	})
	ctx := ctxT(t, opTimeout)
	admin := kadm.NewClient(c.Client(t))
	topic := topicName(t, "sasl-ssl")

	// The controller listener speaks TLS and asks for a login: a
	// plaintext client, and a TLS one that does not log in, are not
	// served there.
	ctrlAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[0].ctrlPort))
	if _, err := metadataAt(t, ctrlAddr); err == nil {
		t.Errorf("a plaintext client was answered on the SASL_SSL controller listener")
	}
	if _, err := metadataAt(t, ctrlAddr, tlsOpt); err == nil {
		t.Errorf("a client that did not log in was answered on the SASL_SSL controller listener")
	}

	// A SCRAM user, created through whichever node the client picks
	// (forwarded to the controller in an Envelope), with ACLs on the
	// topic alone.
	if _, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "writer", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "writer-secret"}}); err != nil {
		t.Fatal(err)
	}
	res, err := admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:writer").Topics(topic).Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("CreateACLs: %v", r.Err)
		}
	}
	created, err := admin.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": strp("2")}, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create topic: %v %v", err, created.Err)
	}
	st := c.waitPartition(c.nodes[0], topic, 0, "a full ISR", func(s partitionState) bool { return len(s.isr) == 3 && s.leader > 0 })
	writer := []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "writer", Pass: "writer-secret"}.AsSha512Mechanism())}
	for _, n := range c.nodes {
		waitFor(t, opTimeout, fmt.Sprintf("node %d to know writer's credential", n.id()), func() (bool, string) {
			if _, err := metadataAt(t, n.Addr(), writer...); err != nil {
				return false, err.Error()
			}
			return true, ""
		})
	}

	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.Addr())
	}
	producer := clientWith(t, []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100 * time.Millisecond), kgo.DialTimeout(time.Second)}, writer, clusterProducerOpts(topic)...)
	failOverLeader(t, c, topic, st.leader, producer, 300, opTimeout)
}

// TestSecurityClusterRolesSASLSSL: a controller-only voter and two
// broker-only nodes, every listener SASL_SSL as in docs/security.md. The
// brokers dial the controller listener they do not serve themselves
// (TLS, PLAIN login), the voter replicates the metadata log to them over
// TLS on their inter-broker listener (they are raft learners there), and
// a topic of two replicas gets both in its ISR and serves what is
// written to it.
func TestSecurityClusterRolesSASLSSL(t *testing.T) {
	t.Parallel()
	dir, pool := makeCertificates(t)
	rc := startRolesClusterWith(t, 1, "controller", 2, nodeOpts{
		clientListener: "SASL_SSL",
		configFile:     fmt.Sprintf(secureClusterProperties, dir),
		clientOpts:     []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool}), plainLogin("admin", "admin-secret")},
	})
	b2, b3 := rc.byID(2), rc.byID(3)
	topic := topicName(t, "roles")
	createTopicOn(t, b2, topic, 1, 2, nil)
	rc.waitPartition(b3, topic, 0, "both replicas in the ISR", func(s partitionState) bool { return len(s.isr) == 2 })
	n := produceThrough(t, b3, topic, 1, 100, "a")
	consumeThrough(t, b2, topic, n)
}
