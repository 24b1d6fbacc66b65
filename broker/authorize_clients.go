package broker

// Authorization of the client APIs at the front end, as Kafka's KafkaApis
// makes it: the group a request acts for is checked first and refuses the
// whole request (groupChecks), then every topic it names is checked and a
// refused topic is taken out of the request and answered with
// TOPIC_AUTHORIZATION_FAILED (clientGates). A topic named by id is checked
// under its name; an id the image does not know is left to the handler,
// which answers UNKNOWN_TOPIC_ID as Kafka does.
//
// Fetch sessions (KIP-227) are not kept (fetch.go), so every Fetch names
// all the partitions it reads and each is checked. A share session keeps
// the partitions of earlier ShareFetch requests; they are checked again
// on every request as the acquisition reaches them (readableTopics).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/raftmeta"
)

// groupCheck names the one group a request acts for, the operation it
// needs on it, and whether the request has that check.
type groupCheck func(req kmsg.Request) (group string, op acl.Operation)

// groupChecks are the APIs that act for one group: without the operation
// on it the whole request is refused with GROUP_AUTHORIZATION_FAILED.
var groupChecks = map[int16]groupCheck{
	int16(kmsg.JoinGroup): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.JoinGroupRequest).Group, acl.OpRead
	},
	int16(kmsg.SyncGroup): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.SyncGroupRequest).Group, acl.OpRead
	},
	int16(kmsg.Heartbeat): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.HeartbeatRequest).Group, acl.OpRead
	},
	int16(kmsg.LeaveGroup): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.LeaveGroupRequest).Group, acl.OpRead
	},
	int16(kmsg.OffsetCommit): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.OffsetCommitRequest).Group, acl.OpRead
	},
	int16(kmsg.OffsetDelete): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.OffsetDeleteRequest).Group, acl.OpDelete
	},
	int16(kmsg.ConsumerGroupHeartbeat): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.ConsumerGroupHeartbeatRequest).Group, acl.OpRead
	},
	int16(kmsg.ShareGroupHeartbeat): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.ShareGroupHeartbeatRequest).GroupID, acl.OpRead
	},
	int16(kmsg.ShareFetch): func(r kmsg.Request) (string, acl.Operation) {
		return deref(r.(*kmsg.ShareFetchRequest).GroupID), acl.OpRead
	},
	int16(kmsg.ShareAcknowledge): func(r kmsg.Request) (string, acl.Operation) {
		return deref(r.(*kmsg.ShareAcknowledgeRequest).GroupID), acl.OpRead
	},
	int16(kmsg.AlterShareGroupOffsets): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.AlterShareGroupOffsetsRequest).GroupID, acl.OpRead
	},
	int16(kmsg.DeleteShareGroupOffsets): func(r kmsg.Request) (string, acl.Operation) {
		return r.(*kmsg.DeleteShareGroupOffsetsRequest).GroupID, acl.OpDelete
	},
}

// requestRefusals are the checks other than a group's that refuse a
// request as a whole; each returns the answer, or nil when it may go on.
var requestRefusals = map[int16]func(c *conn, req kmsg.Request) kmsg.Response{
	int16(kmsg.FindCoordinator):        refuseFindCoordinator,
	int16(kmsg.InitProducerID):         refuseInitProducerID,
	int16(kmsg.ConsumerGroupHeartbeat): refuseConsumerGroupHeartbeat,
	int16(kmsg.ShareGroupHeartbeat):    refuseShareGroupHeartbeat,
	int16(kmsg.EndTxn):                 refuseEndTxn,
	int16(kmsg.AddOffsetsToTxn):        refuseAddOffsetsToTxn,
	int16(kmsg.TxnOffsetCommit):        refuseTxnOffsetCommit,
	int16(kmsg.AddPartitionsToTxn):     refuseAddPartitionsToTxn,
}

// refuseRequest makes req's whole-request checks: its group's first, as
// Kafka does. It returns the answer of a refused request, or nil.
func (c *conn) refuseRequest(req kmsg.Request) kmsg.Response {
	if check := groupChecks[req.Key()]; check != nil {
		if group, op := check(req); !c.may(req, op, acl.ResourceGroup, group) {
			return c.groupRefusal(req)
		}
	}
	if refuse := requestRefusals[req.Key()]; refuse != nil {
		return refuse(c, req)
	}
	return nil
}

