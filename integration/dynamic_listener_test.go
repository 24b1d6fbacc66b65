package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/internal/testcerts"
)

// tlsNode is a single node whose client listener, SSL, serves a key store
// issued by a test CA.
type tlsNode struct {
	*node
	dir  string
	pool *x509.CertPool
}

func startTLSNode(t *testing.T, keystore string, pool *x509.CertPool, set ...string) *tlsNode {
	t.Helper()
	n := startNode(t, nodeOpts{
		clientListener: "SSL",
		configFile: "listener.security.protocol.map=SSL:SSL,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=SSL\n" +
			"ssl.keystore.type=PEM\nssl.keystore.location=" + keystore + "\n",
		clientOpts: []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool})},
		set:        set,
	})
	return &tlsNode{node: n, dir: filepath.Dir(keystore), pool: pool}
}

// served dials the listener afresh and returns the certificate it serves.
func (n *tlsNode) served(t *testing.T) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: opTimeout}, "tcp", n.Addr(), &tls.Config{RootCAs: n.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// cli runs a shoal command over the SSL listener with a client
// properties file trusting the CA, and returns its exit error and output.
func (n *tlsNode) cli(t *testing.T, args ...string) (error, string) {
	t.Helper()
	props := filepath.Join(n.dir, "client.properties")
	if _, err := os.Stat(props); err != nil {
		testcerts.WriteFile(t, n.dir, "client.properties", []byte("security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location="+filepath.Join(n.dir, "ca.pem")+"\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin, append([]string{"--bootstrap-server", n.Addr(), "--command-config", props}, args...)...)
	cmd.Env = childEnv(nil)
	out, err := cmd.CombinedOutput()
	return err, string(out)
}

// TestDynamicListenerKeystore: a listener's certificate is rotated with
// `shoal config set --broker 1` while a client is connected; new
// connections get the new certificate, the open one keeps working, and
// key stores that would break clients (a wrong key password, a missing
// file, another subject) are refused with INVALID_REQUEST while the
// accepted certificate stays served. The password is never described.
func TestDynamicListenerKeystore(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "CA1")
	testcerts.WriteFile(t, dir, "ca.pem", ca.PEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	subject := pkix.Name{CommonName: "broker-1", Organization: []string{"shoal"}}
	chain1, key1 := ca.Issue(t, subject, testcerts.Server)
	ks1 := testcerts.WriteFile(t, dir, "keystore-1.pem", chain1, key1)
	n := startTLSNode(t, ks1, pool)

	first := n.served(t)
	topic := topicName(t, "")
	adm := n.Admin(t)
	createTopic(t, adm, topic, 1, nil)
	// An established client: its connection must outlive the rotation.
	cl := n.Client(t, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctxT(t, opTimeout), kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	open, err := tls.Dial("tcp", n.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	// The new key store: same subject, a new key, its private key
	// encrypted with ssl.key.password.
	chain2, key2 := ca.Issue(t, subject, testcerts.Server)
	ks2 := testcerts.WriteFile(t, dir, "keystore-2.pem", chain2, testcerts.Encrypt(t, key2, "key-secret"))
	if err, out := n.cli(t, "config", "set", "--broker", "1",
		"--set", "listener.name.ssl.ssl.keystore.location="+ks2, "--set", "listener.name.ssl.ssl.key.password=key-secret"); err != nil {
		t.Fatalf("config set: %v\n%s", err, out)
	}
	var second *x509.Certificate
	waitFor(t, 20*time.Second, "new connections get the new certificate", func() (bool, string) {
		second = n.served(t)
		return second.SerialNumber.Cmp(first.SerialNumber) != 0, "serial " + second.SerialNumber.String()
	})
	if want := certSerial(t, chain2); second.SerialNumber.Cmp(want) != 0 {
		t.Fatalf("served serial %v, want the new key store's %v", second.SerialNumber, want)
	}
	// The connection opened before keeps its session, and so does the
	// client's.
	if got := open.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("the open connection's certificate changed to %v", got)
	}
	if !served(t, open) {
		t.Fatal("the connection opened before the rotation is no longer served")
	}
	if err := cl.ProduceSync(ctxT(t, opTimeout), kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("produce after the rotation: %v", err)
	}

	// The key store and its password are described per broker, the
	// password as null and sensitive.
	if c, ok := brokerConfig(t, adm, "listener.name.ssl.ssl.keystore.location", 1); !ok || c.MaybeValue() != ks2 || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("described keystore location: %+v %v", c, ok)
	}
	if c, ok := brokerConfig(t, adm, "listener.name.ssl.ssl.key.password", 1); !ok || c.Value != nil || !c.Sensitive || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("described key password: %+v %v", c, ok)
	}
	if strings.Contains(n.Output(), "key-secret") {
		t.Fatal("the key password appears in the broker's log")
	}

	// Refused: each answers INVALID_REQUEST and the new certificate stays.
	chainOther, keyOther := ca.Issue(t, pkix.Name{CommonName: "someone-else"}, testcerts.Server)
	ksOther := testcerts.WriteFile(t, dir, "keystore-other.pem", chainOther, keyOther)
	for _, c := range []struct {
		what     string
		resource []int32
		alters   []kadm.AlterConfig
		says     string
	}{
		{"wrong password", []int32{1}, []kadm.AlterConfig{setConfig("listener.name.ssl.ssl.key.password", "not-it")}, "does not decrypt"},
		{"missing file", []int32{1}, []kadm.AlterConfig{setConfig("listener.name.ssl.ssl.keystore.location", filepath.Join(dir, "missing.pem"))}, "no such file"},
		{"another subject", []int32{1}, []kadm.AlterConfig{setConfig("listener.name.ssl.ssl.keystore.location", ksOther),
			{Op: kadm.DeleteConfig, Name: "listener.name.ssl.ssl.key.password"}}, "ssl.allow.dn.changes"},
		{"cluster default", nil, []kadm.AlterConfig{setConfig("listener.name.ssl.ssl.keystore.location", ks1)}, "broker id must be specified"},
		{"no listener prefix", []int32{1}, []kadm.AlterConfig{setConfig("ssl.keystore.location", ks1)}, "only per-listener"},
	} {
		rs, err := adm.AlterBrokerConfigs(ctxT(t, opTimeout), c.alters, c.resource...)
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %+v", c.what, err, rs)
		}
		if !errors.Is(rs[0].Err, kerr.InvalidRequest) || !strings.Contains(rs[0].ErrMessage, c.says) {
			t.Errorf("%s: %v %q, want INVALID_REQUEST saying %q", c.what, rs[0].Err, rs[0].ErrMessage, c.says)
		}
		if got := n.served(t).SerialNumber; got.Cmp(second.SerialNumber) != 0 {
			t.Fatalf("%s: the refused change replaced the served certificate", c.what)
		}
	}
	err, out := n.cli(t, "config", "set", "--broker", "1", "--set", "listener.name.ssl.ssl.keystore.location="+ksOther, "--delete", "listener.name.ssl.ssl.key.password")
	if err == nil || !strings.Contains(out, "INVALID_REQUEST") || !strings.Contains(out, "subject") {
		t.Fatalf("config set of a key store with another subject: %v\n%s", err, out)
	}

	// The certificate rotated in place: the same path set again is read
	// again at once.
	chain3, key3 := ca.Issue(t, subject, testcerts.Server)
	testcerts.WriteFile(t, dir, "keystore-2.pem", chain3, testcerts.Encrypt(t, key3, "key-secret"))
	if err, out := n.cli(t, "config", "set", "--broker", "1", "--set", "listener.name.ssl.ssl.keystore.location="+ks2); err != nil {
		t.Fatalf("config set of the same path: %v\n%s", err, out)
	}
	if got, want := n.served(t).SerialNumber, certSerial(t, chain3); got.Cmp(want) != 0 {
		t.Fatalf("after setting the same path again, served serial %v, want %v", got, want)
	}

	// A restart serves the dynamic key store, not the static one.
	n.Stop()
	n.Restart()
	waitFor(t, 20*time.Second, "the dynamic key store served after a restart", func() (bool, string) {
		got := n.served(t).SerialNumber
		return got.Cmp(certSerial(t, chain3)) == 0, "serial " + got.String()
	})
}

// TestDynamicConnectionLimits: max.connections.per.ip lowered at runtime
// refuses new connections from an address at its limit while those open
// stay served; a per-broker override lets the address in again; a change
// that would let no client in is refused; a connection waiting at a
// dynamic max.connections is served once the limit is removed; removing
// the overrides restores the static limits.
func TestDynamicConnectionLimits(t *testing.T) {
	n := startNode(t, nodeOpts{})
	adm := n.Admin(t)
	alter := func(alters []kadm.AlterConfig, broker ...int32) error {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctxT(t, opTimeout), alters, broker...)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0].Err
	}
	const client = "127.0.0.5"
	var kept []net.Conn
	for range 3 {
		c := dialFrom(t, client, n.Addr())
		if !served(t, c) {
			t.Fatal("a connection before any limit was refused")
		}
		kept = append(kept, c)
	}
	// The admin client's own address keeps room through an override.
	if err := alter([]kadm.AlterConfig{setConfig("max.connections.per.ip", "2"), setConfig("max.connections.per.ip.overrides", "127.0.0.1:100")}, 1); err != nil {
		t.Fatalf("lower max.connections.per.ip: %v", err)
	}
	waitFor(t, 20*time.Second, "a new connection from "+client+" refused", func() (bool, string) {
		return !served(t, dialFrom(t, client, n.Addr())), "still served"
	})
	for i, c := range kept {
		if !served(t, c) {
			t.Fatalf("connection %d, opened before the limit, is no longer served", i)
		}
	}
	if c, _ := brokerConfig(t, adm, "max.connections.per.ip", 1); c.MaybeValue() != "2" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("described: %+v", c)
	}
	// max.connections.per.ip=0 with no override would lock every client
	// out: refused.
	if err := alter([]kadm.AlterConfig{setConfig("max.connections.per.ip", "0"), {Op: kadm.DeleteConfig, Name: "max.connections.per.ip.overrides"}}, 1); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("max.connections.per.ip=0 without overrides: %v, want INVALID_CONFIG", err)
	}
	if err, out := runShoalCLI(t, n, "config", "set", "--broker", "1", "--set", "max.connections.per.ip.overrides=127.0.0.1:100,"+client+":10"); err != nil {
		t.Fatalf("config set overrides: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, client+" served again under its override", func() (bool, string) {
		return served(t, dialFrom(t, client, n.Addr())), "refused"
	})
	// The cluster-wide max.connections: the new connection past it waits
	// for a slot, and removing the limit (on the admin client's open
	// connection) lets it in; then removing every override restores the
	// static limits.
	if err, out := runShoalCLI(t, n, "config", "set", "--cluster", "--set", "max.connections=5"); err != nil {
		t.Fatalf("config set --cluster: %v\n%s", err, out)
	}
	_, _, answer := dialUntilWaiting(t, n, n.Addr(), "127.0.0.6", 10)
	if c, _ := brokerConfig(t, adm, "max.connections"); c.MaybeValue() != "5" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("described cluster default: %+v", c)
	}
	if err := alter([]kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "max.connections"}}); err != nil {
		t.Fatal(err)
	}
	expectAnswered(t, answer, "the connection waiting for a slot, once max.connections was removed")
	if err, out := runShoalCLI(t, n, "config", "set", "--broker", "1", "--delete", "max.connections.per.ip", "--delete", "max.connections.per.ip.overrides"); err != nil {
		t.Fatalf("config set --delete: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "connections served after the limits were removed", func() (bool, string) {
		return served(t, dialFrom(t, "127.0.0.6", n.Addr())) && served(t, dialFrom(t, client, n.Addr())), "refused"
	})
}

func certSerial(t *testing.T, chain []byte) *big.Int {
	t.Helper()
	blk, _ := pem.Decode(chain)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// setConfig is a SET of key to value in an alter request.
func setConfig(key, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: key, Value: strp(value)}
}
