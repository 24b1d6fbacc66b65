package broker

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// imageTopics lets the coordinator see topics through a metadata image.
type imageTopics struct{ img *raftmeta.Image }

func (v imageTopics) TopicByName(name string) ([16]byte, int32, bool) {
	t := v.img.Topics[name]
	if t == nil {
		return [16]byte{}, 0, false
	}
	return t.ID, int32(len(t.Partitions)), true
}

func (v imageTopics) TopicByID(id [16]byte) (string, int32, bool) {
	t := topicByID(v.img, id)
	if t == nil {
		return "", 0, false
	}
	return t.Name, int32(len(t.Partitions)), true
}

// TopicNames lists every topic, internal ones included: Kafka matches a
// consumer group's regex subscription against all of them, so a pattern
// that names __consumer_offsets is assigned it.
func (v imageTopics) TopicNames() []string {
	out := make([]string, 0, len(v.img.Topics))
	for name := range v.img.Topics {
		out = append(out, name)
	}
	return out
}

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup = 0
	coordinatorTxn   = 1
	coordinatorShare = 2
)

func (s *Server) handleFindCoordinator(ctx context.Context, rc *reqCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Port = -1, -1
		if err := s.findCoordinator(ctx, rc, req.CoordinatorType, key, &c); err != nil {
			c.ErrorCode = err.Code
			c.ErrorMessage = strPtr(err.Description)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
	}
	return resp, nil
}

func (s *Server) findCoordinator(ctx context.Context, rc *reqCtx, kind int8, key string, out *kmsg.FindCoordinatorResponseCoordinator) *kerr.Error {
	if key == "" || (kind != coordinatorGroup && kind != coordinatorShare) {
		return kerr.InvalidRequest
	}
	topic, ensure := offsetsTopic, s.groups.ensureOffsetsTopic
	if kind == coordinatorShare {
		topic, ensure = shareStateTopic, s.shareState.ensureTopic
	}
	if err := ensure(ctx); err != nil {
		s.log.Warn("creating "+topic, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	img := s.meta.Image()
	t := img.Topics[topic]
	ps := t.Partitions[coordinator.GroupPartition(key, int32(len(t.Partitions)))]
	for _, b := range s.brokerList(img, rc.conn.listener) {
		if b.NodeID == ps.Leader {
			out.NodeID, out.Host, out.Port = b.NodeID, b.Host, b.Port
			return nil
		}
	}
	return kerr.CoordinatorNotAvailable
}

// onShard runs fn on the group's shard; a non-nil error is the Kafka error
// to answer with instead.
func (s *Server) onShard(group string, fn func(*coordinator.Shard)) *kerr.Error {
	sr, kerrv := s.groups.shardFor(group)
	if kerrv != nil {
		return kerrv
	}
	if err := sr.do(fn); err != nil {
		return kerr.NotCoordinator
	}
	return nil
}

// awaitReply returns a deferred group response (JoinGroup, SyncGroup) if
// the group has answered already, or else the wait for it.
func awaitReply[R kmsg.Response](ctx context.Context, ch chan R) (kmsg.Response, waitFunc, error) {
	select {
	case r := <-ch:
		return r, nil, nil
	default:
	}
	return nil, func() (kmsg.Response, error) {
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// handleJoinGroup registers the join in connection order; the wait for the
// rebalance to answer is the request's wait.
func (s *Server) handleJoinGroup(ctx context.Context, rc *reqCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, waitFunc, error) {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	host := rc.conn.remoteHost()
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) {
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
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) {
		sh.SyncGroup(s.now(), req, func(r *kmsg.SyncGroupResponse) { ch <- r })
	}); kerrv != nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerrv.Code
		return resp, nil, nil
	}
	return awaitReply(ctx, ch)
}

func (s *Server) handleHeartbeat(_ context.Context, _ *reqCtx, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	var resp *kmsg.HeartbeatResponse
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) { resp = sh.Heartbeat(s.now(), req) }); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleLeaveGroup(_ context.Context, _ *reqCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	var resp *kmsg.LeaveGroupResponse
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) { resp = sh.LeaveGroup(s.now(), req) }); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleConsumerGroupHeartbeat(_ context.Context, rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	topics := imageTopics{s.meta.Image()}
	host := rc.conn.remoteHost()
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) {
		resp = sh.ConsumerHeartbeat(s.now(), rc.header.clientID, host, req, topics)
	}); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleOffsetCommit(_ context.Context, _ *reqCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	var resp *kmsg.OffsetCommitResponse
	topics := imageTopics{s.meta.Image()}
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) { resp = sh.OffsetCommit(s.now(), req, topics) }); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			ot := kmsg.NewOffsetCommitResponseTopic()
			ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				op := kmsg.NewOffsetCommitResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
	}
	return resp, nil
}

