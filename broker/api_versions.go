package broker

// ApiVersions (key 18), v0-v4 on every listener, and the API tables.
//
// Each listener (client, inter-broker, controller) serves its own table and
// advertises exactly it; an unsupported ApiVersions version is answered v0
// with UNSUPPORTED_VERSION and ApiVersions' own range, as Kafka does: the
// client retries with a version in it and gets the whole table then.

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

// transactionVersion is the transaction.version feature level finalized.
const transactionVersion = 2

// apiTables are the APIs served on each kind of listener. Kafka serves
// each API only on the listeners its message definition names ("listeners":
// broker, controller), and so does shoal:
//
//   - client: every broker listener. What clients use.
//   - interBroker: the listener named by inter.broker.listener.name, which
//     other shoal nodes dial. The client APIs plus the share-state RPCs a
//     share-partition leader sends its share coordinator and the
//     WriteTxnMarkers a transaction coordinator sends partition leaders.
//   - controller: the controller listener (whose connections the raft
//     transport hands over). The client APIs plus the controller RPCs a
//     broker sends the active controller: registration, heartbeats, ISR
//     changes, producer-id blocks, and the Envelope that carries the admin
//     requests brokers forward. Served anywhere else, one unauthenticated
//     client could fence a broker or re-point its endpoint.
//
// ApiVersions on a connection advertises exactly its listener's table (one
// exception, Produce v0-v2: see apiVersionKeys), so a client never sends
// what it cannot be answered, and never learns of RPCs its listener does not
// serve.
type apiTables struct {
	client, interBroker, controller map[int16]api
	// forwarded are the client APIs an Envelope may carry, those whose
	// entry is marked forwarded (relayed, forwarding): the table of the
	// connection a forwarded request runs on.
	forwarded map[int16]api
	// all is the union: the versions this node sends its peers.
	all map[int16]api
}

// Keys of the controller RPCs (listeners: controller only).
const (
	alterPartitionKey      = 56
	brokerRegistrationKey  = 62
	brokerHeartbeatKey     = 63
	allocateProducerIDsKey = 67
)

// writeTxnMarkersKey is WriteTxnMarkers, served on the inter-broker listener.
const writeTxnMarkersKey = 27

// newAPITables builds the tables from this node's configuration.
func (s *Server) newAPITables() apiTables {
	client := s.clientAPIs()
	t := apiTables{client: client, interBroker: maps.Clone(client), controller: maps.Clone(client), all: maps.Clone(client)}
	ctrl := map[int16]api{
		alterPartitionKey:       {min: 0, max: 3, handle: handler(s.handleAlterPartition)},
		brokerRegistrationKey:   {min: 0, max: 4, handle: handler(s.handleBrokerRegistration)},
		brokerHeartbeatKey:      {min: 0, max: 2, handle: handler(s.handleBrokerHeartbeat)},
		allocateProducerIDsKey:  {min: 0, max: 0, handle: handler(s.handleAllocateProducerIDs)},
		assignReplicasToDirsKey: {min: 0, max: 0, handle: handler(s.handleAssignReplicasToDirs)},
		envelopeKey:             {min: 0, max: 0, handle: waiting(s.handleEnvelope)},
	}
	t.forwarded = maps.Clone(client)
	maps.DeleteFunc(t.forwarded, func(_ int16, a api) bool { return !a.forwarded })
	maps.Copy(t.controller, ctrl)
	maps.Copy(t.all, ctrl)
	// A transaction coordinator's markers to partition leaders: Kafka
	// serves WriteTxnMarkers to brokers only.
	t.interBroker[writeTxnMarkersKey] = api{min: 0, max: 1, handle: handler(s.handleWriteTxnMarkers)}
	t.all[writeTxnMarkersKey] = t.interBroker[writeTxnMarkersKey]
	if s.cfg == nil || s.groupProtocolEnabled("share") {
		share := map[int16]api{
			83: {min: 0, max: 0, handle: handler(s.handleInitializeShareGroupState)},
			84: {min: 0, max: 0, handle: handler(s.handleReadShareGroupState)},
			85: {min: 0, max: 1, handle: handler(s.handleWriteShareGroupState)},
			86: {min: 0, max: 0, handle: handler(s.handleDeleteShareGroupState)},
			87: {min: 0, max: 1, handle: handler(s.handleReadShareGroupStateSummary)},
		}
		maps.Copy(t.interBroker, share)
		maps.Copy(t.all, share)
	}
	return t
}

