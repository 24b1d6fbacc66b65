package broker

// ListOffsets (key 2), v1-v11 on every listener.
//
// Earliest, earliest-local, latest (the HW; the last stable offset for
// read_committed), max-timestamp and by-timestamp lookups on the leader, with
// KIP-320 leader-epoch checks (replica.Manager.ListOffset); each offset comes
// with the leader epoch it was written in. A client's
// request (replica id -1) sees what it may fetch; a broker's sees the whole
// log. Right after a leader election, until the new leader's HW reaches the
// start of its epoch, a client asking for the latest offset (or a time not
// found below the HW) gets OFFSET_NOT_AVAILABLE, LEADER_NOT_AVAILABLE before
// v5, as in Kafka; both are retriable. A spec older than the request's
// version (max-timestamp before v7, earliest-local v8, latest-tiered v9,
// earliest-pending-upload v11) or a negative timestamp naming none answers
// UNSUPPORTED_VERSION, and a partition asked for twice INVALID_REQUEST, as
// in Kafka. No tiered storage: latest-tiered and earliest-pending-upload
// answer offset -1, as Kafka does without it.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/replica"
)

func (s *Server) handleListOffsets(_ context.Context, _ *reqCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	img := s.meta.Image()
	type topicPartition struct {
		topic     string
		partition int32
	}
	asked := map[topicPartition]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			asked[topicPartition{rt.Topic, rp.Partition}]++
		}
	}
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset = -1, -1
			// Kafka refuses a partition asked for twice, and a spec
			// the request's version does not know, before looking
			// the partition up.
			var kerrv *kerr.Error
			var p *log.Partition
			var ps raftmeta.PartitionState
			switch {
			case asked[topicPartition{rt.Topic, rp.Partition}] > 1:
				kerrv = kerr.InvalidRequest
			case !replica.SpecSupported(rp.Timestamp, req.Version):
				kerrv = kerr.UnsupportedVersion
			default:
				p, ps, kerrv = s.replicas.LeaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
			}
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			q := replica.OffsetQuery{Timestamp: rp.Timestamp, Client: req.ReplicaID == -1, ReadCommitted: req.IsolationLevel == 1}
			off, ts, epoch, err := s.replicas.ListOffset(p, ps, q)
			if op.ErrorCode = listOffsetsCode(err, req.Version); op.ErrorCode == 0 {
				op.Offset, op.Timestamp, op.LeaderEpoch = off, ts, epoch
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// listOffsetsCode is the error code of one partition's answer at a
// request version. OFFSET_NOT_AVAILABLE came with v5: older clients (such
// as kafka-python, which asks with v1 and knows no code 78) are told
// LEADER_NOT_AVAILABLE, which they retry, as Kafka does.
func listOffsetsCode(err error, version int16) int16 {
	if errors.Is(err, kerr.OffsetNotAvailable) && version < 5 {
		return kerr.LeaderNotAvailable.Code
	}
	return errorCode(err)
}
