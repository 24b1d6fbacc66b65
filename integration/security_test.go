package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shoalmq/shoal/internal/syncbuf"
)

// The set-up docs/security.md walks through, step by step: a CA and a
// server certificate made with openssl, a SASL_SSL listener with
// SCRAM-SHA-512 and the StandardAuthorizer, the first user created with
// "shoal storage format --add-scram", a second one and its ACLs created
// with the command line over the secured listener. The commands here and
// in the document are the same.

// securityDocServerProperties is the security section of
// docs/security.md's server.properties (the listeners themselves are the
// harness's, on free ports).
const securityDocServerProperties = `listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=%[1]s/server-keystore.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
`

// securityDocClientProperties is docs/security.md's client.properties for
// a user.
const securityDocClientProperties = `security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%[2]s" password="%[3]s";
ssl.truststore.type=PEM
ssl.truststore.location=%[1]s/ca.pem
`

// securityDocCertCommands make the CA and the broker's certificate, run
// in the certificate directory.
var securityDocCertCommands = [][]string{
	{"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "365", "-subj", "/CN=shoal-ca"},
	{"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"},
	{"openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "365", "-extfile", "san.ext"},
}

// securityDocSAN is san.ext: the names clients reach the broker by.
const securityDocSAN = "subjectAltName=DNS:localhost,IP:127.0.0.1\n"

// makeCertificates runs docs/security.md's openssl commands in a new
// directory: a CA (ca.pem) and a key store for the broker
// (server-keystore.pem, its certificate and key), valid for localhost and
// 127.0.0.1.
// runIn runs the command args in dir and fails the test if it fails.
func runIn(t *testing.T, dir string, args []string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeKeystore is the documented
// "cat server.pem KEY > server-keystore.pem" in dir: the broker's
// certificate followed by its key (key names the key's file).
func writeKeystore(t *testing.T, dir, key string) {
	t.Helper()
	var ks []byte
	for _, f := range []string{"server.pem", key} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, "server-keystore.pem"), ks, 0o600); err != nil {
		t.Fatal(err)
	}
}

func makeCertificates(t *testing.T) (dir string, ca *x509.CertPool) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "san.ext"), []byte(securityDocSAN), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range securityDocCertCommands {
		runIn(t, dir, args)
	}
	writeKeystore(t, dir, "server.key")
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ca = x509.NewCertPool()
	ca.AppendCertsFromPEM(caPEM)
	return dir, ca
}

// secureNode is a running node set up as docs/security.md describes.
type secureNode struct {
	*node
	certDir string
	caPool  *x509.CertPool
	// ran are the command lines cli ran, as docs/security.md shows them.
	ran []string
}

// set are extra --set settings of the node.
func startSecureNode(t *testing.T, set ...string) *secureNode {
	t.Helper()
	return startSecureNodeWith(t, nodeOpts{set: set})
}

// startSecureNodeWith is startSecureNode with extra settings: opts.set, a
// second listener (opts.extraListener, mapped to the security protocol of
// its name) and opts.configFile appended to docs/security.md's properties.
func startSecureNodeWith(t *testing.T, opts nodeOpts) *secureNode {
	t.Helper()
	dir, pool := makeCertificates(t)
	writeClientProperties(t, dir, "admin", "admin-secret")

	props := fmt.Sprintf(securityDocServerProperties, dir)
	if opts.extraListener != "" {
		props = strings.Replace(props, "CONTROLLER:PLAINTEXT", opts.extraListener+":"+opts.extraListener+",CONTROLLER:PLAINTEXT", 1)
	}
	sn := &secureNode{certDir: dir, caPool: pool}
	sn.node = startNode(t, nodeOpts{
		clientListener: "SASL_SSL",
		extraListener:  opts.extraListener,
		configFile:     props + opts.configFile,
		clientOpts:     scramOpts(pool, "admin", "admin-secret"),
		set:            opts.set,
		beforeFirstStart: func(n *node) {
			code, stderr := runShoal(t, nil, "storage", "format", "--config", n.configPath,
				"--set", "log.dirs="+filepath.Join(n.dataDir, "data"),
				"--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]")
			if code != 0 {
				t.Fatalf("shoal storage format: exit %d: %s", code, stderr)
			}
		},
	})
	return sn
}

