package broker

// Connection security: what each listener's security protocol asks of a
// connection before its first request is served (a TLS handshake, SASL
// authentication), the principal that results, and the authorizer that
// decides from the metadata image's ACLs what that principal may do.

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/sasl"
	"github.com/shoalmq/shoal/tlsconfig"
)

// listenerAuth is what a connection on one listener goes through before
// it is served.
type listenerAuth struct {
	protocol string
	// tls is the listener's server configuration (SSL, SASL_SSL); store
	// maps a client certificate to a principal.
	tls   *tls.Config
	store *tlsconfig.Store
	// mechs are the SASL mechanisms offered (SASL_PLAINTEXT, SASL_SSL);
	// nil on a listener without SASL.
	mechs     []sasl.Mechanism
	maxReauth time.Duration
	// refused are the dynamic TLS settings last found unusable, so the
	// refusal is logged once (guarded by the server's applyMu).
	refused *tlsconfig.Settings
}

// security is a node's connection security and its authorizer.
type security struct {
	listeners map[string]*listenerAuth
	// enforce is authorizer.class.name set to the StandardAuthorizer:
	// without it every principal may do everything, as in Kafka.
	enforce bool
	acl     acl.Config
	// failedAuthDelay is connection.failed.authentication.delay.ms.
	failedAuthDelay time.Duration
	maxReceive      int
	// authTimeout bounds the TLS handshake and the SASL exchange of a new
	// connection (socket.request.read.timeout.ms): an unauthenticated
	// connection counts against max.connections, so it must not linger.
	authTimeout time.Duration
	// audit is the authorizer's log (component "authorizer").
	audit *slog.Logger
	meta  func() *raftmeta.Image
	// interBrokerLogin and controllerLogin are this node's SASL logins to
	// the inter-broker and controller listeners of other nodes; nil where
	// those listeners have no SASL.
	interBrokerLogin, controllerLogin *config.PeerLogin
	// authorizer caches the authorizer built from one image's ACLs; a new
	// image builds a new one on the first check that sees it.
	authorizer atomic.Pointer[imageAuthorizer]
}

type imageAuthorizer struct {
	img *raftmeta.Image
	az  *acl.Authorizer
}

// newSecurity builds every listener's TLS configuration and SASL
// mechanisms from the validated configuration. image is the metadata
// image, where SCRAM credentials and ACLs live.
func newSecurity(cfg *config.Broker, log *slog.Logger, image func() *raftmeta.Image) (*security, error) {
	sec := &security{
		listeners:   map[string]*listenerAuth{},
		audit:       log.With("component", "authorizer"),
		meta:        image,
		authTimeout: cfg.RequestReadTimeout,
	}
	cs := cfg.Security
	if cs == nil {
		return sec, nil
	}
	sec.enforce = cs.Authorizer
	sec.acl = cs.ACL
	sec.failedAuthDelay = cs.FailedAuthDelay
	sec.maxReceive = int(cs.MaxReceiveSize)
	sec.interBrokerLogin, sec.controllerLogin = cs.InterBrokerLogin, cs.ControllerLogin
	for name, ls := range cs.Listeners {
		la := &listenerAuth{protocol: ls.Protocol, maxReauth: ls.MaxReauth}
		if ls.TLS != nil {
			st, err := tlsconfig.NewStore(*ls.TLS)
			if err != nil {
				return nil, fmt.Errorf("listener %s: %w", name, err)
			}
			st.OnReloadError = func(err error) {
				log.Warn("TLS certificates changed but could not be loaded; the previous ones stay in use", "listener", name, "err", err)
			}
			la.store = st
			if !ls.DialOnly {
				if la.tls, err = st.ServerConfig(); err != nil {
					return nil, fmt.Errorf("listener %s: %w", name, err)
				}
			}
		}
		if ls.DialOnly {
			// Only dialled (peerSecurity): nothing is served on it.
			sec.listeners[name] = la
			continue
		}
		for _, m := range ls.Mechanisms {
			mech, err := newMechanism(m, ls, image)
			if err != nil {
				return nil, fmt.Errorf("listener %s: %s: %w", name, m, err)
			}
			la.mechs = append(la.mechs, mech)
		}
		sec.listeners[name] = la
	}
	return sec, nil
}