// groupRefusal is the answer to a request whose group is refused.
func (c *conn) groupRefusal(req kmsg.Request) kmsg.Response {
	code := kerr.GroupAuthorizationFailed.Code
	if r, ok := req.(*kmsg.OffsetCommitRequest); ok {
		// OffsetCommit has no top-level code: every partition carries it.
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.SetVersion(r.Version)
		for _, t := range r.Topics {
			resp.Topics = append(resp.Topics, offsetCommitRefusal(t, code))
		}
		return resp
	}
	return refusedResponse(req, code)
}

// topicName is the name of a topic a request names by name or by id; ok is
// false for an id the image does not know.
func topicName(img *raftmeta.Image, name string, id [16]byte) (string, bool) {
	if name != "" || id == ([16]byte{}) {
		return name, true
	}
	if t := img.TopicByID(id); t != nil {
		return t.Name, true
	}
	return "", false
}

// mayTopic checks op on a topic named by name or id; an unknown id passes.
func (c *conn) mayTopic(req kmsg.Request, img *raftmeta.Image, op acl.Operation, name string, id [16]byte) bool {
	n, ok := topicName(img, name, id)
	return !ok || c.may(req, op, acl.ResourceTopic, n)
}

// mayClusterAction reports, without logging a denial, whether the
// principal is a broker (CLUSTER_ACTION).
func (c *conn) mayClusterAction(req kmsg.Request) bool {
	return c.srv.sec.decide(c.principal, c.host, acl.OpClusterAction, clusterResource, kmsg.NameForKey(req.Key()), false)
}

var topicDenied = kerr.TopicAuthorizationFailed.Code

func gateProduce(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ProduceRequest)
	img := c.srv.meta.Image()
	txnDenied := r.TransactionID != nil && !c.may(req, acl.OpWrite, acl.ResourceTransactionalID, *r.TransactionID)
	return splitGate(&r.Topics, func(t kmsg.ProduceRequestTopic) bool {
		return !txnDenied && c.mayTopic(req, img, acl.OpWrite, t.Topic, t.TopicID)
	}, func(t kmsg.ProduceRequestTopic) kmsg.ProduceResponseTopic {
		code := topicDenied
		if txnDenied {
			code = kerr.TransactionalIDAuthorizationFailed.Code
		}
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = p.Partition, code, -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.ProduceResponseTopic { return &resp.(*kmsg.ProduceResponse).Topics })
}

// fetchAllowed returns what decides whether a Fetch may read a topic, or
// nil without an authorizer: a follower needs CLUSTER_ACTION (whatever the
// topic), a consumer READ on each topic. The Fetch handler asks it for every partition of
// the fetch's session (fetch_session.go); each topic is decided, and
// logged, once per request.
func (c *conn) fetchAllowed(req *kmsg.FetchRequest) func(topic string) bool {
	if c.srv.sec == nil || !c.srv.sec.enforce {
		return nil
	}
	if fetchReplica(req) >= 0 {
		ok := c.may(req, acl.OpClusterAction, acl.ResourceCluster, acl.ClusterName)
		return func(string) bool { return ok }
	}
	return c.readableTopics(req)
}

