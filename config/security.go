package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/internal/commalist"
	"github.com/shoalmq/shoal/sasl"
	"github.com/shoalmq/shoal/tlsconfig"
)

// SecurityDefs are the broker's TLS, SASL and authorization keys, with
// Kafka's names and defaults. Each ssl.* and sasl.* key may also be set
// for one listener as listener.name.<listener>.<key> (the listener name in
// lower case), and each sasl.* key for one mechanism of one listener as
// listener.name.<listener>.<mechanism>.<key>; the most specific wins.
//
// They are kept out of BrokerDefs so DescribeConfigs, which lists
// BrokerDefs with their values, cannot reveal a password or a JAAS
// configuration.
var SecurityDefs = []Def{
	{Name: "sasl.enabled.mechanisms", Type: List, Default: "GSSAPI", Doc: "SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER. Kafka's default, GSSAPI (Kerberos), is not supported: a SASL listener must set this.", Check: listOf("GSSAPI", sasl.PLAIN, sasl.SCRAMSHA256, sasl.SCRAMSHA512, sasl.OAUTHBEARER)},
	{Name: "sasl.mechanism.inter.broker.protocol", Type: String, Default: "GSSAPI", Doc: "Mechanism brokers log in to each other with on a SASL inter-broker listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, as the username and password of that mechanism's JAAS module on the listener (listener.name.<listener>.<mechanism>.sasl.jaas.config)."},
	{Name: "sasl.mechanism.controller.protocol", Type: String, Default: "GSSAPI", Doc: "Mechanism nodes log in to the controllers with on a SASL controller listener, with the username and password of its JAAS module on that listener, as for sasl.mechanism.inter.broker.protocol."},
	{Name: "sasl.jaas.config", Type: Password, Default: "", Doc: "JAAS login module of a mechanism, usually set per listener and mechanism as listener.name.<listener>.<mechanism>.sasl.jaas.config; PLAIN reads its users from user_<name>=\"<password>\" options. Without the prefix it applies to every listener whose mechanism's login module it names."},
	{Name: "sasl.server.callback.handler.class", Type: Class, Default: "", Doc: "For OAUTHBEARER: org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler (JWT validation against sasl.oauthbearer.jwks.endpoint.url), which is also what an empty value means. Kafka's unsecured default validator is not offered."},
	{Name: "sasl.server.max.receive.size", Type: Int, Default: "524288", Doc: "Largest SASL message accepted before authentication completes.", Check: atLeast(1)},
	{Name: "sasl.oauthbearer.jwks.endpoint.url", Type: String, Default: "", Doc: "Where OAUTHBEARER token signing keys come from: an https URL, refetched every sasl.oauthbearer.jwks.endpoint.refresh.ms, or a file: URL, read again when the file changes."},
	{Name: "sasl.oauthbearer.jwks.endpoint.refresh.ms", Type: Long, Default: "3600000", Doc: "How often the JWKS URL is fetched again.", Check: atLeast(1)},
	{Name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", Type: Long, Default: "100", Doc: "Accepted for compatibility; a failed JWKS fetch is retried at the next token.", Check: atLeast(0)},
	{Name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", Type: Long, Default: "10000", Doc: "Accepted for compatibility.", Check: atLeast(0)},
	{Name: "sasl.oauthbearer.expected.audience", Type: List, Default: "", Doc: "When set, a token's aud must contain one of these."},
	{Name: "sasl.oauthbearer.expected.issuer", Type: String, Default: "", Doc: "When set, a token's iss must equal it."},
	{Name: "sasl.oauthbearer.sub.claim.name", Type: String, Default: "sub", Doc: "The claim holding the principal name."},
	{Name: "sasl.oauthbearer.scope.claim.name", Type: String, Default: "scope", Doc: "The claim holding the token's scope (accepted; scopes are not checked)."},
	{Name: "sasl.oauthbearer.clock.skew.seconds", Type: Int, Default: "30", Doc: "Clock difference tolerated when checking exp, nbf and iat.", Check: atLeast(0)},
	{Name: "connections.max.reauth.ms", Type: Long, Default: "0", Doc: "Longest a SASL session lasts before the client must re-authenticate (KIP-368); 0 means never (a token's expiry still ends its session).", Check: atLeast(0)},
	{Name: "connection.failed.authentication.delay.ms", Type: Int, Default: "100", Doc: "How long the broker waits before answering a failed authentication and closing, to slow password guessing.", Check: atLeast(0)},
	{Name: "ssl.keystore.type", Type: String, Default: "JKS", Doc: "Only PEM is supported; Kafka's default, JKS, must be changed on every SSL listener."},
	{Name: "ssl.keystore.location", Type: String, Default: "", Doc: "PEM file holding the private key and the certificate chain; re-read when it changes, and when the same path is set again at runtime (listener.name.<listener>.ssl.keystore.location)."},
	{Name: "ssl.keystore.certificate.chain", Type: Password, Default: "", Doc: "The certificate chain as inline PEM, with ssl.keystore.key instead of ssl.keystore.location."},
	{Name: "ssl.keystore.key", Type: Password, Default: "", Doc: "The private key as inline PEM (unencrypted PKCS#8, PKCS#1 or SEC 1)."},
	{Name: "ssl.keystore.password", Type: Password, Default: "", Doc: "Accepted for compatibility; PEM key stores have none."},
	{Name: "ssl.key.password", Type: Password, Default: "", Doc: "The password of an encrypted PKCS#8 private key in the key store (ENCRYPTED PRIVATE KEY, as openssl pkcs8 -topk8 -v2 aes-256-cbc writes it). Legacy PEM encryption (Proc-Type: 4,ENCRYPTED) is not supported."},
	{Name: "ssl.truststore.type", Type: String, Default: "JKS", Doc: "Only PEM is supported; Kafka's default, JKS, must be changed where a trust store is used."},
	{Name: "ssl.truststore.location", Type: String, Default: "", Doc: "PEM file of the certificates trusted to sign client certificates; re-read when it changes."},
	{Name: "ssl.truststore.certificates", Type: Password, Default: "", Doc: "Trusted certificates as inline PEM, instead of ssl.truststore.location."},
	{Name: "ssl.truststore.password", Type: Password, Default: "", Doc: "Accepted for compatibility; PEM trust stores have none."},
	{Name: "ssl.client.auth", Type: String, Default: "none", Doc: "none, requested or required: whether an SSL listener asks for a client certificate, which then names the principal.", Check: oneOf("none", "requested", "required")},
	{Name: "ssl.enabled.protocols", Type: List, Default: "TLSv1.2,TLSv1.3", Doc: "TLS versions accepted; they must be contiguous."},
	{Name: "ssl.protocol", Type: String, Default: "TLSv1.3", Doc: "Accepted for compatibility; ssl.enabled.protocols decides."},
	{Name: "ssl.cipher.suites", Type: List, Default: "", Doc: "Cipher suites for TLS 1.2 and below, by IANA name; empty means Go's defaults. TLS 1.3 suites are not configurable."},
	{Name: "ssl.principal.mapping.rules", Type: String, Default: "DEFAULT", Doc: "How a client certificate's subject becomes the principal name: RULE:pattern/replacement/[LU] entries and DEFAULT, comma separated; the first whose pattern matches the whole subject applies."},
	{Name: "ssl.allow.dn.changes", Type: Boolean, Default: "false", Doc: "Whether a key store set at runtime (a dynamic listener.name.<listener>.ssl.keystore.* config) may hold a certificate whose subject differs from the one served; by default such a change is refused."},
	{Name: "ssl.allow.san.changes", Type: Boolean, Default: "false", Doc: "Whether a key store set at runtime may hold a certificate whose subject alternative names differ from the one served; by default such a change is refused."},
	{Name: "ssl.endpoint.identification.algorithm", Type: String, Default: "https", Doc: "For connections this node makes (inter-broker, controller): https checks the server's host name, empty does not."},
	{Name: "super.users", Type: String, Default: "", Doc: "Principals allowed everything, separated by semicolons: User:admin;User:broker."},
	{Name: "authorizer.class.name", Type: String, Default: "", Doc: "Empty (no authorization) or org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs in the metadata quorum)."},
	{Name: "allow.everyone.if.no.acl.found", Type: Boolean, Default: "false", Doc: "With the authorizer on: a resource no ACL names is open to everyone."},
}

var securityIndex = index(SecurityDefs)

// StandardAuthorizer is the authorizer.class.name value that turns ACLs on.
const StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

const oauthValidatorHandler = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"

// Kafka's security protocols.
var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// servedProtocols are the security protocols the broker serves on its
// listeners, the ones nodes use among themselves included: the peer client
// dials with TLS and logs in with SASL as the listener asks, and the raft
// transport that shares the controller listener speaks TLS there. A
// listener configured with another one stops start-up.
var servedProtocols = securityProtocols

// peerMechanisms are the SASL mechanisms this node can log in with as a
// client of another node (sasl.mechanism.inter.broker.protocol,
// sasl.mechanism.controller.protocol): those whose JAAS module carries a
// username and password. OAUTHBEARER needs a token endpoint client, which
// shoal does not have.
var peerMechanisms = []string{sasl.PLAIN, sasl.SCRAMSHA256, sasl.SCRAMSHA512}

// brokerKeyDef returns the definition of any broker key: a plain broker
// key, a security key, or a security key with a listener (and mechanism)
// prefix.
func brokerKeyDef(key string) *Def {
	if d := BrokerDef(key); d != nil {
		return d
	}
	if d := securityIndex[key]; d != nil {
		return d
	}
	rest, ok := strings.CutPrefix(key, "listener.name.")
	if !ok {
		return nil
	}
	listener, rest, ok := strings.Cut(rest, ".")
	if !ok || listener == "" || listener != strings.ToLower(listener) {
		return nil
	}
	if d := securityIndex[rest]; d != nil && listenerScoped(rest) {
		return d
	}
	if slices.Contains(listenerLimitKeys, rest) {
		return listenerLimitDef(rest)
	}
	mech, rest, ok := strings.Cut(rest, ".")
	if !ok || !slices.Contains([]string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer", "gssapi"}, mech) {
		return nil
	}
	if d := securityIndex[rest]; d != nil && strings.HasPrefix(rest, "sasl.") {
		return d
	}
	return nil
}

// listenerScoped reports whether a security key may be set per listener.
func listenerScoped(key string) bool {
	return strings.HasPrefix(key, "ssl.") || strings.HasPrefix(key, "sasl.") || key == "connections.max.reauth.ms"
}

// Security is the validated security configuration of a node.
type Security struct {
	// Listeners holds each listener's security, by listener name.
	Listeners map[string]*ListenerSecurity
	// Authorizer says whether ACLs are enforced (authorizer.class.name).
	Authorizer bool
	ACL        acl.Config
	// FailedAuthDelay is connection.failed.authentication.delay.ms.
	FailedAuthDelay time.Duration
	// MaxReceiveSize is sasl.server.max.receive.size.
	MaxReceiveSize int32
	// InterBrokerLogin and ControllerLogin are how this node logs in to
	// the inter-broker and controller listeners of other nodes; nil when
	// that listener has no SASL.
	InterBrokerLogin, ControllerLogin *PeerLogin
}

// PeerLogin is the SASL login a node uses as a client of another node, as
// Kafka takes it: the mechanism from sasl.mechanism.inter.broker.protocol
// (or sasl.mechanism.controller.protocol) and the username and password
// options of that mechanism's JAAS module on the listener
// (listener.name.<listener>.<mechanism>.sasl.jaas.config).
type PeerLogin struct {
	Mechanism, Username, Password string
}

// ListenerSecurity is one listener's security protocol and what it needs.
type ListenerSecurity struct {
	Name     string
	Protocol string
	// TLS is set for SSL and SASL_SSL.
	TLS *tlsconfig.Settings
	// Mechanisms are the SASL mechanisms offered, for SASL_PLAINTEXT and
	// SASL_SSL, each with its JAAS module (zero if none was configured).
	Mechanisms []string
	JAAS       map[string]sasl.Module
	// OAuth is set when OAUTHBEARER is offered.
	OAuth *OAuthSettings
	// MaxReauth is connections.max.reauth.ms for the listener; 0 never.
	MaxReauth time.Duration
	// DialOnly marks a listener this node does not serve but dials on
	// other nodes (the controller listener of a broker-only node): TLS
	// may lack a key store, and Mechanisms is the one it logs in with.
	DialOnly bool
}

// OAuthSettings are the sasl.oauthbearer.* keys of one listener.
type OAuthSettings struct {
	JWKSEndpoint     string
	JWKSRefresh      time.Duration
	ExpectedAudience []string
	ExpectedIssuer   string
	SubClaim         string
	ClockSkew        time.Duration
}

// lookup resolves a key for a listener and mechanism (either may be
// empty): the most specific setting wins, then the default.
func (b *Broker) lookup(listener, mech, key string) string {
	var candidates []string
	if listener != "" {
		prefix := "listener.name." + strings.ToLower(listener) + "."
		if mech != "" {
			candidates = append(candidates, prefix+strings.ToLower(mech)+"."+key)
		}
		candidates = append(candidates, prefix+key)
	}
	candidates = append(candidates, key)
	for _, k := range candidates {
		if v, ok := b.Set[k]; ok {
			return v
		}
	}
	if d := securityIndex[key]; d != nil {
		return d.Default
	}
	v, _ := b.Value(key)
	return v
}

// parseProtocolMap parses listener.security.protocol.map.
func parseProtocolMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range commalist.Split(v) {
		name, proto, ok := strings.Cut(e, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("listener.security.protocol.map: %q is not NAME:PROTOCOL", e)
		}
		if !slices.Contains(securityProtocols, proto) {
			return nil, fmt.Errorf("listener.security.protocol.map: unknown security protocol %q (want %s)", proto, strings.Join(securityProtocols, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener.security.protocol.map: listener %s is mapped twice", name)
		}
		m[name] = proto
	}
	return m, nil
}

// parseSecurity validates the security keys against the listeners.
func (b *Broker) parseSecurity(protoMap map[string]string) (*Security, error) {
	s := &Security{Listeners: map[string]*ListenerSecurity{}}
	switch cls := b.lookup("", "", "authorizer.class.name"); cls {
	case "":
	case StandardAuthorizer:
		s.Authorizer = true
	case "kafka.security.authorizer.AclAuthorizer":
		return nil, fmt.Errorf("authorizer.class.name: %s keeps ACLs in ZooKeeper; use %s", cls, StandardAuthorizer)
	default:
		return nil, fmt.Errorf("authorizer.class.name: unknown authorizer %q (want %s or empty)", cls, StandardAuthorizer)
	}
	var err error
	if s.ACL.SuperUsers, err = acl.ParseSuperUsers(b.lookup("", "", "super.users")); err != nil {
		return nil, fmt.Errorf("super.users: %w", err)
	}
	s.ACL.AllowIfNoACL = b.lookup("", "", "allow.everyone.if.no.acl.found") == "true"
	s.FailedAuthDelay = b.lookupMillis("", "", "connection.failed.authentication.delay.ms")
	s.MaxReceiveSize = int32(b.lookupInt("", "", "sasl.server.max.receive.size"))

	for _, l := range b.Listeners {
		if _, done := s.Listeners[l.Name]; done {
			continue
		}
		ls, err := b.listenerSecurity(l)
		if err != nil {
			return nil, fmt.Errorf("listener %s (%s): %w", l.Name, l.SecurityProtocol, err)
		}
		s.Listeners[l.Name] = ls
	}
	// A broker-only node dials the voters' controller listener, and a
	// controller-only node the brokers' inter-broker listener (raft to
	// learners, leader probes), neither among its own listeners: their
	// security comes from the protocol map and the listener's keys all
	// the same.
	ctrlName := firstOr(b.ControllerListeners, "")
	for _, peer := range []struct{ listener, mechKey string }{
		{ctrlName, "sasl.mechanism.controller.protocol"},
		{b.InterBrokerListener, "sasl.mechanism.inter.broker.protocol"},
	} {
		if _, ok := s.Listeners[peer.listener]; ok || peer.listener == "" {
			continue
		}
		proto := protoMap[peer.listener]
		if proto == "" && slices.Contains(securityProtocols, peer.listener) {
			proto = peer.listener // a listener named after its protocol
		}
		if proto == "" || proto == "PLAINTEXT" {
			continue
		}
		ls, err := b.dialOnlySecurity(Listener{Name: peer.listener, SecurityProtocol: proto}, peer.mechKey)
		if err != nil {
			return nil, fmt.Errorf("listener %s (%s) of the other nodes: %w", peer.listener, proto, err)
		}
		s.Listeners[peer.listener] = ls
	}
	for _, which := range []struct {
		key, listener string
		login         **PeerLogin
	}{
		{"sasl.mechanism.inter.broker.protocol", b.InterBrokerListener, &s.InterBrokerLogin},
		{"sasl.mechanism.controller.protocol", ctrlName, &s.ControllerLogin},
	} {
		ls := s.Listeners[which.listener]
		if ls == nil || ls.Mechanisms == nil {
			continue
		}
		m := b.lookup("", "", which.key)
		if !slices.Contains(ls.Mechanisms, m) {
			return nil, fmt.Errorf("%s=%s: listener %s does not enable it (sasl.enabled.mechanisms=%s)", which.key, m, which.listener, strings.Join(ls.Mechanisms, ","))
		}
		if !b.multiNode() {
			// A single node dials no peer: no login is needed.
			continue
		}
		login, err := peerLogin(which.listener, m, ls.JAAS[m])
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", which.key, m, err)
		}
		*which.login = login
	}
	return s, nil
}

// multiNode reports whether this node talks to other nodes: more than one
// voter, or a node with one role only.
func (b *Broker) multiNode() bool {
	return len(b.Voters) > 1 || !b.HasRole("broker") || !b.HasRole("controller")
}

// peerLogin is the login of mechanism mech on listener, from its JAAS
// module's username and password options, as Kafka's inter-broker client
// reads them.
func peerLogin(listener, mech string, mod sasl.Module) (*PeerLogin, error) {
	if !slices.Contains(peerMechanisms, mech) {
		return nil, fmt.Errorf("nodes cannot log in to each other with %s (only %s)", mech, strings.Join(peerMechanisms, ", "))
	}
	l := &PeerLogin{Mechanism: mech, Username: mod.Options["username"], Password: mod.Options["password"]}
	if l.Username == "" || l.Password == "" {
		return nil, fmt.Errorf("the node's own login is missing: set username=\"...\" password=\"...\" in listener.name.%s.%s.sasl.jaas.config (%s required username=\"broker\" password=\"...\";)",
			strings.ToLower(listener), strings.ToLower(mech), loginModules[mech])
	}
	return l, nil
}

// dialOnlySecurity is the security of a listener this node only dials (the
// controller listener of a broker-only node, the inter-broker listener of
// a controller-only one): a trust store and, if it has one, a key store
// for TLS; the mechanism named by mechKey and its JAAS module for SASL.
func (b *Broker) dialOnlySecurity(l Listener, mechKey string) (*ListenerSecurity, error) {
	ls := &ListenerSecurity{Name: l.Name, Protocol: l.SecurityProtocol, DialOnly: true}
	if l.SecurityProtocol == "SSL" || l.SecurityProtocol == "SASL_SSL" {
		ts, err := b.listenerTLS(l)
		if err != nil {
			return nil, err
		}
		ls.TLS = &ts
	}
	if l.SecurityProtocol != "SASL_PLAINTEXT" && l.SecurityProtocol != "SASL_SSL" {
		return ls, nil
	}
	mech := b.lookup("", "", mechKey)
	mod, _, err := b.jaasFor(l.Name, mech)
	if err != nil {
		return nil, err
	}
	ls.Mechanisms = []string{mech}
	ls.JAAS = map[string]sasl.Module{mech: mod}
	return ls, nil
}

// listenerTLS reads and validates the ssl.* settings of listener l as
// configured at start-up, each from its listener.name.<l>. override or the
// plain key.
func (b *Broker) listenerTLS(l Listener) (tlsconfig.Settings, error) {
	return b.listenerTLSWith(l.Name, nil)
}

// listenerTLSWith is listenerTLS with dynamic, this broker's dynamic
// overrides, beating the static configuration for the keys of
// DynamicSSLKeys.
func (b *Broker) listenerTLSWith(listener string, dynamic map[string]string) (tlsconfig.Settings, error) {
	prefix := "listener.name." + strings.ToLower(listener) + "."
	m := map[string]string{}
	for _, k := range tlsconfig.Keys {
		if v, ok := dynamic[prefix+k]; ok && slices.Contains(DynamicSSLKeys, k) {
			m[k] = v
			continue
		}
		m[k] = b.lookup(listener, "", k)
	}
	ts := tlsconfig.FromMap(m)
	return ts, ts.Validate()
}

func firstOr(xs []string, def string) string {
	if len(xs) == 0 {
		return def
	}
	return xs[0]
}

func (b *Broker) lookupInt(listener, mech, key string) int64 {
	var n int64
	fmt.Sscan(b.lookup(listener, mech, key), &n)
	return n
}

func (b *Broker) lookupMillis(listener, mech, key string) time.Duration {
	return time.Duration(b.lookupInt(listener, mech, key)) * time.Millisecond
}

func (b *Broker) listenerSecurity(l Listener) (*ListenerSecurity, error) {
	ls := &ListenerSecurity{Name: l.Name, Protocol: l.SecurityProtocol}
	if l.SecurityProtocol == "SSL" || l.SecurityProtocol == "SASL_SSL" {
		ts, err := b.listenerTLS(l)
		if err != nil {
			return nil, err
		}
		if ts.KeystoreLocation == "" && ts.KeystoreCertificateChain == "" {
			return nil, fmt.Errorf("a TLS listener needs ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key")
		}
		if ts.ClientAuth != "none" && ts.TruststoreLocation == "" && ts.TruststoreCertificates == "" {
			return nil, fmt.Errorf("ssl.client.auth=%s needs ssl.truststore.location or ssl.truststore.certificates", ts.ClientAuth)
		}
		ls.TLS = &ts
	}
	if l.SecurityProtocol != "SASL_PLAINTEXT" && l.SecurityProtocol != "SASL_SSL" {
		return ls, nil
	}
	ls.MaxReauth = b.lookupMillis(l.Name, "", "connections.max.reauth.ms")
	ls.Mechanisms = commalist.Split(b.lookup(l.Name, "", "sasl.enabled.mechanisms"))
	if len(ls.Mechanisms) == 0 {
		return nil, fmt.Errorf("sasl.enabled.mechanisms is empty")
	}
	ls.JAAS = map[string]sasl.Module{}
	for _, mech := range ls.Mechanisms {
		if mech == "GSSAPI" {
			return nil, fmt.Errorf("sasl.enabled.mechanisms: GSSAPI (Kerberos, Kafka's default) is not supported; set listener.name.%s.sasl.enabled.mechanisms or sasl.enabled.mechanisms to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", strings.ToLower(l.Name))
		}
		mod, found, err := b.jaasFor(l.Name, mech)
		if err != nil {
			return nil, err
		}
		if found {
			ls.JAAS[mech] = mod
		}
		switch mech {
		case sasl.PLAIN:
			if !found || len(mod.PlainUsers()) == 0 {
				return nil, fmt.Errorf("PLAIN needs users: set listener.name.%s.plain.sasl.jaas.config to %s required user_<name>=\"<password>\";", strings.ToLower(l.Name), sasl.PlainLoginModule)
			}
		case sasl.OAUTHBEARER:
			o, err := b.oauthSettings(l.Name)
			if err != nil {
				return nil, err
			}
			ls.OAuth = o
		}
	}
	return ls, nil
}

// loginModules names the JAAS login module each mechanism uses.
var loginModules = map[string]string{
	sasl.PLAIN: sasl.PlainLoginModule, sasl.SCRAMSHA256: sasl.ScramLoginModule, sasl.SCRAMSHA512: sasl.ScramLoginModule,
	sasl.OAUTHBEARER: sasl.OAuthBearerLoginModule,
}

// jaasFor finds the JAAS module of a mechanism on a listener:
// listener.name.<l>.<mech>.sasl.jaas.config, then listener.name.<l>.sasl.jaas.config
// and sasl.jaas.config when they name the mechanism's login module.
func (b *Broker) jaasFor(listener, mech string) (sasl.Module, bool, error) {
	prefix := "listener.name." + strings.ToLower(listener) + "."
	specific := prefix + strings.ToLower(mech) + ".sasl.jaas.config"
	if v, ok := b.Set[specific]; ok {
		m, err := sasl.ParseJAASConfig(v)
		if err != nil {
			return sasl.Module{}, false, fmt.Errorf("%s: %w", specific, err)
		}
		if m.LoginModule != loginModules[mech] {
			return sasl.Module{}, false, fmt.Errorf("%s: %s uses %s, not %s", specific, mech, loginModules[mech], m.LoginModule)
		}
		return m, true, nil
	}
	for _, k := range []string{prefix + "sasl.jaas.config", "sasl.jaas.config"} {
		v, ok := b.Set[k]
		if !ok {
			continue
		}
		m, err := sasl.ParseJAASConfig(v)
		if err != nil {
			return sasl.Module{}, false, fmt.Errorf("%s: %w", k, err)
		}
		if m.LoginModule == loginModules[mech] {
			return m, true, nil
		}
	}
	return sasl.Module{}, false, nil
}

func (b *Broker) oauthSettings(listener string) (*OAuthSettings, error) {
	const mech = sasl.OAUTHBEARER
	switch h := b.lookup(listener, mech, "sasl.server.callback.handler.class"); h {
	case "", oauthValidatorHandler:
	default:
		return nil, fmt.Errorf("sasl.server.callback.handler.class=%s is not supported for OAUTHBEARER (only %s)", h, oauthValidatorHandler)
	}
	o := &OAuthSettings{
		JWKSEndpoint:     b.lookup(listener, mech, "sasl.oauthbearer.jwks.endpoint.url"),
		JWKSRefresh:      b.lookupMillis(listener, mech, "sasl.oauthbearer.jwks.endpoint.refresh.ms"),
		ExpectedAudience: commalist.Split(b.lookup(listener, mech, "sasl.oauthbearer.expected.audience")),
		ExpectedIssuer:   b.lookup(listener, mech, "sasl.oauthbearer.expected.issuer"),
		SubClaim:         b.lookup(listener, mech, "sasl.oauthbearer.sub.claim.name"),
		ClockSkew:        time.Duration(b.lookupInt(listener, mech, "sasl.oauthbearer.clock.skew.seconds")) * time.Second,
	}
	if o.JWKSEndpoint == "" {
		return nil, fmt.Errorf("OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (an https or file: URL of the signing keys)")
	}
	if _, err := sasl.NewJWKS(o.JWKSEndpoint, o.JWKSRefresh, nil); err != nil {
		return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url: %w", err)
	}
	if o.SubClaim == "" {
		return nil, fmt.Errorf("sasl.oauthbearer.sub.claim.name must not be empty")
	}
	return o, nil
}
