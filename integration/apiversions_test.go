package integration

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceAdvertisedFromV0 checks the one place ApiVersions departs from
// what the broker accepts, as Kafka 4.0 does: Produce is advertised from v0
// (librdkafka before 2.10 otherwise sends gzip, snappy and lz4 batches
// uncompressed; the client matrix's kcat produce steps show it), while a
// Produce v2 request still closes the connection.
func TestProduceAdvertisedFromV0(t *testing.T) {
	t.Parallel()
	n := startNode(t, nodeOpts{})
	rc := dialRaw(t, n.Addr())
	rc.negotiate()
	if r := rc.versions[0]; r[0] != 0 || r[1] < 3 {
		t.Fatalf("Produce advertised as v%d..v%d, want v0..v3 or later", r[0], r[1])
	}

	old := dialRaw(t, n.Addr())
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	req.TimeoutMillis = 1000
	old.send(req, 2)
	old.expectClosed("Produce v2", 10*time.Second)
}