func gateListOffsets(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ListOffsetsRequest)
	return splitGate(&r.Topics, func(t kmsg.ListOffsetsRequestTopic) bool {
		return c.may(req, acl.OpDescribe, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.ListOffsetsRequestTopic) kmsg.ListOffsetsResponseTopic {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Timestamp, rp.Offset = p.Partition, topicDenied, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.ListOffsetsResponseTopic {
		return &resp.(*kmsg.ListOffsetsResponse).Topics
	})
}

// gateMetadata: a topic named without DESCRIBE is answered
// TOPIC_AUTHORIZATION_FAILED (never "unknown"), a missing topic the
// request would auto-create needs CLUSTER CREATE or TOPIC CREATE, and
// when all topics are asked for those without DESCRIBE are left out
// without an audit line, as Kafka does.
func gateMetadata(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.MetadataRequest)
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	describable := func(name string) bool {
		return sec.decide(c.principal, c.host, acl.OpDescribe, acl.Resource{Type: acl.ResourceTopic, Name: name}, api, false)
	}
	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		return func(resp kmsg.Response) {
			x := resp.(*kmsg.MetadataResponse)
			x.Topics = slices.DeleteFunc(x.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return t.Topic != nil && !describable(*t.Topic)
			})
		}
	}
	img := c.srv.meta.Image()
	autoCreate := c.srv.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	var clusterCreate *bool
	kept, refused := split(r.Topics, func(t kmsg.MetadataRequestTopic) bool {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		n, known := topicName(img, name, t.TopicID)
		if !known {
			return true
		}
		if !c.may(req, acl.OpDescribe, acl.ResourceTopic, n) {
			return false
		}
		if !autoCreate || img.Topics[n] != nil {
			return true
		}
		if clusterCreate == nil {
			ok := sec.decide(c.principal, c.host, acl.OpCreate, clusterResource, api, false)
			clusterCreate = &ok
		}
		return *clusterCreate || c.may(req, acl.OpCreate, acl.ResourceTopic, n)
	}, func(t kmsg.MetadataRequestTopic) kmsg.MetadataResponseTopic {
		rt := kmsg.NewMetadataResponseTopic()
		// Asked by name, the id stays hidden; asked by id, Kafka answers
		// the id (ids are not secret) and no name.
		rt.Topic, rt.ErrorCode = t.Topic, topicDenied
		if t.Topic == nil {
			rt.TopicID = t.TopicID
		}
		rt.Partitions = []kmsg.MetadataResponseTopicPartition{}
		return rt
	})
	if len(refused) == 0 {
		return nil
	}
	r.Topics = kept
	allRefused := len(kept) == 0
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.MetadataResponse)
		if allRefused {
			// An emptied request would mean "all topics" at v0.
			x.Topics = x.Topics[:0]
		}
		x.Topics = append(x.Topics, refused...)
	}
}

// offsetCommitRefusal answers every partition of t with code: OffsetCommit
// has no top-level error code.
func offsetCommitRefusal(t kmsg.OffsetCommitRequestTopic, code int16) kmsg.OffsetCommitResponseTopic {
	rt := kmsg.NewOffsetCommitResponseTopic()
	rt.Topic, rt.TopicID = t.Topic, t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewOffsetCommitResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p.Partition, code
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

func gateOffsetCommit(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.OffsetCommitRequest)
	img := c.srv.meta.Image()
	return splitGate(&r.Topics, func(t kmsg.OffsetCommitRequestTopic) bool {
		return c.mayTopic(req, img, acl.OpRead, t.Topic, t.TopicID)
	}, func(t kmsg.OffsetCommitRequestTopic) kmsg.OffsetCommitResponseTopic {
		return offsetCommitRefusal(t, topicDenied)
	}, func(resp kmsg.Response) *[]kmsg.OffsetCommitResponseTopic {
		return &resp.(*kmsg.OffsetCommitResponse).Topics
	})
}

// gateOffsetFetch: each group needs DESCRIBE; each topic named needs
// DESCRIBE or is answered TOPIC_AUTHORIZATION_FAILED, and when all of a
// group's offsets are asked for the topics without DESCRIBE are left out.
func gateOffsetFetch(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.OffsetFetchRequest)
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	hidden := func(topic string) bool {
		return !sec.decide(c.principal, c.host, acl.OpDescribe, acl.Resource{Type: acl.ResourceTopic, Name: topic}, api, false)
	}
	img := c.srv.meta.Image()
	if r.Version < 8 {
		if !c.may(req, acl.OpDescribe, acl.ResourceGroup, r.Group) {
			code := kerr.GroupAuthorizationFailed.Code
			r.Topics = []kmsg.OffsetFetchRequestTopic{}
			return func(resp kmsg.Response) {
				x := resp.(*kmsg.OffsetFetchResponse)
				x.Topics, x.ErrorCode = nil, code
			}
		}
		all := r.Topics == nil
		kept, refused := split(r.Topics, func(t kmsg.OffsetFetchRequestTopic) bool {
			return c.may(req, acl.OpDescribe, acl.ResourceTopic, t.Topic)
		}, func(t kmsg.OffsetFetchRequestTopic) kmsg.OffsetFetchResponseTopic {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, topicDenied
				rt.Partitions = append(rt.Partitions, rp)
			}
			return rt
		})
		if !all {
			r.Topics = kept
		}
		return func(resp kmsg.Response) {
			x := resp.(*kmsg.OffsetFetchResponse)
			if all {
				x.Topics = slices.DeleteFunc(x.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return hidden(t.Topic) })
			}
			x.Topics = append(x.Topics, refused...)
		}
	}
	var refusedGroups []kmsg.OffsetFetchResponseGroup
	refusedTopics := map[string][]kmsg.OffsetFetchResponseGroupTopic{}
	allOf := map[string]bool{}
	keptGroups := r.Groups[:0]
	for _, g := range r.Groups {
		if !c.may(req, acl.OpDescribe, acl.ResourceGroup, g.Group) {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
			refusedGroups = append(refusedGroups, rg)
			continue
		}
		if g.Topics == nil {
			allOf[g.Group] = true
		} else {
			g.Topics, refusedTopics[g.Group] = split(g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) bool {
				return c.mayTopic(req, img, acl.OpDescribe, t.Topic, t.TopicID)
			}, func(t kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroupTopic {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, topicDenied
					rt.Partitions = append(rt.Partitions, rp)
				}
				return rt
			})
		}
		keptGroups = append(keptGroups, g)
	}
	r.Groups = keptGroups
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.OffsetFetchResponse)
		for i := range x.Groups {
			g := &x.Groups[i]
			if allOf[g.Group] {
				g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
					n, ok := topicName(img, t.Topic, t.TopicID)
					return ok && hidden(n)
				})
			}
			g.Topics = append(g.Topics, refusedTopics[g.Group]...)
		}
		x.Groups = append(x.Groups, refusedGroups...)
	}
}

