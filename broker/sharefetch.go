package broker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// shareReadBytes bounds one share partition's log read per fetch pass.
const shareReadBytes = 1 << 20

// nextSessionEpoch is the share session epoch after n (Int32Max wraps to 1).
func nextSessionEpoch(n int32) int32 {
	if n == 1<<31-1 {
		return 1
	}
	return n + 1
}

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

// ackResult is the outcome of one partition's acknowledgements.
type ackResult struct {
	code int16
	wait <-chan error
}

// acknowledge applies one partition's acks and enqueues the state change;
// the caller waits on the result before answering.
func (s *Server) acknowledge(ctx context.Context, group, member string, t *raftmeta.Topic, partition int32, batches []queue.AckBatch, renew bool) ackResult {
	if t == nil {
		return ackResult{code: kerr.UnknownTopicID.Code}
	}
	sp, kerrv := s.shares.part(ctx, group, t, partition)
	if kerrv != nil {
		if kerrv == kerr.NotLeaderForPartition {
			return ackResult{code: kerrv.Code}
		}
		return ackResult{code: kerr.UnknownTopicOrPartition.Code}
	}
	sp.mu.Lock()
	archived, err := sp.sp.Acknowledge(s.now(), member, batches, renew)
	var done <-chan error
	if err == nil {
		done = s.shares.persistLocked(sp)
		s.shares.wakeLocked(sp)
	}
	sp.mu.Unlock()
	if err != nil {
		return ackResult{code: errorCode(err)}
	}
	s.shares.deadLetter(sp, archived)
	return ackResult{wait: done}
}

// settle waits for an ack's state change to be durable.
func (r *ackResult) settle(ctx context.Context) int16 {
	if r.wait == nil {
		return r.code
	}
	select {
	case err := <-r.wait:
		r.code = errorCode(err)
	case <-ctx.Done():
		r.code = kerr.RequestTimedOut.Code
	}
	r.wait = nil
	return r.code
}

// session applies the share session rules (reference A.7) and returns the
// session the request runs in; closing reports epoch -1.
func (m *shareManager) session(rc *reqCtx, group, member string, epoch int32, fetch bool) (*shareSession, bool, *kerr.Error) {
	key := sessionKey{group, member}
	m.mu.Lock()
	defer m.mu.Unlock()
	sess := m.sessions[key]
	switch {
	case epoch == 0 && !fetch:
		return nil, false, kerr.InvalidShareSessionEpoch
	case epoch == 0:
		if sess == nil && len(m.sessions) >= int(m.srv.cfg.Int("group.share.max.share.sessions")) {
			return nil, false, kerr.ShareSessionLimitReached
		}
		// A fresh session replaces any old one of the member. Its records
		// stay acquired: clients reopen sessions after transient errors
		// while still processing what they hold.
		sess = &shareSession{epoch: 0, conn: rc.conn, parts: map[topicPart]bool{}}
		m.sessions[key] = sess
		return sess, false, nil
	case sess == nil:
		return nil, false, kerr.ShareSessionNotFound
	case epoch == -1:
		delete(m.sessions, key)
		return sess, true, nil
	case epoch != sess.epoch:
		return nil, false, kerr.InvalidShareSessionEpoch
	}
	return sess, false, nil
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
	if group == "" || member == "" {
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
	sess, closing, kerrv := s.shares.session(rc, group, member, req.ShareSessionEpoch, true)
	if kerrv != nil {
		return fail(kerrv)
	}
	img := s.meta.Image()
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(group))
	resp.AcquisitionLockTimeoutMillis = int32(gc.Int64("share.record.lock.duration.ms"))

	// Partitions of the session: add Topics, then remove the forgotten.
	if !closing {
		s.shares.mu.Lock()
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				sess.parts[topicPart{t.TopicID, p.Partition}] = true
			}
		}
		for _, f := range req.ForgottenTopicsData {
			for _, p := range f.Partitions {
				delete(sess.parts, topicPart{f.TopicID, p})
			}
		}
		s.shares.mu.Unlock()
	}

	out := newShareFetchOut(resp)
	// Piggybacked acknowledgements first, so released records can be
	// acquired again in this same response.
	var acks []struct {
		tp  topicPart
		res ackResult
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			r := s.acknowledge(ctx, group, member, topicByID(img, t.TopicID), p.Partition, ackBatches(p.AcknowledgementBatches), req.IsRenewAck)
			acks = append(acks, struct {
				tp  topicPart
				res ackResult
			}{topicPart{t.TopicID, p.Partition}, r})
		}
	}
	var poll func() error
	if closing {
		s.shares.releaseSession(sessionKey{group, member}, sess)
	} else {
		if !req.IsRenewAck {
			poll = s.acquireShared(ctx, req, group, member, sess, out)
		}
		s.shares.mu.Lock()
		sess.epoch = nextSessionEpoch(req.ShareSessionEpoch)
		s.shares.mu.Unlock()
	}
	settle := func() {
		for i := range acks {
			out.partition(acks[i].tp).AcknowledgeErrorCode = acks[i].res.settle(ctx)
		}
	}
	if len(acks) == 0 && poll == nil {
		return resp, nil, nil
	}
	return nil, func() (kmsg.Response, error) {
		settle()
		if poll != nil {
			if err := poll(); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}, nil
}

