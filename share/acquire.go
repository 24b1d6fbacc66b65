package share

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/crashpoint"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/queue"
	"github.com/shoalmq/shoal/raftmeta"
)

// readBytes bounds one share partition's log read per acquisition pass.
const readBytes = 1 << 20

// Ack is the outcome of one partition's acknowledgements: an error at once,
// or the wait for the new state to be durable.
type Ack struct {
	err  error
	wait <-chan error
}

// Settle waits until the acknowledgements' state change is durable and
// returns their error (REQUEST_TIMED_OUT when ctx ends first).
func (a *Ack) Settle(ctx context.Context) error {
	if a.wait == nil {
		return a.err
	}
	select {
	case a.err = <-a.wait:
	case <-ctx.Done():
		a.err = kerr.RequestTimedOut
	}
	a.wait = nil
	return a.err
}

// Acknowledge applies one partition's acknowledgements by member of group
// (renew: the request allows RENEW) and enqueues the state change; the
// caller settles the result before answering. t is nil for an unknown
// topic id.
func (m *Manager) Acknowledge(ctx context.Context, group, member string, t *raftmeta.Topic, partition int32, batches []queue.AckBatch, renew bool) Ack {
	if t == nil {
		return Ack{err: kerr.UnknownTopicID}
	}
	if err := queue.ValidateAcks(batches, renew); err != nil {
		return Ack{err: err}
	}
	sp, kerrv := m.part(ctx, group, t, partition)
	if kerrv != nil {
		if kerrv == kerr.NotLeaderForPartition {
			return Ack{err: kerrv}
		}
		return Ack{err: kerr.UnknownTopicOrPartition}
	}
	sp.mu.Lock()
	var err error
	if renew && !sp.renew && hasRenew(batches) {
		// share.renew.acknowledge.enable=false (KIP-1240): the group
		// refuses RENEW as Kafka does.
		err = kerr.InvalidRecordState
	} else {
		err = sp.q.Acknowledge(m.d.Now(), member, batches, renew)
	}
	var done <-chan error
	if err == nil {
		if sp.q.Counts().DeadLettering > 0 {
			crashpoint.Hit(CrashRejectBeforeState)
		}
		done = m.applyLocked(sp, true)
	}
	sp.mu.Unlock()
	if err != nil {
		return Ack{err: err}
	}
	return Ack{wait: done}
}

// hasRenew reports whether any batch carries a RENEW acknowledgement.
func hasRenew(batches []queue.AckBatch) bool {
	for _, b := range batches {
		if slices.Contains(b.Types, queue.AckRenew) {
			return true
		}
	}
	return false
}

// Sink receives what an acquisition pass produced, per partition of the
// session. The front end implements it over its response, so records go
// from the log read to the response without another copy.
type Sink interface {
	// Failed reports a partition that could not be served (its error
	// code) on one pass. A later pass of the same long poll may still
	// acquire from it (its state finished loading): Acquired then
	// supersedes the error.
	Failed(tp TopicPart, code int16)
	// Acquired reports records acquired on a partition: the batches that
	// hold them and the acquired ranges.
	Acquired(tp TopicPart, records []byte, ranges []queue.AcquiredRange)
}

// AcquireRequest is the acquisition part of a ShareFetch.
type AcquireRequest struct {
	Group, Member string
	// Epoch is the session epoch of the request; it rotates which
	// partition is served first.
	Epoch      int32
	MaxRecords int
	BatchSize  int
	// MaxBytes is the request's byte budget, spread over the partitions
	// (0: none).
	MaxBytes int32
	MaxWait  time.Duration
	// Acknowledged is set when the request carried acknowledgements.
	Acknowledged bool
	// RecordLimit is ShareAcquireMode record_limit: MaxRecords is a hard
	// limit and batches are split.
	RecordLimit bool
	// Readable, when set, is asked on every pass whether the member may
	// still read a topic of its session; a partition of a topic it may
	// not answers TOPIC_AUTHORIZATION_FAILED and hands out nothing. The
	// session keeps partitions named in earlier requests, and an ACL
	// removed since must take effect on them too, as in Kafka.
	Readable func(topic string) bool
}

