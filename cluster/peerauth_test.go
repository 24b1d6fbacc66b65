package cluster

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// saslResponder answers SaslHandshake and SaslAuthenticate (with authErr
// and a session lifetime) and Metadata otherwise, recording the keys it
// was sent.
func saslResponder(t *testing.T, authErr int16, lifetime time.Duration) (*responder, func() []int16) {
	var mu sync.Mutex
	var keys []int16
	r := startResponder(t, func(key, version int16, corr int32) []byte {
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		switch key {
		case 17:
			resp := kmsg.NewPtrSASLHandshakeResponse()
			resp.SetVersion(version)
			resp.SupportedMechanisms = []string{"PLAIN"}
			return responseFrame(corr, false, resp.AppendTo(nil))
		case 36:
			resp := kmsg.NewPtrSASLAuthenticateResponse()
			resp.SetVersion(version)
			resp.ErrorCode = authErr
			resp.SessionLifetimeMillis = lifetime.Milliseconds()
			return responseFrame(corr, resp.IsFlexible(), resp.AppendTo(nil))
		}
		return metadataAnswer(key, version, corr)
	})
	return r, func() []int16 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(keys)
	}
}

// A connection to a SASL listener logs in (SaslHandshake, then
// SaslAuthenticate) before its first request, and only then.
func TestPeersLogInBeforeTheFirstRequest(t *testing.T) {
	r, sent := saslResponder(t, 0, 0)
	pool := testPool(t, r)
	pool.cfg.Broker.SASL = plain.Auth{User: "broker", Pass: "broker-secret"}.AsMechanism()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if _, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest()); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sent(), []int16{17, 36, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("keys sent %v, want %v", got, want)
	}
	if n := r.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// A refused login fails the request without sending it, and names why.
func TestPeersRefusedLogin(t *testing.T) {
	r, sent := saslResponder(t, kerr.SaslAuthenticationFailed.Code, 0)
	pool := testPool(t, r)
	pool.cfg.Broker.SASL = plain.Auth{User: "broker", Pass: "wrong"}.AsMechanism()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest())
	if err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("err = %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if got := sent(); slices.Contains(got, 3) {
		t.Errorf("keys sent %v: the request went out on a connection that did not log in", got)
	}
}

// A session with a lifetime (KIP-368) is renewed, on a new connection,
// before it runs out.
func TestPeersRenewSessionBeforeItsLifetime(t *testing.T) {
	r, sent := saslResponder(t, 0, time.Minute)
	pool := testPool(t, r)
	pool.cfg.Broker.SASL = plain.Auth{User: "broker", Pass: "broker-secret"}.AsMechanism()
	clock := time.Unix(1000, 0)
	pool.now = func() time.Time { return clock }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	request := func() {
		t.Helper()
		if _, err := pool.Peers(LaneShare).Request(ctx, 2, metadataRequest()); err != nil {
			t.Fatal(err)
		}
	}
	request()
	clock = clock.Add(50 * time.Second) // within 85% of the minute
	request()
	clock = clock.Add(2 * time.Second) // past it
	request()
	if got, want := sent(), []int16{17, 36, 3, 3, 17, 36, 3}; !slices.Equal(got, want) {
		t.Errorf("keys sent %v, want %v", got, want)
	}
	if n := r.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