// forListener is the table of a listener by name.
func (t apiTables) forListener(s *Server, listener string) map[int16]api {
	switch {
	case s.cfg == nil:
		return t.client
	case slices.Contains(s.cfg.ControllerListeners, listener):
		return t.controller
	case listener == s.cfg.InterBrokerListener:
		return t.interBroker
	}
	return t.client
}

// clientAPIs lists every API a broker listener serves to clients, with the
// versions it accepts. Minimums follow Kafka 4.x, which dropped the pre-0.11
// message formats.
func (s *Server) clientAPIs() map[int16]api {
	t := map[int16]api{
		0:  {min: 3, max: 13, handle: waiting(s.handleProduce)},
		1:  {min: 4, max: 18, handle: waiting(s.handleFetch)},
		2:  {min: 1, max: 11, handle: handler(s.handleListOffsets)},
		3:  {min: 0, max: 13, handle: handler(s.handleMetadata)},
		18: {min: 0, max: 4, handle: handler(s.handleApiVersions)},
		17: {min: 1, max: 1, handle: handler(s.handleSaslHandshake)},
		36: {min: 0, max: 2, handle: handler(s.handleSaslAuthenticate)},
		19: relayed(s, 2, 7, s.handleCreateTopics),
		20: relayed(s, 1, 6, s.handleDeleteTopics),
		21: {min: 0, max: 2, handle: handler(s.handleDeleteRecords)},
		22: {min: 0, max: 5, handle: handler(s.handleInitProducerID)},
		23: {min: 2, max: 4, handle: handler(s.handleOffsetForLeaderEpoch)},
		32: {min: 1, max: 4, handle: handler(s.handleDescribeConfigs)},
		33: forwarding(s, 0, 2, s.handleAlterConfigs),
		34: {min: 1, max: 2, handle: handler(s.handleAlterReplicaLogDirs)},
		35: {min: 1, max: 4, handle: handler(s.handleDescribeLogDirs)},
		37: relayed(s, 0, 3, s.handleCreatePartitions),
		43: forwarding(s, 0, 2, s.handleElectLeaders),
		44: forwarding(s, 0, 1, s.handleIncrementalAlterConfigs),
		45: relayed(s, 0, 1, s.handleAlterPartitionAssignments),
		46: relayed(s, 0, 0, s.handleListPartitionReassignments),
		64: relayed(s, 0, 0, s.handleUnregisterBroker),
		60: {min: 0, max: 2, handle: handler(s.handleDescribeCluster)},
		29: {min: 1, max: 3, handle: handler(s.handleDescribeACLs)},
		30: relayed(s, 1, 3, s.handleCreateACLs),
		31: relayed(s, 1, 3, s.handleDeleteACLs),
		50: {min: 0, max: 0, handle: handler(s.handleDescribeUserScramCredentials)},
		51: relayed(s, 0, 0, s.handleAlterUserScramCredentials),
		48: {min: 0, max: 1, handle: handler(s.handleDescribeClientQuotas)},
		49: relayed(s, 0, 1, s.handleAlterClientQuotas),
		// The quorum's state: an admin API Kafka serves on brokers
		// (which forward it) and controllers alike.
		55: relayed(s, 0, 2, s.handleDescribeQuorum),

		8:  {min: 2, max: 10, handle: handler(s.handleOffsetCommit)},
		9:  {min: 1, max: 10, handle: handler(s.handleOffsetFetch)},
		10: {min: 0, max: 5, handle: handler(s.handleFindCoordinator)},
		11: {min: 2, max: 9, handle: waiting(s.handleJoinGroup)},
		12: {min: 0, max: 4, handle: handler(s.handleHeartbeat)},
		13: {min: 0, max: 5, handle: handler(s.handleLeaveGroup)},
		14: {min: 0, max: 5, handle: waiting(s.handleSyncGroup)},
		15: {min: 0, max: 6, handle: handler(s.handleDescribeGroups)},
		16: {min: 0, max: 5, handle: handler(s.handleListGroups)},
		42: {min: 0, max: 2, handle: handler(s.handleDeleteGroups)},
		47: {min: 0, max: 0, handle: handler(s.handleOffsetDelete)},

		// Transactions.
		24: {min: 0, max: 5, handle: handler(s.handleAddPartitionsToTxn)},
		25: {min: 0, max: 4, handle: handler(s.handleAddOffsetsToTxn)},
		26: {min: 0, max: 5, handle: handler(s.handleEndTxn)},
		28: {min: 0, max: 5, handle: handler(s.handleTxnOffsetCommit)},
		61: {min: 0, max: 0, handle: handler(s.handleDescribeProducers)},
		65: {min: 0, max: 0, handle: handler(s.handleDescribeTransactions)},
		66: {min: 0, max: 2, handle: handler(s.handleListTransactions)},
	}
	// Without "consumer" in group.coordinator.rebalance.protocols the
	// KIP-848 APIs are not advertised, so clients fall back to classic.
	if s.cfg == nil || s.groupProtocolEnabled("consumer") {
		t[68] = api{min: 0, max: 1, handle: handler(s.handleConsumerGroupHeartbeat)}
		t[69] = api{min: 0, max: 1, handle: handler(s.handleConsumerGroupDescribe)}
	}
	if s.cfg == nil || s.groupProtocolEnabled("share") {
		t[76] = api{min: 1, max: 1, handle: handler(s.handleShareGroupHeartbeat)}
		t[77] = api{min: 1, max: 1, handle: handler(s.handleShareGroupDescribe)}
		t[78] = api{min: 1, max: 2, handle: waiting(s.handleShareFetch)}
		t[79] = api{min: 1, max: 2, handle: waiting(s.handleShareAcknowledge)}
		t[90] = api{min: 0, max: 1, handle: handler(s.handleDescribeShareGroupOffsets)}
		t[91] = api{min: 0, max: 0, handle: handler(s.handleAlterShareGroupOffsets)}
		t[92] = api{min: 0, max: 0, handle: handler(s.handleDeleteShareGroupOffsets)}
	}
	return t
}

