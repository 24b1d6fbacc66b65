package broker

// ShareFetch (key 78), v1-v2 on every listener when share groups are enabled.
//
// Applies the share session change (KIP-932 session epochs) and the
// piggybacked acknowledgements in connection order, makes a first acquisition
// pass, and long-polls for acquirable records as the request's wait. The
// sessions, acknowledgement and the acquire loop are the share runtime's
// (package share); this file decodes the request and encodes the answer.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/share"
)

// ackBatches converts one partition's acknowledgement batches.
func ackBatches(in []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) []queue.AckBatch {
	out := make([]queue.AckBatch, len(in))
	for i, b := range in {
		types := make([]queue.AckType, len(b.AcknowledgeTypes))
		for j, t := range b.AcknowledgeTypes {
			types[j] = queue.AckType(t)
		}
		out[i] = queue.AckBatch{First: b.FirstOffset, Last: b.LastOffset, Types: types}
	}
	return out
}

// handleShareFetch applies the session change and the piggybacked
// acknowledgements and makes a first acquisition pass in connection order;
// waiting for the acknowledgements to be persisted and long-polling for
// records to acquire are the request's wait.
func (s *Server) handleShareFetch(ctx context.Context, rc *reqCtx, req *kmsg.ShareFetchRequest) (kmsg.Response, waitFunc, error) {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	fail := func(e *kerr.Error) (kmsg.Response, waitFunc, error) {
		resp.ErrorCode = e.Code
		return resp, nil, nil
	}
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || !coordinator.ValidShareMemberID(member) {
		return fail(kerr.InvalidRequest)
	}
	if req.IsRenewAck && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0) {
		return fail(kerr.InvalidRequest)
	}
	hasAcks := false
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			hasAcks = hasAcks || len(p.AcknowledgementBatches) > 0
		}
	}
	if req.ShareSessionEpoch == 0 && hasAcks {
		return fail(kerr.InvalidRequest)
	}
	sess, closing, kerrv := s.shares.OpenSession(group, member, req.ShareSessionEpoch, true, rc.conn)
	if kerrv == kerr.ShareSessionLimitReached && req.MaxWaitMillis > 0 {
		// Kafka holds this refusal for the request's wait: a client
		// retrying its epoch-0 fetch at once would otherwise spin
		// against the full session cache.
		resp.ErrorCode = kerrv.Code
		return nil, func() (kmsg.Response, error) {
			timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			defer timer.Stop()
			select {
			case <-timer.C:
				return resp, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}, nil
	}
	if kerrv != nil {
		return fail(kerrv)
	}
	img := s.meta.Image()
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(group))
	resp.AcquisitionLockTimeoutMillis = int32(gc.Int64("share.record.lock.duration.ms"))

	// Partitions of the session: add Topics, then remove the forgotten.
	if !closing {
		s.shares.EditSession(sess, func(parts map[share.TopicPart]bool) {
			for _, t := range req.Topics {
				for _, p := range t.Partitions {
					parts[share.TopicPart{ID: t.TopicID, Partition: p.Partition}] = true
				}
			}
			for _, f := range req.ForgottenTopicsData {
				for _, p := range f.Partitions {
					delete(parts, share.TopicPart{ID: f.TopicID, Partition: p})
				}
			}
		})
	}

	out := newShareFetchOut(resp)
	// Piggybacked acknowledgements first, so released records can be
	// acquired again in this same response.
	var acks []struct {
		tp  share.TopicPart
		res share.Ack
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			r := s.shares.Acknowledge(ctx, group, member, img.TopicByID(t.TopicID), p.Partition, ackBatches(p.AcknowledgementBatches), req.IsRenewAck)
			acks = append(acks, struct {
				tp  share.TopicPart
				res share.Ack
			}{share.TopicPart{ID: t.TopicID, Partition: p.Partition}, r})
		}
	}
	var poll func() error
	if closing {
		s.shares.ReleaseSession(group, member, sess)
	} else {
		if !req.IsRenewAck {
			poll = s.shares.Acquire(ctx, share.AcquireRequest{
				Group: group, Member: member, Epoch: req.ShareSessionEpoch,
				MaxRecords: int(req.MaxRecords), BatchSize: int(req.BatchSize), MaxBytes: req.MaxBytes,
				MaxWait:      time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond,
				Acknowledged: len(acks) > 0,
				RecordLimit:  req.ShareAcquireMode == 1,
				Readable:     rc.conn.readableTopics(req),
			}, sess, out)
		}
		s.shares.EndRequest(sess, req.ShareSessionEpoch)
	}
	settle := func() {
		for i := range acks {
			out.partition(acks[i].tp).AcknowledgeErrorCode = errorCode(acks[i].res.Settle(ctx))
		}
	}
	if len(acks) == 0 && poll == nil {
		s.shareFetchHints(resp, rc.conn.listener)
		return resp, nil, nil
	}
	return nil, func() (kmsg.Response, error) {
		settle()
		if poll != nil {
			if err := poll(); err != nil {
				return nil, err
			}
		}
		s.shareFetchHints(resp, rc.conn.listener)
		return resp, nil
	}, nil
}

