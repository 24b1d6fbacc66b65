// Package testcerts makes throwaway credentials for tests: a certificate
// authority that issues ECDSA certificates for loopback listeners and their
// clients, and a JWT issuer that publishes its key as a JWKS. The TLS and
// OAUTHBEARER tests of several packages need the same material; one maker
// keeps them from drifting apart (a certificate without the loopback
// address, a JWKS without a key id) when one copy is fixed and another not.
//
// Every key is fresh and every certificate is valid from an hour ago to an
// hour from now, so tests never depend on the clock of the machine beyond
// that window.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/youmark/pkcs8"
)

// CA is a self-signed certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate, the content of a PEM trust store.
	PEM []byte
}

// NewCA makes a CA whose subject is CN=cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der)}
}

// Usage says what a certificate is for; the flags combine.
type Usage int

const (
	// Server certificates name 127.0.0.1 and localhost, so a client that
	// verifies host names accepts them on loopback and nowhere else.
	Server Usage = 1 << iota
	// Client certificates authenticate a client to a listener with
	// ssl.client.auth set.
	Client
)

// Issue returns a certificate for subject signed by ca, and its PKCS#8
// key, both PEM. Concatenated (in either order) they are a PEM key store.
func (ca *CA) Issue(t testing.TB, subject pkix.Name, usage Usage) (chain, key []byte) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if usage&Server != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	if usage&Client != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &k.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kd)
}

// Encrypt returns key (PKCS#8 PEM, as Issue returns it) encrypted with
// password as an ENCRYPTED PRIVATE KEY (PBES2, AES-256-CBC), what openssl
// pkcs8 -topk8 -v2 aes-256-cbc writes.
func Encrypt(t testing.TB, key []byte, password string) []byte {
	t.Helper()
	blk, _ := pem.Decode(key)
	if blk == nil {
		t.Fatal("testcerts.Encrypt: no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pkcs8.MarshalPrivateKey(k, []byte(password), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("ENCRYPTED PRIVATE KEY", der)
}

// WriteFile writes parts, one after the other, to dir/name and returns the
// path. It writes a temporary file and renames it, as certificate tooling
// does, so a store that reloads the file never reads half of it.
func WriteFile(t testing.TB, dir, name string, parts ...[]byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	var b []byte
	for _, x := range parts {
		b = append(b, x...)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issuer signs ES256 JWTs and publishes its public key as a JWKS.
type Issuer struct {
	t    testing.TB
	priv jwk.Key
	// JWKS is the key set holding the issuer's public key under its key id.
	JWKS []byte
}

// NewIssuer makes an issuer with a fresh key whose key id is kid. Two
// issuers with the same kid stand for a forger: the id matches, the
// signature does not.
func NewIssuer(t testing.TB, kid string) *Issuer {
	t.Helper()
	priv, err := jwk.Import(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{t: t, priv: priv, JWKS: b}
}

// Token returns a compact JWT with claims, signed by the issuer.
func (is *Issuer) Token(claims map[string]any) string {
	is.t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			is.t.Fatal(err)
		}
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), is.priv))
	if err != nil {
		is.t.Fatal(err)
	}
	return string(b)
}

// File writes the issuer's JWKS to a file in a fresh temporary directory
// of t and returns its path, for a file:// JWKS endpoint.
func (is *Issuer) File(t testing.TB) string {
	t.Helper()
	return WriteFile(t, t.TempDir(), "jwks.json", is.JWKS)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newSerial is random, as a CA's must be unique and these CAs keep no
// count; 62 bits make a collision within one test run negligible.
func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
