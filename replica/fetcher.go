package replica

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// Followers: one fetcher per leader broker fetches every partition this
// node follows from that leader, with its own connection to it.

type fetchKey struct {
	topic string
	idx   int32
}

// fetchAssign is what Reconcile wants fetched: a partition, its leader and
// the leader epoch.
type fetchAssign struct {
	p       *log.Partition
	topicID [16]byte
	leader  int32
	epoch   int32
	// throttled: the partition is listed for this broker's follower
	// replication throttle.
	throttled bool
}

// fetchPart is one partition a fetcher copies.
type fetchPart struct {
	p       *log.Partition
	topicID [16]byte
	epoch   int32
	// truncated is set once the log was truncated to the leader's epoch
	// boundary for this leader epoch.
	truncated bool
	retryAt   time.Time
	// throttled: listed for the follower replication throttle.
	throttled bool
	// caughtUp: the last fetch brought the log to the leader's HW; a
	// caught-up replica is not throttled (Kafka's isReplicaInSync).
	caughtUp bool
}

// fetcher copies the partitions this node follows from one leader: it
// truncates each to the leader's epoch boundary, then fetches them all in
// one Fetch at a time.
type fetcher struct {
	m      *Manager
	leader int32
	peer   Peer
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	// mu guards parts and is held while a response is applied, so a
	// partition removed from the fetcher is never appended to afterwards.
	mu    sync.Mutex
	parts map[fetchKey]*fetchPart

	// session is the fetch session with the leader; only run's goroutine
	// touches it.
	session leaderSession
}

// updateFetchers makes the fetchers follow exactly the partitions in want.
func (m *Manager) updateFetchers(want map[fetchKey]fetchAssign) {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	placed := map[fetchKey]bool{}
	for leader, f := range m.fetchers {
		f.mu.Lock()
		for k, fp := range f.parts {
			a, ok := want[k]
			if !ok || a.leader != leader || a.p != fp.p {
				delete(f.parts, k)
				continue
			}
			if a.epoch != fp.epoch {
				fp.epoch, fp.truncated, fp.retryAt = a.epoch, false, time.Time{}
			}
			fp.throttled = a.throttled
			placed[k] = true
		}
		f.mu.Unlock()
	}
	for k, a := range want {
		if placed[k] {
			continue
		}
		f := m.fetchers[a.leader]
		if f == nil {
			f = m.newFetcher(a.leader)
			m.fetchers[a.leader] = f
		}
		f.mu.Lock()
		f.parts[k] = &fetchPart{p: a.p, topicID: a.topicID, epoch: a.epoch, throttled: a.throttled}
		f.mu.Unlock()
		f.wake()
	}
	for leader, f := range m.fetchers {
		f.mu.Lock()
		empty := len(f.parts) == 0
		f.mu.Unlock()
		if empty {
			f.cancel()
			delete(m.fetchers, leader)
		}
	}
}

// stopFetchers stops every fetcher and waits for them.
func (m *Manager) stopFetchers() {
	m.fetchMu.Lock()
	fs := m.fetchers
	m.fetchers = map[int32]*fetcher{}
	m.fetchMu.Unlock()
	for _, f := range fs {
		f.cancel()
		<-f.done
	}
}

// newFetcher starts the fetcher of the partitions led by leader, on its own
// connection to it.
func (m *Manager) newFetcher(leader int32) *fetcher {
	ctx, cancel := context.WithCancel(m.ctx)
	f := &fetcher{m: m, leader: leader, peer: m.peers.Dial(leader), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), kick: make(chan struct{}, 1), parts: map[fetchKey]*fetchPart{}}
	go f.run()
	return f
}

func (f *fetcher) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fetcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
		return false
	case <-f.kick:
	case <-t.C:
	}
	return true
}

func (f *fetcher) run() {
	defer close(f.done)
	defer f.peer.Close()
	m := f.m
	for f.ctx.Err() == nil {
		now := m.now()
		var trunc, ready []fetchKey
		// idle is how long to wait when nothing is ready: the default
		// poll, or less when a throttled partition may go sooner.
		idle := 100 * time.Millisecond
		f.mu.Lock()
		for k, fp := range f.parts {
			if now.Before(fp.retryAt) {
				continue
			}
			if !fp.truncated {
				trunc = append(trunc, k)
				continue
			}
			if held, wait := m.followerHoldsBack(fp.throttled, fp.caughtUp, now); held {
				idle = min(idle, max(wait, time.Millisecond))
				continue
			}
			ready = append(ready, k)
		}
		f.mu.Unlock()
		if len(trunc) > 0 {
			if err := f.truncate(trunc); err != nil {
				if f.ctx.Err() == nil {
					m.log.Debug("replica truncation request failed", "leader", f.leader, "err", err)
				}
				if !f.sleep(200 * time.Millisecond) {
					return
				}
				continue
			}
		}
		if len(ready) == 0 {
			if !f.sleep(idle) {
				return
			}
			continue
		}
		if err := f.fetch(ready); err != nil {
			if f.ctx.Err() == nil {
				m.log.Debug("replica fetch failed", "leader", f.leader, "err", err)
			}
			if !f.sleep(200 * time.Millisecond) {
				return
			}
		}
	}
}

