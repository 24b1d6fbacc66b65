package broker

// Per-item authorization of the admin APIs at the front end: CreateTopics,
// DeleteTopics, CreatePartitions, DeleteRecords, the three config APIs,
// DescribeGroups and DeleteGroups name their resources in the request, so
// the items a principal may not touch are taken out before the handler
// runs and answered with Kafka's error, as KafkaApis answers them, while
// the rest are handled as usual. A handler never sees a refused item.
// ListGroups names none: its answer is filtered to the groups the
// principal may describe.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
)

// itemGate takes the refused items out of req and returns what adds their
// answers to the response, or nil when every item may go on.
type itemGate func(c *conn, req kmsg.Request) (merge func(kmsg.Response))

// itemGates are the APIs checked per item in front of their handlers.
var itemGates = map[int16]itemGate{
	int16(kmsg.CreateTopics):            gateCreateTopics,
	int16(kmsg.DeleteTopics):            gateDeleteTopics,
	int16(kmsg.CreatePartitions):        gateCreatePartitions,
	int16(kmsg.DeleteRecords):           gateDeleteRecords,
	int16(kmsg.DescribeConfigs):         gateDescribeConfigs,
	int16(kmsg.AlterConfigs):            gateAlterConfigs,
	int16(kmsg.IncrementalAlterConfigs): gateIncrementalAlterConfigs,
	int16(kmsg.DescribeGroups):          gateDescribeGroups,
	int16(kmsg.DeleteGroups):            gateDeleteGroups,
	int16(kmsg.ListGroups):              gateListGroups,
	// The client APIs (authorize_clients.go).
	int16(kmsg.Produce):                   gateProduce,
	int16(kmsg.ListOffsets):               gateListOffsets,
	int16(kmsg.Metadata):                  gateMetadata,
	int16(kmsg.OffsetCommit):              gateOffsetCommit,
	int16(kmsg.OffsetFetch):               gateOffsetFetch,
	int16(kmsg.OffsetDelete):              gateOffsetDelete,
	int16(kmsg.FindCoordinator):           gateFindCoordinator,
	int16(kmsg.OffsetForLeaderEpoch):      gateOffsetForLeaderEpoch,
	int16(kmsg.ConsumerGroupDescribe):     gateConsumerGroupDescribe,
	int16(kmsg.ShareGroupDescribe):        gateShareGroupDescribe,
	int16(kmsg.ShareFetch):                gateShareFetch,
	int16(kmsg.ShareAcknowledge):          gateShareAcknowledge,
	int16(kmsg.DescribeShareGroupOffsets): gateDescribeShareGroupOffsets,
	int16(kmsg.AlterShareGroupOffsets):    gateAlterShareGroupOffsets,
	int16(kmsg.DeleteShareGroupOffsets):   gateDeleteShareGroupOffsets,
	// The transaction APIs (authorize_txn.go).
	int16(kmsg.TxnOffsetCommit):      gateTxnOffsetCommit,
	int16(kmsg.DescribeProducers):    gateDescribeProducers,
	int16(kmsg.DescribeTransactions): gateDescribeTransactions,
	int16(kmsg.ListTransactions):     gateListTransactions,
}

// authorizeItems applies req's group check and item gate, if it has them.
// It returns the whole answer of a request refused as a whole, or what
// adds the refused items' answers to the handler's response. Without an
// authorizer it costs one branch.
func (c *conn) authorizeItems(req kmsg.Request) (refused kmsg.Response, merge func(kmsg.Response)) {
	if c.srv.sec == nil || !c.srv.sec.enforce {
		return nil, nil
	}
	if refused := c.refuseRequest(req); refused != nil {
		return refused, nil
	}
	if gate := itemGates[req.Key()]; gate != nil {
		return nil, gate(c, req)
	}
	return nil, nil
}

// may reports whether the connection's principal may perform op on the
// resource, logging the decision.
func (c *conn) may(req kmsg.Request, op acl.Operation, t acl.ResourceType, name string) bool {
	return c.srv.sec.authorize(c.principal, c.host, op, acl.Resource{Type: t, Name: name}, kmsg.NameForKey(req.Key()))
}

// split keeps the items allowed and turns the others into answers.
func split[T, R any](items []T, allowed func(T) bool, refuse func(T) R) (kept []T, refused []R) {
	kept = make([]T, 0, len(items))
	for _, it := range items {
		if allowed(it) {
			kept = append(kept, it)
		} else {
			refused = append(refused, refuse(it))
		}
	}
	return kept, refused
}

// splitGate takes the items not allowed out of *items and returns what
// appends their refusals to the list answer picks out of the response, or
// nil when every item is allowed.
func splitGate[T, R any](items *[]T, allowed func(T) bool, refuse func(T) R, answer func(kmsg.Response) *[]R) func(kmsg.Response) {
	kept, refused := split(*items, allowed, refuse)
	if len(refused) == 0 {
		return nil
	}
	*items = kept
	return func(resp kmsg.Response) {
		out := answer(resp)
		*out = append(*out, refused...)
	}
}