// produceKey is the Produce API.
const produceKey = 0

// apiVersionKeys advertises the APIs of one listener's table, except that
// Produce is advertised from v0 although v0-v2 requests are refused (they
// close the connection, like any version outside the table). Kafka 4.0 does
// the same (KAFKA-18659): librdkafka before 2.10 decides whether a broker
// supports gzip, snappy and lz4 by asking whether it accepts Produce v0, and
// otherwise sends those batches uncompressed. Clients pick the highest
// common version, so none ever sends v0-v2 because of this.
func apiVersionKeys(apis map[int16]api) []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		lowest := a.min
		if k == produceKey {
			lowest = 0
		}
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: lowest, MaxVersion: a.max})
	}
	sortBy(keys, func(k kmsg.ApiVersionsResponseApiKey) int16 { return k.ApiKey })
	return keys
}

func (s *Server) handleApiVersions(_ context.Context, rc *reqCtx, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.FinalizedFeaturesEpoch = -1
	if req.Version >= 3 && (!validSoftware(req.ClientSoftwareName) || !validSoftware(req.ClientSoftwareVersion)) {
		// Kafka answers INVALID_REQUEST and lists no API; the Java client
		// disconnects on it.
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = apiVersionKeys(rc.conn.apis)
	if req.Version >= 3 {
		// transaction.version 2 (KIP-890 part 2): clients that know it
		// (Kafka 4.x, franz-go) bump the epoch at every EndTxn and rely on
		// the implicit adds of Produce v12+ and TxnOffsetCommit v5+;
		// others keep version 1.
		if req.Version >= 4 {
			// Its supported range starts at level 0, which Java
			// clients 3.3 to 3.7 (sending v3) refuse, failing the
			// connection: Kafka lists such a feature from v4 only
			// (KAFKA-17011).
			resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "transaction.version", MinVersion: 0, MaxVersion: transactionVersion}}
		}
		resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{Name: "transaction.version", MinVersionLevel: transactionVersion, MaxVersionLevel: transactionVersion}}
		resp.FinalizedFeaturesEpoch = 0
	}
	return resp, nil
}

// validSoftware reports whether a client's software name or version is
// one Kafka accepts (KIP-511): ASCII letters, digits, '.' and '-', neither
// first nor last a '.' or '-'.
func validSoftware(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		inner := i > 0 && i < len(s)-1 && (c == '.' || c == '-')
		if !alnum && !inner {
			return false
		}
	}
	return true
}

// unsupportedApiVersions answers an ApiVersions request of a version we do
// not know: a v0 body with UNSUPPORTED_VERSION listing only the ApiVersions
// versions we serve (KIP-511).
func unsupportedApiVersions(h requestHeader, apis map[int16]api) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	for _, k := range apiVersionKeys(apis) {
		if k.ApiKey == apiVersionsKey {
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
	}
	return encodeResponse(h.correlationID, resp)
}
