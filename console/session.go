package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaConn is the console's Kafka client for one principal: the node's
// listener, dialed as the person using the console (or, without SASL,
// as whoever the listener makes of a client without credentials).
type kafkaConn struct {
	user string // "" without a login
	cl   *kgo.Client
	adm  *kadm.Client
	// opts dial the broker as this principal; a browse opens a client of
	// its own with them.
	opts []kgo.Opt
}

func newKafkaConn(user string, opts []kgo.Opt) (*kafkaConn, error) {
	cl, err := kgo.NewClient(append(slices.Clip(opts), kgo.ClientID("shoal-console"),
		kgo.RequestTimeoutOverhead(requestTimeout),
		// Redrive produces to the partition a dead letter came from.
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, err
	}
	return &kafkaConn{user: user, cl: cl, adm: kadm.NewClient(cl), opts: opts}, nil
}

func (k *kafkaConn) close() { k.cl.Close() }

// The limits of a login session. A session holds a Kafka client that
// keeps the password (SASL re-authentication needs it), so it ends after
// sessionIdle without a request and sessionMax in any case, and the table
// holds at most maxSessions: a new login past that ends the session used
// least recently.
const (
	sessionIdle   = 30 * time.Minute
	sessionMax    = 12 * time.Hour
	maxSessions   = 64
	sessionCookie = "shoal_console_session"
)

// session is one person logged in to the console.
type session struct {
	conn     *kafkaConn
	created  time.Time
	lastUsed time.Time
}

// sessions is the server-side session table, keyed by the random id the
// browser holds in an HttpOnly cookie. Lock order: sessions.mu is taken
// alone; clients are closed after it is released.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	now  func() time.Time
}

func newSessions() *sessions {
	return &sessions{byID: map[string]*session{}, now: time.Now}
}

// add stores a session for conn and returns its id, ending expired
// sessions and, past maxSessions, the least recently used one.
func (s *sessions) add(conn *kafkaConn) string {
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	now := s.now()
	ended := s.expiredLocked(now)
	if len(s.byID) >= maxSessions {
		var oldest string
		for sid, se := range s.byID {
			if oldest == "" || se.lastUsed.Before(s.byID[oldest].lastUsed) {
				oldest = sid
			}
		}
		ended = append(ended, s.byID[oldest].conn)
		delete(s.byID, oldest)
	}
	s.byID[id] = &session{conn: conn, created: now, lastUsed: now}
	s.mu.Unlock()
	closeAll(ended)
	return id
}

// get returns the session's connection and marks it used; nil when the
// id is unknown or the session expired.
func (s *sessions) get(id string) *kafkaConn {
	s.mu.Lock()
	now := s.now()
	ended := s.expiredLocked(now)
	se := s.byID[id]
	if se != nil {
		se.lastUsed = now
	}
	s.mu.Unlock()
	closeAll(ended)
	if se == nil {
		return nil
	}
	return se.conn
}

// latest is the connection of the session used most recently (nil when
// there is none): the sampler reads lag as that person.
func (s *sessions) latest() *kafkaConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *session
	for _, se := range s.byID {
		if best == nil || se.lastUsed.After(best.lastUsed) {
			best = se
		}
	}
	if best == nil {
		return nil
	}
	return best.conn
}

// remove ends a session.
func (s *sessions) remove(id string) {
	s.mu.Lock()
	se := s.byID[id]
	delete(s.byID, id)
	s.mu.Unlock()
	if se != nil {
		se.conn.close()
	}
}

// closeAll ends every session.
func (s *sessions) closeAll() {
	s.mu.Lock()
	var ended []*kafkaConn
	for id, se := range s.byID {
		ended = append(ended, se.conn)
		delete(s.byID, id)
	}
	s.mu.Unlock()
	closeAll(ended)
}

// expiredLocked removes the sessions past their idle or total lifetime
// and returns their connections for the caller to close after unlocking.
func (s *sessions) expiredLocked(now time.Time) []*kafkaConn {
	var ended []*kafkaConn
	for id, se := range s.byID {
		if now.Sub(se.lastUsed) > sessionIdle || now.Sub(se.created) > sessionMax {
			ended = append(ended, se.conn)
			delete(s.byID, id)
		}
	}
	return ended
}

func closeAll(conns []*kafkaConn) {
	for _, k := range conns {
		k.close()
	}
}

// errLogin answers an API call that needs a login first.
var errLogin = &apiError{http.StatusUnauthorized, "log in with your Kafka credentials"}

// conn is the Kafka connection an API request acts through: the shared
// one without SASL, else the one of the request's session.
func (c *Console) conn(r *http.Request) (*kafkaConn, error) {
	if !c.loginRequired() {
		return c.shared, nil
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errLogin
	}
	if k := c.sessions.get(ck.Value); k != nil {
		return k, nil
	}
	return nil, errLogin
}

// loginRequired: the listener the console uses authenticates with SASL,
// so each person logs in as themselves.
func (c *Console) loginRequired() bool { return len(c.cfg.SASLMechanisms) > 0 }

// saslMechanism is the client side of a mechanism the listener offers;
// nil for one the console cannot log in with (OAUTHBEARER needs a token
// from an identity provider, not a password).
func saslMechanism(name, user, password string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
	return nil
}

type loginReq struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// login checks the credentials against the broker, trying each mechanism
// the listener offers (a user may have a SCRAM credential for one hash
// only), and on the first that authenticates opens a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.loginRequired() {
		reply(w, nil, badRequest("this listener has no SASL: there is nothing to log in to"))
		return
	}
	if r.Header.Get("X-Shoal-Console") != "1" {
		reply(w, nil, &apiError{http.StatusForbidden, "missing X-Shoal-Console header"})
		return
	}
	var req loginReq
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWriteBody))
	if err != nil || json.Unmarshal(body, &req) != nil || req.User == "" {
		reply(w, nil, badRequest("want {user, password}"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	var lastErr error = errors.New("no mechanism the console can log in with (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
	for _, name := range c.cfg.SASLMechanisms {
		mech := saslMechanism(name, req.User, req.Password)
		if mech == nil {
			continue
		}
		k, err := newKafkaConn(req.User, append(slices.Clip(c.base), kgo.SASL(mech)))
		if err != nil {
			reply(w, nil, err)
			return
		}
		if err := authenticate(ctx, k); err != nil {
			k.close()
			lastErr = err
			continue
		}
		id := c.sessions.add(k)
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/ui/", MaxAge: int(sessionMax / time.Second),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overHTTPS(r)})
		c.cfg.Log.Info("console: logged in", "user", req.User, "mechanism", name, "remote", r.RemoteAddr)
		reply(w, map[string]string{"user": req.User}, nil)
		return
	}
	c.cfg.Log.Info("console: login refused", "user", req.User, "err", lastErr, "remote", r.RemoteAddr)
	reply(w, nil, &apiError{http.StatusUnauthorized, "login failed: " + lastErr.Error()})
}

// authenticate makes one request, which logs the client in first: a
// Metadata request for no topics.
func authenticate(ctx context.Context, k *kafkaConn) error {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// overHTTPS: the browser reached the console over HTTPS, directly or
// through a TLS proxy (X-Forwarded-Proto). Then the cookie is Secure, so
// the browser never sends it over plain HTTP. Trusting the header can only
// make the cookie stricter.
func overHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Shoal-Console") != "1" {
		reply(w, nil, &apiError{http.StatusForbidden, "missing X-Shoal-Console header"})
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.remove(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overHTTPS(r)})
	reply(w, map[string]bool{"ok": true}, nil)
}
