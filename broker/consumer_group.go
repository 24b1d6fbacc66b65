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
	topics := rc.conn.describeScope(req, coordruntime.ImageTopics(s.meta.Image()))
	host := rc.conn.remoteHost()
	return s.onGroupShard(req.Group, req, func(sh *coordinator.Shard) kmsg.Response {
		return sh.ConsumerHeartbeat(s.now(), rc.header.clientID, host, req, topics)
	})
}

func (s *Server) handleConsumerGroupDescribe(_ context.Context, rc *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topics := coordruntime.ImageTopics(s.meta.Image())
	resp.Groups = describeEach(s, req.Groups, func(sh *coordinator.Shard, id string) kmsg.ConsumerGroupDescribeResponseGroup {
		return sh.ConsumerDescribe(id, topics, req.IncludeAuthorizedOperations)
	}, consumerDescribeFailed)
	groupAuthorizedOperations(rc.conn, "ConsumerGroupDescribe", req.IncludeAuthorizedOperations, resp.Groups,
		func(g *kmsg.ConsumerGroupDescribeResponseGroup) (string, *int32, bool) {
			return g.Group, &g.AuthorizedOperations, g.ErrorCode == 0
		})
	return resp, nil
}

func consumerDescribeFailed(id string, code int16) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group, d.ErrorCode = id, code
	return d
}
