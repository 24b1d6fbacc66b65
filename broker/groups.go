package broker

// The group admin APIs, on every listener: DescribeGroups (key 15)
// v0-v6, ListGroups (key 16) v0-v5, DeleteGroups (key 42) v0-v2; and the
// helpers every group handler shares (onShard, awaitReply, imageTopics).
//
// ListGroups lists the groups of the shards this node coordinates, as each
// Kafka broker does; clients ask every broker.

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
