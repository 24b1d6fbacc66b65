package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/acl"
)

const plainJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`

func secureBase(t *testing.T) map[string]string {
	dir := t.TempDir()
	// The key store is only parsed when a listener starts; its path and
	// type are what config checks.
	ks := filepath.Join(dir, "server.pem")
	os.WriteFile(ks, []byte("placeholder"), 0o600)
	return map[string]string{
		"listeners":                                      "SASL_SSL://127.0.0.1:9092,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
		"listener.security.protocol.map":                 "INTERNAL:SSL,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":                     "INTERNAL",
		"ssl.keystore.type":                              "PEM",
		"ssl.keystore.location":                          ks,
		"ssl.truststore.type":                            "PEM",
		"listener.name.internal.ssl.truststore.location": ks,
		"listener.name.internal.ssl.client.auth":         "required",
		"sasl.enabled.mechanisms":                        "SCRAM-SHA-512,PLAIN,OAUTHBEARER",
		"listener.name.sasl_ssl.plain.sasl.jaas.config":  plainJAAS,
		"sasl.oauthbearer.jwks.endpoint.url":             "file://" + filepath.Join(dir, "jwks.json"),
		"listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.expected.audience": "kafka,admin",
		"authorizer.class.name":                     StandardAuthorizer,
		"super.users":                               "User:admin;User:CN=broker",
		"allow.everyone.if.no.acl.found":            "true",
		"connections.max.reauth.ms":                 "3600000",
		"connection.failed.authentication.delay.ms": "250",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	c := map[string]string{}
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(c, kv[i])
		} else {
			c[kv[i]] = kv[i+1]
		}
	}
	return c
}

func TestSecurityDefaults(t *testing.T) {
	b, err := NewBroker(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	s := b.Security
	if s.Authorizer || s.ACL.AllowIfNoACL || len(s.ACL.SuperUsers) != 0 || s.FailedAuthDelay != 100*time.Millisecond || s.MaxReceiveSize != 524288 {
		t.Fatalf("defaults: %+v", s)
	}
	if ls := s.Listeners["PLAINTEXT"]; ls == nil || ls.Protocol != "PLAINTEXT" || ls.TLS != nil || ls.Mechanisms != nil {
		t.Fatalf("PLAINTEXT listener: %+v", ls)
	}
}

func TestSecurityListeners(t *testing.T) {
	b, err := NewBroker(secureBase(t))
	if err != nil {
		t.Fatal(err)
	}
	s := b.Security
	if !s.Authorizer || !s.ACL.AllowIfNoACL || strings.Join(s.ACL.SuperUsers, ";") != "User:admin;User:CN=broker" || s.FailedAuthDelay != 250*time.Millisecond {
		t.Fatalf("security: %+v", s)
	}
	ext := s.Listeners["SASL_SSL"]
	if ext.TLS == nil || ext.TLS.ClientAuth != "none" || ext.TLS.TruststoreLocation != "" {
		t.Fatalf("SASL_SSL TLS: %+v", ext.TLS)
	}
	if strings.Join(ext.Mechanisms, ",") != "SCRAM-SHA-512,PLAIN,OAUTHBEARER" || ext.MaxReauth != time.Hour {
		t.Fatalf("SASL_SSL: %+v", ext)
	}
	if u := ext.JAAS["PLAIN"].PlainUsers(); u["alice"] != "alice-secret" || u["admin"] != "admin-secret" {
		t.Fatalf("PLAIN users %v", u)
	}
	if o := ext.OAuth; o == nil || strings.Join(o.ExpectedAudience, ",") != "kafka,admin" || o.SubClaim != "sub" || o.ClockSkew != 30*time.Second || o.JWKSRefresh != time.Hour {
		t.Fatalf("OAuth: %+v", ext.OAuth)
	}
	in := s.Listeners["INTERNAL"]
	if in.TLS == nil || in.TLS.ClientAuth != "required" || in.TLS.TruststoreLocation == "" || in.Mechanisms != nil {
		t.Fatalf("INTERNAL: %+v", in)
	}
	// The authorizer config is what the acl package takes.
	az := acl.New(nil, s.ACL)
	if !az.Authorize(acl.User("admin"), "h", acl.OpAlter, acl.Resource{Type: acl.ResourceCluster, Name: acl.ClusterName}).Allowed {
		t.Fatal("super user refused")
	}
}

// Every protocol is served on the listeners nodes use among themselves
// too; in a cluster, a SASL one needs the node's own login (the username
// and password of the mechanism's JAAS module) with a mechanism a node can
// log in with.
func TestSecurityPeerProtocols(t *testing.T) {
	if _, err := NewBroker(secureBase(t)); err != nil {
		t.Fatalf("single node: %v", err)
	}
	voters := "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
	if _, err := NewBroker(with(secureBase(t), "controller.quorum.voters", voters)); err != nil {
		t.Fatalf("cluster with an SSL inter-broker listener: %v", err)
	}
	scramLogin := `org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";`
	sasl := with(secureBase(t), "controller.quorum.voters", voters,
		"listener.security.protocol.map", "INTERNAL:SASL_SSL,CONTROLLER:SASL_SSL",
		"listener.name.internal.sasl.enabled.mechanisms", "SCRAM-SHA-512", "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512",
		"listener.name.internal.scram-sha-512.sasl.jaas.config", scramLogin,
		"listener.name.controller.sasl.enabled.mechanisms", "PLAIN", "sasl.mechanism.controller.protocol", "PLAIN",
		"listener.name.controller.plain.sasl.jaas.config", plainJAAS)
	b, err := NewBroker(sasl)
	if err != nil {
		t.Fatalf("cluster with SASL_SSL inter-broker and controller listeners: %v", err)
	}
	if got, want := *b.Security.InterBrokerLogin, (PeerLogin{Mechanism: "SCRAM-SHA-512", Username: "broker", Password: "broker-secret"}); got != want {
		t.Errorf("inter-broker login %+v, want %+v", got, want)
	}
	if got, want := *b.Security.ControllerLogin, (PeerLogin{Mechanism: "PLAIN", Username: "admin", Password: "admin-secret"}); got != want {
		t.Errorf("controller login %+v, want %+v", got, want)
	}
	for name, kv := range map[string][]string{
		"no username":        {"listener.name.internal.scram-sha-512.sasl.jaas.config", `org.apache.kafka.common.security.scram.ScramLoginModule required password="p";`},
		"no controller JAAS": {"listener.name.controller.plain.sasl.jaas.config", `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`},
		"OAUTHBEARER login":  {"listener.name.internal.sasl.enabled.mechanisms", "OAUTHBEARER", "sasl.mechanism.inter.broker.protocol", "OAUTHBEARER"},
	} {
		if _, err := NewBroker(with(sasl, kv...)); err == nil || !strings.Contains(err.Error(), "sasl.mechanism.") {
			t.Errorf("%s: err = %v, want a refusal naming the mechanism key", name, err)
		}
	}
	// A broker-only node dials the voters' SASL_SSL controller listener
	// it does not serve: it needs a trust store and a login, no key store.
	brokerOnly := with(sasl, "process.roles", "broker", "node.id", "4",
		"listeners", "SASL_SSL://127.0.0.1:9092,INTERNAL://127.0.0.1:9094",
		"controller.listener.names", "CONTROLLER", "listener.name.controller.ssl.keystore.location", "<unset>")
	if b, err = NewBroker(brokerOnly); err != nil {
		t.Fatalf("broker-only node: %v", err)
	}
	if ls := b.Security.Listeners["CONTROLLER"]; ls == nil || !ls.DialOnly || ls.TLS == nil || b.Security.ControllerLogin == nil {
		t.Errorf("broker-only node: controller listener security %+v, login %+v", ls, b.Security.ControllerLogin)
	}
	// A controller-only node dials the brokers' inter-broker listener.
	controllerOnly := with(sasl, "process.roles", "controller", "listeners", "CONTROLLER://127.0.0.1:9093")
	if b, err = NewBroker(controllerOnly); err != nil {
		t.Fatalf("controller-only node: %v", err)
	}
	if ls := b.Security.Listeners["INTERNAL"]; ls == nil || !ls.DialOnly || ls.TLS == nil || b.Security.InterBrokerLogin == nil {
		t.Errorf("controller-only node: inter-broker listener security %+v, login %+v", ls, b.Security.InterBrokerLogin)
	}
}

