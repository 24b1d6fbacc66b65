package broker

// Fetch (key 1), v4-v18 on every listener.
//
// Reads each partition once in connection order and long-polls for MinBytes
// until MaxWait; a follower broker's fetch (replica id set) reads to the LEO
// and records its progress for the HW and ISR (replica.Manager.ReadForFollower).
// KIP-320 leader epochs are checked. read_committed (isolation level 1)
// reads up to the last stable offset and carries the aborted transactions
// among the batches read. Incremental fetch sessions (KIP-227, v7+) are
// kept by fetch_session.go: what a fetch reads is its session's
// partitions, and an incremental response carries only those with news.

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// handleFetch answers a Fetch, long-polling until MinBytes are available or
// MaxWait passes: the session is applied and the first read runs in
// connection order, the long poll is the request's wait.
//
// A fetch that parks registers one waiter on the partitions it reads
// (log.Waiter), then reads them again before it sleeps: the registration
// comes before each partition's HW is read, so an append between that
// read and the sleep still wakes it. A fetch answered at once registers
// nothing.
func (s *Server) handleFetch(ctx context.Context, rc *reqCtx, req *kmsg.FetchRequest) (kmsg.Response, waitFunc, error) {
	maxWait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	plan := s.planFetch(rc, req)
	if s.readFetchOnce(plan) || maxWait == 0 {
		return s.finishFetch(rc, plan), nil, nil
	}
	// The wait reads again before it parks; until it runs (a connection
	// closed meanwhile never runs it) no segment file stays held for
	// this read.
	plan.releaseSlices()
	return nil, func() (kmsg.Response, error) {
		timer := time.NewTimer(maxWait)
		defer timer.Stop()
		plan.waiter = log.GetWaiter()
		defer func() {
			log.PutWaiter(plan.waiter)
			plan.waiter = nil
		}()
		for {
			if s.readFetchOnce(plan) {
				return s.finishFetch(rc, plan), nil
			}
			select {
			case <-plan.waiter.C():
			case <-timer.C:
				// Read once more: data may have arrived together
				// with the deadline.
				s.readFetchOnce(plan)
				return s.finishFetch(rc, plan), nil
			case <-ctx.Done():
				plan.release()
				return nil, ctx.Err()
			}
		}
	}, nil
}

// readFetchOnce reads a fetch's partitions and reports whether the response
// is final: MinBytes are there, a partition failed, or nothing can wake a
// long poll.
func (s *Server) readFetchOnce(plan *fetchPlan) bool {
	size, errored, watched := s.readFetch(plan)
	return size >= int(plan.req.MinBytes) || errored || watched == 0
}