// newMechanism builds the server side of one SASL mechanism of a listener.
func newMechanism(name string, ls *config.ListenerSecurity, image func() *raftmeta.Image) (sasl.Mechanism, error) {
	switch name {
	case sasl.PLAIN:
		return sasl.NewPlainFromJAAS(ls.JAAS[name]), nil
	case sasl.SCRAMSHA256, sasl.SCRAMSHA512:
		mech, err := sasl.ParseScramMechanism(name)
		if err != nil {
			return nil, err
		}
		return sasl.NewScram(mech, imageCredentials(image))
	case sasl.OAUTHBEARER:
		o := ls.OAuth
		keys, err := sasl.NewJWKS(o.JWKSEndpoint, o.JWKSRefresh, nil)
		if err != nil {
			return nil, err
		}
		return sasl.NewOAuthBearer(&sasl.TokenValidator{
			Keys: keys, ExpectedAudience: o.ExpectedAudience, ExpectedIssuer: o.ExpectedIssuer,
			SubClaim: o.SubClaim, ClockSkew: o.ClockSkew,
		}), nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism")
}

// imageCredentials looks SCRAM credentials up in the current metadata
// image, so a credential altered through AlterUserScramCredentials applies
// to the next authentication.
type imageCredentials func() *raftmeta.Image

func (f imageCredentials) ScramCredential(user string, mech sasl.ScramMechanism) (sasl.ScramCredential, bool) {
	img := f()
	if img == nil {
		return sasl.ScramCredential{}, false
	}
	c, ok := img.ScramCredential(user, int8(mech))
	if !ok {
		return sasl.ScramCredential{}, false
	}
	return sasl.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}, true
}

// listener returns the security of a listener; a listener the security
// configuration does not know (none in tests) is PLAINTEXT.
func (sec *security) listener(name string) *listenerAuth {
	if sec == nil {
		return &listenerAuth{protocol: "PLAINTEXT"}
	}
	if la := sec.listeners[name]; la != nil {
		return la
	}
	return &listenerAuth{protocol: "PLAINTEXT"}
}

// authorize decides whether principal, connecting from host, may perform
// op on res, and writes the audit line: every denial at info level, every
// grant at debug, worded like Kafka's kafka.authorizer.logger. Without an
// authorizer configured everything is allowed and nothing is logged.
func (sec *security) authorize(principal acl.Principal, host string, op acl.Operation, res acl.Resource, api string) bool {
	return sec.decide(principal, host, op, res, api, true)
}

// decide is authorize with the denial's audit line optional: a check
// that only widens another (CreateTopics' CLUSTER CREATE before TOPIC
// CREATE) is not a refusal, and Kafka does not log it as one.
func (sec *security) decide(principal acl.Principal, host string, op acl.Operation, res acl.Resource, api string, logDenied bool) bool {
	if sec == nil || !sec.enforce {
		return true
	}
	d := sec.current().Authorize(principal, host, op, res)
	if d.Allowed {
		if sec.audit.Enabled(context.Background(), slog.LevelDebug) {
			sec.audit.Debug(acl.AuditMessage(principal, host, op, res, api, d))
		}
		return true
	}
	if logDenied {
		sec.audit.Info(acl.AuditMessage(principal, host, op, res, api, d))
	}
	return false
}

// current returns the authorizer over the newest image's ACLs. Before
// there is an image (a raft login while the node starts) only super.users
// are allowed, as Kafka's StandardAuthorizer allows no one else until it
// has loaded the metadata.
func (sec *security) current() *acl.Authorizer {
	img := sec.meta()
	if c := sec.authorizer.Load(); c != nil && c.img == img {
		return c.az
	}
	var az *acl.Authorizer
	if img == nil {
		az = acl.New(nil, acl.Config{SuperUsers: sec.acl.SuperUsers})
	} else {
		az = img.Authorizer(sec.acl)
	}
	c := &imageAuthorizer{img: img, az: az}
	sec.authorizer.Store(c)
	return c.az
}

// tlsPrincipal is the principal of a TLS connection without SASL: its
// client certificate's mapped subject, or ANONYMOUS.
func (la *listenerAuth) tlsPrincipal(cs tls.ConnectionState) (acl.Principal, error) {
	name, err := la.store.Principal(cs)
	if err != nil {
		return acl.Principal{}, err
	}
	return acl.User(name), nil
}

// hostOf is a connection's peer address as ACL hosts name it: the IP
// without a port.
func hostOf(nc net.Conn) string {
	if ip := remoteIP(nc); ip != "" {
		return ip
	}
	return nc.RemoteAddr().String()
}

// peerSecurity is how this node connects to listener on other nodes: TLS
// verified against the listener's trust store, presenting its key store
// as the client certificate (the principal other nodes see on SSL), and
// on a SASL listener the login of config.PeerLogin (Kafka's username and
// password of the listener's JAAS module). Zero means PLAINTEXT.
func (sec *security) peerSecurity(listener string, login *config.PeerLogin) cluster.PeerSecurity {
	var ps cluster.PeerSecurity
	if st := sec.listener(listener).store; st != nil {
		ps.TLS = st.ClientConfig
	}
	if login == nil {
		return ps
	}
	switch login.Mechanism {
	case sasl.PLAIN:
		ps.SASL = plain.Auth{User: login.Username, Pass: login.Password}.AsMechanism()
	case sasl.SCRAMSHA256:
		ps.SASL = scram.Auth{User: login.Username, Pass: login.Password}.AsSha256Mechanism()
	case sasl.SCRAMSHA512:
		ps.SASL = scram.Auth{User: login.Username, Pass: login.Password}.AsSha512Mechanism()
	}
	return ps
}