// authFailed is the message Kafka gives with an authorization error.
var authFailed = kmsg.StringPtr("Authorization failed.")

func gateCreateTopics(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.CreateTopicsRequest)
	// CLUSTER CREATE allows every topic; without it each needs TOPIC
	// CREATE. Kafka does not log the cluster check's denial.
	var refuse func(kmsg.Response)
	if !c.srv.sec.decide(c.principal, c.host, acl.OpCreate, clusterResource, "CreateTopics", false) {
		refuse = splitGate(&r.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
			return c.may(req, acl.OpCreate, acl.ResourceTopic, t.Topic)
		}, func(t kmsg.CreateTopicsRequestTopic) kmsg.CreateTopicsResponseTopic {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerr.TopicAuthorizationFailed.Code, authFailed
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			rt.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
			return rt
		}, func(resp kmsg.Response) *[]kmsg.CreateTopicsResponseTopic {
			return &resp.(*kmsg.CreateTopicsResponse).Topics
		})
	}
	return func(resp kmsg.Response) {
		if refuse != nil {
			refuse(resp)
		}
		hideUndescribableConfigs(c, resp.(*kmsg.CreateTopicsResponse))
	}
}

// hideUndescribableConfigs leaves out what a created topic's answer tells
// of its configuration (its configs, partition count and replication
// factor) where the principal may not describe the topic's configs, and
// says so in the config error, as Kafka does; the denial is not logged.
func hideUndescribableConfigs(c *conn, resp *kmsg.CreateTopicsResponse) {
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.ErrorCode != 0 || c.srv.sec.decide(c.principal, c.host, acl.OpDescribeConfigs, acl.Resource{Type: acl.ResourceTopic, Name: rt.Topic}, "CreateTopics", false) {
			continue
		}
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		rt.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
		rt.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
	}
}

func gateDeleteTopics(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DeleteTopicsRequest)
	img := c.srv.meta.Image()
	refuse := func(name *string, id [16]byte) kmsg.DeleteTopicsResponseTopic {
		return deleteTopicAnswer(name, id, kerr.TopicAuthorizationFailed.Code, authFailed)
	}
	// Without DELETE a topic is refused whether or not it exists, so the
	// answer does not tell who may not delete it whether it is there.
	keptNames, refused := split(r.TopicNames, func(n string) bool {
		return c.may(req, acl.OpDelete, acl.ResourceTopic, n)
	}, func(n string) kmsg.DeleteTopicsResponseTopic { return refuse(kmsg.StringPtr(n), [16]byte{}) })
	keptTopics, refusedTopics := split(r.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool {
		name := t.Topic
		if name == nil {
			tp := img.TopicByID(t.TopicID)
			if tp == nil {
				return true // UNKNOWN_TOPIC_ID from the handler
			}
			name = &tp.Name
		}
		return c.may(req, acl.OpDelete, acl.ResourceTopic, *name)
	}, func(t kmsg.DeleteTopicsRequestTopic) kmsg.DeleteTopicsResponseTopic {
		return refuse(t.Topic, t.TopicID)
	})
	refused = append(refused, refusedTopics...)
	if len(refused) == 0 {
		return nil
	}
	r.TopicNames, r.Topics = keptNames, keptTopics
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.DeleteTopicsResponse)
		x.Topics = append(x.Topics, refused...)
	}
}

func gateCreatePartitions(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.CreatePartitionsRequest)
	return splitGate(&r.Topics, func(t kmsg.CreatePartitionsRequestTopic) bool {
		return c.may(req, acl.OpAlter, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.CreatePartitionsRequestTopic) kmsg.CreatePartitionsResponseTopic {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerr.TopicAuthorizationFailed.Code, authFailed
		return rt
	}, func(resp kmsg.Response) *[]kmsg.CreatePartitionsResponseTopic {
		return &resp.(*kmsg.CreatePartitionsResponse).Topics
	})
}

func gateDeleteRecords(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DeleteRecordsRequest)
	return splitGate(&r.Topics, func(t kmsg.DeleteRecordsRequestTopic) bool {
		return c.may(req, acl.OpDelete, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.DeleteRecordsRequestTopic) kmsg.DeleteRecordsResponseTopic {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark, rp.ErrorCode = p.Partition, -1, kerr.TopicAuthorizationFailed.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.DeleteRecordsResponseTopic {
		return &resp.(*kmsg.DeleteRecordsResponse).Topics
	})
}

// configAccess is what a config resource needs for op (DESCRIBE_CONFIGS
// or ALTER_CONFIGS) and the code a refusal answers; ok is false for a
// resource type the handler refuses by itself.
func configAccess(t kmsg.ConfigResourceType) (rt acl.ResourceType, denied int16, ok bool) {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return acl.ResourceTopic, kerr.TopicAuthorizationFailed.Code, true
	case kmsg.ConfigResourceTypeGroupConfig:
		return acl.ResourceGroup, kerr.GroupAuthorizationFailed.Code, true
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger, kmsg.ConfigResourceTypeClientMetrics:
		return acl.ResourceCluster, kerr.ClusterAuthorizationFailed.Code, true
	}
	return 0, 0, false
}