func writeClientProperties(t *testing.T, dir, user, password string) string {
	t.Helper()
	path := filepath.Join(dir, user+".properties")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(securityDocClientProperties, dir, user, password)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scramOpts are a franz-go client's TLS dialer and SCRAM-SHA-512 login.
func scramOpts(pool *x509.CertPool, user, password string) []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
	}
}

// scramClient returns a client of the SASL_SSL listener at addr logged in
// as user (scramOpts), closed when the test ends; opts come last.
func scramClient(t *testing.T, pool *x509.CertPool, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return clientWith(t, []kgo.Opt{kgo.SeedBrokers(addr)}, scramOpts(pool, user, password), opts...)
}

// cli runs a shoal command as user over the secured listener and returns
// its standard output.
func (sn *secureNode) cli(t *testing.T, user string, args ...string) string {
	t.Helper()
	full := append([]string{"--bootstrap-server", sn.Addr(), "--command-config", filepath.Join(sn.certDir, user+".properties")}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, full...)
	cmd.Env = childEnv(nil)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	sn.ran = append(sn.ran, "shoal --command-config "+user+".properties "+strings.Join(args, " "))
	return string(out)
}

// TestSecuritySASLSSLWithSCRAMAndACLs: the documented set-up works end to
// end for franz-go, librdkafka and KafkaJS, and refuses a wrong password, a
// plaintext client on the TLS port and a user without ACLs on an admin
// API with Kafka's error codes.
func TestSecuritySASLSSLWithSCRAMAndACLs(t *testing.T) {
	t.Parallel()
	sn := startSecureNode(t)
	// The names docs/security.md uses; the node is this test's own.
	topic, group := "orders", "billing"

	// The administrator (from storage format) adds alice and her ACLs.
	sn.cli(t, "admin", "user", "scram", "set", "--name", "alice", "--mechanism", "SCRAM-SHA-512", "--password", "alice-secret")
	writeClientProperties(t, sn.certDir, "alice", "alice-secret")
	sn.cli(t, "admin", "topic", "create", topic, "--partitions", "1")
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:alice", "--operation", "WRITE", "--operation", "READ", "--operation", "DESCRIBE", "--topic", topic)
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:alice", "--operation", "READ", "--group", group)
	var listed []struct {
		ResourceType, ResourceName, Principal, Operation, Permission string
	}
	if err := json.Unmarshal([]byte(sn.cli(t, "admin", "acl", "list", "--principal", "User:alice")), &listed); err == nil {
		t.Fatal("acl list printed JSON without --output json")
	}
	if err := json.Unmarshal([]byte(sn.cli(t, "admin", "acl", "list", "--principal", "User:alice", "--output", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 4 {
		t.Fatalf("acl list: %d bindings, want 4: %+v", len(listed), listed)
	}
	users := sn.cli(t, "admin", "user", "scram", "list", "--output", "json")
	checkSecurityDoc(t, sn.ran)
	if !strings.Contains(users, `"alice"`) || !strings.Contains(users, `"admin"`) || strings.Contains(users, "secret") {
		t.Fatalf("user scram list: %s", users)
	}

	t.Run("franz-go", func(t *testing.T) {
		ctx := ctxT(t, opTimeout)
		// Without a group: alice's group ACL is for librdkafka's consumer,
		// which must find all ten records.
		cl := scramClient(t, sn.caPool, sn.Addr(), "alice", "alice-secret",
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for i := range 5 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("franz-%d", i))}).FirstErr(); err != nil {
				t.Fatalf("produce as alice: %v", err)
			}
		}
		if got := consumeN(t, cl, 5, opTimeout); len(got) != 5 {
			t.Fatalf("consumed %d", len(got))
		}
	})

	t.Run("librdkafka", func(t *testing.T) {
		conf := func() kafka.ConfigMap {
			return kafka.ConfigMap{
				"bootstrap.servers": sn.Addr(),
				"security.protocol": "SASL_SSL",
				"sasl.mechanisms":   "SCRAM-SHA-512",
				"sasl.username":     "alice",
				"sasl.password":     "alice-secret",
				"ssl.ca.location":   filepath.Join(sn.certDir, "ca.pem"),
			}
		}
		pc := conf()
		p, err := kafka.NewProducer(&pc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		deliveries := make(chan kafka.Event, 5)
		for i := range 5 {
			msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: []byte(fmt.Sprintf("rdk-%d", i))}
			if err := p.Produce(msg, deliveries); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			select {
			case ev := <-deliveries:
				if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
					t.Fatalf("librdkafka delivery as alice: %v", m.TopicPartition.Error)
				}
			case <-time.After(opTimeout):
				t.Fatal("librdkafka: no delivery report")
			}
		}
		cc := conf()
		cc["group.id"] = group
		cc["auto.offset.reset"] = "earliest"
		c, err := kafka.NewConsumer(&cc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe(topic, nil); err != nil {
			t.Fatal(err)
		}
		got := 0
		deadline := time.Now().Add(opTimeout)
		for got < 10 && time.Now().Before(deadline) {
			m, err := c.ReadMessage(500 * time.Millisecond)
			var ke kafka.Error
			if errors.As(err, &ke) && ke.IsTimeout() {
				continue
			}
			if err != nil {
				t.Fatalf("librdkafka consume as alice: %v", err)
			}
			if m != nil {
				got++
			}
		}
		if got != 10 {
			t.Fatalf("librdkafka consumed %d of the 10 records (5 from franz-go, 5 its own)", got)
		}
	})

	t.Run("KafkaJS", func(t *testing.T) {
		// KafkaJS's own SCRAM and TLS, in alice's group: it reads on from
		// what librdkafka committed, or from the start.
		d := kafkaJSDriver(t, sn.node)
		args := func(password string) map[string]any {
			return map[string]any{"topic": topic, "group": group, "prefix": "kafkajs", "count": 5,
				"ca":      filepath.Join(sn.certDir, "ca.pem"),
				"sasl":    map[string]string{"mechanism": "scram-sha-512", "username": "alice", "password": password},
				"retries": 0}
		}
		var res struct {
			Values []string
			Error  string
		}
		d.run(t, "authenticated", args("alice-secret"), &res)
		var mine []string
		for _, v := range res.Values {
			if strings.HasPrefix(v, "kafkajs-") {
				mine = append(mine, v)
			}
		}
		if res.Error != "" || len(mine) != 5 {
			t.Fatalf("KafkaJS as alice: read %v of its 5 records, error %q", res.Values, res.Error)
		}
		res.Error = ""
		d.run(t, "authenticated", args("wrong"), &res)
		if res.Error != "KafkaJSSASLAuthenticationError" {
			t.Fatalf("KafkaJS with a wrong password: error %q, want KafkaJSSASLAuthenticationError", res.Error)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		cl := scramClient(t, sn.caPool, sn.Addr(), "alice", "wrong")
		err := cl.Ping(ctxT(t, opTimeout))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})

	t.Run("plaintext on the TLS port", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", sn.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(opTimeout))
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		body := req.AppendTo([]byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 0})
		if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
			t.Fatal(err)
		}
		// A TLS server answers a non-TLS hello with at most an alert,
		// then closes; it never answers in the Kafka protocol.
		b, err := io.ReadAll(nc)
		if err != nil && !errors.Is(err, io.EOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection still open after a plaintext request on the TLS port")
			}
		}
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:]) == 0 && int(binary.BigEndian.Uint32(b)) == len(b)-4 {
			t.Fatalf("got a Kafka answer over plaintext: %x", b)
		}
	})

	t.Run("no ACL for an admin API", func(t *testing.T) {
		cl := scramClient(t, sn.caPool, sn.Addr(), "alice", "alice-secret")
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(ctxT(t, opTimeout), cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(resp.Resources) != 0 {
			t.Fatalf("DescribeAcls as alice: %v with %d resources, want CLUSTER_AUTHORIZATION_FAILED and none", kerr.ErrorForCode(resp.ErrorCode), len(resp.Resources))
		}
		// The command line reports the same refusal.
		cmd := exec.Command(shoalBin, "--bootstrap-server", sn.Addr(), "--command-config", filepath.Join(sn.certDir, "alice.properties"), "acl", "list")
		cmd.Env = childEnv(nil)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "CLUSTER_AUTHORIZATION_FAILED") {
			t.Fatalf("shoal acl list as alice: err %v, output %s", err, out)
		}
		if !strings.Contains(sn.Output(), "Principal = User:alice is Denied operation = DESCRIBE") {
			t.Fatalf("no authorizer audit line for the denial in the broker's log")
		}
	})
}

