package broker

// DescribeCluster (key 60), v0-v2 on every listener.
//
// The cluster id, the controller id clients should use (clientControllerID)
// and the brokers with an endpoint on the listener asked through, fenced ones
// too when v2 asks (KIP-1073). Authorized operations are not computed
// (no authorizer yet): they are answered as Kafka's "not requested" value,
// math.MinInt32.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeCluster(_ context.Context, rc *reqCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := s.meta.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = s.clientControllerID(img)
	resp.ClusterAuthorizedOperations = math.MinInt32
	brokers, fenced := s.listBrokers(img, rc.conn.listener, req.IncludeFencedBrokers)
	for _, b := range brokers {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		db.IsFenced = fenced[b.NodeID]
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}
