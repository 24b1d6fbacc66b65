package broker

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The SASL requests' answers at the edges of authentication, as Kafka
// gives them: a mechanism the listener does not enable is answered
// UNSUPPORTED_SASL_MECHANISM with the enabled ones and the connection
// closes; once authenticated, SaslAuthenticate, and SaslHandshake in a
// session without a lifetime (no connections.max.reauth.ms), are answered
// ILLEGAL_SASL_STATE and the connection goes on.
func TestSASLRequestsAtTheEdges(t *testing.T) {
	s := startSecureServer(t)
	c := dialRaw(t, s.Addrs()[0])
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "SCRAM-SHA-512"
	r := c.roundTrip(hs, 1).(*kmsg.SASLHandshakeResponse)
	if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Equal(r.SupportedMechanisms, []string{"PLAIN"}) {
		t.Fatalf("unsupported mechanism: %v, mechanisms %q", kerr.ErrorForCode(r.ErrorCode), r.SupportedMechanisms)
	}
	if !c.closed() {
		t.Fatal("connection open after an unsupported mechanism")
	}

	c = loggedIn(t, s, "alice", "alice-secret")
	if a := c.authenticate([]byte("\x00alice\x00alice-secret")); a.ErrorCode != kerr.IllegalSaslState.Code ||
		a.ErrorMessage == nil || *a.ErrorMessage != "SaslAuthenticate request received after successful authentication" {
		t.Fatalf("SaslAuthenticate after authentication: %v %v", kerr.ErrorForCode(a.ErrorCode), a.ErrorMessage)
	}
	hs.Mechanism = "PLAIN"
	if r := c.roundTrip(hs, 1).(*kmsg.SASLHandshakeResponse); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("SaslHandshake in a session without a lifetime: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if m := c.roundTrip(kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse); len(m.Brokers) != 1 {
		t.Fatalf("metadata after the refused SASL requests: %+v", m)
	}
}