// Three nodes whose client and inter-broker listener is SSL: followers
// replicate over TLS (the peer client dials with the listener's trust
// store), so a topic with three replicas gets all three in its ISR and
// clients read back what they wrote.
func TestSecurityClusterInterBrokerTLS(t *testing.T) {
	t.Parallel()
	dir, pool := makeCertificates(t)
	c := startClusterWith(t, 3, nodeOpts{
		clientListener: "SSL",
		configFile: fmt.Sprintf(`listener.security.protocol.map=SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SSL
ssl.keystore.type=PEM
ssl.keystore.location=%[1]s/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=%[1]s/ca.pem
`, dir),
		clientOpts: []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool})},
	})
	topic := topicName(t, "tls-replicated")
	adm := kadm.NewClient(c.Client(t))
	ctx := ctxT(t, opTimeout)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("r%d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	c.waitPartition(c.nodes[0], topic, 0, "all three replicas in the ISR", func(ps partitionState) bool { return len(ps.isr) == 3 })
	if got := consumeN(t, cl, 10, opTimeout); len(got) != 10 {
		t.Fatalf("consumed %d of 10", len(got))
	}
}

// checkSecurityDoc fails when docs/security.md no longer shows what the
// test runs: the openssl commands, the properties files and the shoal
// command lines (ran, without their --output flags).
func checkSecurityDoc(t *testing.T, ran []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := []string{
		"printf '" + strings.TrimSuffix(securityDocSAN, "\n") + "\\n' > san.ext",
		"cat server.pem server.key > server-keystore.pem",
		strings.Join(securityDocEncryptKey, " "),
		"cat server.pem server-encrypted.key > server-keystore.pem",
		"shoal storage format --config server.properties --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'",
	}
	for _, args := range securityDocCertCommands {
		want = append(want, strings.Join(args, " "))
	}
	for _, props := range []string{fmt.Sprintf(securityDocServerProperties, "/etc/shoal"), fmt.Sprintf(securityDocClientProperties, "/etc/shoal", "admin", "admin-secret")} {
		want = append(want, strings.Split(strings.TrimSpace(props), "\n")...)
	}
	for _, cmd := range ran {
		if !strings.Contains(cmd, "--output") {
			want = append(want, cmd)
		}
	}
	for _, w := range want {
		if !strings.Contains(doc, w+"\n") {
			t.Errorf("docs/security.md does not show %q", w)
		}
	}
}

