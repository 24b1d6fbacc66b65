package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// Replication follows Kafka's ISR model. A follower fetches from the
// leader with the ordinary Fetch API and its replica id; the leader tracks
// each follower's log end offset (its fetch offset) and when it last caught
// up, moves the high watermark to the smallest log end offset of the ISR,
// and asks the controller (AlterPartition) to drop followers that lag for
// replica.lag.time.max.ms and to add followers that caught up.

// clusterState is what a node keeps about replication.
type clusterState struct {
	fetchMu  sync.Mutex
	fetchers map[int32]*replicaFetcher

	// leaders holds the follower tracking of each partition this node
	// leads, by *log.Partition.
	leaders sync.Map
	// minISR caches min.insync.replicas per topic version (*raftmeta.Topic).
	minISR sync.Map

	// coordPending is set when a coordinator skipped a partition it leads
	// because the partition's high watermark had not caught up yet;
	// coordKick then asks for another try when the HW moves.
	coordPending atomic.Bool
	coordKick    chan struct{}
}

func newClusterState() *clusterState {
	return &clusterState{
		fetchers:  map[int32]*replicaFetcher{},
		coordKick: make(chan struct{}, 1),
	}
}

// leaderState is the leader's view of one partition's followers during one
// leader epoch.
type leaderState struct {
	mu        sync.Mutex
	epoch     int32
	followers map[int32]*followerState
	// appended is closed when the leader appends, waking followers'
	// long-polling fetches.
	appended chan struct{}
	// altering is set while an AlterPartition for the partition is in
	// flight.
	altering bool
}

type followerState struct {
	leo          int64 // -1 until the follower fetches
	lastCaughtUp time.Time
	// The leader's log end offset and the time of the follower's previous
	// fetch: a fetch at or past that offset shows the follower was caught
	// up then.
	lastFetchTime      time.Time
	lastFetchLeaderLEO int64
}

// leaderStateFor returns the follower tracking of a partition this node
// leads, starting afresh in a new leader epoch: every follower is then
// considered caught up now, as Kafka does.
func (s *Server) leaderStateFor(p *log.Partition, ps raftmeta.PartitionState) *leaderState {
	v, ok := s.cluster.leaders.Load(p)
	if !ok {
		v, _ = s.cluster.leaders.LoadOrStore(p, &leaderState{epoch: -1, appended: make(chan struct{})})
	}
	st := v.(*leaderState)
	st.mu.Lock()
	if st.epoch != ps.LeaderEpoch {
		st.epoch = ps.LeaderEpoch
		st.followers = map[int32]*followerState{}
		now := s.now()
		for _, r := range ps.Replicas {
			if r != s.cfg.NodeID {
				st.followers[r] = &followerState{leo: -1, lastCaughtUp: now, lastFetchLeaderLEO: -1}
			}
		}
	}
	st.mu.Unlock()
	return st
}

// notifyAppend wakes the followers waiting for data of p.
func (s *Server) notifyAppend(p *log.Partition) {
	v, ok := s.cluster.leaders.Load(p)
	if !ok {
		return
	}
	st := v.(*leaderState)
	st.mu.Lock()
	close(st.appended)
	st.appended = make(chan struct{})
	st.mu.Unlock()
}

// advanceHighWatermark moves the HW to the minimum log end offset of the
// ISR. While the ISR is only this leader, that is its own log end offset;
// a follower in the ISR that has not fetched in this leader epoch holds the
// HW where it is.
func (s *Server) advanceHighWatermark(p *log.Partition, ps raftmeta.PartitionState) {
	hw := p.LogEndOffset()
	if len(ps.ISR) != 1 || ps.ISR[0] != s.cfg.NodeID {
		st := s.leaderStateFor(p, ps)
		st.mu.Lock()
		for _, r := range ps.ISR {
			if r == s.cfg.NodeID {
				continue
			}
			f := st.followers[r]
			if f == nil || f.leo < 0 {
				st.mu.Unlock()
				return
			}
			hw = min(hw, f.leo)
		}
		st.mu.Unlock()
	}
	if hw > p.HighWatermark() {
		p.SetHighWatermark(hw)
		if raftmeta.IsInternalTopic(p.Topic()) && s.cluster.coordPending.Load() {
			select {
			case s.cluster.coordKick <- struct{}{}:
			default:
			}
		}
	}
}

