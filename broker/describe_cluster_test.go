package broker

import (
	"math"
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

// DescribeCluster computes the cluster operations the client may perform
// when asked, as Kafka does: every one without an authorizer, none without
// CLUSTER DESCRIBE, otherwise those its ACLs allow; not asked, the field
// keeps Kafka's "not requested" value.
func TestDescribeClusterAuthorizedOperations(t *testing.T) {
	const all = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE
	describe := func(include bool) *kmsg.DescribeClusterRequest {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = include
		return req
	}
	open := startTestServer(t)
	for include, want := range map[bool]int32{false: math.MinInt32, true: all} {
		resp, err := describe(include).RequestWith(testContext(t, 10*time.Second), testClient(t, open))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ClusterAuthorizedOperations != want {
			t.Errorf("without an authorizer, asked %v: operations %#x, want %#x", include, resp.ClusterAuthorizedOperations, want)
		}
	}

	s := startSecureServer(t)
	admin := loggedIn(t, s, "admin", "admin-secret")
	alice := loggedIn(t, s, "alice", "alice-secret")
	ops := func(c *rawConn) int32 {
		return c.roundTrip(describe(true), 1).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations
	}
	if got := ops(alice); got != 0 {
		t.Errorf("alice without ACLs: operations %#x, want 0", got)
	}
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationAlter} {
		admin.allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral, "User:alice", op)
	}
	if got, want := ops(alice), int32(1<<7|1<<8); got != want {
		t.Errorf("alice with DESCRIBE and ALTER: operations %#x, want %#x", got, want)
	}
	if got := ops(admin); got != all {
		t.Errorf("super user: operations %#x, want %#x", got, all)
	}
}
