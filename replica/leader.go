package replica

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// Replication follows Kafka's ISR model. A follower fetches from the
// leader with the ordinary Fetch API and its replica id; the leader tracks
// each follower's log end offset (its fetch offset) and when it last caught
// up, moves the high watermark to the smallest log end offset of the ISR,
// and asks the controller (AlterPartition) to drop followers that lag for
// replica.lag.time.max.ms and to add followers that caught up.
//
// The decisions are pure functions of the followers' progress and the
// clock (isrHighWatermark, followerState.fetched, laggingDropped); the
// methods around them read the log and the image and talk to the
// controller.

// leaderState is the leader's view of one partition's followers during one
// leader epoch.
type leaderState struct {
	// hwMu serializes moving the high watermark with a follower starting
	// to join the ISR, so that no HW computed without the joining
	// follower is set once it has started (Kafka's leaderIsrUpdateLock).
	// It is taken before the log's locks and before mu.
	hwMu sync.Mutex

	mu        sync.Mutex
	epoch     int32
	followers map[int32]*followerState
	// appended wakes followers' long-polling fetches when the leader
	// appends (it has a lock of its own, a leaf).
	appended log.WaitSet
	// altering is set while an AlterPartition for the partition is in
	// flight.
	altering bool
	// joining is the follower an in-flight expansion adds to the ISR, or
	// -1. Until the change is decided the high watermark counts it as a
	// member (Kafka's maximal ISR): the controller may complete a
	// reassignment in that very change and make the follower leader, so
	// nothing it lacks may be committed meanwhile.
	joining int32
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

// newFollowerState is a follower that has not fetched yet in this leader
// epoch, considered caught up at now (as Kafka does for a new leader).
func newFollowerState(now time.Time) *followerState {
	return &followerState{leo: -1, lastCaughtUp: now, lastFetchLeaderLEO: -1}
}

// fetched records a follower's fetch from offset fo at now, when the
// leader's log end offset is leo. A follower is caught up when it fetches
// from the leader's end; fetching from at least where the leader's end was
// at its previous fetch shows it was caught up at that previous fetch
// (Kafka's Replica.updateFetchState).
func (f *followerState) fetched(fo, leo int64, now time.Time) {
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
}

// isrHighWatermark is the high watermark the ISR allows: the smallest log
// end offset among the leader's (leo) and its ISR followers'. ok is false
// while a follower in the ISR has not fetched in this leader epoch: its
// log end is unknown, so the HW stays where it is.
func isrHighWatermark(leo int64, self int32, isr []int32, followers map[int32]*followerState) (hw int64, ok bool) {
	hw = leo
	for _, r := range isr {
		if r == self {
			continue
		}
		f := followers[r]
		if f == nil || f.leo < 0 {
			return 0, false
		}
		hw = min(hw, f.leo)
	}
	return hw, true
}

// laggingDropped returns the ISR without the followers that have not been
// caught up for longer than lag (and are not at the leader's end, leo), or
// nil when every member stays.
func laggingDropped(isr []int32, self int32, followers map[int32]*followerState, leo int64, now time.Time, lag time.Duration) []int32 {
	var keep []int32
	for _, r := range isr {
		f := followers[r]
		if r != self && f != nil && f.leo != leo && now.Sub(f.lastCaughtUp) > lag {
			continue
		}
		keep = append(keep, r)
	}
	if len(keep) == len(isr) {
		return nil
	}
	return keep
}

// leaderStateFor returns the follower tracking of a partition this node
// leads, starting afresh in a new leader epoch: every follower is then
// considered caught up now, as Kafka does.
func (m *Manager) leaderStateFor(p *log.Partition, ps raftmeta.PartitionState) *leaderState {
	v, ok := m.leaders.Load(p)
	if !ok {
		v, _ = m.leaders.LoadOrStore(p, &leaderState{epoch: -1, joining: -1})
	}
	st := v.(*leaderState)
	st.mu.Lock()
	if st.epoch != ps.LeaderEpoch {
		st.epoch = ps.LeaderEpoch
		st.followers = map[int32]*followerState{}
		now := m.now()
		for _, r := range ps.Replicas {
			if r != m.node {
				st.followers[r] = newFollowerState(now)
			}
		}
	}
	st.mu.Unlock()
	return st
}

// notifyAppend wakes the followers waiting for data of p.
func (m *Manager) notifyAppend(p *log.Partition) {
	v, ok := m.leaders.Load(p)
	if !ok {
		return
	}
	v.(*leaderState).appended.WakeAll()
}

// advanceHighWatermark moves the HW to the minimum log end offset of the
// ISR (isrHighWatermark), counting a follower that is joining it. While the
// ISR is only this leader, that is its own log end offset, without looking
// at followers.
//
// The ISR is read from the newest image rather than ps, the state the
// caller saw: an ISR that has since grown must hold the HW back, and a
// node that no longer leads the partition must not move it at all.
func (m *Manager) advanceHighWatermark(p *log.Partition, ps raftmeta.PartitionState) {
	t := m.meta.Image().Topics[p.Topic()]
	if !t.HasPartition(p.Index()) || t.ID != p.TopicID() {
		return
	}
	if cur := t.Partitions[p.Index()]; cur.Leader == m.node && cur.LeaderEpoch == ps.LeaderEpoch {
		ps = cur
	} else {
		return
	}
	st := m.leaderStateFor(p, ps)
	st.hwMu.Lock()
	defer st.hwMu.Unlock()
	hw := p.LogEndOffset()
	st.mu.Lock()
	isr := ps.ISR
	if st.joining >= 0 && !slices.Contains(isr, st.joining) {
		isr = append(slices.Clone(isr), st.joining)
	}
	ok := true
	if len(isr) != 1 || isr[0] != m.node {
		hw, ok = isrHighWatermark(hw, m.node, isr, st.followers)
	}
	st.mu.Unlock()
	if !ok {
		return
	}
	if hw > p.HighWatermark() {
		p.SetHighWatermark(hw)
		if raftmeta.IsInternalTopic(p.Topic()) && m.coordPending.Load() {
			select {
			case m.coordKick <- struct{}{}:
			default:
			}
		}
	}
}

// ReadForFollower serves a follower's fetch of one partition this node
// leads (p, as ps says): records up to the log end offset, and the
// follower's progress recorded for the HW and the ISR. It returns the
// bytes read. A non-nil w (the fetch's long poll) is registered to be
// woken by the partition's next append. With fs set the records are read
// into it as a range of their segment file (log.ReadSlice), for the
// broker to send from there, and pr gets none.
func (m *Manager) ReadForFollower(replica int32, t *raftmeta.Topic, rp kmsg.FetchRequestTopicPartition, pr *kmsg.FetchResponseTopicPartition, fs *log.FileSlice, p *log.Partition, ps raftmeta.PartitionState, maxBytes int, w *log.Waiter) (int, error) {
	if !slices.Contains(ps.Replicas, replica) {
		return 0, kerr.NotLeaderForPartition
	}
	now := m.now()
	fo := rp.FetchOffset
	// The waiter is registered before the log end offset is read: an
	// append in between then wakes this fetch instead of leaving it parked
	// with the data unread until the long poll ends (with acks=all, the
	// producer may be waiting on exactly that data and append nothing more).
	st := m.leaderStateFor(p, ps)
	if w != nil {
		st.appended.Add(w)
	}
	leo := p.LogEndOffset()
	pr.LogStartOffset = p.LogStartOffset()
	pr.HighWatermark = p.HighWatermark()
	pr.LastStableOffset = pr.HighWatermark
	pr.PreferredReadReplica = -1
	if fo > leo || fo < pr.LogStartOffset {
		return 0, kerr.OffsetOutOfRange
	}
	st.mu.Lock()
	f := st.followers[replica]
	if f == nil {
		f = newFollowerState(now)
		st.followers[replica] = f
	}
	f.fetched(fo, leo, now)
	st.mu.Unlock()
	m.advanceHighWatermark(p, ps)
	hw := p.HighWatermark()
	if !slices.Contains(ps.ISR, replica) && fo >= hw && fo >= epochStart(p, ps.LeaderEpoch) && m.eligible(replica) {
		m.expandISR(p, t, rp.Partition, ps, replica, fo, st)
	}
	pr.HighWatermark, pr.LastStableOffset = hw, hw
	if fo == leo {
		return 0, nil
	}
	listed := m.leaderListed(t, rp.Partition)
	if m.leaderHoldsBack(listed, slices.Contains(ps.ISR, replica), now) {
		// Throttled: the follower learns the HW and fetches again.
		return 0, nil
	}
	var res log.ReadResult
	var err error
	if fs != nil {
		res, *fs, err = p.ReadSlice(fo, int32(max(maxBytes, 0)), true, true)
	} else {
		res, err = p.ReadForReplica(fo, int32(max(maxBytes, 0)))
	}
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return 0, kerr.OffsetOutOfRange
		}
		return 0, err
	}
	pr.LogStartOffset = res.LogStartOffset
	pr.RecordBatches = res.Data
	n := len(res.Data)
	if fs != nil {
		n = int(fs.Size)
	}
	if listed {
		// What is read here is sent: a follower's fetch asks for one
		// byte, so the first read that finds any answers it.
		m.leaderQuota.Record(float64(n), now)
	}
	return n, nil
}

