package sasl

import (
	"testing"
	"time"
)

func plainMsg(user, pass string) []byte { return []byte("\x00" + user + "\x00" + pass) }

func newTestSession(maxReauth time.Duration) *Session {
	plain := NewPlain(map[string]string{"alice": "a-pw", "bob": "b-pw"})
	return NewSession([]Mechanism{plain}, maxReauth, 1024)
}

func TestSessionAuthenticates(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newTestSession(time.Minute)
	for _, k := range []int16{0, 1, 3, keySaslAuthenticate} {
		if s.Admit(k, now) {
			t.Fatalf("API %d admitted before authentication", k)
		}
	}
	// Admit refused a request, but that does not fail the session itself:
	// the front end closes the connection.
	s = newTestSession(time.Minute)
	if !s.Admit(keyApiVersions, now) || !s.Admit(keySaslHandshake, now) {
		t.Fatal("ApiVersions and SaslHandshake must be admitted first")
	}
	if r := s.Handshake(PLAIN, now); r.ErrorCode != 0 || r.Close {
		t.Fatalf("handshake: %+v", r)
	}
	if !s.Admit(keySaslAuthenticate, now) || s.Admit(0, now) {
		t.Fatal("after the handshake only SaslAuthenticate (and ApiVersions, SaslHandshake) may come")
	}
	r := s.Authenticate(plainMsg("alice", "a-pw"), now)
	if r.ErrorCode != 0 || r.Close || r.SessionLifetime != time.Minute || s.Principal() != "alice" {
		t.Fatalf("authenticate: %+v, principal %q", r, s.Principal())
	}
	if !s.Admit(0, now.Add(59*time.Second)) {
		t.Fatal("Produce refused within the session")
	}
	if s.Admit(0, now.Add(time.Minute)) {
		t.Fatal("Produce admitted after the session expired")
	}
	if s.Admit(keyApiVersions, now.Add(time.Minute)) {
		t.Fatal("an expired session is over")
	}
}

func TestSessionFailures(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newTestSession(0)
	s.Handshake(PLAIN, now)
	r := s.Authenticate(plainMsg("alice", "wrong"), now)
	if r.ErrorCode != codeAuthFailed || !r.Close || r.ErrorMessage == "" || s.Principal() != "" {
		t.Fatalf("wrong password: %+v", r)
	}
	if s.Admit(keyApiVersions, now) {
		t.Fatal("a failed session admitted a request")
	}

	s = newTestSession(0)
	if r := s.Authenticate(plainMsg("alice", "a-pw"), now); r.ErrorCode != codeIllegalState || !r.Close {
		t.Fatalf("authenticate before handshake: %+v", r)
	}

	s = newTestSession(0)
	s.Handshake(PLAIN, now)
	if r := s.Handshake(PLAIN, now); r.ErrorCode != codeIllegalState || !r.Close {
		t.Fatalf("second handshake mid-exchange: %+v", r)
	}

	s = newTestSession(0)
	s.Handshake(PLAIN, now)
	if r := s.Authenticate(make([]byte, 2000), now); r.ErrorCode != codeAuthFailed || !r.Close {
		t.Fatalf("oversized token: %+v", r)
	}

	// No lifetime without connections.max.reauth.ms or an expiring credential.
	s = newTestSession(0)
	s.Handshake(PLAIN, now)
	if r := s.Authenticate(plainMsg("bob", "b-pw"), now); r.SessionLifetime != 0 || !s.Admit(0, now.Add(1000*time.Hour)) {
		t.Fatalf("session without reauth: %+v", r)
	}
}

func TestSessionReauthentication(t *testing.T) {
	now := time.Unix(1000, 0)
	login := func() *Session {
		s := newTestSession(time.Minute)
		s.Handshake(PLAIN, now)
		if r := s.Authenticate(plainMsg("alice", "a-pw"), now); r.ErrorCode != 0 {
			t.Fatal(r)
		}
		return s
	}

	s := login()
	later := now.Add(50 * time.Second)
	if r := s.Handshake(PLAIN, later); r.ErrorCode != 0 {
		t.Fatalf("re-authentication handshake: %+v", r)
	}
	if s.Principal() != "alice" || !s.Admit(0, later) {
		t.Fatal("during re-authentication the old session still serves")
	}
	if r := s.Authenticate(plainMsg("alice", "a-pw"), later); r.ErrorCode != 0 || r.SessionLifetime != time.Minute {
		t.Fatalf("re-authentication: %+v", r)
	}
	if !s.Admit(0, now.Add(100*time.Second)) {
		t.Fatal("the re-authenticated session did not get a new expiry")
	}

	s = login()
	s.Handshake(PLAIN, later)
	if r := s.Authenticate(plainMsg("bob", "b-pw"), later); r.ErrorCode != codeAuthFailed || !r.Close || r.ErrorMessage != "Cannot change principals during re-authentication from User.alice: User.bob" {
		t.Fatalf("re-authentication as another user: %+v", r)
	}

	s = login()
	if r := s.Handshake(OAUTHBEARER, later); r.ErrorCode != codeUnsupportedMechanism || !r.Close || s.Admit(0, now) {
		t.Fatalf("re-authentication with a disabled mechanism: %+v", r)
	}

	// A mechanism change is refused even when both are enabled.
	plain := NewPlain(map[string]string{"alice": "a-pw"})
	scramM, _ := NewScram(ScramSHA256, scramStore(t, ScramSHA256, "alice", "a-pw"))
	s = NewSession([]Mechanism{scramM, plain}, time.Minute, 0)
	s.Handshake(PLAIN, now)
	s.Authenticate(plainMsg("alice", "a-pw"), now)
	if r := s.Handshake(SCRAMSHA256, later); r.ErrorCode != 0 {
		t.Fatalf("re-authentication handshake with another enabled mechanism: %+v", r)
	}
	// Kafka refuses the first token, without running the exchange.
	const want = "SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'PLAIN'"
	if r := s.Authenticate([]byte("n,,n=alice,r=abc"), later); r.ErrorCode != codeAuthFailed || !r.Close || r.ErrorMessage != want || r.AuthBytes != nil {
		t.Fatalf("re-authentication with another mechanism: %+v", r)
	}
}