// shareFetchOut builds a ShareFetch response, one entry per partition.
type shareFetchOut struct {
	resp  *kmsg.ShareFetchResponse
	index map[topicPart][2]int
}

func newShareFetchOut(resp *kmsg.ShareFetchResponse) *shareFetchOut {
	return &shareFetchOut{resp: resp, index: map[topicPart][2]int{}}
}

func (o *shareFetchOut) partition(tp topicPart) *kmsg.ShareFetchResponseTopicPartition {
	if at, ok := o.index[tp]; ok {
		return &o.resp.Topics[at[0]].Partitions[at[1]]
	}
	ti := -1
	for i := range o.resp.Topics {
		if o.resp.Topics[i].TopicID == tp.id {
			ti = i
		}
	}
	if ti < 0 {
		t := kmsg.NewShareFetchResponseTopic()
		t.TopicID = tp.id
		o.resp.Topics = append(o.resp.Topics, t)
		ti = len(o.resp.Topics) - 1
	}
	p := kmsg.NewShareFetchResponseTopicPartition()
	p.Partition = tp.partition
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

// acquireShared makes a first pass acquiring records across the session's
// partitions. If it got none and the request may wait, it returns the long
// poll, which parks until something is acquirable or MaxWait passes.
func (s *Server) acquireShared(ctx context.Context, req *kmsg.ShareFetchRequest, group, member string, sess *shareSession, out *shareFetchOut) (poll func() error) {
	s.shares.mu.Lock()
	parts := make([]topicPart, 0, len(sess.parts))
	for tp := range sess.parts {
		parts = append(parts, tp)
	}
	s.shares.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	// Rotate by session epoch so every partition gets its turn first.
	if len(parts) > 1 {
		sortBy(parts, func(tp topicPart) string { return string(tp.id[:]) + strconv.Itoa(int(tp.partition)) })
		r := int(uint32(req.ShareSessionEpoch)) % len(parts)
		parts = append(parts[r:], parts[:r]...)
	}
	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		return nil
	}
	batchSize := max(int(req.BatchSize), 1)
	// Read at most shareReadBytes per partition and pass: a share fetch
	// hands out MaxRecords (500 by default), far less than the 50 MiB
	// MaxBytes clients send, and reading the rest would be thrown away.
	perPartBytes := int32(shareReadBytes)
	if req.MaxBytes > 0 {
		perPartBytes = min(max(req.MaxBytes/int32(len(parts)), 1), shareReadBytes)
	}
	maxWait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	got, wake := s.acquireOnce(ctx, req, group, member, parts, maxRecords, batchSize, perPartBytes, out)
	if got > 0 || maxWait == 0 {
		return nil
	}
	return func() error {
		timer := time.NewTimer(maxWait)
		defer timer.Stop()
		for {
			switch waitAny(ctx, timer.C, wake) {
			case waitTimeout:
				return nil
			case waitCanceled:
				return ctx.Err()
			}
			if got, wake = s.acquireOnce(ctx, req, group, member, parts, maxRecords, batchSize, perPartBytes, out); got > 0 {
				return nil
			}
		}
	}
}

// acquireOnce makes one pass over the partitions, returning the records
// acquired and the channels that signal a change worth another pass.
func (s *Server) acquireOnce(ctx context.Context, req *kmsg.ShareFetchRequest, group, member string, parts []topicPart, maxRecords, batchSize int, perPartBytes int32, out *shareFetchOut) (int, []<-chan struct{}) {
	img := s.meta.Image()
	got := 0
	var wake []<-chan struct{}
	for _, tp := range parts {
		t := topicByID(img, tp.id)
		if t == nil {
			out.partition(tp).ErrorCode = kerr.UnknownTopicID.Code
			continue
		}
		sp, kerrv := s.shares.part(ctx, group, t, tp.partition)
		if kerrv != nil {
			rp := out.partition(tp)
			rp.ErrorCode = kerrv.Code
			continue
		}
		if got >= maxRecords {
			break
		}
		data, ranges, ch := s.acquireFrom(sp, member, maxRecords-got, batchSize, perPartBytes, req.ShareAcquireMode == 1)
		wake = append(wake, ch, sp.p.Wait())
		if len(ranges) == 0 {
			continue
		}
		rp := out.partition(tp)
		rp.Records = append(rp.Records, data...)
		for _, r := range ranges {
			rp.AcquiredRecords = append(rp.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{
				FirstOffset: r.First, LastOffset: r.Last, DeliveryCount: r.DeliveryCount,
			})
			got += int(r.Last - r.First + 1)
		}
	}
	return got, wake
}

