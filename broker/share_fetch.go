package broker

// ShareFetch (key 78), v1-v2 on every listener when share groups are enabled.
//
// Applies the share session change (KIP-932 session epochs) and the
// piggybacked acknowledgements in connection order, makes a first acquisition
// pass, and long-polls for acquirable records as the request's wait. Also
// holds acknowledge, which ShareAcknowledge shares. The share partitions
// themselves are share.go's; dead letters are share_deadletter.go's.

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

// shareKeyOf is the share key of a group's topic partition.
func shareKeyOf(group string, t *raftmeta.Topic, partition int32) coordinator.ShareKey {
	return coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}
}
