package broker

// ShareAcknowledge (key 79), v1-v2 on every listener when share groups are enabled.
//
// Applies acknowledgements (accept, release, reject) and the session
// change in connection order; the wait for the new state to be persisted on
// the share coordinator is the request's wait.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/share"
)

// handleShareAcknowledge applies the acknowledgements and the session
// change in connection order; waiting for the acknowledgements to be
// persisted is the request's wait.
func (s *Server) handleShareAcknowledge(ctx context.Context, rc *reqCtx, req *kmsg.ShareAcknowledgeRequest) (kmsg.Response, waitFunc, error) {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || !coordinator.ValidShareMemberID(member) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil, nil
	}
	sess, closing, kerrv := s.shares.OpenSession(group, member, req.ShareSessionEpoch, false, rc.conn)
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		return resp, nil, nil
	}
	img := s.meta.Image()
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(group))
	resp.AcquisitionLockTimeoutMillis = int32(gc.Int64("share.record.lock.duration.ms"))
	type pending struct {
		topicID [16]byte
		rp      *kmsg.ShareAcknowledgeResponseTopicPartition
		res     share.Ack
	}
	var waits []pending
	resp.Topics = make([]kmsg.ShareAcknowledgeResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = t.TopicID
		rt.Partitions = make([]kmsg.ShareAcknowledgeResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			*rp = kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition = p.Partition
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			batches := make([]kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch, len(p.AcknowledgementBatches))
			for k, b := range p.AcknowledgementBatches {
				batches[k] = kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: b.FirstOffset, LastOffset: b.LastOffset, AcknowledgeTypes: b.AcknowledgeTypes}
			}
			waits = append(waits, pending{t.TopicID, rp, s.shares.Acknowledge(ctx, group, member, img.TopicByID(t.TopicID), p.Partition, ackBatches(batches), req.IsRenewAck)})
		}
	}
	if closing {
		s.shares.ReleaseSession(group, member, sess)
	} else {
		s.shares.EndRequest(sess, req.ShareSessionEpoch)
	}
	if len(waits) == 0 {
		return resp, nil, nil
	}
	return nil, func() (kmsg.Response, error) {
		// A partition led elsewhere names its leader, as in ShareFetch.
		h := s.newLeaderHints()
		for i := range waits {
			rp := waits[i].rp
			rp.ErrorCode = errorCode(waits[i].res.Settle(ctx))
			h.set(rp.ErrorCode, "", waits[i].topicID, rp.Partition, &rp.CurrentLeader.LeaderID, &rp.CurrentLeader.LeaderEpoch)
		}
		resp.NodeEndpoints = hintEndpoints(h, rc.conn.listener, func(b kmsg.MetadataResponseBroker) kmsg.ShareAcknowledgeResponseNodeEndpoint {
			return kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
		})
		return resp, nil
	}, nil
}
