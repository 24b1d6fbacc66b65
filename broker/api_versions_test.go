package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsFrom is an ApiVersions request naming the client software.
func apiVersionsFrom(name, version string) *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = name, version
	return req
}

// From v3 on, the client's software name and version must match Kafka's
// pattern; a request that breaks it is answered INVALID_REQUEST with no API
// listed (the Java client disconnects on it), and the connection goes on.
func TestApiVersionsRefusesBadClientSoftware(t *testing.T) {
	s := startTestServer(t)
	c := dialRaw(t, s.Addrs()[0])
	for _, sw := range [][2]string{{"", ""}, {"kgo", ""}, {"", "1.0"}, {"bad name", "1.0"}, {"kgo", "1.0+dirty"},
		{"-kgo", "1.0"}, {"kgo", "1.0."}, {"kgo", "(devel)"}} {
		for _, v := range []int16{3, 4} {
			r := c.roundTrip(apiVersionsFrom(sw[0], sw[1]), v).(*kmsg.ApiVersionsResponse)
			if r.ErrorCode != kerr.InvalidRequest.Code || len(r.ApiKeys) != 0 {
				t.Errorf("v%d from %q %q: error %v with %d APIs, want INVALID_REQUEST and none",
					v, sw[0], sw[1], kerr.ErrorForCode(r.ErrorCode), len(r.ApiKeys))
			}
		}
	}
	for _, sw := range [][2]string{{"kgo", "v1.22.2"}, {"apache-kafka-java", "3.7.0"}, {"librdkafka", "2.6.1"}, {"a", "1"},
		{"sarama", "dev"}, {"x.y-z", "4.0.0-SNAPSHOT"}} {
		r := c.roundTrip(apiVersionsFrom(sw[0], sw[1]), 3).(*kmsg.ApiVersionsResponse)
		if r.ErrorCode != 0 || len(r.ApiKeys) == 0 {
			t.Errorf("v3 from %q %q: error %v with %d APIs", sw[0], sw[1], kerr.ErrorForCode(r.ErrorCode), len(r.ApiKeys))
		}
	}
	// Before v3 there are no such fields to check.
	if r := c.roundTrip(kmsg.NewPtrApiVersionsRequest(), 2).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Errorf("v2: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// A supported feature whose lowest level is 0 is listed from v4 on only:
// Java clients 3.3 to 3.7 send v3 and fail on every connection to a broker
// that lists one (they refuse a version range starting at 0). Finalized
// features are listed from v3 on.
func TestApiVersionsFeaturesByVersion(t *testing.T) {
	s := startTestServer(t)
	c := dialRaw(t, s.Addrs()[0])
	for _, v := range []int16{3, 4} {
		r := c.roundTrip(apiVersionsFrom("apache-kafka-java", "3.7.0"), v).(*kmsg.ApiVersionsResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(r.ErrorCode))
		}
		listed := false
		for _, f := range r.SupportedFeatures {
			if f.MinVersion < 1 && v < 4 {
				t.Errorf("v%d lists supported feature %s from level %d", v, f.Name, f.MinVersion)
			}
			listed = listed || f.Name == "transaction.version"
		}
		if listed != (v >= 4) {
			t.Errorf("v%d: transaction.version listed among supported features: %v", v, listed)
		}
		if len(r.FinalizedFeatures) != 1 || r.FinalizedFeatures[0].Name != "transaction.version" ||
			r.FinalizedFeatures[0].MaxVersionLevel != transactionVersion {
			t.Errorf("v%d: finalized features %+v", v, r.FinalizedFeatures)
		}
	}
}