// leaderCaughtUp reports whether a partition this node leads has a known
// high watermark: every record in its log is committed. A new leader's
// coordinators load only then, so they never serve state that could still
// be truncated.
func (s *Server) leaderCaughtUp(p *log.Partition) bool {
	if p.HighWatermark() >= p.LogEndOffset() {
		return true
	}
	s.cluster.coordPending.Store(true)
	return false
}

// minInsyncReplicas returns a topic's min.insync.replicas.
func (s *Server) minInsyncReplicas(t *raftmeta.Topic) int {
	if v, ok := s.cluster.minISR.Load(t); ok {
		return v.(int)
	}
	n := int(s.cfg.EffectiveTopicConfig(t.Configs).Int64("min.insync.replicas"))
	s.cluster.minISR.Store(t, n)
	return n
}

// readForFollower serves a follower's fetch of one partition: records up
// to the log end offset, and the follower's progress recorded for the HW
// and the ISR.
func (s *Server) readForFollower(replica int32, t *raftmeta.Topic, rp kmsg.FetchRequestTopicPartition, pr *kmsg.FetchResponseTopicPartition, p *log.Partition, ps raftmeta.PartitionState, maxBytes int) (<-chan struct{}, int, error) {
	if !slices.Contains(ps.Replicas, replica) {
		return nil, 0, kerr.NotLeaderForPartition
	}
	now := s.now()
	fo := rp.FetchOffset
	// The wake-up channel is taken before the log end offset is read: an
	// append in between then wakes this fetch instead of leaving it parked
	// with the data unread until the long poll ends (with acks=all, the
	// producer may be waiting on exactly that data and append nothing more).
	st := s.leaderStateFor(p, ps)
	st.mu.Lock()
	ch := st.appended
	st.mu.Unlock()
	leo := p.LogEndOffset()
	pr.LogStartOffset = p.LogStartOffset()
	pr.HighWatermark = p.HighWatermark()
	pr.LastStableOffset = pr.HighWatermark
	pr.PreferredReadReplica = -1
	if fo > leo || fo < pr.LogStartOffset {
		return nil, 0, kerr.OffsetOutOfRange
	}
	st.mu.Lock()
	f := st.followers[replica]
	if f == nil {
		f = &followerState{leo: -1, lastCaughtUp: now, lastFetchLeaderLEO: -1}
		st.followers[replica] = f
	}
	f.leo = fo
	switch {
	case fo >= leo:
		f.lastCaughtUp = now
	case fo >= f.lastFetchLeaderLEO && f.lastFetchLeaderLEO >= 0:
		if f.lastFetchTime.After(f.lastCaughtUp) {
			f.lastCaughtUp = f.lastFetchTime
		}
	}
	f.lastFetchTime, f.lastFetchLeaderLEO = now, leo
	st.mu.Unlock()
	s.advanceHighWatermark(p, ps)
	hw := p.HighWatermark()
	if !slices.Contains(ps.ISR, replica) && fo >= hw && fo >= epochStart(p, ps.LeaderEpoch) && s.eligible(replica) {
		s.expandISR(t, rp.Partition, ps, replica, st)
	}
	pr.HighWatermark, pr.LastStableOffset = hw, hw
	if fo == leo {
		return ch, 0, nil
	}
	res, err := p.ReadForReplica(fo, int32(max(maxBytes, 0)))
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return nil, 0, kerr.OffsetOutOfRange
		}
		return nil, 0, err
	}
	pr.LogStartOffset = res.LogStartOffset
	pr.RecordBatches = res.Data
	return ch, len(res.Data), nil
}

// eligible reports whether a replica may join an ISR: it is registered and
// unfenced (a broker shutting down is fenced, and keeps fetching until it
// stops).
func (s *Server) eligible(replica int32) bool {
	b := s.meta.Image().Brokers[replica]
	return b != nil && !b.Fenced
}

// epochStart is the offset at which this leader's epoch began in its log
// (its log end offset if it has not appended in the epoch yet).
func epochStart(p *log.Partition, epoch int32) int64 {
	for _, e := range p.LeaderEpochs() {
		if e.Epoch == epoch {
			return e.Start
		}
	}
	return p.LogEndOffset()
}

