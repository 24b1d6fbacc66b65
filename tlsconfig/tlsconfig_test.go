package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testcerts"
)

// serve accepts TLS connections on loopback and reports each handshake's
// outcome (the principal, or the error).
func serve(t *testing.T, st *Store) (addr string, results chan string) {
	t.Helper()
	cfg, err := st.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results = make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					results <- "error: " + err.Error()
					return
				}
				p, err := st.Principal(tc.ConnectionState())
				if err != nil {
					results <- "error: " + err.Error()
					return
				}
				results <- p
				tc.Write([]byte("ok"))
			}()
		}
	}()
	return ln.Addr().String(), results
}

func dial(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2)
	_, err = io.ReadFull(c, b)
	return err
}

func result(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake result")
		return ""
	}
}

func TestMutualTLSAndPrincipal(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	srvChain, srvKey := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	cliChain, cliKey := root.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"ServiceUsers"}, Organization: []string{"Acme"}, Country: []string{"US"}}, testcerts.Client)
	trust := testcerts.WriteFile(t, dir, "ca.pem", root.PEM)

	srv, err := NewStore(Settings{
		KeystoreType: "PEM", KeystoreLocation: testcerts.WriteFile(t, dir, "server.pem", srvChain, srvKey),
		TruststoreType: "PEM", TruststoreLocation: trust, ClientAuth: "required",
		EnabledProtocols: DefaultEnabledProtocols, EndpointIdentification: "https",
		PrincipalMappingRules: `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, srv)

	// A client with a certificate, its key store given inline.
	cli, err := NewStore(Settings{
		KeystoreType: "PEM", KeystoreCertificateChain: string(cliChain), KeystoreKey: string(cliKey),
		TruststoreType: "PEM", TruststoreLocation: trust, EnabledProtocols: DefaultEnabledProtocols, EndpointIdentification: "https",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, cli.ClientConfig("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if got := result(t, results); got != "alice" {
		t.Fatalf("principal = %q, want alice", got)
	}

	// Without a client certificate, required client auth refuses.
	anon, _ := NewStore(Settings{KeystoreType: "PEM", TruststoreType: "PEM", TruststoreLocation: trust, EnabledProtocols: DefaultEnabledProtocols, EndpointIdentification: "https"})
	dial(addr, anon.ClientConfig("127.0.0.1"))
	if got := result(t, results); !strings.HasPrefix(got, "error:") {
		t.Fatalf("a client without a certificate got %q", got)
	}

	// A certificate from another CA is refused.
	other := testcerts.NewCA(t, "other")
	oc, ok := other.Issue(t, pkix.Name{CommonName: "mallory"}, testcerts.Client)
	mal, _ := NewStore(Settings{KeystoreType: "PEM", KeystoreCertificateChain: string(oc), KeystoreKey: string(ok), TruststoreType: "PEM", TruststoreLocation: trust, EnabledProtocols: DefaultEnabledProtocols, EndpointIdentification: "https"})
	dial(addr, mal.ClientConfig("127.0.0.1"))
	if got := result(t, results); !strings.HasPrefix(got, "error:") {
		t.Fatalf("a certificate from an untrusted CA got %q", got)
	}

	// A plaintext client on the TLS port gets nowhere.
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("\x00\x00\x00\x0a\x00\x12\x00\x03\x00\x00\x00\x01\x00\x00"))
	io.ReadAll(c)
	c.Close()
	if got := result(t, results); !strings.HasPrefix(got, "error:") {
		t.Fatalf("a plaintext client got %q", got)
	}
}

func TestRequestedClientAuth(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	srvChain, srvKey := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	trust := testcerts.WriteFile(t, dir, "ca.pem", root.PEM)
	srv, err := NewStore(FromMap(map[string]string{
		"ssl.keystore.location":   testcerts.WriteFile(t, dir, "server.pem", srvKey, srvChain), // key first: order does not matter
		"ssl.truststore.location": trust, "ssl.client.auth": "requested",
	}))
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, srv)
	cli, _ := NewStore(FromMap(map[string]string{"ssl.truststore.location": trust}))
	if err := dial(addr, cli.ClientConfig("localhost")); err != nil {
		t.Fatal(err)
	}
	if got := result(t, results); got != "ANONYMOUS" {
		t.Fatalf("principal = %q, want ANONYMOUS", got)
	}
	// Host name verification: the certificate is for localhost and
	// 127.0.0.1, not for other.example.
	if err := dial(addr, cli.ClientConfig("other.example")); err == nil {
		t.Fatal("host name verification passed for a name not in the certificate")
	}
	<-results
	noHost, _ := NewStore(FromMap(map[string]string{"ssl.truststore.location": trust, "ssl.endpoint.identification.algorithm": ""}))
	if err := dial(addr, noHost.ClientConfig("other.example")); err != nil {
		t.Fatalf("with endpoint identification off: %v", err)
	}
	<-results
	// ...but the chain is still verified.
	otherTrust := testcerts.WriteFile(t, dir, "other.pem", testcerts.NewCA(t, "other").PEM)
	wrongCA, _ := NewStore(FromMap(map[string]string{"ssl.truststore.location": otherTrust, "ssl.endpoint.identification.algorithm": ""}))
	if err := dial(addr, wrongCA.ClientConfig("other.example")); err == nil {
		t.Fatal("chain verification was skipped with endpoint identification off")
	}
}

func TestReloadWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	trust := testcerts.WriteFile(t, dir, "ca.pem", root.PEM)
	chain1, key1 := root.Issue(t, pkix.Name{CommonName: "broker-1"}, testcerts.Server)
	ks := testcerts.WriteFile(t, dir, "server.pem", chain1, key1)
	var now time.Time = time.Unix(1000, 0)
	srv, err := NewStore(FromMap(map[string]string{"ssl.keystore.location": ks}))
	if err != nil {
		t.Fatal(err)
	}
	srv.Now = func() time.Time { return now }
	srv.CheckEvery = time.Second
	var reloadErrs []error
	srv.OnReloadError = func(err error) { reloadErrs = append(reloadErrs, err) }
	addr, results := serve(t, srv)
	cli, _ := NewStore(FromMap(map[string]string{"ssl.truststore.location": trust}))
	served := func() string {
		t.Helper()
		var cn string
		cfg := cli.ClientConfig("localhost")
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { cn = cs.PeerCertificates[0].Subject.CommonName; return nil }
		if err := dial(addr, cfg); err != nil {
			t.Fatal(err)
		}
		result(t, results)
		return cn
	}
	if cn := served(); cn != "broker-1" {
		t.Fatalf("served %q", cn)
	}
	chain2, key2 := root.Issue(t, pkix.Name{CommonName: "broker-2"}, testcerts.Server)
	testcerts.WriteFile(t, dir, "server.pem", chain2, key2, []byte("\n")) // a different size, so the change shows even within one mtime tick
	// Within the check interval the old certificate is still served.
	now = now.Add(500 * time.Millisecond)
	if cn := served(); cn != "broker-1" {
		t.Fatalf("reloaded before the check interval: %q", cn)
	}
	now = now.Add(time.Second)
	if cn := served(); cn != "broker-2" {
		t.Fatalf("after the file changed, served %q, want broker-2", cn)
	}
	// A broken file keeps the last good certificate and reports why.
	testcerts.WriteFile(t, dir, "server.pem", []byte("garbage"))
	now = now.Add(2 * time.Second)
	if cn := served(); cn != "broker-2" {
		t.Fatalf("after a broken write, served %q", cn)
	}
	if len(reloadErrs) == 0 {
		t.Fatal("the failed reload was not reported")
	}
}

func TestProtocolsAndCiphers(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	chain, key := root.Issue(t, pkix.Name{CommonName: "b"}, testcerts.Server)
	ks := testcerts.WriteFile(t, dir, "s.pem", chain, key)
	trust := testcerts.WriteFile(t, dir, "ca.pem", root.PEM)
	// listener serves with the settings and the server certificate.
	listener := func(settings map[string]string) (string, chan string) {
		t.Helper()
		settings["ssl.keystore.location"] = ks
		st, err := NewStore(FromMap(settings))
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, st)
	}
	// client is the client side of the settings, trusting the root.
	client := func(settings map[string]string) *tls.Config {
		t.Helper()
		settings["ssl.truststore.location"] = trust
		st, err := NewStore(FromMap(settings))
		if err != nil {
			t.Fatal(err)
		}
		return st.ClientConfig("localhost")
	}
	// refused fails the test with why if cfg's handshake with the listener
	// at addr succeeds.
	refused := func(addr string, results chan string, cfg *tls.Config, why string) {
		t.Helper()
		if err := dial(addr, cfg); err == nil {
			t.Fatal(why)
		}
		<-results
	}

	addr, results := listener(map[string]string{"ssl.enabled.protocols": "TLSv1.3"})
	refused(addr, results, client(map[string]string{"ssl.enabled.protocols": "TLSv1.2"}),
		"a TLSv1.2-only client connected to a TLSv1.3-only listener")

	addr12, results12 := listener(map[string]string{"ssl.enabled.protocols": "TLSv1.2",
		"ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"})
	refused(addr12, results12, client(map[string]string{"ssl.enabled.protocols": "TLSv1.3"}),
		"a TLSv1.3-only client connected to a TLSv1.2-only listener")
	cfg := client(map[string]string{"ssl.enabled.protocols": "TLSv1.2",
		"ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"})
	refused(addr12, results12, cfg, "no common cipher suite, yet the handshake succeeded")
	// The same client offering every suite agrees on the listener's one.
	var suite uint16
	cfg.CipherSuites = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { suite = cs.CipherSuite; return nil }
	if err := dial(addr12, cfg); err != nil {
		t.Fatal(err)
	}
	<-results12
	if suite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Fatalf("negotiated %s", tls.CipherSuiteName(suite))
	}
}

func TestSettingsValidate(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	chain, key := root.Issue(t, pkix.Name{CommonName: "b"}, testcerts.Server)
	encKey := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	for name, m := range map[string]map[string]string{
		"JKS key store":         {"ssl.keystore.type": "JKS", "ssl.keystore.location": "x"},
		"PKCS12 trust store":    {"ssl.truststore.type": "PKCS12", "ssl.truststore.location": "x"},
		"location and inline":   {"ssl.keystore.location": "x", "ssl.keystore.certificate.chain": "c", "ssl.keystore.key": "k"},
		"chain without key":     {"ssl.keystore.certificate.chain": "c"},
		"client auth":           {"ssl.client.auth": "always"},
		"unknown protocol":      {"ssl.enabled.protocols": "SSLv3"},
		"gap in protocols":      {"ssl.enabled.protocols": "TLSv1.1,TLSv1.3"},
		"no protocols":          {"ssl.enabled.protocols": " , "},
		"unknown cipher":        {"ssl.cipher.suites": "TLS_RSA_WITH_NULL_MD5"},
		"bad rule":              {"ssl.principal.mapping.rules": "RULE:^CN=(.*$/$1/"},
		"endpoint id":           {"ssl.endpoint.identification.algorithm": "ldap"},
		"missing key store":     {"ssl.keystore.location": filepath.Join(dir, "absent.pem")},
		"encrypted key":         {"ssl.keystore.certificate.chain": string(chain), "ssl.keystore.key": string(encKey), "ssl.key.password": "pw"},
		"key store without key": {"ssl.keystore.certificate.chain": string(chain), "ssl.keystore.key": string(chain)},
		"empty trust store":     {"ssl.truststore.certificates": string(key)},
	} {
		if _, err := NewStore(FromMap(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Kafka's JKS defaults do not refuse settings that use no store of
	// that kind.
	if err := FromMap(map[string]string{"ssl.keystore.type": "JKS", "ssl.truststore.type": "JKS"}).Validate(); err != nil {
		t.Errorf("JKS types without stores: %v", err)
	}
	st, err := NewStore(FromMap(map[string]string{"ssl.truststore.location": testcerts.WriteFile(t, dir, "ca.pem", root.PEM), "ssl.client.auth": "required"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ServerConfig(); err == nil {
		t.Fatal("a listener without a key store was configured")
	}
	st, _ = NewStore(FromMap(map[string]string{"ssl.keystore.certificate.chain": string(chain), "ssl.keystore.key": string(key), "ssl.client.auth": "required"}))
	if _, err := st.ServerConfig(); err == nil {
		t.Fatal("required client auth without a trust store was configured")
	}
}

func TestMappingRules(t *testing.T) {
	for _, tc := range []struct {
		rules, dn, want string
		fail            bool
	}{
		{"DEFAULT", "CN=alice,OU=eng", "CN=alice,OU=eng", false},
		{"", "CN=alice", "CN=alice", false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=svc,OU=ServiceUsers,O=Acme", "svc", false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=bob,OU=People", "CN=bob,OU=People", false},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L`, "CN=Kafka,OU=Eng,O=Org,L=X,ST=Y,C=US", "kafka@eng", false},
		{`RULE:^cn=(.*?),ou=(.*?)$/$1/U`, "cn=alice,ou=x", "ALICE", false},
		{`RULE:^CN=([^,]*)$/user\/$1/`, "CN=a", "user/a", false},
		{`RULE:^CN=([^,]*)$/$1x/`, "CN=a", "ax", false},
		{`RULE:^CN=([^,]*)$/\$$1/`, "CN=a", "$a", false},
		{`RULE:^CN=admin$/root/`, "CN=alice", "", true},
		{`RULE:CN=admin/root/`, "CN=admin,OU=x", "", true}, // the pattern must match the whole name, as Java's matches()
		{`RULE:^CN=(.*)$/$1/ , RULE:^x$/y/`, "CN=a", "a", false},
	} {
		rs, err := ParseMappingRules(tc.rules)
		if err != nil {
			t.Errorf("%q: %v", tc.rules, err)
			continue
		}
		got, err := rs.Apply(tc.dn)
		if tc.fail != (err != nil) || got != tc.want {
			t.Errorf("%q on %q = %q, %v; want %q", tc.rules, tc.dn, got, err, tc.want)
		}
	}
	for _, bad := range []string{"RULE:x", "RULE:x/y", "DEFAULT junk", "RULE:(/x/", "NOPE"} {
		if _, err := ParseMappingRules(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A key store whose key openssl encrypted as PKCS#8 (PBES2, AES-256-CBC),
// as operators protect Kafka's PEM key stores, loads with ssl.key.password;
// without the password, or with a wrong one, the store is refused with an
// error that names ssl.key.password.
func TestEncryptedPKCS8KeyStore(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	chain, key := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	plainPath := testcerts.WriteFile(t, dir, "key.pem", key)
	encPath := filepath.Join(dir, "key-encrypted.pem")
	cmd := exec.Command("openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plainPath, "-out", encPath, "-passout", "pass:key-secret")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs8: %v\n%s", err, out)
	}
	enc, err := os.ReadFile(encPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(enc), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("openssl wrote no encrypted PKCS#8 key:\n%s", enc)
	}
	keystore := testcerts.WriteFile(t, dir, "keystore.pem", chain, enc)

	for name, c := range map[string]struct {
		settings map[string]string
		fails    string
	}{
		"location":       {map[string]string{"ssl.keystore.location": keystore, "ssl.key.password": "key-secret"}, ""},
		"inline":         {map[string]string{"ssl.keystore.certificate.chain": string(chain), "ssl.keystore.key": string(enc), "ssl.key.password": "key-secret"}, ""},
		"no password":    {map[string]string{"ssl.keystore.location": keystore}, "set ssl.key.password"},
		"wrong password": {map[string]string{"ssl.keystore.location": keystore, "ssl.key.password": "not-it"}, "ssl.key.password does not decrypt"},
	} {
		st, err := NewStore(FromMap(c.settings))
		if c.fails != "" {
			if err == nil || !strings.Contains(err.Error(), c.fails) {
				t.Errorf("%s: error %v, want one saying %q", name, err, c.fails)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// A client that trusts the CA completes a handshake with the
		// decrypted key.
		srv, err := st.ServerConfig()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(root.Cert)
		handshake(t, srv, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	}
}

// handshake runs one TLS handshake between server and client over a pipe.
func handshake(t *testing.T, server, client *tls.Config) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() { errc <- tls.Server(a, server).Handshake() }()
	if err := tls.Client(b, client).Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

// A node dialing its own listener trusts the certificate it serves and no
// other, though no trust store is configured and the certificate names
// neither the address dialed nor the CA it came from.
func TestSelfClientConfigTrustsOnlyTheServedCertificate(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	chain, key := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	srv, err := NewStore(Settings{KeystoreType: "PEM", KeystoreLocation: testcerts.WriteFile(t, dir, "server.pem", chain, key), EnabledProtocols: DefaultEnabledProtocols})
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, srv)
	if err := dial(addr, srv.SelfClientConfig()); err != nil {
		t.Fatalf("dialing the node's own listener: %v", err)
	}
	if got := result(t, results); got != "ANONYMOUS" {
		t.Fatalf("principal %q: the node presented a certificate of its own", got)
	}

	// Another server with a certificate from the same CA is refused.
	otherChain, otherKey := root.Issue(t, pkix.Name{CommonName: "impostor"}, testcerts.Server)
	other, err := NewStore(Settings{KeystoreType: "PEM", KeystoreLocation: testcerts.WriteFile(t, dir, "other.pem", otherChain, otherKey), EnabledProtocols: DefaultEnabledProtocols})
	if err != nil {
		t.Fatal(err)
	}
	otherAddr, otherResults := serve(t, other)
	if err := dial(otherAddr, srv.SelfClientConfig()); err == nil || !strings.Contains(err.Error(), "not this node's own") {
		t.Fatalf("dialing another server: %v, want a refusal", err)
	}
	result(t, otherResults)
}

// A listener's key store changed at runtime: Update serves the new
// certificate to new handshakes, refuses a store that does not load or
// whose certificate names another subject (unless allowed), keeping the
// old one, and re-reads an unchanged path, which is how a certificate
// rewritten in place is picked up at once.
func TestUpdateKeyStore(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	issue := func(cn string) (chain, key []byte) { return root.Issue(t, pkix.Name{CommonName: cn}, testcerts.Server) }
	chain1, key1 := issue("broker-1")
	ks1 := testcerts.WriteFile(t, dir, "ks1.pem", chain1, key1)
	st, err := NewStore(FromMap(map[string]string{"ssl.keystore.location": ks1}))
	if err != nil {
		t.Fatal(err)
	}
	st.CheckEvery = time.Hour // only Update reloads here
	srv, err := st.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	served := func() []byte {
		t.Helper()
		var raw []byte
		cli := &tls.Config{RootCAs: pool, ServerName: "localhost",
			VerifyConnection: func(cs tls.ConnectionState) error { raw = cs.PeerCertificates[0].Raw; return nil }}
		handshake(t, srv, cli)
		return raw
	}
	der := func(chain []byte) []byte { b, _ := pem.Decode(chain); return b.Bytes }
	if !slices.Equal(served(), der(chain1)) {
		t.Fatal("not serving the first certificate")
	}
	with := func(m map[string]string) Settings { return FromMap(m) }

	chain2, key2 := issue("broker-1")
	ks2 := testcerts.WriteFile(t, dir, "ks2.pem", chain2, testcerts.Encrypt(t, key2, "secret"))
	otherCN, otherKey := issue("someone-else")
	ksOther := testcerts.WriteFile(t, dir, "other.pem", otherCN, otherKey)
	noSANChain, noSANKey := root.Issue(t, pkix.Name{CommonName: "broker-1"}, testcerts.Client)
	ksNoSAN := testcerts.WriteFile(t, dir, "nosan.pem", noSANChain, noSANKey)
	for name, c := range map[string]struct {
		s     Settings
		fails string
	}{
		"missing file":   {with(map[string]string{"ssl.keystore.location": filepath.Join(dir, "nope.pem")}), "no such file"},
		"wrong password": {with(map[string]string{"ssl.keystore.location": ks2, "ssl.key.password": "wrong"}), "does not decrypt"},
		"subject change": {with(map[string]string{"ssl.keystore.location": ksOther}), "ssl.allow.dn.changes"},
		"SAN change":     {with(map[string]string{"ssl.keystore.location": ksNoSAN}), "ssl.allow.san.changes"},
		"add trust":      {with(map[string]string{"ssl.keystore.location": ks2, "ssl.key.password": "secret", "ssl.truststore.location": ks1}), "cannot add a trust store"},
		"client auth":    {with(map[string]string{"ssl.keystore.location": ks2, "ssl.key.password": "secret", "ssl.client.auth": "requested"}), "only the key store and trust store"},
	} {
		if err := st.Update(c.s, CertChanges{}); err == nil || !strings.Contains(err.Error(), c.fails) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.fails)
		}
		if !slices.Equal(served(), der(chain1)) {
			t.Fatalf("%s: the refused update changed the served certificate", name)
		}
	}
	good := with(map[string]string{"ssl.keystore.location": ks2, "ssl.key.password": "secret"})
	if err := st.Check(good, CertChanges{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(served(), der(chain1)) {
		t.Fatal("Check changed the served certificate")
	}
	if err := st.Update(good, CertChanges{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(served(), der(chain2)) || st.Settings() != good {
		t.Fatal("Update did not serve the new key store")
	}
	// The same path again re-reads the file.
	chain3, key3 := issue("broker-1")
	testcerts.WriteFile(t, dir, "ks2.pem", chain3, testcerts.Encrypt(t, key3, "secret"))
	if err := st.Update(good, CertChanges{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(served(), der(chain3)) {
		t.Fatal("setting the same path again did not re-read it")
	}
	// A subject change goes through when allowed; SANs are unchanged.
	if err := st.Update(with(map[string]string{"ssl.keystore.location": ksOther}), CertChanges{DN: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(served(), der(otherCN)) {
		t.Fatal("the allowed subject change is not served")
	}
}

// A trust store changed at runtime decides the next client certificates:
// a client of a new CA is refused before the change and accepted after it.
func TestUpdateTrustStore(t *testing.T) {
	dir := t.TempDir()
	root, next := testcerts.NewCA(t, "root"), testcerts.NewCA(t, "next")
	srvChain, srvKey := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	settings := func(trust string) Settings {
		return FromMap(map[string]string{"ssl.keystore.location": testcerts.WriteFile(t, dir, "server.pem", srvChain, srvKey),
			"ssl.truststore.location": trust, "ssl.client.auth": "required"})
	}
	srv, err := NewStore(settings(testcerts.WriteFile(t, dir, "root.pem", root.PEM)))
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, srv)
	cc, ck := next.Issue(t, pkix.Name{CommonName: "carol"}, testcerts.Client)
	cli, err := NewStore(FromMap(map[string]string{"ssl.keystore.certificate.chain": string(cc), "ssl.keystore.key": string(ck),
		"ssl.truststore.certificates": string(root.PEM)}))
	if err != nil {
		t.Fatal(err)
	}
	dial(addr, cli.ClientConfig("127.0.0.1"))
	if got := result(t, results); !strings.HasPrefix(got, "error:") {
		t.Fatalf("a client of a CA not yet trusted got %q", got)
	}
	both := testcerts.WriteFile(t, dir, "both.pem", root.PEM, next.PEM)
	if err := srv.Update(settings(both), CertChanges{}); err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, cli.ClientConfig("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if got := result(t, results); got != "CN=carol" {
		t.Fatalf("after the trust store changed: %q, want CN=carol", got)
	}
}

// A listener that requires client certificates keeps a trust store: one
// removed at runtime would leave crypto/tls verifying client certificates
// against the system roots, which NewStore's ServerConfig refuses too.
func TestUpdateKeepsTrustStoreForClientAuth(t *testing.T) {
	dir := t.TempDir()
	root := testcerts.NewCA(t, "root")
	srvChain, srvKey := root.Issue(t, pkix.Name{CommonName: "broker"}, testcerts.Server)
	ks := testcerts.WriteFile(t, dir, "server.pem", srvChain, srvKey)
	settings := func(trust string) Settings {
		return FromMap(map[string]string{"ssl.keystore.location": ks, "ssl.truststore.location": trust, "ssl.client.auth": "required"})
	}
	st, err := NewStore(settings(testcerts.WriteFile(t, dir, "root.pem", root.PEM)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(settings(""), CertChanges{}); err == nil || !strings.Contains(err.Error(), "needs a trust store") {
		t.Fatalf("removing the trust store of a listener with ssl.client.auth=required: %v, want refused", err)
	}
	if st.Settings().TruststoreLocation == "" {
		t.Fatal("the refused change was applied")
	}
}