// eligible reports whether a replica may join an ISR: it is registered and
// unfenced (a broker shutting down is fenced, and keeps fetching until it
// stops).
func (m *Manager) eligible(replica int32) bool {
	b := m.meta.Image().Brokers[replica]
	return b != nil && !b.Fenced
}

// epochStart is the offset at which this leader's epoch began in its log
// (its log end offset if it has not appended in the epoch yet). The log end
// is read first: an append in the epoch between the two reads starts the
// epoch at that very offset.
func epochStart(p *log.Partition, epoch int32) int64 {
	leo := p.LogEndOffset()
	if e, start := p.LatestEpoch(); e == epoch {
		return start
	}
	return leo
}

// expandISR asks the controller to add a follower that has every record up
// to fo, at or past the high watermark, to the ISR. From now until the
// change is decided the HW counts the follower (leaderState.joining); under
// hwMu, no HW computed without it can be set after the check that it still
// has everything committed.
func (m *Manager) expandISR(p *log.Partition, t *raftmeta.Topic, idx int32, ps raftmeta.PartitionState, replica int32, fo int64, st *leaderState) {
	st.hwMu.Lock()
	defer st.hwMu.Unlock()
	if p.HighWatermark() > fo {
		return
	}
	st.mu.Lock()
	if st.altering {
		st.mu.Unlock()
		return
	}
	st.altering = true
	st.joining = replica
	st.mu.Unlock()
	newISR := append(slices.Clone(ps.ISR), replica)
	slices.Sort(newISR)
	m.alterISR(raftmeta.AlterPartitionItem{TopicID: t.ID, Topic: t.Name, Partition: idx, LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch, NewISR: newISR}, "expand", st)
}