// normalized is r with a batch size of at least 1.
func (r AcquireRequest) normalized() AcquireRequest {
	r.BatchSize = max(r.BatchSize, 1)
	return r
}

// Acquire makes a first pass acquiring records across the session's
// partitions into out. If it got none and the request may wait, it returns
// the long poll, which parks until something is acquirable or MaxWait
// passes; the caller runs it as the request's wait.
func (m *Manager) Acquire(ctx context.Context, in AcquireRequest, sess *Session, out Sink) (poll func() error) {
	// req is never assigned again, so the poll captures a copy rather than
	// moving it to the heap.
	req := in.normalized()
	m.mu.Lock()
	parts := make([]TopicPart, 0, len(sess.parts))
	for tp := range sess.parts {
		parts = append(parts, tp)
	}
	m.mu.Unlock()
	if len(parts) == 0 || req.MaxRecords <= 0 {
		return nil
	}
	// Rotate by session epoch so every partition gets its turn first.
	if len(parts) > 1 {
		slices.SortFunc(parts, func(a, b TopicPart) int {
			if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
				return c
			}
			return int(a.Partition - b.Partition)
		})
		r := int(uint32(req.Epoch)) % len(parts)
		parts = append(parts[r:], parts[:r]...)
	}
	// Read at most readBytes per partition and pass: a share fetch hands
	// out MaxRecords (500 by default), far less than the 50 MiB MaxBytes
	// clients send, and reading the rest would be thrown away.
	perPart := int32(readBytes)
	if req.MaxBytes > 0 {
		perPart = min(max(req.MaxBytes/int32(len(parts)), 1), readBytes)
	}
	got, holding := m.acquireOnce(ctx, req, parts, perPart, out, nil)
	wait := m.longPollWait(sess, req, holding && got == 0)
	if got > 0 || wait <= 0 {
		return nil
	}
	return func() error {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		// One waiter, registered on each share partition's changes and
		// its log's HW before they are read, so nothing that happens
		// between a pass and the park is missed.
		w := log.GetWaiter()
		defer log.PutWaiter(w)
		for {
			if got, _ := m.acquireOnce(ctx, req, parts, perPart, out, w); got > 0 {
				return nil
			}
			select {
			case <-w.C():
			case <-timer.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// acquireOnce makes one pass over the partitions and returns the records
// acquired. A non-nil w is registered first on what signals a change
// worth another pass: each share partition's changes and its log's HW.
func (m *Manager) acquireOnce(ctx context.Context, req AcquireRequest, parts []TopicPart, perPart int32, out Sink, w *log.Waiter) (got int, holding bool) {
	img := m.d.Image()
	fetching := make([]int, len(parts))
	m.mu.Lock()
	for i, tp := range parts {
		fetching[i] = m.sessions.fetching[coordinator.ShareKey{Group: req.Group, TopicID: tp.ID, Partition: tp.Partition}]
	}
	m.mu.Unlock()
	for i, tp := range parts {
		t := img.TopicByID(tp.ID)
		if t == nil {
			out.Failed(tp, kerr.UnknownTopicID.Code)
			continue
		}
		if req.Readable != nil && !req.Readable(t.Name) {
			out.Failed(tp, kerr.TopicAuthorizationFailed.Code)
			continue
		}
		sp, kerrv := m.part(ctx, req.Group, t, tp.Partition)
		if kerrv != nil {
			out.Failed(tp, kerrv.Code)
			continue
		}
		if got >= req.MaxRecords {
			break
		}
		data, ranges, holds := m.acquireFrom(sp, &req, req.MaxRecords-got, perPart, fetching[i], w)
		holding = holding || holds
		if len(ranges) == 0 {
			continue
		}
		out.Acquired(tp, data, ranges)
		for _, r := range ranges {
			got += int(r.Last - r.First + 1)
		}
	}
	return got, holding
}

// acquireFrom reads the log where the share partition wants to continue and
// acquires from what it read. It returns the batches that hold the acquired
// records and the ranges. A non-nil w is registered on the share
// partition's changes and the log's HW before either is read. members is
// the number of sessions fetching from the share partition; ordering by
// key, a member acquires no more than its share of the keys.
//
// Ordering by key, a read stops at the last record the share partition can
// hand out (queue.SharePartition.ReadLimit), and a second read then brings
// in the new records the window has room for: reading on to the end of the
// window would fetch mostly records their keys hold back, a megabyte per
// fetch for a few dozen records handed out.
func (m *Manager) acquireFrom(sp *Part, req *AcquireRequest, maxRecords int, maxBytes int32, members int, w *log.Waiter) (_ []byte, _ []queue.AcquiredRange, holdsKeys bool) {
	now := m.d.Now()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	holdsKeys = sp.q.Config().Ordering == queue.OrderKey && sp.q.Held(req.Member) > 0
	sp.q.StartFetch(members)
	if w != nil {
		sp.changed.Add(w)
		sp.p.WatchHighWatermark(w)
	}
	sp.q.OnLogStart(sp.p.LogStartOffset())
	// read_committed acquires only below the LSO; read_uncommitted up to
	// the HW.
	upper := sp.p.HighWatermark()
	if sp.isolation == log.ReadCommitted {
		upper = sp.p.LastStableOffset()
	}
	var (
		pieces [][]byte
		ranges []queue.AcquiredRange
	)
	for range maxReadsPerPass {
		from := sp.q.NextFetchOffset(now)
		if from < 0 || from >= upper || maxRecords <= 0 || maxBytes <= 0 {
			break
		}
		limit := sp.q.ReadLimit(now, from)
		kept := len(pieces)
		var (
			got []queue.AcquiredRange
			ok  bool
		)
		pieces, got, ok = m.readAndAcquire(sp, req, now, from, limit, maxRecords, maxBytes, pieces)
		ranges = append(ranges, got...)
		for _, r := range got {
			maxRecords -= int(r.Last - r.First + 1)
		}
		for _, p := range pieces[kept:] {
			maxBytes -= int32(len(p))
		}
		if !ok || limit == math.MaxInt64 {
			break // the read was not cut short: nothing more to read now
		}
	}
	return join(pieces), ranges, holdsKeys
}

// join returns pieces one after the other: the piece itself when there is
// one, as neither the log's read buffers nor the batch cache's batches are
// written again once read, so a response may hold them; else a copy into
// memory the runtime does not clear first.
func join(pieces [][]byte) []byte {
	switch len(pieces) {
	case 0:
		return nil
	case 1:
		return pieces[0]
	}
	return bytes.Join(pieces, nil)
}

// longPollWait is how long a ShareFetch that acquired nothing may wait:
// MaxWait, unless the member holds records of a key-ordered share partition.
//
// Why: ordering by key, the records a member holds block their keys until
// it acknowledges them, and a client sends acknowledgements on its next
// request; most clients (franz-go among them) send the next ShareFetch as
// soon as they hand records to the application, before it has processed
// them, and send nothing else until that fetch returns. Parked for
// MaxWait, such a fetch would keep the member's keys blocked (and every
// record behind them from every member) until some other member's
// acknowledgement freed a key it could take. So the first such poll
// returns at once, letting the client's next request carry the
// acknowledgements; a member that still acknowledges nothing (slow
// processing) waits twice as long on each poll after (heldPollBase,
// doubling, up to MaxWait), so it costs a few round trips, not a busy
// loop. A poll that holds nothing, or a request with acknowledgements,
// starts the count again.
func (m *Manager) longPollWait(sess *Session, req AcquireRequest, holding bool) time.Duration {
	if !holding || req.Acknowledged {
		sess.heldPolls.Store(0)
	}
	if !holding || req.MaxWait <= 0 {
		return req.MaxWait
	}
	n := sess.heldPolls.Add(1) - 1
	if n == 0 {
		return 0
	}
	return min(req.MaxWait, heldPollBase<<min(n-1, 16))
}

// heldPollBase is the wait of the second long poll in a row of a member
// holding key-ordered records without acknowledging any (longPollWait).
const heldPollBase = 250 * time.Microsecond

// maxReadsPerPass bounds the log reads of one share partition per
// acquisition pass: one read, and when ordering by key a second one past
// SPEO (see acquireFrom).
const maxReadsPerPass = 2

// readAndAcquire reads the log from offset from through limit (within
// maxBytes, whole batches) and acquires from what it read; sp.mu held. It
// returns pieces with the batches holding the acquired records appended
// (in pieces, see join), and the ranges; ok is false when the read failed.
// Ordering by key, the batches come from the share partition's batch cache
// where it has them.
func (m *Manager) readAndAcquire(sp *Part, req *AcquireRequest, now time.Time, from, limit int64, maxRecords int, maxBytes int32, pieces [][]byte) ([][]byte, []queue.AcquiredRange, bool) {
	maxOffset := int64(math.MaxInt64)
	if limit < math.MaxInt64 {
		maxOffset = limit + 1
	}
	byKey := sp.q.Config().Ordering == queue.OrderKey
	read := readBatches
	if byKey {
		read = sp.cache.read
	}
	batches, err := read(sp, from, maxOffset, maxBytes)
	if err == nil && len(batches) == 0 && maxOffset < math.MaxInt64 {
		// The batch at from is gone (compacted away) and the next starts
		// past the limit: read it anyway, or Acquire never sees past the
		// gap and the records in it are never archived.
		batches, err = read(sp, from, math.MaxInt64, maxBytes)
	}
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			sp.q.OnLogStart(sp.p.LogStartOffset())
		}
		return pieces, nil, false
	}
	spans := make([]queue.Span, len(batches))
	for i := range batches {
		spans[i] = batches[i].span
	}
	ranges := sp.q.Acquire(now, req.Member, spans, maxRecords, req.BatchSize, req.RecordLimit || sp.recordLimit)
	// Acquisition changes nothing durable unless it passed compaction gaps,
	// skipped records never to deliver or saw the log start move; what it
	// asks is persisted then, not waited for, and it has nothing to
	// dead-letter. Persisting wakes the parked fetches, this one included,
	// so a read that only skipped records is followed by the next read.
	m.applyLocked(sp, false)
	if len(ranges) == 0 {
		return pieces, nil, true
	}
	// Keep only the batches that overlap the acquired ranges, without the
	// skipped ones between them (markers, aborted transactions): a client
	// never needs them. Ordering by key, the acquired records are scattered
	// (one per key), often a few of a batch of hundreds: those batches are
	// cut down to the acquired records, or every fetch would carry whole
	// batches mostly of records the consumer may not have, and throughput
	// would go to shipping and decoding them.
	lo, hi := ranges[0].First, ranges[len(ranges)-1].Last
	var offsets []log.OffsetRange
	if byKey {
		offsets = make([]log.OffsetRange, len(ranges))
		for i, r := range ranges {
			offsets[i] = log.OffsetRange{First: r.First, Last: r.Last}
		}
	}
	for i := range batches {
		b := &batches[i]
		if b.span.Last < lo || b.span.First > hi || b.span.Skip {
			continue
		}
		if !byKey {
			pieces = append(pieces, b.data)
			continue
		}
		cut, err := b.cutPieces(pieces, offsets)
		if err != nil {
			cut = append(pieces, b.data)
		}
		pieces = cut
	}
	return pieces, ranges, true
}

// logBatch is one record batch as read from the log, with its span for the
// share partition: offsets, whether to skip it, and (ordering by key) the
// key hashes of its records.
type logBatch struct {
	data []byte
	span queue.Span
	// index locates data's records, built with the keys (indexKeys) or
	// on the first cut; a cached batch is cut on fetch after fetch.
	index *log.RecordIndex
}

// indexed returns the index of b's records, built the first time.
func (b *logBatch) indexed() (*log.RecordIndex, error) {
	if b.index == nil {
		x, err := log.IndexBatch(b.data)
		if err != nil {
			return nil, err
		}
		b.index = &x
	}
	return b.index, nil
}

// cut returns b's batch holding only the records keep reports (see
// log.FilterBatch).
func (b *logBatch) cut(keep func(offset int64) bool) ([]byte, error) {
	x, err := b.indexed()
	if err != nil {
		return nil, err
	}
	return x.Filter(b.data, keep)
}

// cutPieces appends to pieces b's batch holding only the records of ranges
// (see log.RecordIndex.CutPieces).
func (b *logBatch) cutPieces(pieces [][]byte, ranges []log.OffsetRange) ([][]byte, error) {
	x, err := b.indexed()
	if err != nil {
		return pieces, err
	}
	return x.CutPieces(pieces, b.data, ranges)
}

// readBatches reads whole batches of sp's log from offset from, below
// maxOffset, within maxBytes; sp.mu held. (Ordering by key, the batch cache
// reads through it and indexes what it read.)
func readBatches(sp *Part, from, maxOffset int64, maxBytes int32) ([]logBatch, error) {
	res, err := sp.p.ReadIsolated(from, maxBytes, maxOffset, true, sp.isolation)
	if err != nil {
		return nil, err
	}
	var out []logBatch
	for b := res.Data; len(b) >= log.BatchHeaderSize; {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		out = append(out, logBatch{data: b[:h.Size():h.Size()], span: queue.Span{First: h.BaseOffset, Last: h.LastOffset(), Skip: h.Control() || aborted(h, res.Aborted)}})
		b = b[h.Size():]
	}
	return out, nil
}

// aborted reports whether a batch belongs to one of the aborted
// transactions a read_committed read returned (as a Kafka consumer decides
// it: same producer, base offset within the transaction's first offset and
// its abort marker).
func aborted(h log.BatchHeader, txns []log.AbortedTxn) bool {
	if !h.Transactional() {
		return false
	}
	for _, a := range txns {
		if a.ProducerID == h.ProducerID && a.FirstOffset <= h.BaseOffset && h.BaseOffset <= a.LastOffset {
			return true
		}
	}
	return false
}

// indexKeys walks the records of b's batch once for key-ordered delivery:
// it hashes the key of each record into the span's Keys, indexed by offset
// from the batch's base offset, and keeps the record index the batch's cuts
// use. Only done when the group orders by key, on a batch the acquisition
// already read. A batch that does not decode gives null keys (unordered),
// as the client could not read it either.
func (b *logBatch) indexKeys() {
	base := b.span.First
	var keys []queue.KeyHash
	x, err := log.IndexBatchKeys(b.data, func(o int64, k []byte) {
		// Sized by the last keyed record, not the batch's offset delta:
		// a compacted batch may span far more offsets than it holds
		// records.
		if i := o - base; k != nil && i >= int64(len(keys)) && i < maxBatchKeys {
			keys = append(keys, make([]queue.KeyHash, i-int64(len(keys)))...)
			keys = append(keys, keyHash(k))
		}
	})
	if err != nil {
		return
	}
	b.span.Keys, b.index = keys, &x
}

// maxBatchKeys bounds the key slice of one batch; a record further than this
// from its batch's base offset (only possible in a compacted batch) is taken
// as unkeyed.
const maxBatchKeys = 1 << 20

// keyHash is the 64-bit FNV-1a hash of a record key, never queue.NullKey.
// Two keys with one hash are merely delivered in order together.
func keyHash(key []byte) queue.KeyHash {
	h := fnv.New64a()
	h.Write(key)
	if v := queue.KeyHash(h.Sum64()); v != queue.NullKey {
		return v
	}
	return 1
}