func gateOffsetDelete(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.OffsetDeleteRequest)
	return splitGate(&r.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool {
		return c.may(req, acl.OpRead, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.OffsetDeleteRequestTopic) kmsg.OffsetDeleteResponseTopic {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.OffsetDeleteResponseTopic {
		return &resp.(*kmsg.OffsetDeleteResponse).Topics
	})
}

// coordinatorAccess is what FindCoordinator needs for a key: a group's
// DESCRIBE, a transactional id's DESCRIBE, or for a share-state key
// (asked by brokers only) CLUSTER_ACTION.
func (c *conn) coordinatorAllowed(req kmsg.Request, keyType int8, key string) (bool, int16) {
	switch keyType {
	case 1:
		return c.may(req, acl.OpDescribe, acl.ResourceTransactionalID, key), kerr.TransactionalIDAuthorizationFailed.Code
	case 2:
		return c.may(req, acl.OpClusterAction, acl.ResourceCluster, acl.ClusterName), kerr.ClusterAuthorizationFailed.Code
	}
	return c.may(req, acl.OpDescribe, acl.ResourceGroup, key), kerr.GroupAuthorizationFailed.Code
}

// refuseFindCoordinator answers a FindCoordinator before v4 (one key)
// refused as a whole.
func refuseFindCoordinator(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.FindCoordinatorRequest)
	if r.Version >= 4 {
		return nil // gateFindCoordinator
	}
	ok, code := c.coordinatorAllowed(req, r.CoordinatorType, r.CoordinatorKey)
	if ok {
		return nil
	}
	resp := refusedResponse(req, code).(*kmsg.FindCoordinatorResponse)
	resp.ErrorMessage, resp.NodeID, resp.Port = authFailed, -1, -1
	return resp
}

func gateFindCoordinator(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.FindCoordinatorRequest)
	if r.Version < 4 {
		return nil // refuseFindCoordinator
	}
	var refused []kmsg.FindCoordinatorResponseCoordinator
	r.CoordinatorKeys = slices.DeleteFunc(r.CoordinatorKeys, func(key string) bool {
		ok, code := c.coordinatorAllowed(req, r.CoordinatorType, key)
		if !ok {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key, rc.ErrorCode, rc.ErrorMessage, rc.NodeID, rc.Port = key, code, authFailed, -1, -1
			refused = append(refused, rc)
		}
		return !ok
	})
	if len(refused) == 0 {
		return nil
	}
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.FindCoordinatorResponse)
		x.Coordinators = append(x.Coordinators, refused...)
	}
}

// refuseInitProducerID: a transactional producer needs WRITE on its
// transactional id; an idempotent one CLUSTER IDEMPOTENT_WRITE or WRITE on
// a topic. Kafka asks for WRITE on any topic pattern its ACLs allow; this
// asks whether some existing topic allows it, which differs only for a
// principal whose WRITE ACLs match no topic yet.
func refuseInitProducerID(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.InitProducerIDRequest)
	var code int16
	if r.TransactionalID != nil {
		if !c.may(req, acl.OpWrite, acl.ResourceTransactionalID, *r.TransactionalID) {
			code = kerr.TransactionalIDAuthorizationFailed.Code
		}
	} else if !c.mayWriteIdempotently(req) {
		code = kerr.ClusterAuthorizationFailed.Code
	}
	if code == 0 {
		return nil
	}
	resp := refusedResponse(req, code).(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	return resp
}

