package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// A broker answers DescribeCluster for brokers only, as Kafka's do: a
// request for controllers is MISMATCHED_ENDPOINT_TYPE, an unknown type
// UNSUPPORTED_ENDPOINT_TYPE; version 0, which cannot say, is for brokers.
func TestDescribeClusterEndpointType(t *testing.T) {
	s := startTestServer(t)
	for _, c := range []struct {
		version, endpoint int8
		code              int16
	}{
		{0, 2, 0}, // not sent at version 0
		{1, 1, 0},
		{1, 2, kerr.MismatchedEndpointType.Code},
		{2, 3, kerr.UnsupportedEndpointType.Code},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = c.endpoint
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(req.Key(), int16(c.version))
		resp, err := req.RequestWith(testContext(t, 10*time.Second), testClient(t, s, kgo.MaxVersions(versions)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != c.code || (c.code == 0) != (len(resp.Brokers) == 1) {
			t.Errorf("v%d endpoint type %d: code %d %q with %d brokers, want code %d", c.version, c.endpoint, resp.ErrorCode, deref(resp.ErrorMessage), len(resp.Brokers), c.code)
		}
	}
}
