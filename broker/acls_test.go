package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Without an authorizer (authorizer.class.name unset) Kafka keeps no ACLs:
// DescribeAcls answers SECURITY_DISABLED at the top, CreateAcls and
// DeleteAcls on every binding and filter, with Kafka's messages.
func TestACLAPIsWithoutAnAuthorizer(t *testing.T) {
	s := startTestServer(t)
	c := dialRaw(t, s.Addrs()[0])
	msg := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}

	create := kmsg.NewPtrCreateACLsRequest()
	for range 2 {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		create.Creations = append(create.Creations, cr)
	}
	cresp := c.roundTrip(create, 3).(*kmsg.CreateACLsResponse)
	if len(cresp.Results) != 2 {
		t.Fatalf("CreateAcls: %d results, want 2", len(cresp.Results))
	}
	for _, r := range cresp.Results {
		if r.ErrorCode != kerr.SecurityDisabled.Code || msg(r.ErrorMessage) != "No Authorizer is configured." {
			t.Errorf("CreateAcls: %v %q, want SECURITY_DISABLED", kerr.ErrorForCode(r.ErrorCode), msg(r.ErrorMessage))
		}
	}

	describe := kmsg.NewPtrDescribeACLsRequest()
	describe.ResourceType, describe.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	describe.Operation, describe.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dresp := c.roundTrip(describe, 3).(*kmsg.DescribeACLsResponse)
	if dresp.ErrorCode != kerr.SecurityDisabled.Code || msg(dresp.ErrorMessage) != "No Authorizer is configured on the broker" || len(dresp.Resources) != 0 {
		t.Errorf("DescribeAcls: %v %q, %d resources, want SECURITY_DISABLED", kerr.ErrorForCode(dresp.ErrorCode), msg(dresp.ErrorMessage), len(dresp.Resources))
	}

	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	delResp := c.roundTrip(del, 3).(*kmsg.DeleteACLsResponse)
	if len(delResp.Results) != 1 || delResp.Results[0].ErrorCode != kerr.SecurityDisabled.Code || msg(delResp.Results[0].ErrorMessage) != "No Authorizer is configured." {
		t.Errorf("DeleteAcls: %+v, want SECURITY_DISABLED", delResp.Results)
	}
}