// expandISR asks the controller to add a caught-up follower to the ISR.
func (s *Server) expandISR(t *raftmeta.Topic, idx int32, ps raftmeta.PartitionState, replica int32, st *leaderState) {
	st.mu.Lock()
	if st.altering {
		st.mu.Unlock()
		return
	}
	st.altering = true
	st.mu.Unlock()
	newISR := append(slices.Clone(ps.ISR), replica)
	slices.Sort(newISR)
	item := raftmeta.AlterPartitionItem{TopicID: t.ID, Topic: t.Name, Partition: idx, LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch, NewISR: newISR}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sendISRChange(item, "expanding ISR")
		st.mu.Lock()
		st.altering = false
		st.mu.Unlock()
	}()
}

// sendISRChange sends one AlterPartition item and waits until this node's
// image has moved past the partition epoch it was decided against.
func (s *Server) sendISRChange(item raftmeta.AlterPartitionItem, what string) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	results, err := s.controller.AlterPartition(ctx, []raftmeta.AlterPartitionItem{item})
	if err == nil && len(results) == 1 {
		err = results[0].Err
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Info(what+" failed", "topic", item.Topic, "partition", item.Partition, "isr", item.NewISR, "err", err)
		}
		return
	}
	// The active controller logs the change at INFO once it is applied.
	s.log.Debug(what, "topic", item.Topic, "partition", item.Partition, "isr", item.NewISR)
	s.metrics.isrChange(what)
	s.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		t := img.TopicByID(item.TopicID)
		return t == nil || int(item.Partition) >= len(t.Partitions) || t.Partitions[item.Partition].PartitionEpoch > item.PartitionEpoch
	})
}

// isrLoop shrinks the ISR of partitions this node leads when followers lag
// for longer than replica.lag.time.max.ms.
func (s *Server) isrLoop() {
	defer s.wg.Done()
	lag := s.cfg.Millis("replica.lag.time.max.ms")
	tick := time.NewTicker(max(min(lag/2, 5*time.Second), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.shrinkISRs(lag)
	}
}

func (s *Server) shrinkISRs(lag time.Duration) {
	img := s.meta.Image()
	now := s.now()
	s.cluster.leaders.Range(func(k, v any) bool {
		p, st := k.(*log.Partition), v.(*leaderState)
		t := img.Topics[p.Topic()]
		if t == nil || t.ID != p.TopicID() || int(p.Index()) >= len(t.Partitions) || t.Partitions[p.Index()].Leader != s.cfg.NodeID {
			s.cluster.leaders.Delete(k)
			return true
		}
		ps := t.Partitions[p.Index()]
		if len(ps.ISR) <= 1 {
			return true
		}
		leo := p.LogEndOffset()
		st.mu.Lock()
		if st.epoch != ps.LeaderEpoch || st.altering {
			st.mu.Unlock()
			return true
		}
		var keep []int32
		for _, r := range ps.ISR {
			f := st.followers[r]
			if r != s.cfg.NodeID && f != nil && f.leo != leo && now.Sub(f.lastCaughtUp) > lag {
				continue
			}
			keep = append(keep, r)
		}
		if len(keep) == len(ps.ISR) {
			st.mu.Unlock()
			return true
		}
		st.altering = true
		st.mu.Unlock()
		item := raftmeta.AlterPartitionItem{TopicID: t.ID, Topic: t.Name, Partition: p.Index(), LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch, NewISR: keep}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sendISRChange(item, "shrinking ISR")
			st.mu.Lock()
			st.altering = false
			st.mu.Unlock()
		}()
		return true
	})
}

