package broker

// DeleteAcls (key 31), v1-v3: removes the bindings each filter selects,
// answering per filter with the bindings it matched. A node that is not
// the active controller relays the request to it. Without an authorizer
// every filter is answered SECURITY_DISABLED, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

func (s *Server) handleDeleteACLs(ctx context.Context, _ *reqCtx, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	if s.sec.authorizerOff() {
		resp := refusedResponse(req, kerr.SecurityDisabled.Code).(*kmsg.DeleteACLsResponse)
		for i := range resp.Results {
			resp.Results[i].ErrorMessage = &noAuthorizer
		}
		return resp, nil
	}
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	filters := make([]acl.Filter, len(req.Filters))
	for i, f := range req.Filters {
		filters[i] = aclFilter(f.ResourceType, f.ResourceName, f.ResourcePatternType, f.Principal, f.Host, f.Operation, f.PermissionType)
	}
	for _, r := range s.ctrl.DeleteACLs(ctx, filters) {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errorCode(r.Err), errorMessage(r.Err)
		for _, e := range r.Matched {
			b := e.Binding
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType = kmsg.ACLResourceType(b.Pattern.Type)
			m.ResourceName = b.Pattern.Name
			m.ResourcePatternType = kmsg.ACLResourcePatternType(b.Pattern.PatternType)
			m.Principal, m.Host = b.Entry.Principal, b.Entry.Host
			m.Operation = kmsg.ACLOperation(b.Entry.Operation)
			m.PermissionType = kmsg.ACLPermissionType(b.Entry.Permission)
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