func (c *conn) mayWriteIdempotently(req kmsg.Request) bool {
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	if sec.decide(c.principal, c.host, acl.OpIdempotentWrite, clusterResource, api, false) {
		return true
	}
	for name := range c.srv.meta.Image().Topics {
		if sec.decide(c.principal, c.host, acl.OpWrite, acl.Resource{Type: acl.ResourceTopic, Name: name}, api, false) {
			return true
		}
	}
	return c.may(req, acl.OpIdempotentWrite, acl.ResourceCluster, acl.ClusterName)
}

// gateOffsetForLeaderEpoch: a broker (CLUSTER_ACTION) may ask for every
// topic; a consumer (KIP-320) needs DESCRIBE on each.
func gateOffsetForLeaderEpoch(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.OffsetForLeaderEpochRequest)
	if c.mayClusterAction(req) {
		return nil
	}
	return splitGate(&r.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) bool {
		return c.may(req, acl.OpDescribe, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.OffsetForLeaderEpochRequestTopic) kmsg.OffsetForLeaderEpochResponseTopic {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, topicDenied, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.OffsetForLeaderEpochResponseTopic {
		return &resp.(*kmsg.OffsetForLeaderEpochResponse).Topics
	})
}

// unsubscribable returns the subscribed topics the principal may not
// describe; Kafka refuses the whole heartbeat with
// TOPIC_AUTHORIZATION_FAILED when there is any.
func (c *conn) unsubscribable(req kmsg.Request, topics []string) []string {
	var out []string
	for _, t := range topics {
		if !c.may(req, acl.OpDescribe, acl.ResourceTopic, t) {
			out = append(out, t)
		}
	}
	return out
}

func refuseConsumerGroupHeartbeat(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.ConsumerGroupHeartbeatRequest)
	if len(c.unsubscribable(req, r.SubscribedTopicNames)) == 0 {
		return nil
	}
	return refusedResponse(req, topicDenied)
}

func refuseShareGroupHeartbeat(c *conn, req kmsg.Request) kmsg.Response {
	r := req.(*kmsg.ShareGroupHeartbeatRequest)
	if len(c.unsubscribable(req, r.SubscribedTopicNames)) == 0 {
		return nil
	}
	return refusedResponse(req, topicDenied)
}

// describedGroups checks DESCRIBE on each group of a describe request and
// returns the groups kept and the refused ones' names.
func (c *conn) describedGroups(req kmsg.Request, groups []string) (kept, refused []string) {
	return split(groups, func(g string) bool {
		return c.may(req, acl.OpDescribe, acl.ResourceGroup, g)
	}, func(g string) string { return g })
}

// assignedTopicsHidden reports whether an assignment names a topic the
// principal may not describe; Kafka then answers the whole group
// TOPIC_AUTHORIZATION_FAILED rather than show part of it.
func (c *conn) assignedTopicsHidden(req kmsg.Request, img *raftmeta.Image, as ...[]kmsg.AssignmentTopicPartition) bool {
	for _, a := range as {
		for _, t := range a {
			if !c.mayTopic(req, img, acl.OpDescribe, t.Topic, t.TopicID) {
				return true
			}
		}
	}
	return false
}

func gateConsumerGroupDescribe(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ConsumerGroupDescribeRequest)
	var refused []string
	r.Groups, refused = c.describedGroups(req, r.Groups)
	img := c.srv.meta.Image()
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.ConsumerGroupDescribeResponse)
		for i := range x.Groups {
			g := &x.Groups[i]
			if g.ErrorCode != 0 {
				continue
			}
			for _, m := range g.Members {
				if c.assignedTopicsHidden(req, img, m.Assignment.TopicPartitions, m.TargetAssignment.TopicPartitions) {
					g.ErrorCode, g.ErrorMessage, g.Members = topicDenied, authFailed, nil
					break
				}
			}
		}
		for _, name := range refused {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode, g.ErrorMessage = name, kerr.GroupAuthorizationFailed.Code, authFailed
			x.Groups = append(x.Groups, g)
		}
	}
}

