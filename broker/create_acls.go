package broker

// CreateAcls (key 30), v1-v3: adds ACL bindings to the metadata quorum. A
// node that is not the active controller relays the request to it; each
// binding is validated on its own (INVALID_REQUEST with the reason), and a
// binding equal to an existing one succeeds without a second copy. Without
// an authorizer every binding is answered SECURITY_DISABLED, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

func (s *Server) handleCreateACLs(ctx context.Context, _ *reqCtx, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	if s.sec.authorizerOff() {
		resp := refusedResponse(req, kerr.SecurityDisabled.Code).(*kmsg.CreateACLsResponse)
		for i := range resp.Results {
			resp.Results[i].ErrorMessage = &noAuthorizer
		}
		return resp, nil
	}
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	bindings := make([]acl.Binding, len(req.Creations))
	for i, c := range req.Creations {
		bindings[i] = acl.Binding{
			Pattern: acl.Pattern{Type: acl.ResourceType(c.ResourceType), Name: c.ResourceName, PatternType: acl.PatternType(c.ResourcePatternType)},
			Entry:   acl.Entry{Principal: c.Principal, Host: c.Host, Operation: acl.Operation(c.Operation), Permission: acl.Permission(c.PermissionType)},
		}
	}
	for _, r := range s.ctrl.CreateACLs(ctx, bindings) {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = errorCode(r.Err), errorMessage(r.Err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
