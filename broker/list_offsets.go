package broker

// ListOffsets (key 2), v1-v11 on every listener.
//
// Earliest, earliest-local, latest (the HW; the last stable offset for
// read_committed), max-timestamp and by-timestamp lookups on the leader, with
// KIP-320 leader-epoch checks. Deviation: no tiered storage, so
// latest-tiered answers offset -1.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps.
const (
	latestTimestamp        = -1
	earliestTimestamp      = -2
	maxTimestamp           = -3
	earliestLocalTimestamp = -4
	latestTieredTimestamp  = -5
)

func (s *Server) handleListOffsets(_ context.Context, _ *reqCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	img := s.meta.Image()
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset = -1, -1
			p, ps, kerrv := s.replicas.LeaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
			if kerrv != nil {
				op.ErrorCode = kerrv.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			op.LeaderEpoch = ps.LeaderEpoch
			// What a consumer of this isolation level may fetch: up to
			// the HW, or up to the LSO for read_committed (Kafka's
			// lastFetchableOffset), for "latest" and lookups alike.
			hw := p.HighWatermark()
			if req.IsolationLevel == 1 {
				hw = p.LastStableOffset()
			}
			switch rp.Timestamp {
			case latestTimestamp:
				op.Offset = hw
			case earliestTimestamp, earliestLocalTimestamp:
				op.Offset = p.LogStartOffset()
			case latestTieredTimestamp:
				// No tiered storage: nothing is uploaded.
			case maxTimestamp:
				if off, ts := p.MaxTimestamp(); off >= 0 && off < hw {
					op.Offset, op.Timestamp = off, ts
				}
			default:
				off, ts, found, err := p.OffsetForTimestamp(rp.Timestamp)
				switch {
				case err != nil:
					op.ErrorCode = errorCode(err)
				case found && off < hw:
					op.Offset, op.Timestamp = off, ts
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
