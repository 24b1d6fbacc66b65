// Package tlsconfig builds crypto/tls configurations from Kafka's ssl.*
// keys: PEM key stores and trust stores (files or inline), client
// authentication, protocol versions and cipher suites, certificates that
// are reloaded when their files change, and the principal of a client
// certificate through ssl.principal.mapping.rules.
package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/shoalmq/shoal/internal/commalist"
)

// Settings are the ssl.* keys of one listener (or of a client), already
// resolved for listener prefixes.
type Settings struct {
	KeystoreType             string // ssl.keystore.type; only PEM
	KeystoreLocation         string // ssl.keystore.location: key and chain in one PEM file
	KeystoreCertificateChain string // ssl.keystore.certificate.chain: inline PEM
	KeystoreKey              string // ssl.keystore.key: inline PEM
	KeyPassword              string // ssl.key.password
	TruststoreType           string // ssl.truststore.type; only PEM
	TruststoreLocation       string // ssl.truststore.location
	TruststoreCertificates   string // ssl.truststore.certificates: inline PEM
	ClientAuth               string // ssl.client.auth: none, requested, required
	EnabledProtocols         string // ssl.enabled.protocols, comma-separated
	CipherSuites             string // ssl.cipher.suites, comma-separated
	PrincipalMappingRules    string // ssl.principal.mapping.rules
	// EndpointIdentification is ssl.endpoint.identification.algorithm:
	// "https" (the default) checks the server's host name, "" does not.
	EndpointIdentification string
}

// Kafka's defaults.
const (
	DefaultEnabledProtocols = "TLSv1.2,TLSv1.3"
	DefaultClientAuth       = "none"
	DefaultMappingRules     = "DEFAULT"
	DefaultEndpointID       = "https"
)

// Keys maps each Kafka key to its field, for the config layer.
var Keys = []string{
	"ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.certificate.chain", "ssl.keystore.key",
	"ssl.key.password", "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.certificates",
	"ssl.client.auth", "ssl.enabled.protocols", "ssl.cipher.suites", "ssl.principal.mapping.rules",
	"ssl.endpoint.identification.algorithm",
}

// FromMap reads Settings from Kafka keys; absent keys take Kafka's
// defaults.
func FromMap(m map[string]string) Settings {
	get := func(k, def string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return def
	}
	return Settings{
		KeystoreType:             get("ssl.keystore.type", "PEM"),
		KeystoreLocation:         get("ssl.keystore.location", ""),
		KeystoreCertificateChain: get("ssl.keystore.certificate.chain", ""),
		KeystoreKey:              get("ssl.keystore.key", ""),
		KeyPassword:              get("ssl.key.password", ""),
		TruststoreType:           get("ssl.truststore.type", "PEM"),
		TruststoreLocation:       get("ssl.truststore.location", ""),
		TruststoreCertificates:   get("ssl.truststore.certificates", ""),
		ClientAuth:               get("ssl.client.auth", DefaultClientAuth),
		EnabledProtocols:         get("ssl.enabled.protocols", DefaultEnabledProtocols),
		CipherSuites:             get("ssl.cipher.suites", ""),
		PrincipalMappingRules:    get("ssl.principal.mapping.rules", DefaultMappingRules),
		EndpointIdentification:   get("ssl.endpoint.identification.algorithm", DefaultEndpointID),
	}
}

// Validate checks everything that can be checked without reading files.
func (s Settings) Validate() error {
	// A store's type matters only where there is a store: Kafka's JKS
	// default must not refuse a listener that uses no trust store.
	hasKeystore := s.KeystoreLocation != "" || s.KeystoreCertificateChain != ""
	hasTruststore := s.TruststoreLocation != "" || s.TruststoreCertificates != ""
	if t := strings.ToUpper(s.KeystoreType); t != "PEM" && hasKeystore {
		return fmt.Errorf("ssl.keystore.type=%s is not supported: convert the key store to PEM", s.KeystoreType)
	}
	if t := strings.ToUpper(s.TruststoreType); t != "PEM" && hasTruststore {
		return fmt.Errorf("ssl.truststore.type=%s is not supported: convert the trust store to PEM", s.TruststoreType)
	}
	if s.KeystoreLocation != "" && (s.KeystoreCertificateChain != "" || s.KeystoreKey != "") {
		return fmt.Errorf("ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are mutually exclusive")
	}
	if (s.KeystoreCertificateChain == "") != (s.KeystoreKey == "") {
		return fmt.Errorf("ssl.keystore.certificate.chain and ssl.keystore.key must be given together")
	}
	if s.TruststoreLocation != "" && s.TruststoreCertificates != "" {
		return fmt.Errorf("ssl.truststore.location and ssl.truststore.certificates are mutually exclusive")
	}
	if _, err := clientAuth(s.ClientAuth); err != nil {
		return err
	}
	if _, _, err := protocols(s.EnabledProtocols); err != nil {
		return err
	}
	if _, err := cipherSuites(s.CipherSuites); err != nil {
		return err
	}
	if _, err := ParseMappingRules(s.PrincipalMappingRules); err != nil {
		return err
	}
	switch strings.ToLower(s.EndpointIdentification) {
	case "https", "":
	default:
		return fmt.Errorf("ssl.endpoint.identification.algorithm=%s: want https or empty", s.EndpointIdentification)
	}
	return nil
}

func clientAuth(s string) (tls.ClientAuthType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return tls.NoClientCert, nil
	case "requested":
		return tls.VerifyClientCertIfGiven, nil
	case "required":
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("ssl.client.auth=%s: want none, requested or required", s)
}

var protocolVersions = map[string]uint16{
	"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13,
}

// protocols turns ssl.enabled.protocols into a version range. Go takes a
// range, not a set, so the listed versions must be contiguous.
func protocols(s string) (lo, hi uint16, err error) {
	var vs []uint16
	for _, p := range commalist.Split(s) {
		v, ok := protocolVersions[p]
		if !ok {
			return 0, 0, fmt.Errorf("ssl.enabled.protocols: unknown protocol %q (want TLSv1.2, TLSv1.3, TLSv1.1 or TLSv1)", p)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return 0, 0, fmt.Errorf("ssl.enabled.protocols is empty")
	}
	slices.Sort(vs)
	vs = slices.Compact(vs)
	for i := 1; i < len(vs); i++ {
		if vs[i] != vs[i-1]+1 {
			return 0, 0, fmt.Errorf("ssl.enabled.protocols=%s: the versions must be contiguous", s)
		}
	}
	return vs[0], vs[len(vs)-1], nil
}

// cipherSuites maps IANA names (which Kafka uses) to Go's suite ids. They
// restrict TLS 1.2 and below only: Go does not make TLS 1.3 suites
// configurable. Empty means Go's defaults.
func cipherSuites(s string) ([]uint16, error) {
	names := commalist.Split(s)
	if len(names) == 0 {
		return nil, nil
	}
	known := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs.ID
	}
	for _, cs := range tls.InsecureCipherSuites() {
		known[cs.Name] = cs.ID
	}
	var ids []uint16
	for _, n := range names {
		id, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("ssl.cipher.suites: unknown or unsupported cipher suite %q", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