// acquireFrom reads the log where the share partition wants to continue and
// acquires from what it read. It returns the batches that hold the acquired
// records, the ranges, and the partition's change channel.
func (s *Server) acquireFrom(sp *sharePart, member string, maxRecords, batchSize int, maxBytes int32, recordLimit bool) ([]byte, []queue.AcquiredRange, <-chan struct{}) {
	now := s.now()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ch := sp.changed
	sp.sp.OnLogStart(sp.p.LogStartOffset())
	from := sp.sp.NextFetchOffset(now)
	hw := sp.p.HighWatermark()
	if from < 0 || from >= hw {
		return nil, nil, ch
	}
	res, err := sp.p.Read(from, maxBytes, hw, true)
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			sp.sp.OnLogStart(sp.p.LogStartOffset())
		}
		return nil, nil, ch
	}
	var spans []queue.Span
	for b := res.Data; len(b) >= log.BatchHeaderSize; {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		spans = append(spans, queue.Span{First: h.BaseOffset, Last: h.LastOffset()})
		b = b[h.Size():]
	}
	ranges := sp.sp.Acquire(now, member, spans, maxRecords, batchSize, recordLimit)
	if len(ranges) == 0 {
		return nil, nil, ch
	}
	s.shares.timers.schedule(sp, sp.sp.NextDeadline())
	// Keep only the batches that overlap an acquired range.
	lo, hi := ranges[0].First, ranges[len(ranges)-1].Last
	var keep []byte
	for b := res.Data; len(b) >= log.BatchHeaderSize; {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		if h.LastOffset() >= lo && h.BaseOffset <= hi {
			keep = append(keep, b[:h.Size()]...)
		}
		b = b[h.Size():]
	}
	return keep, ranges, ch
}

// handleShareAcknowledge applies the acknowledgements and the session
// change in connection order; waiting for the acknowledgements to be
// persisted is the request's wait.
func (s *Server) handleShareAcknowledge(ctx context.Context, rc *reqCtx, req *kmsg.ShareAcknowledgeRequest) (kmsg.Response, waitFunc, error) {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || member == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil, nil
	}
	sess, closing, kerrv := s.shares.session(rc, group, member, req.ShareSessionEpoch, false)
	if kerrv != nil {
		resp.ErrorCode = kerrv.Code
		return resp, nil, nil
	}
	img := s.meta.Image()
	gc := s.cfg.EffectiveGroupConfig(img.GroupConfig(group))
	resp.AcquisitionLockTimeoutMillis = int32(gc.Int64("share.record.lock.duration.ms"))
	type pending struct {
		rp  *kmsg.ShareAcknowledgeResponseTopicPartition
		res ackResult
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
			waits = append(waits, pending{rp, s.acknowledge(ctx, group, member, topicByID(img, t.TopicID), p.Partition, ackBatches(batches), req.IsRenewAck)})
		}
	}
	if closing {
		s.shares.releaseSession(sessionKey{group, member}, sess)
	} else {
		s.shares.mu.Lock()
		sess.epoch = nextSessionEpoch(req.ShareSessionEpoch)
		s.shares.mu.Unlock()
	}
	if len(waits) == 0 {
		return resp, nil, nil
	}
	return nil, func() (kmsg.Response, error) {
		for i := range waits {
			waits[i].rp.ErrorCode = waits[i].res.settle(ctx)
		}
		return resp, nil
	}, nil
}

// Dead-letter record headers (KIP-1191 style): where the record came from
// and why it was given up on.
const (
	dlqHeaderTopic     = "__dlq.errors.topic"
	dlqHeaderPartition = "__dlq.errors.partition"
	dlqHeaderOffset    = "__dlq.errors.offset"
	dlqHeaderGroup     = "__dlq.errors.group.id"
	dlqHeaderCount     = "__dlq.errors.delivery.count"
	dlqHeaderReason    = "__dlq.errors.reason"
)

