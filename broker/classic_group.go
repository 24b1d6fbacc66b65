package broker

// The classic group membership APIs, on every listener:
// JoinGroup (key 11) v2-v9, SyncGroup (key 14) v0-v5, Heartbeat (key 12) v0-v4,
// LeaveGroup (key 13) v0-v5.
//
// Each handler runs the request on the group's coordinator shard
// (coordinator.Shard, run by coordruntime.Groups); JoinGroup and SyncGroup
// answer when the rebalance does, which is the request's wait, so the
// connection keeps reading meanwhile. Eager and cooperative rebalancing and
// static members (KIP-345) are the shard's.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
)

// handleJoinGroup registers the join in connection order; the wait for the
// rebalance to answer is the request's wait.
func (s *Server) handleJoinGroup(ctx context.Context, rc *reqCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, waitFunc, error) {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	host := rc.conn.remoteHost()
	if kerrv := s.coord.Groups.Do(req.Group, func(sh *coordinator.Shard) {
		sh.JoinGroup(s.now(), rc.header.clientID, host, req, func(r *kmsg.JoinGroupResponse) { ch <- r })
	}); kerrv != nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = kerrv.Code, -1, req.MemberID
		return resp, nil, nil
	}
	return awaitReply(ctx, ch)
}

// handleSyncGroup is handleJoinGroup's counterpart for SyncGroup.
func (s *Server) handleSyncGroup(ctx context.Context, _ *reqCtx, req *kmsg.SyncGroupRequest) (kmsg.Response, waitFunc, error) {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	if kerrv := s.coord.Groups.Do(req.Group, func(sh *coordinator.Shard) {
		sh.SyncGroup(s.now(), req, func(r *kmsg.SyncGroupResponse) { ch <- r })
	}); kerrv != nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerrv.Code
		return resp, nil, nil
	}
	return awaitReply(ctx, ch)
}

func (s *Server) handleHeartbeat(_ context.Context, _ *reqCtx, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	return s.onGroupShard(req.Group, req, func(sh *coordinator.Shard) kmsg.Response { return sh.Heartbeat(s.now(), req) })
}

func (s *Server) handleLeaveGroup(_ context.Context, _ *reqCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	topics := coordruntime.ImageTopics(s.meta.Image())
	return s.onGroupShard(req.Group, req, func(sh *coordinator.Shard) kmsg.Response { return sh.LeaveGroup(s.now(), req, topics) })
}
