package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaServerProperties is the security section of a Kafka 4.x broker's
// server.properties as an operator writes it (the listeners themselves
// are the harness's): named listeners mapped to their protocols, PEM
// stores with a password-protected key, SCRAM-SHA-512 with the broker's
// own login per listener and mechanism, the StandardAuthorizer, and the
// thread and socket tuning keys every Kafka server.properties carries.
const kafkaServerProperties = `############################# Server Basics #############################
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
security.inter.broker.protocol=SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# TLS #############################
ssl.keystore.type=PEM
ssl.keystore.location=%[1]s/server-keystore.pem
ssl.key.password=key-secret
ssl.truststore.type=PEM
ssl.truststore.location=%[1]s/ca.pem
ssl.client.auth=none
ssl.enabled.protocols=TLSv1.2,TLSv1.3
ssl.endpoint.identification.algorithm=https
ssl.keymanager.algorithm=SunX509
ssl.trustmanager.algorithm=PKIX

############################# SASL #############################
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="admin" \
    password="admin-secret";
connections.max.reauth.ms=3600000

############################# Authorizer #############################
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
`

// securityDocEncryptKey is docs/security.md's command that encrypts the
// broker's key as PKCS#8 under ssl.key.password.
var securityDocEncryptKey = []string{"openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "server.key", "-out", "server-encrypted.key", "-passout", "pass:key-secret"}

// An operator's Kafka server.properties security section starts shoal
// unchanged: the Kafka keys shoal has no use for are logged as ignored,
// the encrypted key opens with ssl.key.password (a wrong one stops
// start-up with an error naming it), and SCRAM clients get in while a
// wrong password and an unauthorized principal are refused.
func TestSecurityKafkaServerPropertiesUnchanged(t *testing.T) {
	t.Parallel()
	dir, pool := makeCertificates(t)
	runIn(t, dir, securityDocEncryptKey)
	writeKeystore(t, dir, "server-encrypted.key")

	n := startNode(t, nodeOpts{
		clientListener: "SASL_SSL",
		configFile:     fmt.Sprintf(kafkaServerProperties, dir),
		clientOpts:     scramOpts(pool, "admin", "admin-secret"),
		beforeFirstStart: func(n *node) {
			logDirs := "log.dirs=" + filepath.Join(n.dataDir, "data")
			code, stderr := runShoal(t, nil, "storage", "format", "--config", n.configPath, "--set", logDirs,
				"--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]")
			if code != 0 {
				t.Fatalf("shoal storage format: exit %d: %s", code, stderr)
			}
			code, stderr = runShoal(t, nil, "serve", "--config", n.configPath, "--set", logDirs, "--set", "ssl.key.password=not-the-password")
			if code == 0 || !strings.Contains(stderr, "ssl.key.password") {
				t.Fatalf("serve with a wrong ssl.key.password: exit %d, want an error naming ssl.key.password:\n%s", code, stderr)
			}
		},
	})
	for _, key := range []string{"num.network.threads", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm"} {
		if !strings.Contains(n.Output(), `ignored" key=`+key) {
			t.Errorf("no log line says %s is ignored:\n%s", key, n.Output())
		}
	}

	ctx := ctxT(t, opTimeout)
	admin := n.Client(t)
	topic := topicName(t, "orders")
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic as admin: %v", err)
	}
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("over SASL_SSL")}).FirstErr(); err != nil {
		t.Fatalf("produce as admin: %v", err)
	}
	consumer := scramClient(t, pool, n.Addr(), "admin", "admin-secret",
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeN(t, consumer, 1, opTimeout); len(got) != 1 || string(got[0].Value) != "over SASL_SSL" {
		t.Fatalf("consumed %v", got)
	}

	// A user without ACLs is refused the topic.
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-secret",
	}}); err != nil {
		t.Fatalf("creating bob: %v", err)
	}
	bob := scramClient(t, pool, n.Addr(), "bob", "bob-secret", kgo.RecordRetries(1))
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce as bob: %v, want %v", err, kerr.TopicAuthorizationFailed)
	}

	wrong := scramClient(t, pool, n.Addr(), "admin", "wrong")
	if err := wrong.Ping(ctx); err == nil || !strings.Contains(err.Error(), kerr.SaslAuthenticationFailed.Message) {
		t.Fatalf("a wrong password: %v, want %s", err, kerr.SaslAuthenticationFailed.Message)
	}
}
