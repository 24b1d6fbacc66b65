package broker

// The group admin APIs, on every listener: DescribeGroups (key 15)
// v0-v6, ListGroups (key 16) v0-v5, DeleteGroups (key 42) v0-v2; and the
// helpers the group handlers share (awaitReply, describeEach).
//
// ListGroups lists the groups of the shards this node coordinates, as each
// Kafka broker does; clients ask every broker.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
)

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

func (s *Server) handleDescribeGroups(_ context.Context, rc *reqCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = describeEach(s, req.Groups, func(sh *coordinator.Shard, id string) kmsg.DescribeGroupsResponseGroup {
		return sh.DescribeGroup(id, req.Version)
	}, describeFailed)
	for i := range resp.Groups {
		resp.Groups[i].AuthorizedOperations = -2147483648
	}
	groupAuthorizedOperations(rc.conn, "DescribeGroups", req.Version >= 3 && req.IncludeAuthorizedOperations, resp.Groups,
		func(g *kmsg.DescribeGroupsResponseGroup) (string, *int32, bool) {
			return g.Group, &g.AuthorizedOperations, g.ErrorCode == 0
		})
	return resp, nil
}

func describeFailed(id string, code int16) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group, d.ErrorCode = id, code
	return d
}

// onGroupShard answers req with what do returns on the shard coordinating
// group or, when that shard cannot take the call (NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS), with the error response Kafka gives for
// the code (refusedResponse), so that the client looks its coordinator up
// again.
func (s *Server) onGroupShard(group string, req kmsg.Request, do func(*coordinator.Shard) kmsg.Response) (kmsg.Response, error) {
	var resp kmsg.Response
	if kerrv := s.coord.Groups.Do(group, func(sh *coordinator.Shard) { resp = do(sh) }); kerrv != nil {
		return refusedResponse(req, kerrv.Code), nil
	}
	return resp, nil
}

// describeEach describes each group of a Describe request (classic,
// consumer or share) from its shard; a group this node cannot answer for
// (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) gets failed's entry,
// which carries the code so that the client looks its coordinator up again.
func describeEach[G any](s *Server, ids []string, describe func(sh *coordinator.Shard, id string) G, failed func(id string, code int16) G) []G {
	out := make([]G, 0, len(ids))
	for _, id := range ids {
		var d G
		if kerrv := s.coord.Groups.Do(id, func(sh *coordinator.Shard) { d = describe(sh, id) }); kerrv != nil {
			d = failed(id, kerrv.Code)
		}
		out = append(out, d)
	}
	return out
}

// handleListGroups lists the groups of every shard this node coordinates.
func (s *Server) handleListGroups(_ context.Context, _ *reqCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Groups = s.coord.Groups.ListGroups(req.StatesFilter, req.TypesFilter)
	sortBy(resp.Groups, func(g kmsg.ListGroupsResponseGroup) string { return g.Group })
	return resp, nil
}

func (s *Server) handleDeleteGroups(ctx context.Context, _ *reqCtx, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		var derr error
		if kerrv := s.coord.Groups.Do(id, func(sh *coordinator.Shard) { derr = sh.DeleteGroup(id) }); kerrv != nil {
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
