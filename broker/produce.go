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

// produceSync is an append whose acknowledgement waits: for an fsync the
// durability settings ask for, and (acks=all) for the ISR to replicate it.
type produceSync struct {
	p          *log.Partition
	lastOffset int64
	resp       *kmsg.ProduceResponseTopicPartition
	flush      bool
	replicate  bool
	minISR     int
}

// handleProduce validates and appends in request order (appends of one
// connection must reach the log in the order they were sent, or an
// idempotent producer's pipelined batches would look out of sequence), and
// returns the part that may wait (the ISR for acks=all, an fsync the
// durability settings ask for) to run concurrently.
func (s *Server) handleProduce(_ context.Context, rc *reqCtx, req *kmsg.ProduceRequest) (kmsg.Response, waitFunc, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	img := s.meta.Image()
	now := s.now()
	var syncs []produceSync
	failed := false
	if refusal := produceRefusal(req); refusal != nil {
		// Kafka refuses the whole request before any append: every
		// partition carries the error (and acks=0 closes the connection).
		failProduce(req, resp, refusal)
		if req.Acks == 0 {
			return nil, nil, fmt.Errorf("acks=0 produce refused: %w", refusal)
		}
		return resp, nil, nil
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
			res, p, err := s.appendOne(t, rp, req, now)
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
				ps := produceSync{p: p, lastOffset: res.LastOffset, flush: req.Acks != 0 && p.NeedsFlush()}
				if req.Acks == -1 && p.HighWatermark() <= res.LastOffset {
					// Wait for the ISR (a retried duplicate too: its
					// first attempt may not be committed yet).
					ps.replicate, ps.minISR = true, s.minInsyncReplicas(t)
				}
				if ps.flush || ps.replicate {
					syncs = append(syncs, ps)
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
		if failed {
			s.produceHints(resp, rc.conn.listener)
		}
		return resp, nil, nil
	}
	// The response partitions are addressed after the slices stop growing.
	for i := range syncs {
		syncs[i].resp = findProducePartition(resp, syncs[i].p)
	}
	timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	return nil, func() (kmsg.Response, error) {
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		for _, ps := range syncs {
			if ps.replicate {
				if err := s.waitReplicated(ctx, ps.p, ps.p.Topic(), ps.p.Index(), ps.lastOffset); err != nil {
					ps.resp.ErrorCode = errorCode(err)
					ps.resp.ErrorMessage = nil
					continue
				}
				// Committed, but by fewer replicas than asked for.
				if t := s.meta.Image().Topics[ps.p.Topic()]; t != nil && int(ps.p.Index()) < len(t.Partitions) &&
					len(t.Partitions[ps.p.Index()].ISR) < ps.minISR {
					ps.resp.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
					continue
				}
			}
			if ps.flush {
				if err := ps.p.Sync(ps.lastOffset); err != nil {
					ps.resp.ErrorCode = kerr.KafkaStorageError.Code
					ps.resp.ErrorMessage = errorMessage(err)
				}
			}
		}
		s.produceHints(resp, rc.conn.listener)
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

// produceRefusal is the error Kafka answers for the whole request before
// looking at any partition, or nil: acks other than -1, 0 and 1
// (INVALID_REQUIRED_ACKS), and transactional batches from a producer that
// named no transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
func produceRefusal(req *kmsg.ProduceRequest) *kerr.Error {
	if req.Acks != -1 && req.Acks != 0 && req.Acks != 1 {
		return kerr.InvalidRequiredAcks
	}
	if req.TransactionID != nil {
		return nil
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if h, err := log.ParseBatchHeader(rp.Records); err == nil && h.Transactional() {
				return kerr.TransactionalIDAuthorizationFailed
			}
		}
	}
	return nil
}

// failProduce answers every partition of req with code.
func failProduce(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, code *kerr.Error) {
	for _, rt := range req.Topics {
		respTopic := kmsg.NewProduceResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			pr.ErrorCode = code.Code
			pr.BaseOffset, pr.LogAppendTime, pr.LogStartOffset = -1, -1, -1
			respTopic.Partitions = append(respTopic.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
}

// producerIDCatchUp bounds how long a produce waits for this node's metadata
// image to learn of a producer id block another node has just been given.
const producerIDCatchUp = time.Second

// appendOne validates and appends one partition's batch.
func (s *Server) appendOne(t *raftmeta.Topic, rp kmsg.ProduceRequestTopicPartition, req *kmsg.ProduceRequest, now time.Time) (log.AppendResult, *log.Partition, error) {
	if t != nil && raftmeta.IsInternalTopic(t.Name) {
		// Only the broker writes its internal topics (Kafka's ReplicaManager
		// refuses client appends the same way).
		return log.AppendResult{}, nil, &raftmeta.Error{Code: kerr.InvalidTopicException, Message: "Cannot append to internal topic " + t.Name}
	}
	p, ps, kerrv := s.leaderPartition(t, rp.Partition)
	if kerrv != nil {
		return log.AppendResult{}, nil, kerrv
	}
	if req.Acks == -1 && len(ps.ISR) < s.minInsyncReplicas(t) {
		return log.AppendResult{}, nil, kerr.NotEnoughReplicas
	}
	h, err := log.ValidateProduceBatch(rp.Records, int(s.topicPartitionConfig(t).MaxMessageBytes))
	if err != nil {
		return log.AppendResult{}, nil, err
	}
	if h.Transactional() {
		// Transactions are not implemented, so no transaction is ever
		// ongoing: Kafka's answer for a transactional batch outside one.
		return log.AppendResult{}, nil, &raftmeta.Error{Code: kerr.InvalidTxnState, Message: "Record was not part of an ongoing transaction"}
	}
	if h.ProducerID >= 0 {
		if err := s.checkProducerIDIssued(h.ProducerID); err != nil {
			return log.AppendResult{}, nil, err
		}
	}
	res, err := p.Append(rp.Records, h, ps.LeaderEpoch, now)
	if err != nil {
		return res, nil, err
	}
	if !res.Duplicate {
		s.notifyAppend(p)
	}
	s.advanceHighWatermark(p, ps)
	return res, p, nil
}

// checkProducerIDIssued refuses a producer id the cluster never handed out
// (UNKNOWN_PRODUCER_ID, on which clients fetch a new one): its sequence and
// epoch checks would start from whatever the client claims. Ids are handed
// out in blocks recorded in the metadata image; a block given to another
// node moments ago may not have reached this node's image yet, so a higher
// id waits briefly for it.
func (s *Server) checkProducerIDIssued(pid int64) error {
	issued := func(img *raftmeta.Image) bool { return pid < img.NextProducerID }
	if issued(s.meta.Image()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, producerIDCatchUp)
	defer cancel()
	if _, err := s.meta.WaitFor(ctx, issued); err != nil {
		return &raftmeta.Error{Code: kerr.UnknownProducerID, Message: fmt.Sprintf("producer id %d was never issued", pid)}
	}
	return nil
}
