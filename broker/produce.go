package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// produceSync is an append whose acknowledgement waits for an fsync.
type produceSync struct {
	p          *log.Partition
	lastOffset int64
	resp       *kmsg.ProduceResponseTopicPartition
}

// handleProduce validates and appends on the connection's reader, in request
// order, and returns the part that may wait (an fsync the durability
// settings ask for) to run concurrently.
func (s *Server) handleProduce(_ context.Context, rc *reqCtx, r kmsg.Request) (kmsg.Response, func() (kmsg.Response, error), error) {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	img := s.meta.Image()
	now := s.now()
	var syncs []produceSync
	failed := false
	if req.TransactionID != nil {
		// Transactions are not implemented; InitProducerID never hands out
		// a transactional producer, so a client cannot legitimately get here.
		return nil, nil, fmt.Errorf("%w: transactional produce is not supported", errMalformed)
	}
	for _, rt := range req.Topics {
		var t *raftmeta.Topic
		if req.Version >= 13 {
			t = topicByID(img, rt.TopicID)
		} else {
			t = img.Topics[rt.Topic]
		}
		respTopic := kmsg.NewProduceResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			res, p, err := s.appendOne(t, rp, now)
			if err != nil {
				failed = true
				pr.ErrorCode = errorCode(err)
				pr.ErrorMessage = errorMessage(err)
				if t != nil {
					s.log.Debug("produce rejected", "topic", t.Name, "partition", rp.Partition, "err", err)
				}
			} else {
				pr.BaseOffset = res.BaseOffset
				pr.LogAppendTime = res.LogAppendTime
				pr.LogStartOffset = res.LogStartOffset
				s.metrics.produced(t.Name, len(rp.Records), int(res.LastOffset-res.BaseOffset+1))
				if req.Acks != 0 && p.NeedsFlush() {
					syncs = append(syncs, produceSync{p: p, lastOffset: res.LastOffset})
				}
			}
			respTopic.Partitions = append(respTopic.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	if req.Acks == 0 {
		// No response for acks=0; Kafka closes the connection on an error
		// so the producer notices and refreshes its metadata.
		if failed {
			return nil, nil, errors.New("acks=0 produce failed; closing the connection")
		}
		return nil, nil, nil
	}
	if len(syncs) == 0 {
		return resp, nil, nil
	}
	// The response partitions are addressed after the slices stop growing.
	for i := range syncs {
		syncs[i].resp = findProducePartition(resp, syncs[i].p)
	}
	return nil, func() (kmsg.Response, error) {
		for _, ps := range syncs {
			if err := ps.p.Sync(ps.lastOffset); err != nil {
				ps.resp.ErrorCode = kerr.KafkaStorageError.Code
				ps.resp.ErrorMessage = errorMessage(err)
			}
		}
		return resp, nil
	}, nil
}

func findProducePartition(resp *kmsg.ProduceResponse, p *log.Partition) *kmsg.ProduceResponseTopicPartition {
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.Topic != p.Topic() && rt.TopicID != p.TopicID() {
			continue
		}
		for j := range rt.Partitions {
			if rt.Partitions[j].Partition == p.Index() {
				return &rt.Partitions[j]
			}
		}
	}
	return nil
}

// appendOne validates and appends one partition's batch.
func (s *Server) appendOne(t *raftmeta.Topic, rp kmsg.ProduceRequestTopicPartition, now time.Time) (log.AppendResult, *log.Partition, error) {
	p, ps, kerrv := s.leaderPartition(t, rp.Partition)
	if kerrv != nil {
		return log.AppendResult{}, nil, kerrv
	}
	h, err := log.ValidateProduceBatch(rp.Records, int(s.topicPartitionConfig(t).MaxMessageBytes))
	if err != nil {
		return log.AppendResult{}, nil, err
	}
	res, err := p.Append(rp.Records, h, ps.LeaderEpoch, now)
	if err != nil {
		return res, nil, err
	}
	s.advanceHighWatermark(p, ps)
	return res, p, nil
}

// advanceHighWatermark moves the HW to the minimum log end offset of the
// ISR. While the ISR is only this leader, that is its own log end offset.
func (s *Server) advanceHighWatermark(p *log.Partition, ps raftmeta.PartitionState) {
	if len(ps.ISR) == 1 && ps.ISR[0] == s.cfg.NodeID {
		p.SetHighWatermark(p.LogEndOffset())
	}
}
