package broker

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
