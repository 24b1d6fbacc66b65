package broker

// The KIP-848 consumer group APIs, on every listener when
// group.coordinator.rebalance.protocols lists "consumer":
// ConsumerGroupHeartbeat (key 68) v0-v1, ConsumerGroupDescribe (key 69) v0-v1.
//
// Each runs on the group's coordinator shard with the topics of the current
// metadata image (server-side assignors, regex subscriptions).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

func (s *Server) handleConsumerGroupHeartbeat(_ context.Context, rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	topics := coordruntime.ImageTopics(s.meta.Image())
	host := rc.conn.remoteHost()
	if kerrv := s.coord.Groups.Do(req.Group, func(sh *coordinator.Shard) {
		resp = sh.ConsumerHeartbeat(s.now(), rc.header.clientID, host, req, topics)
	}); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleConsumerGroupDescribe(_ context.Context, _ *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topics := coordruntime.ImageTopics(s.meta.Image())
	for _, id := range req.Groups {
		var d kmsg.ConsumerGroupDescribeResponseGroup
		if kerrv := s.coord.Groups.Do(id, func(sh *coordinator.Shard) { d = sh.ConsumerDescribe(id, topics, req.IncludeAuthorizedOperations) }); kerrv != nil {
			d = kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group, d.ErrorCode = id, kerrv.Code
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}