// readFetch reads every partition of the fetch once into plan.out. It
// returns the record bytes read, whether any partition failed, and how
// many partitions were read (each can wake a long poll). With plan.waiter
// set, the waiter is registered on each partition before it is read.
func (s *Server) readFetch(plan *fetchPlan) (int, bool, int) {
	req := plan.req
	replica := fetchReplica(req)
	budget := int(req.MaxBytes)
	if budget <= 0 {
		budget = 1 << 30
	}
	size := 0
	errored := false
	watched := 0
	for i, part := range plan.fetch.Partitions {
		pr := &plan.out[i]
		*pr = kmsg.NewFetchResponseTopicPartition()
		var fs *log.FileSlice
		if len(plan.slices) > 0 {
			fs = &plan.slices[i]
			fs.Release() // the previous read's, when a long poll reads again
		}
		pr.Partition = part.Partition
		if code := plan.refused[i]; code != 0 {
			pr.ErrorCode = code
			pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
		} else {
			rp := kmsg.FetchRequestTopicPartition{Partition: part.Partition, CurrentLeaderEpoch: part.CurrentLeaderEpoch,
				FetchOffset: part.FetchOffset, LastFetchedEpoch: part.LastFetchedEpoch, LogStartOffset: part.LogStartOffset,
				PartitionMaxBytes: part.MaxBytes}
			n, err := s.readPartition(req, replica, plan.topics[i], rp, pr, fs, budget, size == 0, plan.waiter)
			if err != nil {
				pr.ErrorCode = errorCode(err)
				if replica < 0 || !errors.Is(err, kerr.OffsetOutOfRange) {
					pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
				}
			} else {
				size += n
				budget -= n
				watched++
			}
		}
		if pr.ErrorCode != 0 {
			errored = true
		}
		if pr.RecordBatches == nil {
			// Kafka answers a partition without data, or with an
			// error, with an empty record set. The field is
			// nullable in the schema, but librdkafka rejects the
			// whole response on a null set and kafka-python fails
			// on it.
			pr.RecordBatches = []byte{}
		}
		if req.IsolationLevel == 1 && pr.AbortedTransactions == nil {
			// Kafka sends a null aborted list only to
			// read_uncommitted fetches.
			pr.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
	}
	return size, errored, watched
}

// readPartition fills one partition's part of a fetch response and
// returns the record bytes read. A non-nil w is registered first on what
// wakes the read: the HW for a consumer, appends for a follower.
//
// With fs set (a plain TCP connection) the records are read as a range of
// their segment file into fs, to be sent from there (sendfile), when they
// go out unchanged: to a follower, or to a read_uncommitted consumer.
// read_committed reads bytes, as the aborted transactions are found from
// the batches read.
func (s *Server) readPartition(req *kmsg.FetchRequest, replica int32, t *raftmeta.Topic, rp kmsg.FetchRequestTopicPartition, pr *kmsg.FetchResponseTopicPartition, fs *log.FileSlice, budget int, first bool, w *log.Waiter) (int, error) {
	p, ps, kerrv := s.replicas.LeaderPartitionAt(t, rp.Partition, rp.CurrentLeaderEpoch)
	if kerrv != nil {
		return 0, kerrv
	}
	if replica >= 0 {
		maxBytes := min(int(rp.PartitionMaxBytes), budget)
		if maxBytes <= 0 && first {
			maxBytes = 1
		}
		return s.replicas.ReadForFollower(replica, t, rp, pr, fs, p, ps, maxBytes, w)
	}
	if w != nil {
		p.WatchHighWatermark(w)
	}
	pr.HighWatermark = p.HighWatermark()
	pr.LastStableOffset = p.LastStableOffset()
	pr.LogStartOffset = p.LogStartOffset()
	pr.PreferredReadReplica = -1
	maxBytes := min(int(rp.PartitionMaxBytes), budget)
	if maxBytes <= 0 && !first {
		return 0, nil
	}
	if caughtUp := rp.FetchOffset == pr.HighWatermark || (req.IsolationLevel == 1 && rp.FetchOffset == pr.LastStableOffset); caughtUp && rp.FetchOffset >= pr.LogStartOffset {
		// Caught up: nothing to read. Most partitions of a consumer of
		// many are, at every fetch.
		return 0, nil
	}
	// read_uncommitted reads up to the HW; read_committed up to the LSO,
	// with the aborted transactions among what it read.
	var res log.ReadResult
	var err error
	if fs != nil && req.IsolationLevel == 0 {
		res, *fs, err = p.ReadSlice(rp.FetchOffset, int32(max(maxBytes, 0)), first, false)
	} else {
		res, err = p.ReadIsolated(rp.FetchOffset, int32(max(maxBytes, 0)), math.MaxInt64, first, log.IsolationLevel(req.IsolationLevel))
	}
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return 0, kerr.OffsetOutOfRange
		}
		return 0, err
	}
	pr.HighWatermark = res.HighWatermark
	pr.LastStableOffset = res.LastStableOffset
	pr.LogStartOffset = res.LogStartOffset
	pr.RecordBatches = res.Data
	for _, a := range res.Aborted {
		pr.AbortedTransactions = append(pr.AbortedTransactions,
			kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
	}
	if fs != nil && fs.Size > 0 {
		return int(fs.Size), nil
	}
	return len(res.Data), nil
}

// fetchReplica is the follower broker a fetch comes from, or -1 for a
// consumer.
func fetchReplica(req *kmsg.FetchRequest) int32 {
	if req.Version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}