func gateShareGroupDescribe(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ShareGroupDescribeRequest)
	var refused []string
	r.GroupIDs, refused = c.describedGroups(req, r.GroupIDs)
	img := c.srv.meta.Image()
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.ShareGroupDescribeResponse)
		for i := range x.Groups {
			g := &x.Groups[i]
			if g.ErrorCode != 0 {
				continue
			}
			for _, m := range g.Members {
				hidden := slices.ContainsFunc(m.Assignment.TopicPartitions, func(t kmsg.ShareGroupDescribeResponseGroupMemberAssignmentTopicPartition) bool {
					return !c.mayTopic(req, img, acl.OpDescribe, t.Topic, t.TopicID)
				})
				if hidden {
					g.ErrorCode, g.ErrorMessage, g.Members = topicDenied, authFailed, nil
					break
				}
			}
		}
		for _, name := range refused {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode, g.ErrorMessage = name, kerr.GroupAuthorizationFailed.Code, authFailed
			x.Groups = append(x.Groups, g)
		}
	}
}

// readableTopics is, under an authorizer, the READ check of a topic for
// one request, each topic decided (and logged) once; nil without an
// authorizer. The partitions of a share session pass it on every
// ShareFetch (the first acquisition pass and the long poll after it run
// one after the other, never at once), a consumer's Fetch session on every
// Fetch: Kafka checks a session's partitions on each request, not only
// when they are added.
func (c *conn) readableTopics(req kmsg.Request) func(topic string) bool {
	if c.srv.sec == nil || !c.srv.sec.enforce {
		return nil
	}
	decided := map[string]bool{}
	return func(topic string) bool {
		ok, seen := decided[topic]
		if !seen {
			ok = c.may(req, acl.OpRead, acl.ResourceTopic, topic)
			decided[topic] = ok
		}
		return ok
	}
}

// gateShareFetch refuses the topics of the request the principal may not
// read. A refused topic that is also in the member's session was answered
// by the acquisition pass (readableTopics) already, so it is not answered
// twice.
func gateShareFetch(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ShareFetchRequest)
	img := c.srv.meta.Image()
	refuse := shareFetchTopicGate(c, req, r, img)
	if refuse == nil {
		return nil
	}
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.ShareFetchResponse)
		answered := map[[16]byte]bool{}
		for _, t := range x.Topics {
			answered[t.TopicID] = true
		}
		n := len(x.Topics)
		refuse(resp)
		kept := x.Topics[:n]
		for _, t := range x.Topics[n:] {
			if !answered[t.TopicID] {
				kept = append(kept, t)
			}
		}
		x.Topics = kept
	}
}

