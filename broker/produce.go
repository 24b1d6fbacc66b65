package broker

// Produce (key 0), v3-v13 on every listener (advertised from v0, as Kafka 4.0
// does for old librdkafka: see apiVersionKeys).
//
// Validates each batch (magic 2, CRC-32C, sizes, idempotent sequence, an
// issued producer id) and appends it in request order on the leader-append
// path (replica/append.go); acks=all waits for the ISR and, with flush.messages,
// for an fsync, off the connection's read loop. The whole request is refused
// for bad acks or transactional batches without a transactional id.
// Transactional batches open (or continue) the producer's transaction in the
// partition's producer state; the first one of a transaction in a partition
// is verified with (transactions version 1) or added to (version 2, Produce
// v12+) the producer's transaction on its coordinator first (KIP-890); a non-transactional batch of a producer with
// an open transaction answers INVALID_TXN_STATE. Client appends to internal
// topics are refused with INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager
// does.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/replica"
)

// produceWait is a partition's append whose acknowledgement waits (for the
// ISR, an fsync), with the response partition it answers in.
type produceWait struct {
	la   replica.Append
	resp *kmsg.ProduceResponseTopicPartition
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
	var waits []produceWait
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
	txnErrs := s.addProduceToTxn(req, img)
	for _, rt := range req.Topics {
		t := requestTopic(img, req.Version >= 13, rt.Topic, rt.TopicID)
		respTopic := kmsg.NewProduceResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			pr := kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			la, err := s.appendOne(t, rp, req, txnErrs, now)
			if err != nil {
				failed = true
				pr.BaseOffset = -1
				pr.ErrorCode = errorCode(err)
				pr.ErrorMessage = errorMessage(err)
				pr.ErrorRecords = recordErrors(err)
				if t != nil {
					s.log.Debug("produce rejected", "topic", t.Name, "partition", rp.Partition, "err", err)
				}
			} else {
				res := la.Result
				pr.BaseOffset = res.BaseOffset
				pr.LogAppendTime = res.LogAppendTime
				pr.LogStartOffset = res.LogStartOffset
				s.metrics.produced(t.Name, len(rp.Records), int(res.LastOffset-res.BaseOffset+1))
				if la.Pending() {
					waits = append(waits, produceWait{la: la})
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
	if len(waits) == 0 {
		if failed {
			s.produceHints(resp, rc.conn.listener)
		}
		return resp, nil, nil
	}
	// The response partitions are addressed after the slices stop growing.
	for i := range waits {
		waits[i].resp = findProducePartition(resp, waits[i].la.Partition)
	}
	timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	return nil, func() (kmsg.Response, error) {
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		for _, w := range waits {
			if err := s.replicas.AwaitAppend(ctx, w.la); err != nil {
				w.resp.ErrorCode = errorCode(err)
				w.resp.ErrorMessage = storageErrorMessage(err)
			}
		}
		s.produceHints(resp, rc.conn.listener)
		return resp, nil
	}, nil
}

// addProduceToTxn handles the first transactional batches of a transaction
// in the request's partitions that this node leads (KIP-890): a version-2
// producer (Produce v12+) relies on this node adding the partitions to its
// transaction; a version-1 producer added them itself, which its
// coordinator verifies. One request to the coordinator covers every such
// partition of the produce. It returns the error each refused partition
// answers with.
func (s *Server) addProduceToTxn(req *kmsg.ProduceRequest, img *raftmeta.Image) map[coordinator.TxnPartition]error {
	if req.TransactionID == nil {
		return nil
	}
	type producer struct {
		id    int64
		epoch int16
	}
	pending := map[producer][]coordinator.TxnPartition{}
	for _, rt := range req.Topics {
		t := requestTopic(img, req.Version >= 13, rt.Topic, rt.TopicID)
		for _, rp := range rt.Partitions {
			p, _, kerrv := s.replicas.LeaderPartition(t, rp.Partition)
			if kerrv != nil {
				continue // appendOne answers it
			}
			h, err := log.ParseBatchHeader(rp.Records)
			if err != nil || !h.Transactional() || h.ProducerID < 0 || p.TxnOpen(h.ProducerID, h.ProducerEpoch) {
				continue
			}
			k := producer{h.ProducerID, h.ProducerEpoch}
			pending[k] = append(pending[k], coordinator.TxnPartition{Topic: t.Name, Partition: rp.Partition})
		}
	}
	if len(pending) == 0 {
		return nil
	}
	v2 := req.Version >= 12
	out := map[coordinator.TxnPartition]error{}
	for k, parts := range pending {
		for tp, code := range s.addToTxn(*req.TransactionID, k.id, k.epoch, parts, !v2, v2) {
			if err := produceTxnError(code, req.Version); err != nil {
				out[tp] = err
			}
		}
	}
	return out
}

// recordErrors lists the records a batch was refused for (answered from
// Produce v8), when the log named them.
func recordErrors(err error) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	var re *log.RecordsError
	if !errors.As(err, &re) {
		return nil
	}
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, len(re.Records))
	for i, r := range re.Records {
		out[i] = kmsg.NewProduceResponseTopicPartitionErrorRecord()
		out[i].RelativeOffset = r.Index
		out[i].ErrorMessage = &r.Message
	}
	return out
}

// storageErrorMessage is the message a failed produce wait answers with:
// the cause of a failed fsync, none for a replication wait that failed.
func storageErrorMessage(err error) *string {
	if errorCode(err) != kerr.KafkaStorageError.Code {
		return nil
	}
	return errorMessage(err)
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

// appendOne validates one partition's batch and appends it on the
// leader-append path.
func (s *Server) appendOne(t *raftmeta.Topic, rp kmsg.ProduceRequestTopicPartition, req *kmsg.ProduceRequest, txnErrs map[coordinator.TxnPartition]error, now time.Time) (replica.Append, error) {
	if t != nil && t.HasPartition(rp.Partition) {
		if err := recordsRefusal(rp.Records, req.Version); err != nil {
			return replica.Append{}, err
		}
	}
	if t != nil && raftmeta.IsInternalTopic(t.Name) {
		// Only the broker writes its internal topics (Kafka's ReplicaManager
		// refuses client appends the same way).
		return replica.Append{}, &raftmeta.Error{Code: kerr.InvalidTopicException, Message: "Cannot append to internal topic " + t.Name}
	}
	p, ps, kerrv := s.replicas.LeaderPartition(t, rp.Partition)
	if kerrv != nil {
		return replica.Append{}, kerrv
	}
	h, err := log.ValidateProduceBatch(rp.Records, int(s.replicas.TopicPartitionConfig(t).MaxMessageBytes))
	if err != nil {
		return replica.Append{}, err
	}
	if h.ProducerID >= 0 {
		if err := s.checkProducerIDIssued(h.ProducerID); err != nil {
			return replica.Append{}, err
		}
	}
	if err := txnErrs[coordinator.TxnPartition{Topic: t.Name, Partition: rp.Partition}]; err != nil {
		return replica.Append{}, err
	}
	return s.replicas.AppendAsLeader(p, ps, rp.Records, h, now, req.Acks)
}

// recordsRefusal is Kafka's first look at a partition's records, before
// the partition's leader is looked up (ProduceRequest.validateRecords and
// the batch iterator under it): bytes that hold no whole batch and a batch
// of magic 0 or 1 are INVALID_RECORD, a length below any record's or a
// magic above 2 CORRUPT_MESSAGE (which a Java producer retries), and zstd
// before Produce v7 UNSUPPORTED_COMPRESSION_TYPE.
func recordsRefusal(records []byte, version int16) error {
	const (
		lengthEnd  = 12 // offset and length fields
		magicEnd   = 17
		attributes = 21
		minLength  = 14 // the smallest record of magic 0
	)
	noBatch := &raftmeta.Error{Code: kerr.InvalidRecord, Message: fmt.Sprintf("Produce requests with version %d must have at least one record batch per partition", version)}
	if len(records) < lengthEnd {
		return noBatch
	}
	length := int32(binary.BigEndian.Uint32(records[8:]))
	if length < minLength {
		return &raftmeta.Error{Code: kerr.CorruptMessage, Message: fmt.Sprintf("Record size %d is less than the minimum record overhead (%d)", length, minLength)}
	}
	if len(records) < magicEnd {
		return noBatch
	}
	magic := int8(records[magicEnd-1])
	switch {
	case magic > 2:
		return &raftmeta.Error{Code: kerr.CorruptMessage, Message: fmt.Sprintf("Invalid magic found in record: %d", magic)}
	case int64(length)+lengthEnd > int64(len(records)):
		return noBatch
	case magic < 2:
		return &raftmeta.Error{Code: kerr.InvalidRecord, Message: fmt.Sprintf("Produce requests with version %d are only allowed to contain record batches with magic version 2", version)}
	case version < 7 && int8(records[attributes+1]&7) == log.CompressionZstd:
		return &raftmeta.Error{Code: kerr.UnsupportedCompressionType, Message: fmt.Sprintf("Produce requests with version %d are not allowed to use ZStandard compression", version)}
	}
	return nil
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
