package sasl

import (
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testcerts"
)

func FuzzParseJAAS(f *testing.F) {
	for _, s := range []string{
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`,
		`M required a='x\'y' b="\101\n" /* c */ d=e; // f`,
		`M optional;`, `"`, `/*`, `M required a="\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mods, err := ParseJAAS(s)
		if err == nil && len(mods) == 0 {
			t.Fatal("no error and no modules")
		}
		for _, m := range mods {
			if m.LoginModule == "" || m.Flag == "" || m.Options == nil {
				t.Fatalf("incomplete module %+v", m)
			}
		}
	})
}

func FuzzParseScramSpecs(f *testing.F) {
	for _, s := range []string{
		`SCRAM-SHA-256=[name=admin,password=admin-secret]`,
		`SCRAM-SHA-256=[iterations=8192,password="a,\"b"],SCRAM-SHA-512=[password=x]`,
		`SCRAM-SHA-512=[name=a,salt="c2FsdA==",saltedpassword="AAAA"]`, `SCRAM-SHA-256=[`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := ParseScramSpecs(s)
		if err != nil {
			return
		}
		for _, sp := range specs {
			if sp.Iterations < MinScramIterations || sp.Iterations > MaxScramIterations {
				t.Fatalf("accepted %d iterations", sp.Iterations)
			}
			if sp.Password == "" && sp.SaltedPassword == nil {
				t.Fatal("accepted a spec without a password")
			}
		}
	})
}

// fuzzExchange feeds up to three messages to a fresh exchange and checks
// the state machine's contract: an error ends it, a finished exchange
// refuses more input, and only success yields a principal.
func fuzzExchange(t *testing.T, m Mechanism, msgs ...[]byte) {
	x := m.Start()
	for _, msg := range msgs {
		if x.Done() {
			if _, err := x.Step(msg); err != ErrIllegalState {
				t.Fatalf("Step after done = %v", err)
			}
			return
		}
		_, err := x.Step(msg)
		if err != nil {
			if !x.Done() {
				t.Fatal("an error did not end the exchange")
			}
			if p, _ := x.Outcome(); p != "" {
				t.Fatalf("failed exchange has principal %q", p)
			}
			return
		}
	}
}

func FuzzPlainExchange(f *testing.F) {
	f.Add([]byte("\x00admin\x00admin-secret"), []byte{})
	f.Add([]byte("admin\x00admin\x00x"), []byte("again"))
	m := NewPlain(map[string]string{"admin": "admin-secret"})
	f.Fuzz(func(t *testing.T, a, b []byte) { fuzzExchange(t, m, a, b) })
}

func FuzzScramExchange(f *testing.F) {
	f.Add([]byte("n,,n=admin,r=abcdefgh"), []byte("c=biws,r=abcdefgh,p=AAAA"))
	f.Add([]byte("n,a=x,n=admin,r=1,m=ext"), []byte(""))
	f.Add([]byte("y,,n==3D=2C,r=x"), []byte("c=eSws,r=x,p=="))
	cred, err := NewScramCredential(ScramSHA256, "admin-secret", []byte("salt"), 4096)
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewScram(ScramSHA256, memStore{"SCRAM-SHA-256/admin": cred})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) { fuzzExchange(t, m, a, b) })
}

func FuzzOAuthBearerExchange(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer a.b.c\x01\x01"), []byte("\x01"))
	f.Add([]byte("n,a=u,\x01x=y\x01auth=Bearer eyJhbGciOiJub25lIn0.e30.\x01\x01"), []byte("x"))
	keys, err := NewJWKS("file://"+testcerts.NewIssuer(f, "k").File(f), 0, nil)
	if err != nil {
		f.Fatal(err)
	}
	m := NewOAuthBearer(&TokenValidator{Keys: keys, Now: func() time.Time { return time.Unix(0, 0) }})
	f.Fuzz(func(t *testing.T, a, b []byte) { fuzzExchange(t, m, a, b) })
}

// FuzzSession drives a session with an arbitrary sequence of requests and
// checks that it never panics, never admits a request before a principal
// exists, and stays closed once it asked for the connection to close.
func FuzzSession(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, []byte("\x00alice\x00a-pw"))
	f.Add([]byte{2, 0, 2, 2, 1}, []byte("x"))
	f.Fuzz(func(t *testing.T, ops, payload []byte) {
		s := NewSession([]Mechanism{NewPlain(map[string]string{"alice": "a-pw"})}, time.Minute, 64)
		now := time.Unix(0, 0)
		closed := false
		for _, op := range ops {
			now = now.Add(time.Duration(op) * time.Second)
			switch op % 4 {
			case 0:
				mech := PLAIN
				if op&0x80 != 0 {
					mech = string(payload)
				}
				if r := s.Handshake(mech, now); r.Close {
					closed = true
				}
			case 1:
				if r := s.Authenticate(payload, now); r.Close {
					closed = true
				}
			case 2:
				key := int16(op % 100)
				if s.Admit(key, now) && s.Principal() == "" && key != keyApiVersions && key != keySaslHandshake && key != keySaslAuthenticate {
					t.Fatalf("API %d admitted without a principal", key)
				}
			case 3:
				payload = []byte("\x00alice\x00a-pw")
			}
			if closed && s.Admit(keyApiVersions, now) {
				t.Fatal("a closed session admitted a request")
			}
		}
	})
}