// configAllowed checks one config resource.
func (c *conn) configAllowed(req kmsg.Request, op acl.Operation, t kmsg.ConfigResourceType, name string) bool {
	rt, _, ok := configAccess(t)
	if !ok {
		return true
	}
	if rt == acl.ResourceCluster {
		name = acl.ClusterName
	}
	return c.may(req, op, rt, name)
}

// gateConfigResources gates the resources of a config API: each needs op
// on what its type names, and a refused one is answered by refuse with
// the code of its type.
func gateConfigResources[T, R any](c *conn, req kmsg.Request, op acl.Operation, items *[]T,
	id func(T) (kmsg.ConfigResourceType, string), refuse func(rt kmsg.ConfigResourceType, name string, code int16) R,
	answer func(kmsg.Response) *[]R) func(kmsg.Response) {
	return splitGate(items, func(res T) bool {
		rt, name := id(res)
		return c.configAllowed(req, op, rt, name)
	}, func(res T) R {
		rt, name := id(res)
		_, code, _ := configAccess(rt)
		return refuse(rt, name, code)
	}, answer)
}

func gateDescribeConfigs(c *conn, req kmsg.Request) func(kmsg.Response) {
	return gateConfigResources(c, req, acl.OpDescribeConfigs, &req.(*kmsg.DescribeConfigsRequest).Resources,
		func(res kmsg.DescribeConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		}, func(rt kmsg.ConfigResourceType, name string, code int16) kmsg.DescribeConfigsResponseResource {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = rt, name, code, authFailed
			rr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
			return rr
		}, func(resp kmsg.Response) *[]kmsg.DescribeConfigsResponseResource {
			return &resp.(*kmsg.DescribeConfigsResponse).Resources
		})
}

func gateAlterConfigs(c *conn, req kmsg.Request) func(kmsg.Response) {
	return gateConfigResources(c, req, acl.OpAlterConfigs, &req.(*kmsg.AlterConfigsRequest).Resources,
		func(res kmsg.AlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		}, refusedAlter[kmsg.AlterConfigsResponseResource],
		func(resp kmsg.Response) *[]kmsg.AlterConfigsResponseResource {
			return &resp.(*kmsg.AlterConfigsResponse).Resources
		})
}

func gateIncrementalAlterConfigs(c *conn, req kmsg.Request) func(kmsg.Response) {
	return gateConfigResources(c, req, acl.OpAlterConfigs, &req.(*kmsg.IncrementalAlterConfigsRequest).Resources,
		func(res kmsg.IncrementalAlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		}, refusedAlter[kmsg.IncrementalAlterConfigsResponseResource],
		func(resp kmsg.Response) *[]kmsg.IncrementalAlterConfigsResponseResource {
			return &resp.(*kmsg.IncrementalAlterConfigsResponse).Resources
		})
}

// refusedAlter answers an alter resource the principal may not touch.
func refusedAlter[R alterResource](rt kmsg.ConfigResourceType, name string, code int16) R {
	return alterAnswer[R](alterResult{rt, name, code, authFailed})
}

func gateDescribeGroups(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DescribeGroupsRequest)
	return splitGate(&r.Groups, func(g string) bool {
		return c.may(req, acl.OpDescribe, acl.ResourceGroup, g)
	}, func(g string) kmsg.DescribeGroupsResponseGroup {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		return rg
	}, func(resp kmsg.Response) *[]kmsg.DescribeGroupsResponseGroup {
		return &resp.(*kmsg.DescribeGroupsResponse).Groups
	})
}

func gateDeleteGroups(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DeleteGroupsRequest)
	return splitGate(&r.Groups, func(g string) bool {
		return c.may(req, acl.OpDelete, acl.ResourceGroup, g)
	}, func(g string) kmsg.DeleteGroupsResponseGroup {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		return rg
	}, func(resp kmsg.Response) *[]kmsg.DeleteGroupsResponseGroup {
		return &resp.(*kmsg.DeleteGroupsResponse).Groups
	})
}

// gateListGroups leaves out of the answer the groups the principal may not
// describe, unless it may describe the cluster, as Kafka does; the groups
// left out are not logged as denials.
func gateListGroups(c *conn, req kmsg.Request) func(kmsg.Response) {
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	if sec.decide(c.principal, c.host, acl.OpDescribe, clusterResource, api, false) {
		return nil
	}
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.ListGroupsResponse)
		x.Groups = slices.DeleteFunc(x.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return !sec.decide(c.principal, c.host, acl.OpDescribe, acl.Resource{Type: acl.ResourceGroup, Name: g.Group}, api, false)
		})
	}
}