// alterISR sends an ISR change (kind "shrink" or "expand") on its own
// goroutine and clears st.altering, which the caller set, once it is done.
func (m *Manager) alterISR(item raftmeta.AlterPartitionItem, kind string, st *leaderState) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sendISRChange(item, kind)
		st.mu.Lock()
		st.altering = false
		st.joining = -1
		st.mu.Unlock()
	}()
}

// sendISRChange sends one AlterPartition item and waits until this node's
// image has moved past the partition epoch it was decided against.
func (m *Manager) sendISRChange(item raftmeta.AlterPartitionItem, kind string) {
	what := "expanding ISR"
	if kind == "shrink" {
		what = "shrinking ISR"
	}
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	results, err := m.ctrl.AlterPartition(ctx, []raftmeta.AlterPartitionItem{item})
	if err == nil && len(results) == 1 {
		err = results[0].Err
	}
	if err != nil {
		if m.ctx.Err() == nil {
			m.log.Info(what+" failed", "topic", item.Topic, "partition", item.Partition, "isr", item.NewISR, "err", err)
		}
		return
	}
	// The active controller logs the change at INFO once it is applied.
	m.log.Debug(what, "topic", item.Topic, "partition", item.Partition, "isr", item.NewISR)
	m.isrDone(kind)
	m.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		t := img.TopicByID(item.TopicID)
		return !t.HasPartition(item.Partition) || t.Partitions[item.Partition].PartitionEpoch > item.PartitionEpoch
	})
}

// StartISRLoop starts shrinking the ISR of partitions this node leads
// when followers lag for longer than replica.lag.time.max.ms (a node of a
// cluster of several; a single node has no followers).
func (m *Manager) StartISRLoop() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		lag := m.cfg.Millis("replica.lag.time.max.ms")
		tick := time.NewTicker(max(min(lag/2, 5*time.Second), 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-tick.C:
			}
			m.shrinkISRs(lag)
		}
	}()
}

// shrinkISRs asks the controller to drop the lagging followers
// (laggingDropped) from the ISR of every partition this node leads, and
// forgets the follower tracking of partitions it no longer leads.
func (m *Manager) shrinkISRs(lag time.Duration) {
	img := m.meta.Image()
	now := m.now()
	m.leaders.Range(func(k, v any) bool {
		p, st := k.(*log.Partition), v.(*leaderState)
		t := img.Topics[p.Topic()]
		if !t.HasPartition(p.Index()) || t.ID != p.TopicID() || t.Partitions[p.Index()].Leader != m.node {
			m.leaders.Delete(k)
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
		keep := laggingDropped(ps.ISR, m.node, st.followers, leo, now, lag)
		if keep == nil {
			st.mu.Unlock()
			return true
		}
		st.altering = true
		st.mu.Unlock()
		m.alterISR(raftmeta.AlterPartitionItem{TopicID: t.ID, Topic: t.Name, Partition: p.Index(), LeaderEpoch: ps.LeaderEpoch, PartitionEpoch: ps.PartitionEpoch, NewISR: keep}, "shrink", st)
		return true
	})
}

// waitReplicated waits until the HW of p passes offset (an acks=all
// produce or a coordinator write), this node stops leading the partition,
// or ctx ends.
func (m *Manager) waitReplicated(ctx context.Context, p *log.Partition, offset int64) error {
	topic, idx := p.Topic(), p.Index()
	for {
		ch := p.Wait()
		metaCh := m.meta.Changed()
		if p.HighWatermark() > offset {
			return nil
		}
		t := m.meta.Image().Topics[topic]
		if !t.HasPartition(idx) || t.ID != p.TopicID() || t.Partitions[idx].Leader != m.node {
			return kerr.NotLeaderForPartition
		}
		select {
		case <-ch:
		case <-metaCh:
			// An ISR change may let the HW move.
			m.advanceHighWatermark(p, t.Partitions[idx])
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
}
