package raftmeta

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Decisions that keep partitions led while brokers come and go: fencing on
// session expiry, unfencing on heartbeat, controlled shutdown, ISR changes
// requested by leaders and leader elections. Like the rest of the Decider
// they are pure functions of the image and their arguments.
//
// Leader election rules, shared by all of them:
//   - A broker is alive if it is registered, unfenced and not being fenced
//     or shut down by the same decision.
//   - A partition keeps a live leader. Otherwise the new leader is the first
//     replica, in replica order, that is in the ISR and alive.
//   - Removing a broker from the ISR never empties it: the last member
//     stays, so that it, holding every committed record, is elected again
//     when it comes back. Such a partition has no leader (-1) meanwhile.
//   - If no ISR member is alive and unclean election is allowed for the
//     topic, the first live replica leads and the ISR becomes just it: the
//     records the ISR had and it lacks are lost.
//   - A new leader bumps LeaderEpoch; every change bumps PartitionEpoch.

// UncleanFunc reports whether unclean.leader.election.enable holds for a
// topic. A nil UncleanFunc never allows unclean election.
type UncleanFunc func(topic string) bool

func (f UncleanFunc) allowed(topic string) bool { return f != nil && f(topic) }

// liveness says which brokers a decision may elect or keep in an ISR.
type liveness struct {
	img  *Image
	down map[int32]bool // fenced or shutting down in this decision
	up   map[int32]bool // unfenced or registered in this decision
}

func (l liveness) alive(id int32) bool {
	if l.down[id] {
		return false
	}
	if l.up[id] {
		return true
	}
	b, ok := l.img.Brokers[id]
	return ok && !b.Fenced
}

// partitionWork is a partition's state while a decision changes it.
type partitionWork struct {
	p PartitionState
	// elected is set when a leader was (re)chosen, even if the same broker
	// ended up leading: its epoch must move so followers resync.
	elected bool
	// reassigned is set when the replica set or the reassignment in
	// progress may have changed: the record then carries them.
	reassigned bool
}

// removeReplica takes broker b out of leadership and the ISR.
func (w *partitionWork) removeReplica(b int32, l liveness, unclean bool) {
	inISR := slices.Contains(w.p.ISR, b)
	if w.p.Leader != b && !inISR {
		return
	}
	if inISR {
		if len(w.p.ISR) > 1 {
			w.p.ISR = slices.DeleteFunc(slices.Clone(w.p.ISR), func(r int32) bool { return r == b })
		}
	}
	if w.p.Leader == b {
		w.p.Leader = NoLeader
		w.elected = true
		w.elect(l, unclean)
	}
}

// elect chooses a leader for a partition without a live one.
func (w *partitionWork) elect(l liveness, unclean bool) {
	if w.p.Leader != NoLeader && l.alive(w.p.Leader) {
		return
	}
	for _, r := range w.p.Replicas {
		if slices.Contains(w.p.ISR, r) && l.alive(r) {
			w.p.Leader = r
			w.elected = true
			return
		}
	}
	if unclean {
		for _, r := range w.p.Replicas {
			if l.alive(r) {
				w.p.Leader = r
				w.p.ISR = []int32{r}
				w.elected = true
				return
			}
		}
	}
	if w.p.Leader != NoLeader {
		w.p.Leader = NoLeader
		w.elected = true
	}
}

// changeRecord returns the record taking old to w, or nil if nothing
// changed.
func (w *partitionWork) changeRecord(t *Topic, partition int32, old PartitionState) *ChangePartition {
	leaderChanged := w.elected || w.p.Leader != old.Leader
	if !leaderChanged && slices.Equal(w.p.ISR, old.ISR) && slices.Equal(w.p.Replicas, old.Replicas) &&
		slices.Equal(w.p.Adding, old.Adding) && slices.Equal(w.p.Removing, old.Removing) {
		return nil
	}
	le := old.LeaderEpoch
	if leaderChanged {
		le++
	}
	rec := &ChangePartition{
		TopicID:        t.ID,
		Partition:      partition,
		ISR:            slices.Clone(w.p.ISR),
		Leader:         w.p.Leader,
		LeaderEpoch:    le,
		PartitionEpoch: old.PartitionEpoch + 1,
	}
	if w.reassigned {
		rec.Replicas, rec.Adding, rec.Removing = slices.Clone(w.p.Replicas), slices.Clone(w.p.Adding), slices.Clone(w.p.Removing)
	}
	return rec
}

