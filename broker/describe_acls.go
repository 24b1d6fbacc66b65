package broker

// DescribeAcls (key 29), v1-v3: the ACL bindings a filter selects, from
// this node's metadata image, grouped by resource pattern as Kafka groups
// them; SECURITY_DISABLED without an authorizer, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

func (s *Server) handleDescribeACLs(_ context.Context, _ *reqCtx, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if s.sec.authorizerOff() {
		resp.ErrorCode = kerr.SecurityDisabled.Code
		resp.ErrorMessage = kmsg.StringPtr("No Authorizer is configured on the broker")
		return resp, nil
	}
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err := f.Validate(); err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return resp, nil
	}
	byPattern := map[acl.Pattern]int{}
	for _, e := range s.meta.Image().ACLBindings(f) {
		p := e.Binding.Pattern
		i, ok := byPattern[p]
		if !ok {
			i = len(resp.Resources)
			byPattern[p] = i
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType = kmsg.ACLResourceType(p.Type)
			r.ResourceName = p.Name
			r.ResourcePatternType = kmsg.ACLResourcePatternType(p.PatternType)
			resp.Resources = append(resp.Resources, r)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host = e.Binding.Entry.Principal, e.Binding.Entry.Host
		a.Operation = kmsg.ACLOperation(e.Binding.Entry.Operation)
		a.PermissionType = kmsg.ACLPermissionType(e.Binding.Entry.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return resp, nil
}

// aclFilter converts the filter fields DescribeAcls and DeleteAcls share.
func aclFilter(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal, host *string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) acl.Filter {
	return acl.Filter{
		ResourceType: acl.ResourceType(rt), Name: name, PatternType: acl.PatternType(pt),
		Principal: principal, Host: host, Operation: acl.Operation(op), Permission: acl.Permission(perm),
	}
}