// TestSecurityTopicAndGroupACLs: a user with only READ on one topic and
// one group consumes it in that group but may not produce to it, sees no
// other topic in Metadata, and is refused every group it has no READ on;
// a share group needs READ on the group and on the topic.
func TestSecurityTopicAndGroupACLs(t *testing.T) {
	t.Parallel()
	sn := startSecureNode(t)
	const readable, hidden, group, shareGroup = "readable", "hidden", "readers", "share-readers"
	sn.cli(t, "admin", "user", "scram", "set", "--name", "reader", "--mechanism", "SCRAM-SHA-512", "--password", "reader-secret")
	for _, tp := range []string{readable, hidden} {
		sn.cli(t, "admin", "topic", "create", tp, "--partitions", "1")
	}
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:reader", "--operation", "READ", "--topic", readable)
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:reader", "--operation", "READ", "--group", group)
	sn.cli(t, "admin", "acl", "create", "--allow-principal", "User:reader", "--operation", "READ", "--group", shareGroup)

	admin := sn.Client(t)
	ctx := ctxT(t, opTimeout)
	for i := range 3 {
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: readable, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce as admin: %v", err)
		}
	}
	readerClient := func(opts ...kgo.Opt) *kgo.Client {
		return scramClient(t, sn.caPool, sn.Addr(), "reader", "reader-secret", opts...)
	}

	// Consuming in the group it may read works end to end: Metadata,
	// FindCoordinator, JoinGroup, SyncGroup, OffsetFetch, ListOffsets,
	// Fetch, OffsetCommit.
	consumer := readerClient(kgo.ConsumeTopics(readable), kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeN(t, consumer, 3, opTimeout); len(got) != 3 {
		t.Fatalf("consumed %d of 3", len(got))
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit as reader: %v", err)
	}

	cl := readerClient(kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: readable, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce as reader: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// Metadata: all topics lists only the readable one; the hidden one
	// named is refused, not reported missing.
	all, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range all.Topics {
		names = append(names, *tp.Topic)
	}
	if len(names) != 1 || names[0] != readable {
		t.Fatalf("Metadata of all topics as reader: %v, want [%s]", names, readable)
	}
	named := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{readable, hidden} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		named.Topics = append(named.Topics, rt)
	}
	resp, err := named.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	var hiddenID [16]byte
	for _, tp := range resp.Topics {
		codes[*tp.Topic] = tp.ErrorCode
		if *tp.Topic == hidden {
			hiddenID = tp.TopicID
		}
	}
	if codes[readable] != 0 || codes[hidden] != kerr.TopicAuthorizationFailed.Code || hiddenID != ([16]byte{}) {
		t.Fatalf("Metadata of %s and %s as reader: %v, hidden id %x", readable, hidden, codes, hiddenID)
	}

	// A group without READ: sent straight to the node, the coordinator.
	broker := cl.SeedBrokers()[0]
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "others", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = readable
	ct.Partitions = append(ct.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	commit.Topics = append(commit.Topics, ct)
	if r, err := commit.RequestWith(ctx, broker); err != nil || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("OffsetCommit to a group without READ: %+v, %v", r, err)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "others", "consumer", 10000, 10000
	join.Protocols = append(join.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range"})
	if r, err := join.RequestWith(ctx, broker); err != nil || r.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("JoinGroup to a group without READ: %+v, %v", r, err)
	}

	// A share group needs READ on the group and on its topics.
	shareHeartbeat := func(group, topic string) *kmsg.ShareGroupHeartbeatResponse {
		t.Helper()
		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, "reader-member-0000000", []string{topic}
		r, err := hb.RequestWith(ctx, broker)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := shareHeartbeat("others", readable); r.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("ShareGroupHeartbeat to a group without READ: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := shareHeartbeat(shareGroup, hidden); r.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("ShareGroupHeartbeat subscribing a topic without READ: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	joined := shareHeartbeat(shareGroup, readable)
	if joined.ErrorCode != 0 {
		t.Fatalf("ShareGroupHeartbeat with READ on the group and topic: %v", kerr.ErrorForCode(joined.ErrorCode))
	}
	adminMeta, err := named.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range adminMeta.Topics {
		if *tp.Topic == hidden {
			hiddenID = tp.TopicID
		}
	}
	fetch := kmsg.NewPtrShareFetchRequest()
	fetch.GroupID, fetch.MemberID, fetch.ShareSessionEpoch = kmsg.StringPtr(shareGroup), joined.MemberID, 0
	fetch.MaxWaitMillis, fetch.MaxBytes, fetch.MaxRecords, fetch.BatchSize = 0, 1<<20, 100, 100
	ft := kmsg.NewShareFetchRequestTopic()
	ft.TopicID = hiddenID
	ft.Partitions = append(ft.Partitions, kmsg.NewShareFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	fr, err := fetch.RequestWith(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, tp := range fr.Topics {
		for _, p := range tp.Partitions {
			refused = refused || (tp.TopicID == hiddenID && p.ErrorCode == kerr.TopicAuthorizationFailed.Code)
		}
	}
	if fr.ErrorCode != 0 || !refused {
		t.Fatalf("ShareFetch of a topic without READ: %v, topics %+v", kerr.ErrorForCode(fr.ErrorCode), fr.Topics)
	}
}
