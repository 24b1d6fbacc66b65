package broker

// The front end of incremental fetch sessions (KIP-227): a Fetch's session
// fields go to the fetchsession cache, which says which partitions the
// fetch reads (the request's, or its session's), and, once they are read,
// which of them the response carries and under what session id.
//
// Authorization is made here, not in front of the handler as for other
// APIs: an incremental fetch reads partitions its request does not name,
// so each fetch checks every partition of its session, as Kafka's
// KafkaApis does after building the fetch context.
//
// Ordering: the session's epoch moves and its partitions change while the
// handler runs, in connection order; the response's part (what a session
// last told its fetcher, a full fetch's new session) is recorded when the
// response is made, which may be in the long poll's wait. Only the same
// fetcher's next fetch sees that, and it is sent after this response.

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/fetchsession"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// fetchPlan is one Fetch request on its way: what it reads and what it
// read last. The slices are indexed like fetch.Partitions. Plans are
// pooled (fetchPlans): a consumer of many partitions would otherwise
// leave a few hundred KiB of garbage per fetch.
type fetchPlan struct {
	req   *kmsg.FetchRequest
	fetch *fetchsession.Fetch
	// topics are the partitions' topics, nil when unknown.
	topics []*raftmeta.Topic
	// refused holds the code a partition is answered with unread
	// (UNKNOWN_TOPIC_ID, TOPIC_AUTHORIZATION_FAILED), or 0.
	refused []int16
	// out is the last read of each partition.
	out []kmsg.FetchResponseTopicPartition
	// slices are the last read's records of each partition read as a
	// range of its segment file (readPartition), held until sent; empty
	// on a connection that cannot send from files.
	slices []log.FileSlice
	// waiter is the long poll's wake-up, registered on the partitions
	// read; nil until the fetch parks.
	waiter *log.Waiter
	// results, keep and parts are finishFetch's and the session's
	// working space.
	results []fetchsession.Result
	keep    []bool
	parts   []fetchsession.Partition
}

var fetchPlans = sync.Pool{New: func() any { return new(fetchPlan) }}

// resized returns b with length n and zero elements, reusing its array
// when large enough.
func resized[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	b = b[:n]
	clear(b)
	return b
}

// release returns a plan to the pool once its response is made; the
// response holds copies of what it needs.
func (plan *fetchPlan) release() {
	plan.releaseSlices()
	plan.parts = plan.fetch.Partitions[:0]
	clear(plan.out) // the record data
	clear(plan.topics)
	plan.req, plan.fetch = nil, nil
	fetchPlans.Put(plan)
}

// sliced reports whether partition i's last read is a range of its
// segment file.
func (plan *fetchPlan) sliced(i int) bool {
	return i < len(plan.slices) && plan.slices[i].Size > 0
}

// releaseSlices lets go of the segment files the last read holds.
func (plan *fetchPlan) releaseSlices() {
	for i := range plan.slices {
		plan.slices[i].Release()
	}
}

// planFetch applies a Fetch's session fields, finds the topics of the
// partitions it reads and checks that the principal may read them.
func (s *Server) planFetch(rc *reqCtx, req *kmsg.FetchRequest) *fetchPlan {
	plan := fetchPlans.Get().(*fetchPlan)
	allowed := rc.conn.fetchAllowed(req)
	sr := sessionRequest(req)
	sr.Buf = plan.parts
	if sr.Privileged && allowed != nil && !allowed("") {
		// A follower's session may evict a consumer's at any age:
		// only a principal that may act as a broker gets one. (Kafka
		// decides it from the replica id alone.)
		sr.Privileged = false
	}
	f := s.fetchSessions.Open(s.now(), sr)
	n := len(f.Partitions)
	plan.req, plan.fetch = req, f
	plan.topics, plan.refused = resized(plan.topics, n), resized(plan.refused, n)
	plan.out = resized(plan.out, n)
	plan.slices = plan.slices[:0]
	if rc.conn.sendFiles {
		plan.slices = resized(plan.slices, n)
	}
	img := s.meta.Image()
	for i, p := range f.Partitions {
		t := requestTopic(img, req.Version >= 13, p.Topic, p.TopicID)
		plan.topics[i] = t
		name := p.Topic
		if t != nil {
			name = t.Name
		}
		switch {
		case t == nil && req.Version >= 13:
			plan.refused[i] = kerr.UnknownTopicID.Code
		case allowed != nil && !allowed(name):
			plan.refused[i] = topicDenied
		}
	}
	return plan
}

