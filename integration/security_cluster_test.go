package integration

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
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
	admin := kadm.NewClient(c.Client(t))
	// The brokers may replicate, heartbeat and forward, nothing more;
	// with an ACL on the cluster, allow.everyone.if.no.acl.found no longer
	// opens it.
	acls := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:broker").Clusters().Operations(kadm.OpClusterAction),
		kadm.NewACLs().Allow("User:alice").Topics("alice-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate),
	}
	for _, b := range acls {
		res, err := admin.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("CreateACLs: %v", r.Err)
			}
		}
	}

	ctrl, err := controllerOn(t, c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	via := c.nodes[0]
	if via.id() == ctrl {
		via = c.nodes[1]
	}
	// Every node must know the ACLs before the requests that rely on them.
	for _, n := range c.nodes {
		waitFor(t, opTimeout, fmt.Sprintf("node %d to hold the ACLs", n.id()), func() (bool, string) {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			r, err := req.RequestWith(ctx, n.Client(t))
			if err != nil {
				return false, err.Error()
			}
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				return false, err.Error()
			}
			got := 0
			for _, res := range r.Resources {
				got += len(res.ACLs)
			}
			return got == len(acls), fmt.Sprintf("%d ACLs", got)
		})
	}

	// A client of via alone, logged in as user.
	as := func(user string) *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(via.Addr()), kgo.DialTimeout(time.Second), kgo.RetryTimeout(5*time.Second), plainLogin(user, user+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	created, err := as("alice").CreateTopic(ctx, 1, 3, nil, "alice-orders")
	if err != nil || created.Err != nil {
		t.Fatalf("alice creating alice-orders through node %d (controller %d): %v / %v", via.id(), ctrl, err, created.Err)
	}
	// kadm returns the topic's error as the call's.
	if _, err := as("bob").CreateTopic(ctx, 1, 3, nil, "alice-bobs"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob creating alice-bobs through node %d: %v, want TOPIC_AUTHORIZATION_FAILED", via.id(), err)
	}
	res, err := as("alice").CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("x").Operations(kadm.OpRead))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("alice creating an ACL through node %d: %v, want CLUSTER_AUTHORIZATION_FAILED", via.id(), r.Err)
		}
	}
	if now, err := controllerOn(t, c.nodes[0]); err == nil && now == via.id() {
		t.Logf("node %d became the controller during the test; the requests may not have been forwarded", via.id())
	}
}
