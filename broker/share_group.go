package broker

// The share group membership APIs (KIP-932), on every listener when
// group.coordinator.rebalance.protocols lists "share":
// ShareGroupHeartbeat (key 76) v1, ShareGroupDescribe (key 77) v1.
//
// Each runs on the group's coordinator shard, which assigns partitions to
// members; v0 (the KIP's early access) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

func (s *Server) handleShareGroupHeartbeat(ctx context.Context, rc *reqCtx, req *kmsg.ShareGroupHeartbeatRequest) (kmsg.Response, error) {
	if err := s.coord.ShareState.EnsureTopic(ctx); err != nil {
		s.log.Warn("creating "+coordruntime.ShareStateTopic, "err", err)
	}
	img := s.meta.Image()
	topics := coordruntime.ImageTopics(img)
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(req.GroupID))
	host := rc.conn.remoteHost()
	return s.onGroupShard(req.GroupID, req, func(sh *coordinator.Shard) kmsg.Response {
		return sh.ShareHeartbeat(s.now(), rc.header.clientID, host, req, topics, func(g *coordinator.ShareGroup) {
			g.SetOverrides(gc.Millis("share.session.timeout.ms"), gc.Millis("share.heartbeat.interval.ms"))
		})
	})
}

func (s *Server) handleShareGroupDescribe(_ context.Context, rc *reqCtx, req *kmsg.ShareGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	topics := coordruntime.ImageTopics(s.meta.Image())
	resp.Groups = describeEach(s, req.GroupIDs, func(sh *coordinator.Shard, id string) kmsg.ShareGroupDescribeResponseGroup {
		return sh.ShareDescribe(id, topics, req.IncludeAuthorizedOperations)
	}, shareDescribeFailed)
	groupAuthorizedOperations(rc.conn, "ShareGroupDescribe", req.IncludeAuthorizedOperations, resp.Groups,
		func(g *kmsg.ShareGroupDescribeResponseGroup) (string, *int32, bool) {
			return g.GroupID, &g.AuthorizedOperations, g.ErrorCode == 0
		})
	return resp, nil
}

func shareDescribeFailed(id string, code int16) kmsg.ShareGroupDescribeResponseGroup {
	d := kmsg.NewShareGroupDescribeResponseGroup()
	d.GroupID, d.ErrorCode = id, code
	return d
}
