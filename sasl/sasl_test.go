package sasl

import (
	"bytes"
	"crypto/pbkdf2"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"
)

func TestPlain(t *testing.T) {
	p := NewPlain(map[string]string{"admin": "admin-secret", "alice": "a"})
	for _, tc := range []struct {
		name, msg string
		ok        bool
		user      string
	}{
		{"valid", "\x00admin\x00admin-secret", true, "admin"},
		{"authzid equal to user", "admin\x00admin\x00admin-secret", true, "admin"},
		{"authzid other user", "alice\x00admin\x00admin-secret", false, ""},
		{"wrong password", "\x00admin\x00nope", false, ""},
		{"password prefix", "\x00admin\x00admin", false, ""},
		{"unknown user", "\x00bob\x00admin-secret", false, ""},
		{"empty user", "\x00\x00admin-secret", false, ""},
		{"empty password", "\x00admin\x00", false, ""},
		{"two tokens", "admin\x00admin-secret", false, ""},
		{"four tokens", "\x00admin\x00admin-secret\x00", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := p.Start()
			out, err := x.Step([]byte(tc.msg))
			if len(out) != 0 {
				t.Fatalf("PLAIN answered %q", out)
			}
			if !x.Done() {
				t.Fatal("PLAIN is one step")
			}
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !IsAuthError(err) {
				t.Fatalf("err %v is not an AuthError", err)
			}
			if u, exp := x.Outcome(); u != tc.user || !exp.IsZero() {
				t.Fatalf("Outcome = %q, %v", u, exp)
			}
			if _, err := x.Step([]byte(tc.msg)); !errors.Is(err, ErrIllegalState) {
				t.Fatalf("second Step = %v, want ErrIllegalState", err)
			}
		})
	}
}

func TestParseJAAS(t *testing.T) {
	m, err := ParseJAASConfig(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="admin" password="admin-secret"
		user_admin="admin-secret" user_alice='al"ice' user_bob=bob-pw;`)
	if err != nil {
		t.Fatal(err)
	}
	if m.LoginModule != PlainLoginModule || m.Flag != "required" {
		t.Fatalf("module = %+v", m)
	}
	users := m.PlainUsers()
	if len(users) != 3 || users["admin"] != "admin-secret" || users["alice"] != `al"ice` || users["bob"] != "bob-pw" {
		t.Fatalf("users = %v", users)
	}

	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{`M required a="x\"y\\z\n\101";`, map[string]string{"a": "x\"y\\z\nA"}},
		{`M optional; // comment`, map[string]string{}},
		{`/* lead */ M Sufficient a=b /* mid */ c="d;e";`, map[string]string{"a": "b", "c": "d;e"}},
		{"M requisite a=$x.y-z_1;", map[string]string{"a": "$x.y-z_1"}},
		{`M required a="";`, map[string]string{"a": ""}},
		{`M required a="é";`, map[string]string{"a": "é"}},
	} {
		m, err := ParseJAASConfig(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(m.Options) != len(tc.want) {
			t.Errorf("%q: options %v, want %v", tc.in, m.Options, tc.want)
		}
		for k, v := range tc.want {
			if m.Options[k] != v {
				t.Errorf("%q: option %s = %q, want %q", tc.in, k, m.Options[k], v)
			}
		}
	}

	for _, bad := range []string{
		``,
		`M`,
		`M required`,
		`M required a="b"`,
		`M mandatory a=b;`,
		`M required a=;`,
		`M required a=123;`,
		`M required a b;`,
		`M required a="unterminated;`,
		"M required a=\"line\nbreak\";",
		`M required /* open a=b;`,
		`M required a=b; N required c=d;`, // sasl.jaas.config holds exactly one
		`"M" required;`,
		`M required =b;`,
	} {
		if m, err := ParseJAASConfig(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, m)
		}
	}
	mods, err := ParseJAAS(`A required; B optional x=y;`)
	if err != nil || len(mods) != 2 || mods[1].Options["x"] != "y" {
		t.Fatalf("ParseJAAS = %+v, %v", mods, err)
	}
}

type memStore map[string]ScramCredential

func (s memStore) ScramCredential(user string, mech ScramMechanism) (ScramCredential, bool) {
	c, ok := s[mech.String()+"/"+user]
	return c, ok
}

