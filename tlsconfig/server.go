package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/youmark/pkcs8"
)

// material is one loaded generation of certificates: what a handshake
// uses. It is immutable once built.
type material struct {
	cert  *tls.Certificate // nil for a client without a key store
	roots *x509.CertPool   // nil: system roots (client) or no client CAs (server)
	// stamps identify the files the material was read from, to notice
	// changes.
	stamps []fileStamp
}

type fileStamp struct {
	path  string
	mod   time.Time
	size  int64
	valid bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{path: path}
	}
	return fileStamp{path: path, mod: fi.ModTime(), size: fi.Size(), valid: true}
}

// Store holds the current certificates of a listener or client and
// reloads them when their files change. Handshakes read the current
// material through GetConfigForClient / GetCertificate, so a reload
// applies to new connections without a restart; established connections
// keep what they negotiated.
type Store struct {
	// s are the settings served with; Update changes their key and trust
	// stores (under mu), everything else is fixed at NewStore.
	s          Settings
	clientAuth string // s.ClientAuth, readable without mu
	endpointID string // s.EndpointIdentification, readable without mu
	rules      MappingRules
	auth       tls.ClientAuthType
	minV, maxV uint16
	suites     []uint16

	cur atomic.Pointer[material]

	// CheckEvery is how often a handshake may stat the files for changes;
	// 0 checks at every handshake.
	CheckEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnReloadError, if set, hears why a changed file could not be
	// loaded; the previous certificates stay in use.
	OnReloadError func(error)

	mu        sync.Mutex // serializes reloads; guards s and lastCheck
	lastCheck time.Time
}

// DefaultCheckEvery is how often certificate files are checked for
// changes.
const DefaultCheckEvery = time.Second

// NewStore validates s and loads its certificates.
func NewStore(s Settings) (*Store, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	st := &Store{s: s, clientAuth: s.ClientAuth, endpointID: s.EndpointIdentification, CheckEvery: DefaultCheckEvery}
	st.rules, _ = ParseMappingRules(s.PrincipalMappingRules)
	st.auth, _ = clientAuth(s.ClientAuth)
	st.minV, st.maxV, _ = protocols(s.EnabledProtocols)
	st.suites, _ = cipherSuites(s.CipherSuites)
	m, err := load(s)
	if err != nil {
		return nil, err
	}
	st.cur.Store(m)
	return st, nil
}

// Rules returns the principal mapping rules.
func (st *Store) Rules() MappingRules { return st.rules }

// CertChanges says which changes of the served certificate a key store
// set at runtime may bring (ssl.allow.dn.changes, ssl.allow.san.changes).
type CertChanges struct {
	DN, SAN bool
}

// Settings returns the settings the store serves with.
func (st *Store) Settings() Settings {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

// Check reports whether next could replace the store's settings: they are
// valid, their stores load, and the new certificate is compatible with
// the one served (see compatible). It changes nothing.
func (st *Store) Check(next Settings, allow CertChanges) error {
	_, err := st.prepare(next, allow)
	return err
}

// Update makes next the store's settings and reads its files now, even if
// neither the settings nor the files changed: that is how an operator
// rotates a certificate in place, as Kafka reloads a key store whose path
// is set again. Only the key and trust stores may differ from the current
// settings; the other keys are fixed at start-up. On error nothing
// changes and the previous certificates stay in use.
func (st *Store) Update(next Settings, allow CertChanges) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	m, err := st.prepareLocked(next, allow)
	if err != nil {
		return err
	}
	st.s = next
	st.cur.Store(m)
	return nil
}

func (st *Store) prepare(next Settings, allow CertChanges) (*material, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.prepareLocked(next, allow)
}