// Kafka closes a connection whose handshake names a mechanism the
// listener does not enable, after answering UNSUPPORTED_SASL_MECHANISM
// with the enabled ones; the client cannot try another on it.
func TestSessionUnsupportedMechanismCloses(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newTestSession(time.Minute)
	r := s.Handshake("SCRAM-SHA-256", now)
	if r.ErrorCode != codeUnsupportedMechanism || !r.Close || len(r.Mechanisms) != 1 || r.Mechanisms[0] != PLAIN {
		t.Fatalf("unsupported mechanism: %+v", r)
	}
	if s.Admit(keySaslHandshake, now) || s.Admit(keyApiVersions, now) {
		t.Fatal("the session goes on after an unsupported mechanism")
	}
}

// After authenticating, SaslAuthenticate and a SaslHandshake that cannot
// start a re-authentication are answered ILLEGAL_SASL_STATE by Kafka's
// request handlers, and the connection goes on: a handshake starts a
// re-authentication only in a session with a lifetime (KIP-368), at most
// once a second.
func TestSessionIllegalAfterAuthentication(t *testing.T) {
	now := time.Unix(1000, 0)
	login := func(maxReauth time.Duration) *Session {
		s := newTestSession(maxReauth)
		s.Handshake(PLAIN, now)
		if r := s.Authenticate(plainMsg("alice", "a-pw"), now); r.ErrorCode != 0 {
			t.Fatal(r)
		}
		return s
	}
	s := login(0)
	if !s.Admit(keySaslAuthenticate, now) {
		t.Fatal("SaslAuthenticate after authentication closes the connection")
	}
	r := s.Authenticate(plainMsg("alice", "a-pw"), now)
	if r.ErrorCode != codeIllegalState || r.Close || r.ErrorMessage != "SaslAuthenticate request received after successful authentication" {
		t.Fatalf("SaslAuthenticate after authentication: %+v", r)
	}
	if h := s.Handshake(PLAIN, now); h.ErrorCode != codeIllegalState || h.Close {
		t.Fatalf("handshake in a session without a lifetime: %+v", h)
	}
	if s.Principal() != "alice" || !s.Admit(0, now) {
		t.Fatal("the session ended")
	}

	s = login(time.Minute)
	later := now.Add(30 * time.Second)
	if h := s.Handshake(PLAIN, later); h.ErrorCode != 0 {
		t.Fatalf("first re-authentication: %+v", h)
	}
	if r := s.Authenticate(plainMsg("alice", "a-pw"), later); r.ErrorCode != 0 {
		t.Fatalf("first re-authentication: %+v", r)
	}
	if h := s.Handshake(PLAIN, later.Add(999*time.Millisecond)); h.ErrorCode != codeIllegalState || h.Close {
		t.Fatalf("re-authentication within a second of the last: %+v", h)
	}
	if h := s.Handshake(PLAIN, later.Add(time.Second)); h.ErrorCode != 0 {
		t.Fatalf("re-authentication a second later: %+v", h)
	}
}

// runScramSession completes a SCRAM-SHA-256 exchange through a session.
func runScramSession(t *testing.T, s *Session, user, pass string, now time.Time) AuthenticateResult {
	t.Helper()
	client, _ := scramClient(user, pass)
	conv := client.NewConversation()
	msg, _ := conv.Step("")
	for range 3 { // client-first, client-final, and nothing more in SCRAM
		r := s.Authenticate([]byte(msg), now)
		if r.ErrorCode != 0 || r.SessionLifetime != 0 || r.Close {
			return r
		}
		var err error
		if msg, err = conv.Step(string(r.AuthBytes)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the SCRAM exchange did not finish")
	return AuthenticateResult{}
}