func scramStore(t *testing.T, mech ScramMechanism, user, pass string) memStore {
	t.Helper()
	c, err := NewScramCredential(mech, pass, nil, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return memStore{mech.String() + "/" + user: c}
}

// runScram drives a server exchange with xdg-go/scram's client.
func runScram(t *testing.T, m Mechanism, hg scram.HashGeneratorFcn, user, pass string) (string, error) {
	t.Helper()
	client, err := hg.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	x := m.Start()
	msg, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	for !x.Done() {
		out, err := x.Step([]byte(msg))
		if err != nil {
			return "", err
		}
		msg, err = conv.Step(string(out))
		if err != nil {
			t.Fatalf("client rejected the server: %v", err)
		}
	}
	if !conv.Valid() {
		t.Fatal("client did not verify the server signature")
	}
	p, _ := x.Outcome()
	return p, nil
}

func TestScram(t *testing.T) {
	for _, tc := range []struct {
		mech ScramMechanism
		hg   scram.HashGeneratorFcn
	}{{ScramSHA256, scram.SHA256}, {ScramSHA512, scram.SHA512}} {
		t.Run(tc.mech.String(), func(t *testing.T) {
			store := scramStore(t, tc.mech, "admin", "admin-secret")
			m, err := NewScram(tc.mech, store)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := runScram(t, m, tc.hg, "admin", "admin-secret"); err != nil || p != "admin" {
				t.Fatalf("good password: %q, %v", p, err)
			}
			_, errWrong := runScram(t, m, tc.hg, "admin", "wrong")
			_, errUnknown := runScram(t, m, tc.hg, "nobody", "admin-secret")
			if !IsAuthError(errWrong) || !IsAuthError(errUnknown) {
				t.Fatalf("wrong password: %v; unknown user: %v", errWrong, errUnknown)
			}
			if errWrong.Error() != errUnknown.Error() {
				t.Fatalf("a wrong password (%q) and an unknown user (%q) must read the same", errWrong, errUnknown)
			}
			// The other hash's client cannot log in with this mechanism's credential.
			other := scram.SHA512
			if tc.mech == ScramSHA512 {
				other = scram.SHA256
			}
			if _, err := runScram(t, m, other, "admin", "admin-secret"); err == nil {
				t.Fatal("a client of the other hash authenticated")
			}
		})
	}
}

// A SCRAM client may ask to act as another user (an authzid); Kafka
// refuses any authzid other than the user's own.
func TestScramAuthzID(t *testing.T) {
	m, _ := NewScram(ScramSHA256, scramStore(t, ScramSHA256, "alice", "pw"))
	for authz, ok := range map[string]bool{"": true, "alice": true, "admin": false} {
		client, _ := scram.SHA256.NewClient("alice", "pw", authz)
		conv := client.NewConversation()
		x := m.Start()
		first, _ := conv.Step("")
		s1, err := x.Step([]byte(first))
		if err != nil {
			t.Fatal(err)
		}
		final, _ := conv.Step(string(s1))
		_, err = x.Step([]byte(final))
		if ok != (err == nil) {
			t.Errorf("authzid %q: err = %v", authz, err)
		}
		if p, _ := x.Outcome(); ok && p != "alice" {
			t.Errorf("authzid %q: principal %q", authz, p)
		}
	}
}

func TestScramGarbage(t *testing.T) {
	m, _ := NewScram(ScramSHA256, scramStore(t, ScramSHA256, "u", "p"))
	for _, in := range []string{"", "x", "n,,n=u", "p=tls-unique,,n=u,r=abc", strings.Repeat("a", 5000)} {
		x := m.Start()
		if _, err := x.Step([]byte(in)); err == nil || !x.Done() {
			t.Errorf("%q: err %v, done %v", in, err, x.Done())
		}
	}
}

// TestScramFromSaltedPassword checks the RFC 5802 derivation used for
// AlterUserScramCredentials against the library's own.
func TestScramFromSaltedPassword(t *testing.T) {
	salt := []byte("0123456789abcdef")
	for _, mech := range []ScramMechanism{ScramSHA256, ScramSHA512} {
		want, err := NewScramCredential(mech, "pencil", salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		salted := pbkdf2ForTest(t, mech, "pencil", salt, 4096)
		got, err := ScramCredentialFromSaltedPassword(mech, salt, salted, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.StoredKey, want.StoredKey) || !bytes.Equal(got.ServerKey, want.ServerKey) {
			t.Fatalf("%s: derived keys differ from the library's", mech)
		}
		if _, err := ScramCredentialFromSaltedPassword(mech, salt, salted[:5], 4096); err == nil {
			t.Fatal("a salted password of the wrong size was accepted")
		}
	}
	if _, err := NewScramCredential(ScramSHA256, "p", nil, 4095); err == nil {
		t.Fatal("4095 iterations accepted")
	}
	if _, err := NewScramCredential(ScramSHA256, "p", nil, 16385); err == nil {
		t.Fatal("16385 iterations accepted")
	}
}

func TestParseScramSpecs(t *testing.T) {
	specs, err := ParseScramSpecs(`SCRAM-SHA-256=[name=admin,password=admin-secret]`)
	if err != nil || len(specs) != 1 {
		t.Fatal(specs, err)
	}
	if s := specs[0]; s.Mechanism != ScramSHA256 || s.Name != "admin" || s.Password != "admin-secret" || s.Iterations != 4096 {
		t.Fatalf("spec = %+v", s)
	}
	specs, err = ParseScramSpecs(`SCRAM-SHA-256=[iterations=8192,password="a,b]c=\"d\\"], SCRAM-SHA-512=[password=x, name = bob]`)
	if err != nil || len(specs) != 2 {
		t.Fatal(specs, err)
	}
	if specs[0].Password != `a,b]c="d\` || specs[0].Iterations != 8192 || specs[1].Mechanism != ScramSHA512 || specs[1].Name != "bob" {
		t.Fatalf("specs = %+v", specs)
	}
	salt := base64.StdEncoding.EncodeToString([]byte("salty"))
	sp := base64.StdEncoding.EncodeToString(make([]byte, 32))
	specs, err = ParseScramSpecs(`SCRAM-SHA-256=[name=alice,iterations=4096,salt="` + salt + `",saltedpassword="` + sp + `"]`)
	if err != nil || string(specs[0].Salt) != "salty" || len(specs[0].SaltedPassword) != 32 {
		t.Fatal(specs, err)
	}
	if _, err := specs[0].Credential(); err != nil {
		t.Fatal(err)
	}
	c, err := ParseScramSpecsOne(t, `SCRAM-SHA-512=[name=a,password=p]`).Credential()
	if err != nil || len(c.Salt) == 0 || len(c.StoredKey) != 64 {
		t.Fatalf("credential = %+v, %v", c, err)
	}
	for _, bad := range []string{
		``, `SCRAM-SHA-1=[password=x]`, `SCRAM-SHA-256`, `SCRAM-SHA-256=password=x`, `SCRAM-SHA-256=[password=x`,
		`SCRAM-SHA-256=[]`, `SCRAM-SHA-256=[name=a]`, `SCRAM-SHA-256=[password=x,iterations=100]`,
		`SCRAM-SHA-256=[password=x,iterations=big]`, `SCRAM-SHA-256=[password=x,colour=red]`,
		`SCRAM-SHA-256=[password=x,password=y]`, `SCRAM-SHA-256=[saltedpassword=AAAA]`,
		`SCRAM-SHA-256=[password=x,salt=!!!]`, `SCRAM-SHA-256=[password=x,salt=""]`, `SCRAM-SHA-256=[password="x]`,
		`SCRAM-SHA-256=[password=x] junk`, `SCRAM-SHA-256=[password=x,saltedpassword=AAAA,salt=AAAA]`,
	} {
		if s, err := ParseScramSpecs(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, s)
		}
	}
}

func ParseScramSpecsOne(t *testing.T, s string) ScramSpec {
	t.Helper()
	specs, err := ParseScramSpecs(s)
	if err != nil || len(specs) != 1 {
		t.Fatal(specs, err)
	}
	return specs[0]
}

func pbkdf2ForTest(t *testing.T, mech ScramMechanism, pass string, salt []byte, iters int) []byte {
	t.Helper()
	h := mech.newHash()
	b, err := pbkdf2.Key(h, pass, salt, iters, h().Size())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSessionLifetime(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		expiry time.Time
		max    time.Duration
		want   time.Duration
	}{
		{time.Time{}, 0, 0},
		{time.Time{}, time.Hour, time.Hour},
		{now.Add(time.Minute), 0, time.Minute},
		{now.Add(time.Minute), time.Hour, time.Minute},
		{now.Add(2 * time.Hour), time.Hour, time.Hour},
		{now.Add(-time.Minute), time.Hour, time.Millisecond},
	} {
		if got := SessionLifetime(now, tc.expiry, tc.max); got != tc.want {
			t.Errorf("SessionLifetime(%v, %v) = %v, want %v", tc.expiry, tc.max, got, tc.want)
		}
	}
}

func scramClient(user, pass string) (*scram.Client, error) {
	return scram.SHA256.NewClient(user, pass, "")
}