func TestSecurityJAASLookup(t *testing.T) {
	scram := `org.apache.kafka.common.security.scram.ScramLoginModule required username="b" password="p";`
	base := with(secureBase(t), "listener.name.sasl_ssl.plain.sasl.jaas.config", "<unset>", "sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256")
	for name, tc := range map[string]struct {
		set       []string
		plainUser string // a user PLAIN must know; "" expects an error
	}{
		"unprefixed":                                     {[]string{"sasl.jaas.config", plainJAAS}, "alice"},
		"listener prefix":                                {[]string{"listener.name.sasl_ssl.sasl.jaas.config", plainJAAS}, "alice"},
		"mechanism prefix beats the other":               {[]string{"sasl.jaas.config", strings.Replace(plainJAAS, "alice", "zed", 1), "listener.name.sasl_ssl.plain.sasl.jaas.config", plainJAAS}, "alice"},
		"unprefixed SCRAM module is not PLAIN's":         {[]string{"sasl.jaas.config", scram}, ""},
		"a listener's SCRAM module is skipped for PLAIN": {[]string{"listener.name.sasl_ssl.sasl.jaas.config", scram, "sasl.jaas.config", plainJAAS}, "alice"},
		"wrong module under the PLAIN key":               {[]string{"listener.name.sasl_ssl.plain.sasl.jaas.config", scram}, ""},
		"unparsable":                                     {[]string{"listener.name.sasl_ssl.plain.sasl.jaas.config", "Plain required"}, ""},
		"no users":                                       {[]string{"sasl.jaas.config", `org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";`}, ""},
	} {
		b, err := NewBroker(with(base, tc.set...))
		if tc.plainUser == "" {
			if err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, ok := b.Security.Listeners["SASL_SSL"].JAAS["PLAIN"].PlainUsers()[tc.plainUser]; !ok {
			t.Errorf("%s: PLAIN users %v", name, b.Security.Listeners["SASL_SSL"].JAAS["PLAIN"].PlainUsers())
		}
	}
}

func TestSecurityErrors(t *testing.T) {
	base := secureBase(t)
	for name, kv := range map[string][]string{
		"GSSAPI default":              {"sasl.enabled.mechanisms", "<unset>"},
		"unknown mechanism":           {"sasl.enabled.mechanisms", "DIGEST-MD5"},
		"PLAIN without users":         {"listener.name.sasl_ssl.plain.sasl.jaas.config", "<unset>"},
		"OAUTHBEARER without JWKS":    {"sasl.oauthbearer.jwks.endpoint.url", "<unset>"},
		"JWKS scheme":                 {"sasl.oauthbearer.jwks.endpoint.url", "ldap://x"},
		"unsecured OAuth handler":     {"listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class", "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"},
		"JKS key store":               {"ssl.keystore.type", "<unset>"},
		"no key store":                {"ssl.keystore.location", "<unset>"},
		"client auth without trust":   {"listener.name.internal.ssl.truststore.location", "<unset>"},
		"bad client auth":             {"ssl.client.auth", "sometimes"},
		"bad protocols":               {"ssl.enabled.protocols", "SSLv3"},
		"bad cipher":                  {"listener.name.internal.ssl.cipher.suites", "TLS_NOPE"},
		"bad mapping rule":            {"ssl.principal.mapping.rules", "RULE:x"},
		"unknown authorizer":          {"authorizer.class.name", "com.example.Authz"},
		"ZooKeeper authorizer":        {"authorizer.class.name", "kafka.security.authorizer.AclAuthorizer"},
		"super user without type":     {"super.users", "admin"},
		"unknown security protocol":   {"listener.security.protocol.map", "INTERNAL:TLS,CONTROLLER:PLAINTEXT"},
		"inter-broker mechanism":      {"listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT", "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256", "listener.name.internal.sasl.enabled.mechanisms", "PLAIN", "listener.name.internal.plain.sasl.jaas.config", plainJAAS},
		"negative reauth":             {"connections.max.reauth.ms", "-1"},
		"unknown listener-scoped key": {"listener.name.internal.ssl.colour", "red"},
		"upper-case listener prefix":  {"listener.name.INTERNAL.ssl.client.auth", "none"},
		"non-sasl key per mechanism":  {"listener.name.internal.plain.ssl.client.auth", "none"},
		"global key per listener":     {"listener.name.internal.super.users", "User:x"},
	} {
		if _, err := NewBroker(with(base, kv...)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The inter-broker case is only wrong because of the mechanism: with it
	// enabled, it passes.
	ok := with(base, "listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT", "sasl.mechanism.inter.broker.protocol", "PLAIN",
		"listener.name.internal.sasl.enabled.mechanisms", "PLAIN", "listener.name.internal.plain.sasl.jaas.config", plainJAAS)
	if _, err := NewBroker(ok); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityFromPropertiesFile loads an operator's Kafka security section
// unchanged through Load.
func TestSecurityFromPropertiesFile(t *testing.T) {
	dir := t.TempDir()
	ks := filepath.Join(dir, "broker.pem")
	os.WriteFile(ks, []byte("x"), 0o600)
	props := `
listeners=SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="broker" \
    password="broker-secret";
ssl.keystore.type=PEM
ssl.keystore.location=` + ks + `
ssl.truststore.type=PEM
ssl.truststore.location=` + ks + `
ssl.client.auth=requested
ssl.endpoint.identification.algorithm=
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:broker;User:admin
`
	p := filepath.Join(dir, "server.properties")
	os.WriteFile(p, []byte(props), 0o600)
	b, err := Load(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := b.Security.Listeners["SASL_SSL"]
	if ls.JAAS["SCRAM-SHA-512"].Options["username"] != "broker" || ls.TLS.ClientAuth != "requested" || ls.TLS.EndpointIdentification != "" {
		t.Fatalf("listener: %+v, TLS %+v", ls, ls.TLS)
	}
	if _, err := Load(p, nil, []string{"listener.name.sasl_ssl.bogus.key=1"}); err == nil {
		t.Fatal("an unknown prefixed key was accepted")
	}
}

// Keys Kafka defines that configure nothing in shoal (thread pools, the
// Java TLS stack, Kerberos) are accepted and reported as ignored, also per
// listener; a key Kafka does not define is still refused.
func TestKafkaOnlyKeysAreIgnoredNotFatal(t *testing.T) {
	dir := t.TempDir()
	props := `num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
ssl.keymanager.algorithm=SunX509
listener.name.sasl_ssl.ssl.trustmanager.algorithm=PKIX
listener.name.sasl_ssl.scram-sha-512.sasl.login.class=x
`
	p := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(p, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Load(p, nil, []string{"num.io.threads=16"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"listener.name.sasl_ssl.scram-sha-512.sasl.login.class", "listener.name.sasl_ssl.ssl.trustmanager.algorithm",
		"num.io.threads", "num.network.threads", "socket.send.buffer.bytes", "ssl.keymanager.algorithm"}
	if !slices.Equal(b.Ignored, want) {
		t.Fatalf("ignored %v, want %v", b.Ignored, want)
	}
	for _, typo := range []string{"num.io.thread=8", "ssl.keymanager.algorithmm=SunX509", "listener.name.sasl_ssl.ssl.bogus=1"} {
		if _, err := Load(p, nil, []string{typo}); err == nil || !strings.Contains(err.Error(), "unknown config key") {
			t.Errorf("--set %s: %v, want an unknown key error", typo, err)
		}
	}
}

// security.inter.broker.protocol names the inter-broker listener as in
// Kafka; with inter.broker.listener.name as well it is refused.
func TestSecurityInterBrokerProtocol(t *testing.T) {
	set := []string{"listeners=SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
		"sasl.enabled.mechanisms=PLAIN", "sasl.mechanism.inter.broker.protocol=PLAIN",
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="b" password="p" user_b="p";`,
		"ssl.keystore.type=PEM", "ssl.keystore.location=" + filepath.Join(t.TempDir(), "ks.pem")}
	b, err := Load("", nil, append(set, "security.inter.broker.protocol=sasl_ssl"))
	if err != nil {
		t.Fatal(err)
	}
	if b.InterBrokerListener != "SASL_SSL" {
		t.Fatalf("inter-broker listener %q, want SASL_SSL", b.InterBrokerListener)
	}
	if _, err := Load("", nil, append(set, "security.inter.broker.protocol=SASL_SSL", "inter.broker.listener.name=SASL_SSL")); err == nil {
		t.Fatal("both security.inter.broker.protocol and inter.broker.listener.name were accepted")
	}
}