// finishFetch makes the response from the last read and releases the
// plan: the session decides which partitions it carries, consecutive
// partitions of one topic share a topic entry, as in Kafka's responses.
func (s *Server) finishFetch(rc *reqCtx, plan *fetchPlan) *kmsg.FetchResponse {
	resp := plan.req.ResponseKind().(*kmsg.FetchResponse)
	plan.results = resized(plan.results, len(plan.out))
	results := plan.results
	errored := false
	for i := range plan.out {
		pr := &plan.out[i]
		results[i] = fetchsession.Result{HighWatermark: pr.HighWatermark, LogStartOffset: pr.LogStartOffset,
			Errored: pr.ErrorCode != 0,
			News:    len(pr.RecordBatches) > 0 || plan.sliced(i) || pr.DivergingEpoch.Epoch >= 0 || pr.PreferredReadReplica >= 0}
		errored = errored || pr.ErrorCode != 0
	}
	plan.keep = resized(plan.keep, len(plan.out))
	keep := plan.keep
	resp.SessionID, resp.ErrorCode = plan.fetch.Finish(s.now(), results, keep)
	var last *kmsg.FetchResponseTopic
	for i, part := range plan.fetch.Partitions {
		if !keep[i] {
			continue
		}
		t := plan.topics[i]
		name := part.Topic
		if t != nil {
			name = t.Name
			if plan.sliced(i) {
				s.metrics.fetchedCounted(t.Name, plan.slices[i].Size, plan.slices[i].Records)
			} else {
				s.metrics.fetched(t.Name, plan.out[i].RecordBatches)
			}
		}
		if last == nil || last.Topic != name || last.TopicID != part.TopicID {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = name, part.TopicID
			resp.Topics = append(resp.Topics, rt)
			last = &resp.Topics[len(resp.Topics)-1]
		}
		last.Partitions = append(last.Partitions, plan.out[i])
		if plan.sliced(i) {
			// The response takes the slice over: released once sent.
			rc.fetchFiles = append(rc.fetchFiles, fileRecords{topic: len(resp.Topics) - 1,
				partition: len(last.Partitions) - 1, slice: plan.slices[i]})
			plan.slices[i] = log.FileSlice{}
		}
	}
	if errored {
		s.fetchHints(resp, rc.conn.listener)
	}
	plan.release()
	return resp
}

// sessionRequest is what a Fetch says to the session cache. Before v7 a
// fetch has no session fields and is sessionless.
func sessionRequest(req *kmsg.FetchRequest) fetchsession.Request {
	r := fetchsession.Request{SessionID: req.SessionID, Epoch: req.SessionEpoch, TopicIDs: req.Version >= 13,
		Privileged: fetchReplica(req) >= 0}
	if req.Version < 7 {
		r.SessionID, r.Epoch = 0, fetchsession.FinalEpoch
	}
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	r.Partitions = make([]fetchsession.Partition, 0, n)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			r.Partitions = append(r.Partitions, fetchsession.Partition{
				Key: sessionKey(r.TopicIDs, rt.Topic, rt.TopicID, rp.Partition),
				Params: fetchsession.Params{FetchOffset: rp.FetchOffset, LogStartOffset: rp.LogStartOffset,
					MaxBytes: rp.PartitionMaxBytes, CurrentLeaderEpoch: rp.CurrentLeaderEpoch, LastFetchedEpoch: rp.LastFetchedEpoch},
			})
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			r.Forgotten = append(r.Forgotten, sessionKey(r.TopicIDs, ft.Topic, ft.TopicID, p))
		}
	}
	return r
}

// sessionKey names a partition by topic id from v13 on, by name before.
func sessionKey(byID bool, topic string, id [16]byte, partition int32) fetchsession.Key {
	if byID {
		return fetchsession.Key{TopicID: id, Partition: partition}
	}
	return fetchsession.Key{Topic: topic, Partition: partition}
}

// fetchSessionMetrics are the session cache's series, after Kafka's
// NumIncrementalFetchSessions, NumIncrementalFetchPartitionsCached and
// IncrementalFetchSessionEvictionsPerSec.
func fetchSessionMetrics(c *fetchsession.Cache) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_fetch_sessions", Help: "Incremental fetch sessions (KIP-227) kept by this node.",
		}, func() float64 { return float64(c.Stats().Sessions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_fetch_session_partitions", Help: "Partitions held by the incremental fetch sessions.",
		}, func() float64 { return float64(c.Stats().Partitions) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoal_fetch_session_evictions_total", Help: "Fetch sessions evicted to make room for others.",
		}, func() float64 { return float64(c.Stats().Evictions) }),
	}
}