// waitReplicated waits until the HW of p passes offset (an acks=all
// produce or a coordinator write), this node stops leading the partition,
// or ctx ends.
func (s *Server) waitReplicated(ctx context.Context, p *log.Partition, topic string, idx int32, offset int64) error {
	for {
		ch := p.Wait()
		metaCh := s.meta.Changed()
		if p.HighWatermark() > offset {
			return nil
		}
		t := s.meta.Image().Topics[topic]
		if t == nil || t.ID != p.TopicID() || int(idx) >= len(t.Partitions) || t.Partitions[idx].Leader != s.cfg.NodeID {
			return kerr.NotLeaderForPartition
		}
		select {
		case <-ch:
		case <-metaCh:
			// An ISR change may let the HW move.
			s.advanceHighWatermark(p, t.Partitions[idx])
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
}

// Followers: one replicaFetcher per leader broker fetches every partition
// this node follows from that leader.

type fetchKey struct {
	topic string
	idx   int32
}

// fetchAssign is what reconcile wants fetched: a partition, its leader and
// the leader epoch.
type fetchAssign struct {
	p       *log.Partition
	topicID [16]byte
	leader  int32
	epoch   int32
}

type fetchPart struct {
	p       *log.Partition
	topicID [16]byte
	epoch   int32
	// truncated is set once the log was truncated to the leader's epoch
	// boundary for this leader epoch.
	truncated bool
	retryAt   time.Time
}

type replicaFetcher struct {
	srv    *Server
	leader int32
	conn   *cluster.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	// mu guards parts and is held while a response is applied, so a
	// partition removed from the fetcher is never appended to afterwards.
	mu    sync.Mutex
	parts map[fetchKey]*fetchPart
}

// updateFetchers makes the fetchers follow exactly the partitions in want.
func (s *Server) updateFetchers(want map[fetchKey]fetchAssign) {
	c := s.cluster
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	placed := map[fetchKey]bool{}
	for leader, f := range c.fetchers {
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
			placed[k] = true
		}
		f.mu.Unlock()
	}
	for k, a := range want {
		if placed[k] {
			continue
		}
		f := c.fetchers[a.leader]
		if f == nil {
			f = s.newReplicaFetcher(a.leader)
			c.fetchers[a.leader] = f
		}
		f.mu.Lock()
		f.parts[k] = &fetchPart{p: a.p, topicID: a.topicID, epoch: a.epoch}
		f.mu.Unlock()
		f.wake()
	}
	for leader, f := range c.fetchers {
		f.mu.Lock()
		empty := len(f.parts) == 0
		f.mu.Unlock()
		if empty {
			f.cancel()
			delete(c.fetchers, leader)
		}
	}
}

// stopFetchers stops every fetcher and waits for them.
func (s *Server) stopFetchers() {
	c := s.cluster
	c.fetchMu.Lock()
	fs := c.fetchers
	c.fetchers = map[int32]*replicaFetcher{}
	c.fetchMu.Unlock()
	for _, f := range fs {
		f.cancel()
		<-f.done
	}
}

func (s *Server) newReplicaFetcher(leader int32) *replicaFetcher {
	ctx, cancel := context.WithCancel(s.ctx)
	f := &replicaFetcher{srv: s, leader: leader, conn: s.peers.Dial(leader), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), kick: make(chan struct{}, 1), parts: map[fetchKey]*fetchPart{}}
	go f.run()
	return f
}