// backoff delays a partition's next attempt after an error.
func (f *fetcher) backoff(fp *fetchPart) {
	fp.retryAt = f.m.now().Add(min(f.m.cfg.Millis("replica.fetch.backoff.ms"), 200*time.Millisecond))
}

// truncate asks the leader where each partition's latest epoch ends in its
// log and cuts the local log there (OffsetForLeaderEpoch, KIP-101/279).
func (f *fetcher) truncate(keys []fetchKey) error {
	m := f.m
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(m.peers.Version(23))
	req.ReplicaID = m.node
	byTopic := map[string]int{}
	f.mu.Lock()
	for _, k := range keys {
		fp := f.parts[k]
		if fp == nil {
			continue
		}
		epoch, _ := fp.p.LatestEpoch()
		if epoch < 0 {
			// Nothing stored under any epoch: nothing to cut.
			fp.truncated = true
			continue
		}
		i := topicEntry(&req.Topics, byTopic, k.topic, func() kmsg.OffsetForLeaderEpochRequestTopic {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = k.topic
			return rt
		})
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = k.idx, fp.epoch, epoch
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	sent := map[fetchKey]int32{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			sent[fetchKey{rt.Topic, rp.Partition}] = rp.CurrentLeaderEpoch
		}
	}
	f.mu.Unlock()
	if len(req.Topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	r, err := f.peer.Request(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.OffsetForLeaderEpochResponse)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			k := fetchKey{rt.Topic, rp.Partition}
			fp := f.parts[k]
			if fp == nil || fp.epoch != sent[k] {
				continue
			}
			if rp.ErrorCode != 0 {
				f.backoff(fp)
				continue
			}
			if err := f.truncateTo(k, fp, rp.LeaderEpoch, rp.EndOffset); err != nil {
				m.log.Error("truncating follower log", "topic", k.topic, "partition", k.idx, "err", err)
				f.backoff(fp)
				continue
			}
			fp.truncated = true
		}
	}
	return nil
}

// truncateTo cuts a follower's log given the leader's answer for its
// latest epoch: the largest epoch the leader has at or below it and where
// that epoch ends in the leader's log.
func (f *fetcher) truncateTo(k fetchKey, fp *fetchPart, leaderEpoch int32, endOffset int64) error {
	p := fp.p
	leo := p.LogEndOffset()
	var target int64
	switch myEpoch, _ := p.LatestEpoch(); {
	case endOffset < 0 || leaderEpoch < 0:
		// The leader knows no epoch this old: keep only what was
		// committed.
		target = min(p.HighWatermark(), leo)
	case leaderEpoch == myEpoch:
		target = min(endOffset, leo)
	default:
		// The leader's log diverged earlier: keep what both have under
		// the leader's epoch.
		target = min(endOffset, leo)
		if e, off := p.EndOffsetForEpoch(leaderEpoch); e >= 0 && off >= 0 {
			target = min(target, off)
		}
	}
	target = max(target, p.LogStartOffset())
	if target >= leo {
		return nil
	}
	newEnd, err := p.TruncateTo(target)
	if err != nil {
		return err
	}
	f.m.logTruncated(p)
	f.m.log.Info("truncated follower log to the leader's epoch boundary", "topic", k.topic, "partition", k.idx, "from", leo, "to", newEnd, "leader", f.leader)
	return nil
}