// prepareLocked validates and loads next against the served material.
// st.mu is held.
func (st *Store) prepareLocked(next Settings, allow CertChanges) (*material, error) {
	if err := next.Validate(); err != nil {
		return nil, err
	}
	cur := st.s
	cur.KeystoreType, cur.KeystoreLocation, cur.KeystoreCertificateChain, cur.KeystoreKey, cur.KeyPassword = next.KeystoreType, next.KeystoreLocation, next.KeystoreCertificateChain, next.KeystoreKey, next.KeyPassword
	cur.TruststoreType, cur.TruststoreLocation, cur.TruststoreCertificates = next.TruststoreType, next.TruststoreLocation, next.TruststoreCertificates
	if cur != next {
		return nil, errors.New("only the key store and trust store of a listener can change at runtime")
	}
	m, err := load(next)
	if err != nil {
		return nil, err
	}
	if err := compatible(st.cur.Load(), m, allow); err != nil {
		return nil, err
	}
	if err := st.checkClientAuth(m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkClientAuth refuses material without a trust store on a listener
// that asks for client certificates: crypto/tls would verify them against
// the system roots instead, trusting every public CA's clients.
func (st *Store) checkClientAuth(m *material) error {
	if st.auth != tls.NoClientCert && m.roots == nil {
		return fmt.Errorf("ssl.client.auth=%s needs a trust store (ssl.truststore.location)", st.clientAuth)
	}
	return nil
}

// compatible checks new material against the old as Kafka's SslFactory
// does before a dynamic change: a key store cannot be added or removed,
// nor a trust store added, and the certificate keeps its subject and
// subject alternative names unless allow says otherwise, so clients that
// verify the broker's identity keep accepting it.
func compatible(old, next *material, allow CertChanges) error {
	switch {
	case old.cert == nil && next.cert != nil:
		return errors.New("cannot add a key store to a listener that had none")
	case old.cert != nil && next.cert == nil:
		return errors.New("cannot remove the key store of a listener that had one")
	case old.roots == nil && next.roots != nil:
		return errors.New("cannot add a trust store to a listener that had none")
	case old.cert == nil:
		return nil
	}
	was, is := leaf(old.cert), leaf(next.cert)
	if !allow.DN && was.Subject.String() != is.Subject.String() {
		return fmt.Errorf("the new certificate's subject %q differs from the served %q (set ssl.allow.dn.changes=true to allow it)", is.Subject, was.Subject)
	}
	if !allow.SAN && !slices.Equal(sans(was), sans(is)) {
		return fmt.Errorf("the new certificate's subject alternative names %v differ from the served %v (set ssl.allow.san.changes=true to allow it)", sans(is), sans(was))
	}
	return nil
}

// leaf is the parsed end-entity certificate of c (keyPair has parsed it).
func leaf(c *tls.Certificate) *x509.Certificate {
	if c.Leaf != nil {
		return c.Leaf
	}
	l, _ := x509.ParseCertificate(c.Certificate[0])
	return l
}

// sans lists a certificate's subject alternative names, sorted, each with
// its kind.
func sans(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	slices.Sort(out)
	return out
}

// maybeReload reloads if the check interval has passed and a file changed.
func (st *Store) maybeReload() {
	now := time.Now
	if st.Now != nil {
		now = st.Now
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	t := now()
	if st.CheckEvery > 0 && !st.lastCheck.IsZero() && t.Sub(st.lastCheck) < st.CheckEvery {
		return
	}
	st.lastCheck = t
	old := st.cur.Load()
	changed := false
	for _, fs := range old.stamps {
		if stampOf(fs.path) != fs {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	m, err := load(st.s)
	if err != nil {
		if st.OnReloadError != nil {
			st.OnReloadError(err)
		}
		// The old stamps stay, so a half-written file is retried at the
		// next check.
		return
	}
	st.cur.Store(m)
}

// ServerConfig returns the listener's TLS configuration. It needs a key
// store.
func (st *Store) ServerConfig() (*tls.Config, error) {
	if st.cur.Load().cert == nil {
		return nil, errors.New("an SSL listener needs ssl.keystore.location or ssl.keystore.certificate.chain and ssl.keystore.key")
	}
	if err := st.checkClientAuth(st.cur.Load()); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: st.minV,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			st.maybeReload()
			m := st.cur.Load()
			return &tls.Config{
				MinVersion:   st.minV,
				MaxVersion:   st.maxV,
				CipherSuites: st.suites,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   st.auth,
				ClientCAs:    m.roots,
			}, nil
		},
	}, nil
}

// ClientConfig returns a client's TLS configuration (inter-broker
// connections, the command line): the trust store verifies the server, the
// key store, if any, is the client certificate.
func (st *Store) ClientConfig(serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   st.minV,
		MaxVersion:   st.maxV,
		CipherSuites: st.suites,
		ServerName:   serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			st.maybeReload()
			if c := st.cur.Load().cert; c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
		RootCAs: st.cur.Load().roots,
	}
	if st.endpointID == "" {
		// Kafka's empty ssl.endpoint.identification.algorithm: verify the
		// chain but not the host name. crypto/tls has no switch for that
		// alone, so the chain is verified here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: st.cur.Load().roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// SelfClientConfig returns the TLS configuration with which the node
// dials its own listener (the web console does): it trusts exactly the
// certificate this store serves, so it needs no trust store and no host
// name that the certificate names, yet accepts no other server. It
// presents no client certificate: the principal of such a connection is
// whoever logs in over SASL, never the broker's own identity.
func (st *Store) SelfClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   st.minV,
		MaxVersion:   st.maxV,
		CipherSuites: st.suites,
		// The chain is checked below, against the served certificate.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			st.maybeReload()
			own := st.cur.Load().cert
			if len(cs.PeerCertificates) == 0 || own == nil || len(own.Certificate) == 0 ||
				!bytes.Equal(cs.PeerCertificates[0].Raw, own.Certificate[0]) {
				return errors.New("the server's certificate is not this node's own")
			}
			return nil
		},
	}
}

// Principal returns the principal name of a TLS connection: the mapped
// subject of the client certificate, or "ANONYMOUS" without one, as
// Kafka's DefaultKafkaPrincipalBuilder does for SSL.
func (st *Store) Principal(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "ANONYMOUS", nil
	}
	return PrincipalName(cs.PeerCertificates[0], st.rules)
}

