package acl

import "github.com/twmb/franz-go/pkg/kmsg"

// Access is one operation on one type of resource.
type Access struct {
	Type ResourceType
	Op   Operation
}

// Check is one authorization check Kafka's broker makes for a request.
type Check struct {
	// AnyOf grants the check if any one access is allowed; usually it
	// holds one. CreateTopics, for instance, passes with CLUSTER CREATE or
	// with TOPIC CREATE on the topic.
	AnyOf []Access
	// When names the condition under which Kafka makes the check; empty
	// means always.
	When string
	// Denied is the Kafka error code for a refusal.
	Denied int16
	// PerResource means the check is made per resource named in the
	// request (each topic, group, transactional id): a refusal fails that
	// item, not the whole request. Where Filter is also set, unauthorized
	// resources are silently left out of the answer instead (Metadata
	// without explicit topics, ListGroups, ListTransactions).
	PerResource bool
	Filter      bool
}

// APIRule is what a request of one API key must pass before a handler
// touches any runtime.
type APIRule struct {
	Checks []Check
	// Note explains a rule with no checks, or anything the checks alone
	// do not say.
	Note string
}

// Kafka's error codes for refusals (kerr's values, kept here as numbers so
// the table is plain data).
const (
	codeTopicAuth   int16 = 29 // TOPIC_AUTHORIZATION_FAILED
	codeGroupAuth   int16 = 30 // GROUP_AUTHORIZATION_FAILED
	codeClusterAuth int16 = 31 // CLUSTER_AUTHORIZATION_FAILED
	codeTxnIDAuth   int16 = 53 // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
	codeTokenAuth   int16 = 65 // DELEGATION_TOKEN_AUTHORIZATION_FAILED
)

func one(t ResourceType, op Operation) []Access { return []Access{{t, op}} }

func cluster(op Operation) Check {
	return Check{AnyOf: one(ResourceCluster, op), Denied: codeClusterAuth}
}

func clusterAction() Check { return cluster(OpClusterAction) }

func topic(op Operation) Check {
	return Check{AnyOf: one(ResourceTopic, op), Denied: codeTopicAuth, PerResource: true}
}

func group(op Operation) Check {
	return Check{AnyOf: one(ResourceGroup, op), Denied: codeGroupAuth, PerResource: true}
}

func txnID(op Operation) Check {
	return Check{AnyOf: one(ResourceTransactionalID, op), Denied: codeTxnIDAuth, PerResource: true}
}

func when(c Check, cond string) Check { c.When = cond; return c }

func filtered(c Check) Check { c.Filter = true; return c }

func rule(checks ...Check) APIRule { return APIRule{Checks: checks} }

// interBroker is the rule of an API only brokers and controllers send to
// each other.
var interBroker = APIRule{Checks: []Check{clusterAction()}, Note: "inter-broker or controller API"}