// deadLetter copies archived records to the group's dead-letter topic, if
// it has one that is allowed: named with errors.deadletterqueue.topic.name.prefix
// and configured with errors.deadletterqueue.group.enable=true.
func (m *shareManager) deadLetter(sp *sharePart, archived []queue.ArchivedRange) {
	if len(archived) == 0 {
		return
	}
	sp.mu.Lock()
	dlq := sp.dlqTopic
	sp.mu.Unlock()
	if dlq == "" {
		return
	}
	m.srv.metrics.deadLettered(sp.topic, archivedCount(archived))
	prefix, _ := m.srv.cfg.Value("errors.deadletterqueue.topic.name.prefix")
	img := m.srv.meta.Image()
	t := img.Topics[dlq]
	if t == nil || len(dlq) < len(prefix) || dlq[:len(prefix)] != prefix ||
		m.srv.cfg.EffectiveTopicConfig(t.Configs).String("errors.deadletterqueue.group.enable") != "true" {
		m.srv.log.Warn("dead-letter topic unusable: it must exist, start with errors.deadletterqueue.topic.name.prefix and set errors.deadletterqueue.group.enable=true",
			"group", sp.key.Group, "topic", dlq, "prefix", prefix)
		return
	}
	var out []batchRecord
	for _, a := range archived {
		for off := a.First; off <= a.Last; {
			res, err := sp.p.Read(off, 1<<20, a.Last+1, true)
			if err != nil || len(res.Data) == 0 {
				break
			}
			next := off
			for b := res.Data; len(b) > 0; {
				h, recs, err := log.DecodeRecords(b)
				if err != nil {
					break
				}
				for _, r := range recs {
					if r.Offset < a.First || r.Offset > a.Last {
						continue
					}
					hdrs := append([]log.RecordHeader(nil), r.Headers...)
					hdrs = append(hdrs,
						log.RecordHeader{Key: dlqHeaderTopic, Value: []byte(sp.topic)},
						log.RecordHeader{Key: dlqHeaderPartition, Value: []byte(strconv.Itoa(int(sp.key.Partition)))},
						log.RecordHeader{Key: dlqHeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
						log.RecordHeader{Key: dlqHeaderGroup, Value: []byte(sp.key.Group)},
						log.RecordHeader{Key: dlqHeaderCount, Value: []byte(strconv.Itoa(int(a.DeliveryCount)))},
						log.RecordHeader{Key: dlqHeaderReason, Value: []byte(a.Reason)},
					)
					out = append(out, batchRecord{Key: r.Key, Value: r.Value, Headers: hdrs})
				}
				next = h.LastOffset() + 1
				b = b[h.Size():]
			}
			if next <= off {
				break
			}
			off = next
		}
	}
	if len(out) == 0 {
		return
	}
	part := sp.key.Partition % int32(len(t.Partitions))
	if err := m.appendDeadLetters(dlq, part, encodeBatch(out, m.srv.now())); err != nil {
		m.srv.log.Error("writing dead-letter records", "topic", dlq, "partition", part, "records", len(out), "err", err)
	}
}

// dlqWriteTimeout bounds how long writing dead-letter records may take,
// moves of the partition's leadership included.
const dlqWriteTimeout = 10 * time.Second

// appendDeadLetters writes a batch to a partition of a dead-letter topic
// with acks=all: appended here when this node leads the partition, else
// produced to its leader; retried while the leadership moves.
func (m *shareManager) appendDeadLetters(dlq string, part int32, batch []byte) error {
	ctx, cancel := context.WithTimeout(m.srv.ctx, dlqWriteTimeout)
	defer cancel()
	for {
		err := m.appendDeadLettersOnce(ctx, dlq, part, batch)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *shareManager) appendDeadLettersOnce(ctx context.Context, dlq string, part int32, batch []byte) error {
	t := m.srv.meta.Image().Topics[dlq]
	if t == nil || int(part) >= len(t.Partitions) {
		return kerr.UnknownTopicOrPartition
	}
	leader := t.Partitions[part].Leader
	switch {
	case leader < 0:
		return kerr.LeaderNotAvailable
	case leader != m.srv.cfg.NodeID:
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(m.srv.peerVersion(req.Key()))
		req.Acks = -1
		req.TimeoutMillis = int32(dlqWriteTimeout / time.Millisecond)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = dlq, t.ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = part, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := m.peer(leader).request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return kerr.UnknownServerError
		}
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	p, ps, kerrv := m.srv.leaderPartition(t, part)
	if kerrv != nil {
		return kerrv
	}
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	res, err := p.Append(batch, h, ps.LeaderEpoch, m.srv.now())
	if err != nil {
		return err
	}
	m.srv.notifyAppend(p)
	m.srv.advanceHighWatermark(p, ps)
	if p.HighWatermark() > res.LastOffset {
		return nil
	}
	return m.srv.waitReplicated(ctx, p, dlq, part, res.LastOffset)
}

func archivedCount(as []queue.ArchivedRange) int {
	n := 0
	for _, a := range as {
		n += int(a.Last - a.First + 1)
	}
	return n
}

// shareKeyOf is the share key of a group's topic partition.
func shareKeyOf(group string, t *raftmeta.Topic, partition int32) coordinator.ShareKey {
	return coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}
}