// rework runs f over every partition, topics by name and partitions in
// order, and returns the ChangePartition records for those it changed.
func rework(img *Image, f func(t *Topic, w *partitionWork)) []Record {
	var recs []Record
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			w := partitionWork{p: p}
			f(t, &w)
			if r := w.changeRecord(t, int32(i), p); r != nil {
				recs = append(recs, r)
			}
		}
	}
	return recs
}

// removeBrokers moves leadership and ISR membership away from brokers.
func removeBrokers(img *Image, ids []int32, l liveness, unclean UncleanFunc) []Record {
	ids = slices.Sorted(slices.Values(ids))
	return rework(img, func(t *Topic, w *partitionWork) {
		u := unclean.allowed(t.Name)
		for _, b := range ids {
			w.removeReplica(b, l, u)
		}
	})
}

// electLeaderless gives a leader to every partition that lacks a live one.
func electLeaderless(img *Image, l liveness, unclean UncleanFunc) []Record {
	return rework(img, func(t *Topic, w *partitionWork) {
		if w.p.Leader == NoLeader || !l.alive(w.p.Leader) {
			w.elect(l, unclean.allowed(t.Name))
		}
	})
}

// FenceBrokers fences the given unfenced brokers and re-elects the leaders
// they held. Unknown or already fenced ids are skipped.
func (d *Decider) FenceBrokers(img *Image, ids []int32, unclean UncleanFunc) []Record {
	l := liveness{img: img, down: map[int32]bool{}}
	var recs []Record
	var fenced []int32
	for _, id := range slices.Sorted(slices.Values(ids)) {
		b, ok := img.Brokers[id]
		if !ok || b.Fenced || l.down[id] {
			continue
		}
		l.down[id] = true
		fenced = append(fenced, id)
		recs = append(recs, &FenceBroker{ID: id, Epoch: b.Epoch})
	}
	if len(fenced) == 0 {
		return nil
	}
	return append(recs, removeBrokers(img, fenced, l, unclean)...)
}

// FenceExpired fences every unfenced broker whose last heartbeat, in
// lastSeen, is more than timeout before now (broker.session.timeout.ms).
// A broker missing from lastSeen is not fenced: the controller seeds the
// map with the time it took over.
func (d *Decider) FenceExpired(img *Image, lastSeen map[int32]time.Time, now time.Time, timeout time.Duration, unclean UncleanFunc) []Record {
	var expired []int32
	for id, b := range img.Brokers {
		if b.Fenced {
			continue
		}
		if seen, ok := lastSeen[id]; ok && now.Sub(seen) > timeout {
			expired = append(expired, id)
		}
	}
	return d.FenceBrokers(img, expired, unclean)
}