// APIRules maps every API key to the checks Kafka's broker or controller
// makes for it (KafkaApis, ControllerApis, AuthHelper). The front end must
// consult it for every request; TestAPIRulesCoverEveryKey fails when kmsg
// learns an API this table does not cover.
var APIRules = map[kmsg.Key]APIRule{
	kmsg.Produce: rule(
		when(txnID(OpWrite), "the batch is transactional"),
		topic(OpWrite),
	),
	kmsg.Fetch: rule(
		when(clusterAction(), "ReplicaID >= 0 (a follower)"),
		when(topic(OpRead), "a consumer"),
	),
	kmsg.ListOffsets: rule(topic(OpDescribe)),
	kmsg.Metadata: {
		Checks: []Check{
			when(topic(OpDescribe), "topics named explicitly"),
			when(filtered(topic(OpDescribe)), "all topics asked for"),
			when(Check{AnyOf: []Access{{ResourceCluster, OpCreate}, {ResourceTopic, OpCreate}}, Denied: codeTopicAuth, PerResource: true},
				"AllowAutoTopicCreation and the topic does not exist"),
		},
		Note: "a topic without DESCRIBE answers TOPIC_AUTHORIZATION_FAILED, never UNKNOWN_TOPIC_OR_PARTITION; authorized operations are computed when asked",
	},
	kmsg.LeaderAndISR:       interBroker,
	kmsg.StopReplica:        interBroker,
	kmsg.UpdateMetadata:     interBroker,
	kmsg.ControlledShutdown: interBroker,
	kmsg.OffsetCommit:       rule(group(OpRead), topic(OpRead)),
	kmsg.OffsetFetch:        rule(group(OpDescribe), filtered(topic(OpDescribe))),
	kmsg.FindCoordinator: rule(
		when(group(OpDescribe), "KeyType 0 (group) or 2 (share group)"),
		when(txnID(OpDescribe), "KeyType 1 (transaction)"),
		when(clusterAction(), "KeyType 2 with a share-state key (group:topicId:partition), sent by brokers"),
	),
	kmsg.JoinGroup:      rule(group(OpRead)),
	kmsg.Heartbeat:      rule(group(OpRead)),
	kmsg.LeaveGroup:     rule(group(OpRead)),
	kmsg.SyncGroup:      rule(group(OpRead)),
	kmsg.DescribeGroups: rule(group(OpDescribe)),
	kmsg.ListGroups: {
		Checks: []Check{filtered(Check{AnyOf: []Access{{ResourceCluster, OpDescribe}, {ResourceGroup, OpDescribe}}, Denied: codeGroupAuth, PerResource: true})},
		Note:   "CLUSTER DESCRIBE lists every group; otherwise only groups with GROUP DESCRIBE are listed",
	},
	kmsg.SASLHandshake:    {Note: "authentication itself: served before a principal exists"},
	kmsg.ApiVersions:      {Note: "served to anyone, before and after authentication"},
	kmsg.SASLAuthenticate: {Note: "authentication itself: served before a principal exists"},
	kmsg.CreateTopics: {
		Checks: []Check{
			{AnyOf: []Access{{ResourceCluster, OpCreate}, {ResourceTopic, OpCreate}}, Denied: codeTopicAuth, PerResource: true},
			when(filtered(topic(OpDescribeConfigs)), "configs are returned (v5+): without it the configs are left out with TOPIC_AUTHORIZATION_FAILED in the config error"),
		},
	},
	kmsg.DeleteTopics:  {Checks: []Check{topic(OpDelete)}, Note: "a topic without DESCRIBE answers TOPIC_AUTHORIZATION_FAILED, not UNKNOWN_TOPIC_OR_PARTITION"},
	kmsg.DeleteRecords: rule(topic(OpDelete)),
	kmsg.InitProducerID: rule(
		when(txnID(OpWrite), "TransactionalID is set"),
		when(Check{AnyOf: []Access{{ResourceCluster, OpIdempotentWrite}, {ResourceTopic, OpWrite}}, Denied: codeClusterAuth}, "no TransactionalID (idempotent producer): WRITE on any one topic suffices"),
		when(txnID(OpTwoPhaseCommit), "Enable2Pc (KIP-939)"),
	),
	kmsg.OffsetForLeaderEpoch: rule(
		when(clusterAction(), "ReplicaID >= 0 (a follower)"),
		when(topic(OpDescribe), "a client"),
	),
	kmsg.AddPartitionsToTxn: rule(
		when(txnID(OpWrite), "v3 and below (sent by producers)"),
		when(topic(OpWrite), "v3 and below"),
		when(clusterAction(), "v4+ (sent by brokers to verify a transaction)"),
	),
	kmsg.AddOffsetsToTxn: rule(txnID(OpWrite), group(OpRead)),
	kmsg.EndTxn:          rule(txnID(OpWrite)),
	kmsg.WriteTxnMarkers: interBroker,
	kmsg.TxnOffsetCommit: rule(txnID(OpWrite), group(OpRead), topic(OpRead)),
	kmsg.DescribeACLs:    rule(cluster(OpDescribe)),
	kmsg.CreateACLs:      rule(cluster(OpAlter)),
	kmsg.DeleteACLs:      rule(cluster(OpAlter)),
	kmsg.DescribeConfigs: rule(
		when(cluster(OpDescribeConfigs), "resource type BROKER, BROKER_LOGGER or CLIENT_METRICS"),
		when(topic(OpDescribeConfigs), "resource type TOPIC"),
		when(group(OpDescribeConfigs), "resource type GROUP"),
	),
	kmsg.AlterConfigs: rule(
		when(cluster(OpAlterConfigs), "resource type BROKER, BROKER_LOGGER or CLIENT_METRICS"),
		when(topic(OpAlterConfigs), "resource type TOPIC"),
		when(group(OpAlterConfigs), "resource type GROUP"),
	),
	kmsg.AlterReplicaLogDirs: rule(cluster(OpAlter)),
	kmsg.DescribeLogDirs:     rule(cluster(OpDescribe)),
	kmsg.CreatePartitions:    rule(topic(OpAlter)),
	kmsg.CreateDelegationToken: {
		Checks: []Check{when(Check{AnyOf: one(ResourceUser, OpCreateTokens), Denied: codeTokenAuth}, "the owner is another user")},
		Note:   "refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on a connection authenticated by a delegation token or without SASL",
	},
	kmsg.RenewDelegationToken:  {Note: "allowed to the token's owner and renewers only (an ownership check, not an ACL)"},
	kmsg.ExpireDelegationToken: {Note: "allowed to the token's owner and renewers only (an ownership check, not an ACL)"},
	kmsg.DescribeDelegationToken: rule(
		filtered(Check{AnyOf: []Access{{ResourceDelegationToken, OpDescribe}, {ResourceUser, OpDescribeTokens}}, Denied: codeTokenAuth, PerResource: true}),
	),
	kmsg.DeleteGroups:                 rule(group(OpDelete)),
	kmsg.ElectLeaders:                 rule(cluster(OpAlter)),
	kmsg.IncrementalAlterConfigs:      {Checks: []Check{when(cluster(OpAlterConfigs), "resource type BROKER, BROKER_LOGGER or CLIENT_METRICS"), when(topic(OpAlterConfigs), "resource type TOPIC"), when(group(OpAlterConfigs), "resource type GROUP")}},
	kmsg.AlterPartitionAssignments:    rule(cluster(OpAlter)),
	kmsg.ListPartitionReassignments:   rule(cluster(OpDescribe)),
	kmsg.OffsetDelete:                 rule(group(OpDelete), topic(OpRead)),
	kmsg.DescribeClientQuotas:         rule(cluster(OpDescribeConfigs)),
	kmsg.AlterClientQuotas:            rule(cluster(OpAlterConfigs)),
	kmsg.DescribeUserSCRAMCredentials: rule(cluster(OpDescribe)),
	kmsg.AlterUserSCRAMCredentials:    rule(cluster(OpAlter)),
	kmsg.Vote:                         interBroker,
	kmsg.BeginQuorumEpoch:             interBroker,
	kmsg.EndQuorumEpoch:               interBroker,
	kmsg.DescribeQuorum:               rule(cluster(OpDescribe)),
	kmsg.AlterPartition:               interBroker,
	kmsg.UpdateFeatures:               rule(cluster(OpAlter)),
	kmsg.Envelope:                     {Checks: []Check{clusterAction()}, Note: "the forwarding broker needs CLUSTER_ACTION; the embedded request is then authorized as its original principal"},
	kmsg.FetchSnapshot:                interBroker,
	kmsg.DescribeCluster:              {Note: "no check; cluster authorized operations are computed when asked"},
	kmsg.DescribeProducers:            rule(topic(OpRead)),
	kmsg.BrokerRegistration:           interBroker,
	kmsg.BrokerHeartbeat:              interBroker,
	kmsg.UnregisterBroker:             rule(cluster(OpAlter)),
	kmsg.DescribeTransactions:         rule(txnID(OpDescribe), when(filtered(topic(OpDescribe)), "partitions of a described transaction")),
	kmsg.ListTransactions:             rule(filtered(txnID(OpDescribe))),
	kmsg.AllocateProducerIDs:          interBroker,
	kmsg.ConsumerGroupHeartbeat: rule(
		group(OpRead),
		when(topic(OpDescribe), "topics subscribed by name; a regex subscription is filtered to topics with DESCRIBE"),
	),
	kmsg.ConsumerGroupDescribe:     rule(group(OpDescribe), when(filtered(topic(OpDescribe)), "topics in assignments")),
	kmsg.ControllerRegistration:    interBroker,
	kmsg.GetTelemetrySubscriptions: {Note: "no check (KIP-714)"},
	kmsg.PushTelemetry:             {Note: "no check (KIP-714)"},
	kmsg.AssignReplicasToDirs:      interBroker,
	kmsg.ListConfigResources:       rule(cluster(OpDescribeConfigs)),
	kmsg.DescribeTopicPartitions:   {Checks: []Check{topic(OpDescribe)}, Note: "like Metadata: topics without DESCRIBE answer TOPIC_AUTHORIZATION_FAILED, or are left out when all topics are asked for"},
	kmsg.ShareGroupHeartbeat: rule(
		group(OpRead),
		when(topic(OpDescribe), "subscribed topics"),
	),
	kmsg.ShareGroupDescribe:         rule(group(OpDescribe), when(filtered(topic(OpDescribe)), "topics in assignments")),
	kmsg.ShareFetch:                 rule(group(OpRead), topic(OpRead)),
	kmsg.ShareAcknowledge:           rule(group(OpRead), topic(OpRead)),
	kmsg.AddRaftVoter:               rule(cluster(OpAlter)),
	kmsg.RemoveRaftVoter:            rule(cluster(OpAlter)),
	kmsg.UpdateRaftVoter:            interBroker,
	kmsg.InitializeShareGroupState:  interBroker,
	kmsg.ReadShareGroupState:        interBroker,
	kmsg.WriteShareGroupState:       interBroker,
	kmsg.DeleteShareGroupState:      interBroker,
	kmsg.ReadShareGroupStateSummary: interBroker,
	kmsg.StreamsGroupHeartbeat: rule(
		group(OpRead),
		when(topic(OpDescribe), "source and internal topics of the topology"),
		when(Check{AnyOf: []Access{{ResourceCluster, OpCreate}, {ResourceTopic, OpCreate}}, Denied: codeTopicAuth, PerResource: true}, "internal topics to be created"),
	),
	kmsg.StreamsGroupDescribe:                  rule(group(OpDescribe), when(filtered(topic(OpDescribe)), "topics in assignments")),
	kmsg.DescribeShareGroupOffsets:             rule(group(OpDescribe), filtered(topic(OpDescribe))),
	kmsg.AlterShareGroupOffsets:                rule(group(OpRead), topic(OpRead)),
	kmsg.DeleteShareGroupOffsets:               rule(group(OpDelete), topic(OpRead)),
	kmsg.StreamsGroupTopologyDescriptionUpdate: {Checks: []Check{group(OpRead)}, Note: "assumed like StreamsGroupHeartbeat; not yet checked against a released Kafka"},
	kmsg.UnregisterController:                  rule(cluster(OpAlter)),
}
