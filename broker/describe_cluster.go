package broker

// DescribeCluster (key 60), v0-v2 on every listener.
//
// The cluster id, the controller id clients should use (clientControllerID)
// and the brokers with an endpoint on the listener asked through, fenced ones
// too when v2 asks (KIP-1073). Only the broker endpoint type (v1+) is
// served: a node's controller listener does not answer DescribeCluster.
// The operations the client may perform on the cluster are computed when
// asked, as Kafka computes them; otherwise they are answered as Kafka's
// "not requested" value, math.MinInt32.

import (
	"context"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

// Kafka's DescribeCluster endpoint types (v1+): a broker answers only
// requests for brokers, a controller only those for controllers.
const (
	endpointBroker     = 1
	endpointController = 2
)

func (s *Server) handleDescribeCluster(_ context.Context, rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	// As Kafka's brokers: an admin client that bootstraps from controllers
	// asks for controllers, and must learn it reached a broker instead.
	switch req.EndpointType {
	case endpointBroker:
	case endpointController:
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
		return resp, nil
	default:
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("Unsupported endpoint type " + strconv.Itoa(int(req.EndpointType)))
		return resp, nil
	}
	img := s.meta.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = s.clientControllerID(img)
	resp.ClusterAuthorizedOperations = math.MinInt32
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = rc.conn.clusterAuthorizedOperations("DescribeCluster")
	}
	brokers, fenced := s.listBrokers(img, rc.conn.listener, req.IncludeFencedBrokers)
	for _, b := range brokers {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		db.IsFenced = fenced[b.NodeID]
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}

// clusterAuthorizedOperations is the bit field of the cluster operations
// the connection's principal may perform, for DescribeCluster and Metadata
// (api): none without CLUSTER DESCRIBE, as in Kafka, whose denial alone is
// logged.
func (c *conn) clusterAuthorizedOperations(api string) int32 {
	if !c.srv.sec.authorize(c.principal, c.host, acl.OpDescribe, clusterResource, api) {
		return 0
	}
	return c.authorizedOperations(clusterResource, api)
}