// BrokerHeartbeat decides a heartbeat from broker id at epoch. A fenced
// broker is unfenced, and partitions without a leader that it can lead get
// it. It returns whether the broker is fenced once the records apply.
func (d *Decider) BrokerHeartbeat(img *Image, id int32, epoch int64, unclean UncleanFunc) ([]Record, bool, error) {
	b, ok := img.Brokers[id]
	if !ok {
		return nil, true, errorf(kerr.BrokerIDNotRegistered, "Broker %d is not registered.", id)
	}
	if b.Epoch != epoch {
		return nil, b.Fenced, errorf(kerr.StaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d.", b.Epoch, epoch)
	}
	if !b.Fenced {
		return nil, false, nil
	}
	l := liveness{img: img, up: map[int32]bool{id: true}}
	recs := []Record{&UnfenceBroker{ID: id, Epoch: epoch}}
	return append(recs, electLeaderless(img, l, unclean)...), false, nil
}

// ControlledShutdown decides a broker's request to shut down: leadership
// moves to other ISR members, the broker leaves every ISR it is not the
// last member of, and it is fenced so that nothing new lands on it. The
// epoch must be the broker's current one: no value skips the check, or
// anyone who can reach the controller could fence any broker.
func (d *Decider) ControlledShutdown(img *Image, id int32, epoch int64, unclean UncleanFunc) ([]Record, error) {
	b, ok := img.Brokers[id]
	if !ok {
		return nil, errorf(kerr.BrokerIDNotRegistered, "Broker %d is not registered.", id)
	}
	if b.Epoch != epoch {
		return nil, errorf(kerr.StaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d.", b.Epoch, epoch)
	}
	l := liveness{img: img, down: map[int32]bool{id: true}}
	var recs []Record
	if !b.Fenced {
		recs = append(recs, &FenceBroker{ID: id, Epoch: b.Epoch})
	}
	return append(recs, removeBrokers(img, []int32{id}, l, unclean)...), nil
}

// registerElections is what a registration changes besides the broker: a
// restarted broker (new incarnation) that was unfenced is first treated as
// gone, since it may have lost records it had acknowledged, and then, being
// alive, may lead partitions that have no leader.
func registerElections(img *Image, b Broker, unclean UncleanFunc) []Record {
	old, ok := img.Brokers[b.ID]
	restarted := ok && !old.Fenced && old.IncarnationID != b.IncarnationID
	l := liveness{img: img, up: map[int32]bool{b.ID: true}}
	down := liveness{img: img, down: map[int32]bool{b.ID: true}}
	return rework(img, func(t *Topic, w *partitionWork) {
		u := unclean.allowed(t.Name)
		if restarted {
			w.removeReplica(b.ID, down, u)
		}
		if w.p.Leader == NoLeader || !l.alive(w.p.Leader) {
			w.elect(l, u)
		}
	})
}

// AlterPartitionRequest is an AlterPartition request: a partition leader
// asking to change ISRs.
type AlterPartitionRequest struct {
	BrokerID int32
	// BrokerEpoch is the leader's broker epoch, which must be current.
	BrokerEpoch int64
	Partitions  []AlterPartitionItem
}

// AlterPartitionItem asks for one partition's ISR to become NewISR. The
// epochs are the state the leader last saw; a stale one is refused.
type AlterPartitionItem struct {
	// TopicID names the topic; when zero, Topic does (requests before v2).
	TopicID        [16]byte
	Topic          string
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
}

// AlterPartitionResult is the outcome for one item. State is the
// partition's state after the request when Err is nil.
type AlterPartitionResult struct {
	TopicID   [16]byte
	Topic     string
	Partition int32
	Err       error
	State     PartitionState
}

// AlterPartition decides an AlterPartition request. A request-level failure
// (an unknown broker or a stale broker epoch) is returned as the error, with
// no results.
func (d *Decider) AlterPartition(img *Image, req AlterPartitionRequest) ([]Record, []AlterPartitionResult, error) {
	b, ok := img.Brokers[req.BrokerID]
	if !ok || b.Epoch != req.BrokerEpoch {
		return nil, nil, errorf(kerr.StaleBrokerEpoch, "Broker %d epoch %d is not current.", req.BrokerID, req.BrokerEpoch)
	}
	l := liveness{img: img}
	results := make([]AlterPartitionResult, len(req.Partitions))
	// Items naming the same partition twice are refused: their order would
	// matter.
	type key struct {
		id [16]byte
		p  int32
	}
	seen := map[key]int{}
	var recs []Record
	for i, it := range req.Partitions {
		res := &results[i]
		res.TopicID, res.Topic, res.Partition = it.TopicID, it.Topic, it.Partition
		t := img.TopicByID(it.TopicID)
		if it.TopicID == ([16]byte{}) {
			t = img.Topic(it.Topic)
		}
		if t == nil {
			if it.TopicID != ([16]byte{}) {
				res.Err = errorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
			} else {
				res.Err = errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
			}
			continue
		}
		res.TopicID, res.Topic = t.ID, t.Name
		if !t.HasPartition(it.Partition) {
			res.Err = errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
			continue
		}
		k := key{t.ID, it.Partition}
		seen[k]++
		if seen[k] > 1 {
			res.Err = errorf(kerr.InvalidRequest, "Duplicate partition %s-%d in the request.", t.Name, it.Partition)
			continue
		}
		p := t.Partitions[it.Partition]
		next, err := alterISR(t.Name, it, p, req.BrokerID, l)
		if err != nil {
			res.Err = err
			continue
		}
		res.State = next
		switch {
		case slices.Equal(next.ISR, p.ISR):
		case next.Reassigning():
			// The ISR change may complete a reassignment (reassign.go).
			rec := reassignRecord(t, it.Partition, p, next, l)
			res.State = stateAfter(p, rec)
			recs = append(recs, rec)
		default:
			recs = append(recs, &ChangePartition{TopicID: t.ID, Partition: it.Partition, ISR: slices.Clone(next.ISR),
				Leader: next.Leader, LeaderEpoch: next.LeaderEpoch, PartitionEpoch: next.PartitionEpoch})
		}
	}
	// A second mention of a partition fails every mention.
	for i := range results {
		k := key{results[i].TopicID, results[i].Partition}
		if seen[k] > 1 && results[i].Err == nil {
			results[i].Err = errorf(kerr.InvalidRequest, "Duplicate partition %s-%d in the request.", results[i].Topic, results[i].Partition)
			results[i].State = PartitionState{}
			recs = slices.DeleteFunc(recs, func(r Record) bool {
				cp := r.(*ChangePartition)
				return cp.TopicID == k.id && cp.Partition == k.p
			})
		}
	}
	return recs, results, nil
}

func alterISR(topic string, it AlterPartitionItem, p PartitionState, broker int32, l liveness) (PartitionState, error) {
	switch {
	case p.Leader != broker:
		return PartitionState{}, errorf(kerr.NotLeaderForPartition, "Broker %d is not the leader of %s-%d (the leader is %d).", broker, topic, it.Partition, p.Leader)
	case it.LeaderEpoch > p.LeaderEpoch:
		return PartitionState{}, errorf(kerr.NotLeaderForPartition, "Leader epoch %d of %s-%d is newer than the controller's %d.", it.LeaderEpoch, topic, it.Partition, p.LeaderEpoch)
	case it.LeaderEpoch < p.LeaderEpoch:
		return PartitionState{}, errorf(kerr.FencedLeaderEpoch, "Leader epoch %d of %s-%d is older than the current %d.", it.LeaderEpoch, topic, it.Partition, p.LeaderEpoch)
	case it.PartitionEpoch != p.PartitionEpoch:
		return PartitionState{}, errorf(kerr.InvalidUpdateVersion, "Partition epoch %d of %s-%d is not the current %d.", it.PartitionEpoch, topic, it.Partition, p.PartitionEpoch)
	}
	seen := map[int32]bool{}
	for _, r := range it.NewISR {
		if seen[r] {
			return PartitionState{}, errorf(kerr.InvalidRequest, "The new ISR of %s-%d lists replica %d twice.", topic, it.Partition, r)
		}
		seen[r] = true
		if !slices.Contains(p.Replicas, r) {
			return PartitionState{}, errorf(kerr.InvalidRequest, "The new ISR of %s-%d includes %d, which is not a replica.", topic, it.Partition, r)
		}
	}
	if !seen[p.Leader] {
		return PartitionState{}, errorf(kerr.InvalidRequest, "The new ISR of %s-%d does not include the leader %d.", topic, it.Partition, p.Leader)
	}
	for _, r := range it.NewISR {
		// Members already in the ISR may stay even if fenced meanwhile;
		// fencing removes them itself.
		if !slices.Contains(p.ISR, r) && !l.alive(r) {
			return PartitionState{}, errorf(kerr.IneligibleReplica, "The new ISR of %s-%d includes %d, which is fenced or shutting down.", topic, it.Partition, r)
		}
	}
	next := p
	if slices.Equal(it.NewISR, p.ISR) {
		return next, nil
	}
	next.ISR = slices.Clone(it.NewISR)
	next.PartitionEpoch++
	return next, nil
}

// ElectionType is the kind of ElectLeaders election.
type ElectionType int8

const (
	// PreferredElection makes the first replica leader if it is in the ISR
	// and alive.
	PreferredElection ElectionType = 0
	// UncleanElection elects a leader for partitions without one, from
	// outside the ISR if need be.
	UncleanElection ElectionType = 1
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ElectLeadersResult is the outcome of one partition's election.
type ElectLeadersResult struct {
	Topic     string
	Partition int32
	Err       error
}

// ElectLeaders decides an ElectLeaders request. parts nil means every
// partition; then partitions that need no election are left out of the
// results.
func (d *Decider) ElectLeaders(img *Image, typ ElectionType, parts []TopicPartition) ([]Record, []ElectLeadersResult) {
	all := parts == nil
	if all {
		for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
			for i := range img.Topics[name].Partitions {
				parts = append(parts, TopicPartition{name, int32(i)})
			}
		}
	}
	l := liveness{img: img}
	var recs []Record
	var results []ElectLeadersResult
	done := map[TopicPartition]bool{}
	for _, tp := range parts {
		res := ElectLeadersResult{Topic: tp.Topic, Partition: tp.Partition}
		t := img.Topic(tp.Topic)
		switch {
		case t == nil:
			res.Err = errorf(kerr.UnknownTopicOrPartition, "No such topic as %s", tp.Topic)
		case !t.HasPartition(tp.Partition):
			res.Err = errorf(kerr.UnknownTopicOrPartition, "No such partition as %s-%d", tp.Topic, tp.Partition)
		case done[tp]:
			res.Err = errorf(kerr.InvalidRequest, "Duplicate partition %s-%d in the request.", tp.Topic, tp.Partition)
		default:
			done[tp] = true
			old := t.Partitions[tp.Partition]
			w := partitionWork{p: old}
			res.Err = electOne(&w, typ, l)
			if res.Err == nil {
				recs = append(recs, w.changeRecord(t, tp.Partition, old))
			}
		}
		if all && errorsIs(res.Err, kerr.ElectionNotNeeded) {
			continue
		}
		results = append(results, res)
	}
	return recs, results
}

func electOne(w *partitionWork, typ ElectionType, l liveness) error {
	switch typ {
	case PreferredElection:
		if len(w.p.Replicas) == 0 {
			return errorf(kerr.PreferredLeaderNotAvailable, "The partition has no replicas.")
		}
		pref := w.p.Replicas[0]
		if w.p.Leader == pref {
			return errorf(kerr.ElectionNotNeeded, "Leader election not needed for topic partition.")
		}
		if !slices.Contains(w.p.ISR, pref) || !l.alive(pref) {
			return errorf(kerr.PreferredLeaderNotAvailable, "Failed to elect leader for partition: preferred replica %d is not in the ISR or not alive.", pref)
		}
		w.p.Leader = pref
		w.elected = true
	case UncleanElection:
		if w.p.Leader != NoLeader && l.alive(w.p.Leader) {
			return errorf(kerr.ElectionNotNeeded, "Leader election not needed for topic partition.")
		}
		w.elect(l, true)
		if w.p.Leader == NoLeader {
			return errorf(kerr.EligibleLeadersNotAvailable, "No live replica of the partition can lead it.")
		}
	default:
		return errorf(kerr.InvalidRequest, "Unknown election type %d.", typ)
	}
	return nil
}

func errorsIs(err error, code *kerr.Error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code
}
