package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIRulesCoverEveryKey fails when kmsg knows an API key that APIRules
// does not cover, so a new API cannot be served without an authorization
// rule.
func TestAPIRulesCoverEveryKey(t *testing.T) {
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		if kmsg.NameForKey(k) == "Unknown" {
			continue
		}
		r, ok := APIRules[kmsg.Key(k)]
		if !ok {
			t.Errorf("API %d (%s) has no authorization rule", k, kmsg.NameForKey(k))
			continue
		}
		if len(r.Checks) == 0 && r.Note == "" {
			t.Errorf("API %d (%s) has no checks and no note saying why", k, kmsg.NameForKey(k))
		}
		for _, c := range r.Checks {
			if len(c.AnyOf) == 0 || c.Denied == 0 {
				t.Errorf("API %d (%s) has an empty check %+v", k, kmsg.NameForKey(k), c)
			}
			for _, a := range c.AnyOf {
				b := Binding{Pattern{a.Type, "x", PatternLiteral}, Entry{"User:a", "*", a.Op, PermissionAllow}}
				if a.Type == ResourceCluster {
					b.Pattern.Name = ClusterName
				}
				if err := b.Validate(); err != nil {
					t.Errorf("API %d (%s): access %v cannot be granted: %v", k, kmsg.NameForKey(k), a, err)
				}
			}
		}
	}
	for k := range APIRules {
		if kmsg.NameForKey(int16(k)) == "Unknown" {
			t.Errorf("rule for API key %d, which kmsg does not know", k)
		}
	}
}

// TestAPIRulesSpotChecks pins the rules the issue names explicitly.
func TestAPIRulesSpotChecks(t *testing.T) {
	has := func(k kmsg.Key, rt ResourceType, op Operation) bool {
		for _, c := range APIRules[k].Checks {
			for _, a := range c.AnyOf {
				if a.Type == rt && a.Op == op {
					return true
				}
			}
		}
		return false
	}
	for _, tc := range []struct {
		k  kmsg.Key
		rt ResourceType
		op Operation
	}{
		{kmsg.Produce, ResourceTopic, OpWrite},
		{kmsg.Produce, ResourceTransactionalID, OpWrite},
		{kmsg.Fetch, ResourceTopic, OpRead},
		{kmsg.Fetch, ResourceCluster, OpClusterAction},
		{kmsg.ShareFetch, ResourceGroup, OpRead},
		{kmsg.ShareFetch, ResourceTopic, OpRead},
		{kmsg.ShareAcknowledge, ResourceGroup, OpRead},
		{kmsg.ConsumerGroupHeartbeat, ResourceGroup, OpRead},
		{kmsg.WriteTxnMarkers, ResourceCluster, OpClusterAction},
		{kmsg.CreateACLs, ResourceCluster, OpAlter},
		{kmsg.DescribeACLs, ResourceCluster, OpDescribe},
		{kmsg.AlterUserSCRAMCredentials, ResourceCluster, OpAlter},
		{kmsg.DeleteTopics, ResourceTopic, OpDelete},
		{kmsg.CreateTopics, ResourceCluster, OpCreate},
		{kmsg.CreateTopics, ResourceTopic, OpCreate},
		{kmsg.InitProducerID, ResourceCluster, OpIdempotentWrite},
		{kmsg.BrokerHeartbeat, ResourceCluster, OpClusterAction},
		{kmsg.ReadShareGroupState, ResourceCluster, OpClusterAction},
	} {
		if !has(tc.k, tc.rt, tc.op) {
			t.Errorf("%s must check %s %s", kmsg.NameForKey(int16(tc.k)), tc.rt, tc.op)
		}
	}
}
