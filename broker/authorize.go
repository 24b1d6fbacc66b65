package broker

// Authorization at the front end: before a handler runs, the checks of
// acl.APIRules that concern the whole request (CLUSTER operations, the
// inter-broker CLUSTER_ACTION) are made here, from the API key alone, and
// a refusal is answered with Kafka's error without touching a runtime.
//
// The per-resource checks (each topic of a Produce, each group of an
// OffsetCommit, Metadata's filtering, ...) are made next, per item, by
// authorizeItems (authorize_items.go, authorize_clients.go,
// authorize_txn.go).

import (
	"reflect"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

// wholeRequestCheck is a check the front end makes for every request of
// an API: one operation on the CLUSTER resource, with the code a refusal
// answers.
type wholeRequestCheck struct {
	op     acl.Operation
	denied int16
}

// wholeRequestChecks are the APIs whose rule in acl.APIRules is exactly one
// unconditional CLUSTER check, derived from the table so the two cannot
// disagree.
var wholeRequestChecks = sync.OnceValue(func() map[int16]wholeRequestCheck {
	out := map[int16]wholeRequestCheck{}
	for key, rule := range acl.APIRules {
		if len(rule.Checks) != 1 {
			continue
		}
		c := rule.Checks[0]
		if c.When != "" || c.PerResource || c.Filter || len(c.AnyOf) != 1 || c.AnyOf[0].Type != acl.ResourceCluster {
			continue
		}
		out[int16(key)] = wholeRequestCheck{op: c.AnyOf[0].Op, denied: c.Denied}
	}
	return out
})

// noAuthorizer is Kafka's message when CreateAcls or DeleteAcls reach a
// node without an authorizer.
var noAuthorizer = "No Authorizer is configured."

// authorizerOff reports that no authorizer is configured
// (authorizer.class.name unset): Kafka then keeps no ACLs, and its ACL
// APIs answer SECURITY_DISABLED.
func (sec *security) authorizerOff() bool { return sec == nil || !sec.enforce }

// clusterResource is the one CLUSTER resource.
var clusterResource = acl.Resource{Type: acl.ResourceCluster, Name: acl.ClusterName}

// authorizeRequest makes the whole-request check of req's API, if it has
// one, as the connection's principal. It returns nil when the request may
// go on, or the answer to a refused request.
func (c *conn) authorizeRequest(rc *reqCtx, req kmsg.Request) kmsg.Response {
	check, ok := wholeRequestChecks()[req.Key()]
	if !ok {
		return nil
	}
	if c.srv.sec.authorize(c.principal, c.host, check.op, clusterResource, kmsg.NameForKey(req.Key())) {
		return nil
	}
	return refusedResponse(req, check.denied)
}

// refusedResponse is the answer to a request refused as a whole with code,
// shaped as Kafka's getErrorResponse shapes it: the top-level error code
// where the response has one, otherwise the code on every item the request
// named.
func refusedResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	switch r := resp.(type) {
	case *kmsg.CreateACLsResponse:
		for range req.(*kmsg.CreateACLsRequest).Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode = code
			r.Results = append(r.Results, res)
		}
		return r
	case *kmsg.DeleteACLsResponse:
		for range req.(*kmsg.DeleteACLsRequest).Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode = code
			r.Results = append(r.Results, res)
		}
		return r
	case *kmsg.AlterUserSCRAMCredentialsResponse:
		q := req.(*kmsg.AlterUserSCRAMCredentialsRequest)
		var users []string
		for _, d := range q.Deletions {
			users = append(users, d.Name)
		}
		for _, u := range q.Upsertions {
			users = append(users, u.Name)
		}
		for _, u := range users {
			if slices.ContainsFunc(r.Results, func(x kmsg.AlterUserSCRAMCredentialsResponseResult) bool { return x.User == u }) {
				continue
			}
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u, code
			r.Results = append(r.Results, res)
		}
		return r
	case *kmsg.AlterClientQuotasResponse:
		for _, e := range req.(*kmsg.AlterClientQuotasRequest).Entries {
			res := kmsg.NewAlterClientQuotasResponseEntry()
			res.Entity, res.ErrorCode = answeredEntity(e.Entity), code
			r.Entries = append(r.Entries, res)
		}
		return r
	case *kmsg.WriteTxnMarkersResponse:
		*r = *writeTxnMarkersAnswer(req.(*kmsg.WriteTxnMarkersRequest), func(string, int32, kmsg.WriteTxnMarkersRequestMarker) func() int16 {
			return func() int16 { return code }
		})
		return r
	case *kmsg.AlterReplicaLogDirsResponse:
		*r = *alterReplicaLogDirsAnswer(req.(*kmsg.AlterReplicaLogDirsRequest), func(string, string, int32) int16 { return code })
		return r
	case *kmsg.ElectLeadersResponse:
		if r.Version >= 1 {
			r.ErrorCode = code
			return r
		}
		for _, t := range req.(*kmsg.ElectLeadersRequest).Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	v := reflect.ValueOf(resp).Elem()
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		// DescribeLogDirs before v3 has no error code: Kafka answers it
		// with no directories, as this does.
		f.SetInt(int64(code))
		return resp
	}
	mirrorPartitionErrors(reflect.ValueOf(req).Elem(), v, code)
	return resp
}

