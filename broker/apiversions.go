package broker

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

// apiTable lists every API this broker implements with the versions it
// accepts. ApiVersions advertises exactly this table (one exception: see
// apiVersionKeys), so a client never sends what we cannot answer. Minimums follow Kafka 4.x, which dropped the
// pre-0.11 message formats.
func (s *Server) apiTable() map[int16]api {
	t := map[int16]api{
		0:  {min: 3, max: 13, handle: waiting(s.handleProduce)},
		1:  {min: 4, max: 18, handle: waiting(s.handleFetch)},
		2:  {min: 1, max: 11, handle: handler(s.handleListOffsets)},
		3:  {min: 0, max: 13, handle: handler(s.handleMetadata)},
		18: {min: 0, max: 4, handle: handler(s.handleApiVersions)},
		19: {min: 2, max: 7, handle: handler(s.handleCreateTopics)},
		20: {min: 1, max: 6, handle: handler(s.handleDeleteTopics)},
		21: {min: 0, max: 2, handle: handler(s.handleDeleteRecords)},
		22: {min: 0, max: 5, handle: handler(s.handleInitProducerID)},
		23: {min: 2, max: 4, handle: handler(s.handleOffsetForLeaderEpoch)},
		32: {min: 1, max: 4, handle: handler(s.handleDescribeConfigs)},
		33: {min: 0, max: 2, handle: handler(s.handleAlterConfigs)},
		35: {min: 1, max: 4, handle: handler(s.handleDescribeLogDirs)},
		37: {min: 0, max: 3, handle: handler(s.handleCreatePartitions)},
		43: {min: 0, max: 2, handle: handler(s.handleElectLeaders)},
		44: {min: 0, max: 1, handle: handler(s.handleIncrementalAlterConfigs)},
		60: {min: 0, max: 1, handle: handler(s.handleDescribeCluster)},

		// Between nodes: the controller's RPCs and the quorum's state.
		55: {min: 0, max: 2, handle: handler(s.handleDescribeQuorum)},
		56: {min: 0, max: 3, handle: handler(s.handleAlterPartition)},
		62: {min: 0, max: 4, handle: handler(s.handleBrokerRegistration)},
		63: {min: 0, max: 2, handle: handler(s.handleBrokerHeartbeat)},
		67: {min: 0, max: 0, handle: handler(s.handleAllocateProducerIDs)},

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
		t[83] = api{min: 0, max: 0, handle: handler(s.handleInitializeShareGroupState)}
		t[84] = api{min: 0, max: 0, handle: handler(s.handleReadShareGroupState)}
		t[85] = api{min: 0, max: 1, handle: handler(s.handleWriteShareGroupState)}
		t[86] = api{min: 0, max: 0, handle: handler(s.handleDeleteShareGroupState)}
		t[87] = api{min: 0, max: 1, handle: handler(s.handleReadShareGroupStateSummary)}
		t[90] = api{min: 0, max: 1, handle: handler(s.handleDescribeShareGroupOffsets)}
		t[91] = api{min: 0, max: 0, handle: handler(s.handleAlterShareGroupOffsets)}
		t[92] = api{min: 0, max: 0, handle: handler(s.handleDeleteShareGroupOffsets)}
	}
	return t
}

// produceKey is the Produce API.
const produceKey = 0

// apiVersionKeys is the ApiVersions answer: the api table, except that
// Produce is advertised from v0 although v0-v2 requests are refused (they
// close the connection, like any version outside the table). Kafka 4.0 does
// the same (KAFKA-18659): librdkafka before 2.10 decides whether a broker
// supports gzip, snappy and lz4 by asking whether it accepts Produce v0, and
// otherwise sends those batches uncompressed. Clients pick the highest
// common version, so none ever sends v0-v2 because of this.
func (s *Server) apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(s.apis))
	for k, a := range s.apis {
		lowest := a.min
		if k == produceKey {
			lowest = 0
		}
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: lowest, MaxVersion: a.max})
	}
	sortBy(keys, func(k kmsg.ApiVersionsResponseApiKey) int16 { return k.ApiKey })
	return keys
}

func (s *Server) handleApiVersions(_ context.Context, _ *reqCtx, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apiVersionKeys()
	resp.FinalizedFeaturesEpoch = -1
	return resp, nil
}

// unsupportedApiVersions answers an ApiVersions request of a version we do
// not know: a v0 body with UNSUPPORTED_VERSION and our table (KIP-511).
func (s *Server) unsupportedApiVersions(h requestHeader) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiVersionKeys()
	b := encodeResponse(h.correlationID, resp)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
