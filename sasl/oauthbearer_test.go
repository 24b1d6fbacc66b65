package sasl

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/shoalmq/shoal/internal/testcerts"
)

func clientFirst(authz, token string) []byte {
	h := "n,,"
	if authz != "" {
		h = "n,a=" + authz + ","
	}
	return []byte(h + "\x01auth=Bearer " + token + "\x01\x01")
}

func TestOAuthBearer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	is := testcerts.NewIssuer(t, "k1")
	stranger := testcerts.NewIssuer(t, "k1") // same kid, other key: a forged signature
	keys, err := NewJWKS("file://"+is.File(t), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &TokenValidator{Keys: keys, ExpectedAudience: []string{"kafka", "other"}, ExpectedIssuer: "https://idp", ClockSkew: 30 * time.Second, Now: func() time.Time { return now }}
	good := map[string]any{"sub": "alice", "aud": []string{"kafka"}, "iss": "https://idp", "exp": now.Add(time.Hour), "iat": now}
	with := func(k string, val any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	m := NewOAuthBearer(v)
	for _, tc := range []struct {
		name  string
		msg   []byte
		ok    bool
		claim string
	}{
		{name: "valid", msg: clientFirst("", is.Token(good)), ok: true},
		{name: "valid with matching authzid", msg: clientFirst("alice", is.Token(good)), ok: true},
		{name: "expired", msg: clientFirst("", is.Token(with("exp", now.Add(-time.Minute))))},
		{name: "expired within the skew", msg: clientFirst("", is.Token(with("exp", now.Add(-10*time.Second)))), ok: true},
		{name: "no exp", msg: clientFirst("", is.Token(with("exp", nil)))},
		{name: "not yet valid", msg: clientFirst("", is.Token(with("nbf", now.Add(time.Hour))))},
		{name: "wrong audience", msg: clientFirst("", is.Token(with("aud", []string{"web"})))},
		{name: "second expected audience", msg: clientFirst("", is.Token(with("aud", []string{"web", "other"}))), ok: true},
		{name: "no audience", msg: clientFirst("", is.Token(with("aud", nil)))},
		{name: "wrong issuer", msg: clientFirst("", is.Token(with("iss", "https://evil")))},
		{name: "no subject", msg: clientFirst("", is.Token(with("sub", nil)))},
		{name: "badly signed", msg: clientFirst("", stranger.Token(good))},
		{name: "unsigned", msg: clientFirst("", unsignedToken(t, good))},
		{name: "garbage token", msg: clientFirst("", "not.a.jwt")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := m.Start()
			out, err := x.Step(tc.msg)
			if tc.ok {
				if err != nil || !x.Done() || len(out) != 0 {
					t.Fatalf("Step = %q, %v, done %v", out, err, x.Done())
				}
				p, exp := x.Outcome()
				if p != "alice" || exp.IsZero() {
					t.Fatalf("Outcome = %q, %v", p, exp)
				}
				return
			}
			// RFC 7628: the server answers with a JSON status, the client
			// acknowledges with a kvsep, and the exchange fails.
			if err != nil || x.Done() || !strings.Contains(string(out), `"status"`) {
				t.Fatalf("first Step = %q, %v, done %v; want a JSON error status", out, err, x.Done())
			}
			if _, err := x.Step([]byte("\x01")); !IsAuthError(err) || !x.Done() {
				t.Fatalf("after the ack: %v, done %v", err, x.Done())
			}
			if p, _ := x.Outcome(); p != "" {
				t.Fatalf("failed exchange has principal %q", p)
			}
		})
	}

	t.Run("expiry gives the session lifetime", func(t *testing.T) {
		x := m.Start()
		if _, err := x.Step(clientFirst("", is.Token(good))); err != nil {
			t.Fatal(err)
		}
		_, exp := x.Outcome()
		if got := SessionLifetime(now, exp, 0); got != time.Hour {
			t.Fatalf("lifetime = %v, want 1h", got)
		}
	})

	t.Run("custom sub claim", func(t *testing.T) {
		v2 := *v
		v2.SubClaim = "client_id"
		x := NewOAuthBearer(&v2).Start()
		if _, err := x.Step(clientFirst("", is.Token(with("client_id", "svc")))); err != nil {
			t.Fatal(err)
		}
		if p, _ := x.Outcome(); p != "svc" {
			t.Fatalf("principal = %q, want svc", p)
		}
	})

	t.Run("authzid of someone else fails at once", func(t *testing.T) {
		x := m.Start()
		_, err := x.Step(clientFirst("bob", is.Token(good)))
		const want = "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)"
		if !IsAuthError(err) || err.Error() != want || !x.Done() {
			t.Fatalf("err %v, done %v; want %q", err, x.Done(), want)
		}
	})

	t.Run("another token after an error status", func(t *testing.T) {
		x := m.Start()
		if out, err := x.Step(clientFirst("", is.Token(with("aud", nil)))); err != nil || !strings.Contains(string(out), `"invalid_token"`) {
			t.Fatalf("bad token: %q, %v", out, err)
		}
		if _, err := x.Step(clientFirst("", is.Token(good))); err != nil || !x.Done() {
			t.Fatalf("good token after the error status: %v, done %v", err, x.Done())
		}
		if p, _ := x.Outcome(); p != "alice" {
			t.Fatalf("principal %q", p)
		}
	})

	t.Run("malformed client message fails at once", func(t *testing.T) {
		x := m.Start()
		if _, err := x.Step([]byte("y,,\x01auth=Bearer x\x01\x01")); !IsAuthError(err) || !x.Done() {
			t.Fatalf("err %v, done %v", err, x.Done())
		}
	})
}

func unsignedToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		_ = tok.Set(k, v)
	}
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b []byte) string { return strings.TrimRight(encodeB64URL(b), "=") }
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "."
}

func TestJWKSFileReload(t *testing.T) {
	a, b := testcerts.NewIssuer(t, "a"), testcerts.NewIssuer(t, "b")
	path := a.File(t)
	keys, err := NewJWKS("file://"+path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &TokenValidator{Keys: keys}
	claims := map[string]any{"sub": "u", "exp": time.Now().Add(time.Hour)}
	if _, _, err := v.Validate(t.Context(), a.Token(claims)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Validate(t.Context(), b.Token(claims)); err == nil {
		t.Fatal("key b is not in the set yet")
	}
	// Rotate: the file now holds b's key (bigger, so the change shows even
	// within one mtime tick).
	rotated := []byte(strings.Replace(string(b.JWKS), `{"keys":[`, `{"keys":[`+strings.TrimSuffix(strings.TrimPrefix(string(a.JWKS), `{"keys":[`), "]}")+",", 1))
	if err := os.WriteFile(path, rotated, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Validate(t.Context(), b.Token(claims)); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if _, _, err := v.Validate(t.Context(), a.Token(claims)); err != nil {
		t.Fatalf("a is still in the rotated set: %v", err)
	}
	// A broken file keeps the last good set.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Validate(t.Context(), b.Token(claims)); err != nil {
		t.Fatalf("a broken file must not drop the keys: %v", err)
	}
}

func TestJWKSURL(t *testing.T) {
	is := testcerts.NewIssuer(t, "k")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(is.JWKS)
	}))
	defer srv.Close()
	keys, err := NewJWKS(srv.URL, time.Hour, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	v := &TokenValidator{Keys: keys}
	for range 3 {
		if _, _, err := v.Validate(t.Context(), is.Token(map[string]any{"sub": "u", "exp": time.Now().Add(time.Hour)})); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("JWKS fetched %d times within the refresh interval, want 1", hits.Load())
	}
	for _, bad := range []string{"ftp://x/y", "file://", "::"} {
		if _, err := NewJWKS(bad, 0, nil); err == nil {
			t.Errorf("NewJWKS(%q) accepted", bad)
		}
	}
}

func TestParseOAuthBearerClientFirst(t *testing.T) {
	m, err := ParseOAuthBearerClientFirst([]byte("n,a=us=2Cer=3D,\x01host=h\x01auth=bearer  tok.en.x\x01port=9\x01\x01"))
	if err != nil {
		t.Fatal(err)
	}
	if m.AuthzID != "us,er=" || m.Token != "tok.en.x" || m.Extensions["host"] != "h" || m.Extensions["port"] != "9" {
		t.Fatalf("parsed %+v", m)
	}
	for _, bad := range []string{
		"", "n,,", "n,,\x01\x01", "n,,\x01auth=Bearer t\x01", "p=x,,\x01auth=Bearer t\x01\x01", "y,,\x01auth=Bearer t\x01\x01",
		"n,a=,\x01auth=Bearer t\x01\x01", "n,b=x,\x01auth=Bearer t\x01\x01", "n,,\x01auth=Basic t\x01\x01",
		"n,,\x01auth=Bearer \x01\x01", "n,,\x01auth=Bearer a b\x01\x01", "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
		"n,,\x011x=y\x01auth=Bearer t\x01\x01", "n,,\x01noequals\x01auth=Bearer t\x01\x01", "n,a=x=4,\x01auth=Bearer t\x01\x01",
	} {
		if m, err := ParseOAuthBearerClientFirst([]byte(bad)); err == nil {
			t.Errorf("%q parsed as %+v", bad, m)
		}
	}
}

func encodeB64URL(b []byte) string { return base64.URLEncoding.EncodeToString(b) }
