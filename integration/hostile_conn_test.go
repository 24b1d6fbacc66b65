package integration

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Hostile connections: one bad client must not take the broker down or hold
// up the well-behaved ones (the bystanders) beside it.

// TestHostileControllerRPCsOnClientListener sends the controller's RPCs to
// the client listener, as an unauthenticated client could: a BrokerHeartbeat
// asking to shut broker 1 down with the "any epoch" value -1, and a
// BrokerRegistration (with the cluster id Metadata hands anyone) re-pointing
// broker 1 elsewhere. Kafka serves these only on the controller listener;
// on the client listener they close the connection and change nothing.
func TestHostileControllerRPCsOnClientListener(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	b := startBystanders(t, n, "ctrl")

	rc := dialRaw(t, n.Addr())
	rc.negotiate()
	for _, key := range []int16{56, 62, 63, 67} {
		if _, ok := rc.versions[key]; ok {
			t.Errorf("ApiVersions on the client listener advertises %s (key %d)", kmsg.NameForKey(key), key)
		}
	}
	meta := rc.request(kmsg.NewPtrMetadataRequest(), -1).(*kmsg.MetadataResponse)
	if meta.ClusterID == nil {
		t.Fatal("Metadata has no cluster id")
	}

	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.WantShutdown = 1, -1, true
	rc.send(hb, 1)
	rc.expectClosed("BrokerHeartbeat on the client listener", 10*time.Second)

	reg := dialRaw(t, n.Addr())
	r := kmsg.NewPtrBrokerRegistrationRequest()
	r.BrokerID, r.ClusterID = 1, *meta.ClusterID
	r.IncarnationID = [16]byte{1, 2, 3}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port, l.SecurityProtocol = "PLAINTEXT", "203.0.113.9", 9, 0
	r.Listeners = append(r.Listeners, l)
	reg.send(r, 0)
	reg.expectClosed("BrokerRegistration on the client listener", 10*time.Second)

	// The node is still listed where it was, unfenced, leading its
	// partitions.
	check := dialRaw(t, n.Addr())
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &b.topic
	mreq.Topics = append(mreq.Topics, mt)
	m := check.request(mreq, -1).(*kmsg.MetadataResponse)
	if len(m.Brokers) != 1 || m.Brokers[0].NodeID != 1 || m.Brokers[0].Host != "127.0.0.1" || int(m.Brokers[0].Port) != n.clientPort {
		t.Errorf("brokers after the hostile RPCs: %+v, want node 1 at %s", m.Brokers, n.Addr())
	}
	if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 1 || m.Topics[0].Partitions[0].Leader != 1 {
		t.Errorf("partition leader after the hostile RPCs: %+v, want 1", m.Topics)
	}
	b.check(100)
}