// fetch sends one Fetch for the ready partitions, within the fetcher's
// fetch session with the leader, and applies the response.
func (f *fetcher) fetch(keys []fetchKey) error {
	m := f.m
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(m.peers.Version(1))
	req.ReplicaID = m.node
	req.ReplicaState.ID, req.ReplicaState.Epoch = m.node, m.ctrl.BrokerEpoch()
	req.MaxWaitMillis = int32(m.cfg.Int("replica.fetch.wait.max.ms"))
	req.MinBytes = 1
	req.MaxBytes = int32(m.cfg.Int("replica.fetch.response.max.bytes"))
	partMax := int32(m.cfg.Int("replica.fetch.max.bytes"))
	type sentPart struct {
		epoch int32
		p     *log.Partition
	}
	sent := map[fetchKey]sentPart{}
	want := map[fetchKey]sessionPart{}
	names := map[[16]byte]string{}
	f.mu.Lock()
	for _, k := range keys {
		fp := f.parts[k]
		if fp == nil || !fp.truncated {
			continue
		}
		want[k] = sessionPart{topicID: fp.topicID, epoch: fp.epoch, fetchOffset: fp.p.LogEndOffset(), logStart: fp.p.LogStartOffset()}
		names[fp.topicID] = k.topic
		sent[k] = sentPart{fp.epoch, fp.p}
	}
	f.mu.Unlock()
	if len(sent) == 0 {
		return nil
	}
	f.session.fill(req, want, partMax)
	ctx, cancel := context.WithTimeout(f.ctx, time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second)
	defer cancel()
	r, err := f.peer.Request(ctx, req)
	if err != nil {
		// Whether the leader saw the fetch is unknown: start over.
		f.session.restart()
		return err
	}
	resp := r.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		f.session.failed(resp.ErrorCode)
		if isSessionError(resp.ErrorCode) {
			// The next fetch is a full one, at once.
			return nil
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	f.session.answered(req, resp, want)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := m.now()
	for _, rt := range resp.Topics {
		topic := rt.Topic
		if req.Version >= 13 {
			topic = names[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			k := fetchKey{topic, rp.Partition}
			fp := f.parts[k]
			if fp == nil || fp.epoch != sent[k].epoch || fp.p != sent[k].p {
				continue
			}
			f.applyPartition(k, fp, &rp, now)
		}
	}
	return nil
}

// applyPartition stores one partition's fetched records and follows the
// leader's HW. Called with f.mu held.
func (f *fetcher) applyPartition(k fetchKey, fp *fetchPart, rp *kmsg.FetchResponseTopicPartition, now time.Time) {
	m := f.m
	p := fp.p
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if rp.LogStartOffset > p.LogEndOffset() {
			// The leader deleted what this replica still needs: start
			// over at the leader's log start.
			if err := p.TruncateFullyAndStartAt(rp.LogStartOffset); err != nil {
				m.log.Error("restarting follower log", "topic", k.topic, "partition", k.idx, "err", err)
				f.backoff(fp)
			}
			m.logTruncated(p)
			return
		}
		// This replica is ahead of the leader: find the epoch boundary
		// again.
		fp.truncated = false
		return
	default:
		f.backoff(fp)
		return
	}
	if len(rp.RecordBatches) > 0 {
		_, err := p.AppendReplicated(rp.RecordBatches, now)
		if errors.Is(err, log.ErrUnexpectedAppendOffset) && p.LogEndOffset() == p.LogStartOffset() {
			// A log restarted at the leader's log start may be sent a
			// batch that begins below it: restart at that batch.
			if h, herr := log.ParseBatchHeader(rp.RecordBatches); herr == nil && h.BaseOffset < p.LogEndOffset() {
				if err = p.TruncateFullyAndStartAt(h.BaseOffset); err == nil {
					m.logTruncated(p)
					_, err = p.AppendReplicated(rp.RecordBatches, now)
				}
			}
		}
		if err != nil {
			m.log.Warn("appending replicated records", "topic", k.topic, "partition", k.idx, "leo", p.LogEndOffset(), "err", err)
			if errors.Is(err, log.ErrUnexpectedAppendOffset) {
				fp.truncated = false
			}
			f.backoff(fp)
			return
		}
	}
	if fp.throttled {
		m.followerQuota.Record(float64(len(rp.RecordBatches)), now)
	}
	if rp.HighWatermark >= 0 {
		fp.caughtUp = p.LogEndOffset() >= rp.HighWatermark
		p.SetHighWatermarkFollower(min(rp.HighWatermark, p.LogEndOffset()))
	}
	if raftmeta.IsInternalTopic(k.topic) {
		// The coordinator store follows this replica up to its HW, in
		// bulk on its own goroutine: the fetch path only signals.
		m.internal.FollowerAppended(k.topic)
	}
}

// logTruncated tells the store materializing an internal partition that
// its follower log was cut, so a store holding records the log lost is
// rebuilt.
func (m *Manager) logTruncated(p *log.Partition) {
	if raftmeta.IsInternalTopic(p.Topic()) {
		m.internal.FollowerTruncated(p)
	}
}
