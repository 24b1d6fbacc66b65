package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterUserScramCredentials alters each user at most once per request, as
// Kafka's controller does: kafka-configs.sh setting both SCRAM mechanisms
// of one user in one request is refused with DUPLICATE_RESOURCE and
// nothing changes. A salted password of the wrong length is reported only
// after the checks Kafka makes first (here: too few iterations).
func TestAlterUserScramCredentialsOneAlterationPerUser(t *testing.T) {
	s := startTestServer(t)
	c := dialRaw(t, s.Addrs()[0])
	upsert := func(user string, mech int8, iterations int32, saltedPassword []byte) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = user, mech, iterations, []byte("salt"), saltedPassword
		return u
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = append(req.Upsertions,
		upsert("alice", 1, 4096, bytes.Repeat([]byte{1}, 32)),
		upsert("alice", 2, 4096, bytes.Repeat([]byte{2}, 64)),
		upsert("bob", 1, 100, []byte("short")),
		upsert("carol", 1, 4096, []byte("short")),
		upsert("dave", 2, 8192, bytes.Repeat([]byte{3}, 64)),
	)
	resp := c.roundTrip(req, 0).(*kmsg.AlterUserSCRAMCredentialsResponse)
	want := map[string]struct {
		code int16
		msg  string
	}{
		"alice": {kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request"},
		"bob":   {kerr.UnacceptableCredential.Code, "Too few iterations"},
		"carol": {kerr.UnacceptableCredential.Code, "salted password is 5 bytes, SCRAM-SHA-256 needs 32"},
		"dave":  {0, ""},
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(resp.Results), len(want), resp.Results)
	}
	for _, r := range resp.Results {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		if w := want[r.User]; r.ErrorCode != w.code || msg != w.msg {
			t.Errorf("%s: %v %q, want %v %q", r.User, kerr.ErrorForCode(r.ErrorCode), msg, kerr.ErrorForCode(w.code), w.msg)
		}
	}

	describe := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	d := c.roundTrip(describe, 0).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if len(d.Results) != 1 || d.Results[0].User != "dave" || len(d.Results[0].CredentialInfos) != 1 {
		t.Fatalf("credentials after the request: %+v", d.Results)
	}
}