// shareFetchOut builds a ShareFetch response, one entry per partition. It is
// the share runtime's share.Sink for what the acquire loop produces.
type shareFetchOut struct {
	resp  *kmsg.ShareFetchResponse
	index map[share.TopicPart][2]int
}

func newShareFetchOut(resp *kmsg.ShareFetchResponse) *shareFetchOut {
	return &shareFetchOut{resp: resp, index: map[share.TopicPart][2]int{}}
}

// Failed sets a partition's error.
func (o *shareFetchOut) Failed(tp share.TopicPart, code int16) {
	o.partition(tp).ErrorCode = code
}

// Acquired adds acquired records to a partition: the batches holding them
// and the acquired ranges. It clears an error an earlier pass of the same
// long poll set (the share partition was still loading its state, say):
// a client ignores the records of a partition that carries an error, so
// records acquired under a stale error would never reach it and would stay
// locked, holding back the partition's in-flight window, until their
// acquisition lock ran out.
func (o *shareFetchOut) Acquired(tp share.TopicPart, records []byte, ranges []queue.AcquiredRange) {
	rp := o.partition(tp)
	rp.ErrorCode = 0
	switch {
	case len(rp.Records) == 0 && len(records) > 0:
		rp.Records = slices.Clip(records) // the share runtime's, never written again
	default:
		rp.Records = append(rp.Records, records...)
	}
	for _, r := range ranges {
		rp.AcquiredRecords = append(rp.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{
			FirstOffset: r.First, LastOffset: r.Last, DeliveryCount: r.DeliveryCount,
		})
	}
}

func (o *shareFetchOut) partition(tp share.TopicPart) *kmsg.ShareFetchResponseTopicPartition {
	if at, ok := o.index[tp]; ok {
		return &o.resp.Topics[at[0]].Partitions[at[1]]
	}
	ti := -1
	for i := range o.resp.Topics {
		if o.resp.Topics[i].TopicID == tp.ID {
			ti = i
		}
	}
	if ti < 0 {
		t := kmsg.NewShareFetchResponseTopic()
		t.TopicID = tp.ID
		o.resp.Topics = append(o.resp.Topics, t)
		ti = len(o.resp.Topics) - 1
	}
	p := kmsg.NewShareFetchResponseTopicPartition()
	p.Partition = tp.Partition
	p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = -1, -1
	// An empty record set rather than null: Kafka sends null when nothing
	// was acquired and the schema allows it, but an empty set is what
	// every client's record-set parser accepts (Fetch's null set breaks
	// librdkafka).
	p.Records = []byte{}
	o.resp.Topics[ti].Partitions = append(o.resp.Topics[ti].Partitions, p)
	o.index[tp] = [2]int{ti, len(o.resp.Topics[ti].Partitions) - 1}
	return &o.resp.Topics[ti].Partitions[len(o.resp.Topics[ti].Partitions)-1]
}