func (f *replicaFetcher) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *replicaFetcher) sleep(d time.Duration) bool {
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

func (f *replicaFetcher) run() {
	defer close(f.done)
	defer f.conn.Close()
	s := f.srv
	for f.ctx.Err() == nil {
		now := s.now()
		var trunc, ready []fetchKey
		f.mu.Lock()
		for k, fp := range f.parts {
			if now.Before(fp.retryAt) {
				continue
			}
			if fp.truncated {
				ready = append(ready, k)
			} else {
				trunc = append(trunc, k)
			}
		}
		f.mu.Unlock()
		if len(trunc) > 0 {
			if err := f.truncate(trunc); err != nil {
				if f.ctx.Err() == nil {
					s.log.Debug("replica truncation request failed", "leader", f.leader, "err", err)
				}
				if !f.sleep(200 * time.Millisecond) {
					return
				}
				continue
			}
		}
		if len(ready) == 0 {
			if !f.sleep(100 * time.Millisecond) {
				return
			}
			continue
		}
		if err := f.fetch(ready); err != nil {
			if f.ctx.Err() == nil {
				s.log.Debug("replica fetch failed", "leader", f.leader, "err", err)
			}
			if !f.sleep(200 * time.Millisecond) {
				return
			}
		}
	}
}

// backoff delays a partition's next attempt after an error.
func (f *replicaFetcher) backoff(fp *fetchPart) {
	fp.retryAt = f.srv.now().Add(min(f.srv.cfg.Millis("replica.fetch.backoff.ms"), 200*time.Millisecond))
}

// truncate asks the leader where each partition's latest epoch ends in its
// log and cuts the local log there (OffsetForLeaderEpoch, KIP-101/279).
func (f *replicaFetcher) truncate(keys []fetchKey) error {
	s := f.srv
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(s.peerVersion(23))
	req.ReplicaID = s.cfg.NodeID
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
		i, ok := byTopic[k.topic]
		if !ok {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = k.topic
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[k.topic] = i
		}
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
	r, err := f.conn.Request(ctx, req)
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
				s.log.Error("truncating follower log", "topic", k.topic, "partition", k.idx, "err", err)
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
func (f *replicaFetcher) truncateTo(k fetchKey, fp *fetchPart, leaderEpoch int32, endOffset int64) error {
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
	f.srv.logTruncated(p)
	f.srv.log.Info("truncated follower log to the leader's epoch boundary", "topic", k.topic, "partition", k.idx, "from", leo, "to", newEnd, "leader", f.leader)
	return nil
}

// fetch sends one Fetch for the ready partitions and applies the response.
func (f *replicaFetcher) fetch(keys []fetchKey) error {
	s := f.srv
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(s.peerVersion(1))
	req.ReplicaID = s.cfg.NodeID
	req.ReplicaState.ID, req.ReplicaState.Epoch = s.cfg.NodeID, s.controller.BrokerEpoch()
	req.MaxWaitMillis = int32(s.cfg.Int("replica.fetch.wait.max.ms"))
	req.MinBytes = 1
	req.MaxBytes = int32(s.cfg.Int("replica.fetch.response.max.bytes"))
	req.SessionID, req.SessionEpoch = 0, -1
	partMax := int32(s.cfg.Int("replica.fetch.max.bytes"))
	type sentPart struct {
		epoch int32
		p     *log.Partition
	}
	sent := map[fetchKey]sentPart{}
	byTopic := map[string]int{}
	names := map[[16]byte]string{}
	f.mu.Lock()
	for _, k := range keys {
		fp := f.parts[k]
		if fp == nil || !fp.truncated {
			continue
		}
		i, ok := byTopic[k.topic]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = k.topic, fp.topicID
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byTopic[k.topic] = i
			names[fp.topicID] = k.topic
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = k.idx, fp.epoch
		rp.FetchOffset, rp.LogStartOffset = fp.p.LogEndOffset(), fp.p.LogStartOffset()
		rp.LastFetchedEpoch = -1
		rp.PartitionMaxBytes = partMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent[k] = sentPart{fp.epoch, fp.p}
	}
	f.mu.Unlock()
	if len(sent) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second)
	defer cancel()
	r, err := f.conn.Request(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.FetchResponse)
	if err := codeErr(resp.ErrorCode); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := s.now()
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
func (f *replicaFetcher) applyPartition(k fetchKey, fp *fetchPart, rp *kmsg.FetchResponseTopicPartition, now time.Time) {
	s := f.srv
	p := fp.p
	switch err := codeErr(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if rp.LogStartOffset > p.LogEndOffset() {
			// The leader deleted what this replica still needs: start
			// over at the leader's log start.
			if err := p.TruncateFullyAndStartAt(rp.LogStartOffset); err != nil {
				s.log.Error("restarting follower log", "topic", k.topic, "partition", k.idx, "err", err)
				f.backoff(fp)
			}
			s.logTruncated(p)
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
					s.logTruncated(p)
					_, err = p.AppendReplicated(rp.RecordBatches, now)
				}
			}
		}
		if err != nil {
			s.log.Warn("appending replicated records", "topic", k.topic, "partition", k.idx, "leo", p.LogEndOffset(), "err", err)
			if errors.Is(err, log.ErrUnexpectedAppendOffset) {
				fp.truncated = false
			}
			f.backoff(fp)
			return
		}
	}
	if rp.HighWatermark >= 0 {
		p.SetHighWatermarkFollower(min(rp.HighWatermark, p.LogEndOffset()))
	}
	// A coordinator store follows this replica up to its HW, in bulk on
	// its own goroutine: the fetch path only signals.
	s.coord.FollowerAdvanced(k.topic)
}

// logTruncated tells the store materializing an internal partition that
// its follower log was cut, so a store holding records the log lost is
// rebuilt.
func (s *Server) logTruncated(p *log.Partition) {
	s.coord.FollowerTruncated(p)
}