// readStore reads the store file at path, which setting names, and stamps
// it so that a change to the file is noticed.
func (m *material) readStore(setting, path string) ([]byte, error) {
	m.stamps = append(m.stamps, stampOf(path))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return b, nil
}

// load reads the key store and trust store of s.
func load(s Settings) (*material, error) {
	m := &material{}
	var chainPEM, keyPEM []byte
	switch {
	case s.KeystoreLocation != "":
		b, err := m.readStore("ssl.keystore.location", s.KeystoreLocation)
		if err != nil {
			return nil, err
		}
		chainPEM, keyPEM = b, b
	case s.KeystoreCertificateChain != "":
		chainPEM, keyPEM = []byte(s.KeystoreCertificateChain), []byte(s.KeystoreKey)
	}
	if chainPEM != nil {
		cert, err := keyPair(chainPEM, keyPEM, s.KeyPassword)
		if err != nil {
			return nil, err
		}
		m.cert = cert
	}
	var trustPEM []byte
	switch {
	case s.TruststoreLocation != "":
		b, err := m.readStore("ssl.truststore.location", s.TruststoreLocation)
		if err != nil {
			return nil, err
		}
		trustPEM = b
	case s.TruststoreCertificates != "":
		trustPEM = []byte(s.TruststoreCertificates)
	}
	if trustPEM != nil {
		pool := x509.NewCertPool()
		n := 0
		for _, blk := range pemBlocks(trustPEM) {
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("trust store: %w", err)
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, errors.New("trust store holds no PEM certificates")
		}
		m.roots = pool
	}
	return m, nil
}

// keyPair builds the certificate from PEM text holding the chain and the
// private key (possibly the same text). An encrypted PKCS#8 key
// ("ENCRYPTED PRIVATE KEY", as openssl pkcs8 -topk8 -v2 writes it) is
// decrypted with password (ssl.key.password), as Kafka's PEM key stores
// are; the standard library cannot, so github.com/youmark/pkcs8 does.
// Legacy OpenSSL PEM encryption (Proc-Type: 4,ENCRYPTED) is refused, as
// Kafka refuses it: it is insecure. An unencrypted key needs no password.
func keyPair(chainPEM, keyPEM []byte, password string) (*tls.Certificate, error) {
	var certs, keys []byte
	for _, blk := range pemBlocks(chainPEM) {
		if blk.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(blk)...)
		}
	}
	for _, blk := range pemBlocks(keyPEM) {
		switch {
		case blk.Headers["Proc-Type"] == "4,ENCRYPTED":
			return nil, errors.New("the key store's private key has legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which is not supported: " +
				"convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc) or store it unencrypted and protect the file")
		case blk.Type == "ENCRYPTED PRIVATE KEY":
			der, err := decryptPKCS8(blk.Bytes, password)
			if err != nil {
				return nil, err
			}
			keys = append(keys, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
		case blk.Type == "PRIVATE KEY" || blk.Type == "RSA PRIVATE KEY" || blk.Type == "EC PRIVATE KEY":
			keys = append(keys, pem.EncodeToMemory(blk)...)
		}
	}
	if certs == nil {
		return nil, errors.New("the key store holds no PEM certificate")
	}
	if keys == nil {
		return nil, errors.New("the key store holds no PEM private key")
	}
	cert, err := tls.X509KeyPair(certs, keys)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	return &cert, nil
}

// decryptPKCS8 decrypts an encrypted PKCS#8 key (PBES2) with password and
// returns it as unencrypted PKCS#8 DER.
func decryptPKCS8(der []byte, password string) ([]byte, error) {
	if password == "" {
		return nil, errors.New("the key store's private key is encrypted: set ssl.key.password")
	}
	key, _, err := pkcs8.ParsePrivateKey(der, []byte(password))
	if err != nil {
		return nil, fmt.Errorf("ssl.key.password does not decrypt the key store's private key (%v)", err)
	}
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("the key store's private key: %w", err)
	}
	return plain, nil
}

// pemBlocks returns every PEM block in b, skipping text between them.
func pemBlocks(b []byte) []*pem.Block {
	var out []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		out = append(out, blk)
	}
}