// mirrorPartitionErrors answers the share-state RPCs (Topics[].Partitions[]
// in the request and the response alike) with code on every partition the
// request named.
func mirrorPartitionErrors(req, resp reflect.Value, code int16) {
	reqTopics, respTopics := req.FieldByName("Topics"), resp.FieldByName("Topics")
	if !reqTopics.IsValid() || !respTopics.IsValid() {
		return
	}
	for i := range reqTopics.Len() {
		rt := reqTopics.Index(i)
		out := reflect.New(respTopics.Type().Elem()).Elem()
		out.FieldByName("TopicID").Set(rt.FieldByName("TopicID"))
		parts, outParts := rt.FieldByName("Partitions"), out.FieldByName("Partitions")
		for j := range parts.Len() {
			p := reflect.New(outParts.Type().Elem()).Elem()
			p.FieldByName("Partition").Set(parts.Index(j).FieldByName("Partition"))
			p.FieldByName("ErrorCode").SetInt(int64(code))
			outParts.Set(reflect.Append(outParts, p))
		}
		respTopics.Set(reflect.Append(respTopics, out))
	}
}

// reportedOperations are the operations Kafka reports, for each resource
// type, in the authorized operations of a describe.
var reportedOperations = map[acl.ResourceType][]acl.Operation{
	acl.ResourceTopic:   {acl.OpRead, acl.OpWrite, acl.OpCreate, acl.OpDescribe, acl.OpDelete, acl.OpAlter, acl.OpDescribeConfigs, acl.OpAlterConfigs},
	acl.ResourceGroup:   {acl.OpRead, acl.OpDescribe, acl.OpDelete, acl.OpDescribeConfigs, acl.OpAlterConfigs},
	acl.ResourceCluster: {acl.OpCreate, acl.OpClusterAction, acl.OpDescribeConfigs, acl.OpAlterConfigs, acl.OpIdempotentWrite, acl.OpAlter, acl.OpDescribe},
}

// authorizedOperations is the bit field (1 << operation code) of the
// operations on res the connection's principal may perform, as a describe
// that asks for them answers: all of them without an authorizer, as in
// Kafka. Denials are not logged.
func (c *conn) authorizedOperations(res acl.Resource, api string) int32 {
	var ops int32
	for _, op := range reportedOperations[res.Type] {
		if c.srv.sec.decide(c.principal, c.host, op, res, api, false) {
			ops |= 1 << op
		}
	}
	return ops
}

// groupAuthorizedOperations sets, for a describe that asks for them, the
// authorized operations of each group described without error; ops
// points at a group's field, id gives its name.
func groupAuthorizedOperations[G any](c *conn, api string, include bool, groups []G, described func(*G) (id string, ops *int32, ok bool)) {
	if !include {
		return
	}
	for i := range groups {
		if id, ops, ok := described(&groups[i]); ok {
			*ops = c.authorizedOperations(acl.Resource{Type: acl.ResourceGroup, Name: id}, api)
		}
	}
}