func (s *Server) handleOffsetFetch(_ context.Context, _ *reqCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	img := s.meta.Image()
	groups := req.Groups
	if req.Version < 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		if req.Topics != nil {
			g.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		groups = []kmsg.OffsetFetchRequestGroup{g}
	}
	for _, rg := range groups {
		og := kmsg.NewOffsetFetchResponseGroup()
		og.Group = rg.Group
		var fetch []coordinator.FetchTopic
		if rg.Topics != nil {
			fetch = make([]coordinator.FetchTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				name := t.Topic
				if req.Version >= 10 {
					if tt := topicByID(img, t.TopicID); tt != nil {
						name = tt.Name
					}
				}
				fetch = append(fetch, coordinator.FetchTopic{Topic: name, Partitions: t.Partitions})
			}
		}
		memberID, epoch := "", int32(-1)
		if rg.MemberID != nil {
			memberID, epoch = *rg.MemberID, rg.MemberEpoch
		}
		var topics []kmsg.OffsetFetchResponseGroupTopic
		var ferr error
		kerrv := s.onShard(rg.Group, func(sh *coordinator.Shard) {
			topics, ferr = sh.OffsetFetch(rg.Group, memberID, epoch, fetch)
		})
		switch {
		case kerrv != nil:
			og.ErrorCode = kerrv.Code
		case ferr != nil:
			og.ErrorCode = errorCode(ferr)
		default:
			if req.Version >= 10 {
				for i := range topics {
					if t := img.Topics[topics[i].Topic]; t != nil {
						topics[i].TopicID = t.ID
					}
				}
			}
			og.Topics = topics
		}
		resp.Groups = append(resp.Groups, og)
	}
	if req.Version < 8 {
		g := resp.Groups[0]
		resp.Groups = nil
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
				})
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return resp, nil
}

func (s *Server) handleOffsetDelete(_ context.Context, _ *reqCtx, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	var resp *kmsg.OffsetDeleteResponse
	topics := imageTopics{s.meta.Image()}
	if kerrv := s.onShard(req.Group, func(sh *coordinator.Shard) { resp = sh.OffsetDelete(req, topics) }); kerrv != nil {
		resp = req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerrv.Code
	}
	return resp, nil
}

func (s *Server) handleDescribeGroups(_ context.Context, _ *reqCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		var d kmsg.DescribeGroupsResponseGroup
		if kerrv := s.onShard(id, func(sh *coordinator.Shard) { d = sh.DescribeGroup(id) }); kerrv != nil {
			d = kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = id, kerrv.Code
		}
		d.AuthorizedOperations = -2147483648
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}

func (s *Server) handleConsumerGroupDescribe(_ context.Context, _ *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topics := imageTopics{s.meta.Image()}
	for _, id := range req.Groups {
		var d kmsg.ConsumerGroupDescribeResponseGroup
		if kerrv := s.onShard(id, func(sh *coordinator.Shard) { d = sh.ConsumerDescribe(id, topics, req.IncludeAuthorizedOperations) }); kerrv != nil {
			d = kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group, d.ErrorCode = id, kerrv.Code
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}

// handleListGroups lists the groups of every shard this node coordinates.
func (s *Server) handleListGroups(_ context.Context, _ *reqCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	s.groups.mu.Lock()
	shards := make([]*shardRuntime, 0, len(s.groups.shards))
	for _, sr := range s.groups.shards {
		shards = append(shards, sr)
	}
	s.groups.mu.Unlock()
	for _, sr := range shards {
		sr.do(func(sh *coordinator.Shard) {
			resp.Groups = append(resp.Groups, sh.ListGroups(req.StatesFilter, req.TypesFilter)...)
		})
	}
	sortBy(resp.Groups, func(g kmsg.ListGroupsResponseGroup) string { return g.Group })
	return resp, nil
}

func (s *Server) handleDeleteGroups(ctx context.Context, _ *reqCtx, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		var derr error
		if kerrv := s.onShard(id, func(sh *coordinator.Shard) { derr = sh.DeleteGroup(id) }); kerrv != nil {
			rg.ErrorCode = kerrv.Code
		} else {
			rg.ErrorCode = errorCode(derr)
		}
		if rg.ErrorCode == 0 {
			s.deleteShareState(ctx, id)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// groupProtocolEnabled reports whether group.coordinator.rebalance.protocols
// lists the protocol.
func (s *Server) groupProtocolEnabled(p string) bool {
	for _, e := range s.cfg.GroupProtocols {
		if strings.EqualFold(e, p) {
			return true
		}
	}
	return false
}