// shareFetchTopicGate takes the topics the principal may not read out of
// r and returns what answers them.
func shareFetchTopicGate(c *conn, req kmsg.Request, r *kmsg.ShareFetchRequest, img *raftmeta.Image) func(kmsg.Response) {
	return splitGate(&r.Topics, func(t kmsg.ShareFetchRequestTopic) bool {
		return c.mayTopic(req, img, acl.OpRead, "", t.TopicID)
	}, func(t kmsg.ShareFetchRequestTopic) kmsg.ShareFetchResponseTopic {
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewShareFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.AcknowledgeErrorCode = p.Partition, topicDenied, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.ShareFetchResponseTopic {
		return &resp.(*kmsg.ShareFetchResponse).Topics
	})
}

func gateShareAcknowledge(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.ShareAcknowledgeRequest)
	img := c.srv.meta.Image()
	return splitGate(&r.Topics, func(t kmsg.ShareAcknowledgeRequestTopic) bool {
		return c.mayTopic(req, img, acl.OpRead, "", t.TopicID)
	}, func(t kmsg.ShareAcknowledgeRequestTopic) kmsg.ShareAcknowledgeResponseTopic {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.ShareAcknowledgeResponseTopic {
		return &resp.(*kmsg.ShareAcknowledgeResponse).Topics
	})
}

// gateDescribeShareGroupOffsets: like OffsetFetch, each group needs
// DESCRIBE and each topic named DESCRIBE; asked for all topics, those
// without DESCRIBE are left out.
func gateDescribeShareGroupOffsets(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DescribeShareGroupOffsetsRequest)
	sec, api := c.srv.sec, kmsg.NameForKey(req.Key())
	var refusedGroups []kmsg.DescribeShareGroupOffsetsResponseGroup
	refusedTopics := map[string][]kmsg.DescribeShareGroupOffsetsResponseGroupTopic{}
	allOf := map[string]bool{}
	r.Groups = slices.DeleteFunc(r.Groups, func(g kmsg.DescribeShareGroupOffsetsRequestGroup) bool {
		if !c.may(req, acl.OpDescribe, acl.ResourceGroup, g.GroupID) {
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode, rg.ErrorMessage = g.GroupID, kerr.GroupAuthorizationFailed.Code, authFailed
			refusedGroups = append(refusedGroups, rg)
			return true
		}
		return false
	})
	for i := range r.Groups {
		g := &r.Groups[i]
		if g.Topics == nil {
			allOf[g.GroupID] = true
			continue
		}
		g.Topics, refusedTopics[g.GroupID] = split(g.Topics, func(t kmsg.DescribeShareGroupOffsetsRequestGroupTopic) bool {
			return c.may(req, acl.OpDescribe, acl.ResourceTopic, t.Topic)
		}, func(t kmsg.DescribeShareGroupOffsetsRequestGroupTopic) kmsg.DescribeShareGroupOffsetsResponseGroupTopic {
			rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.ErrorCode, rp.ErrorMessage = p, -1, -1, topicDenied, authFailed
				rt.Partitions = append(rt.Partitions, rp)
			}
			return rt
		})
	}
	return func(resp kmsg.Response) {
		x := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
		for i := range x.Groups {
			g := &x.Groups[i]
			if allOf[g.GroupID] {
				g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.DescribeShareGroupOffsetsResponseGroupTopic) bool {
					return !sec.decide(c.principal, c.host, acl.OpDescribe, acl.Resource{Type: acl.ResourceTopic, Name: t.Topic}, api, false)
				})
			}
			g.Topics = append(g.Topics, refusedTopics[g.GroupID]...)
		}
		x.Groups = append(x.Groups, refusedGroups...)
	}
}

func gateAlterShareGroupOffsets(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.AlterShareGroupOffsetsRequest)
	return splitGate(&r.Topics, func(t kmsg.AlterShareGroupOffsetsRequestTopic) bool {
		return c.may(req, acl.OpRead, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.AlterShareGroupOffsetsRequestTopic) kmsg.AlterShareGroupOffsetsResponseTopic {
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, topicDenied, authFailed
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}, func(resp kmsg.Response) *[]kmsg.AlterShareGroupOffsetsResponseTopic {
		return &resp.(*kmsg.AlterShareGroupOffsetsResponse).Topics
	})
}

func gateDeleteShareGroupOffsets(c *conn, req kmsg.Request) func(kmsg.Response) {
	r := req.(*kmsg.DeleteShareGroupOffsetsRequest)
	return splitGate(&r.Topics, func(t kmsg.DeleteShareGroupOffsetsRequestTopic) bool {
		return c.may(req, acl.OpRead, acl.ResourceTopic, t.Topic)
	}, func(t kmsg.DeleteShareGroupOffsetsRequestTopic) kmsg.DeleteShareGroupOffsetsResponseTopic {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, topicDenied, authFailed
		return rt
	}, func(resp kmsg.Response) *[]kmsg.DeleteShareGroupOffsetsResponseTopic {
		return &resp.(*kmsg.DeleteShareGroupOffsetsResponse).Topics
	})
}

// describeScope is, under an authorizer, topics seen by the connection's
// principal for a KIP-848 regex subscription: the regex resolves only to
// the topics it may describe (Kafka does not log these checks). Without
// an authorizer it is topics itself.
func (c *conn) describeScope(req kmsg.Request, topics coordinator.TopicsView) coordinator.TopicsView {
	if c.srv.sec == nil || !c.srv.sec.enforce {
		return topics
	}
	sec, principal, host, api := c.srv.sec, c.principal, c.host, kmsg.NameForKey(req.Key())
	return describableTopics{TopicsView: topics, may: func(topic string) bool {
		return sec.decide(principal, host, acl.OpDescribe, acl.Resource{Type: acl.ResourceTopic, Name: topic}, api, false)
	}}
}

// describableTopics is a coordinator.DescribeScope.
type describableTopics struct {
	coordinator.TopicsView
	may func(topic string) bool
}

func (v describableTopics) MayDescribe(topic string) bool { return v.may(topic) }
