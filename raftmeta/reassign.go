package raftmeta

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignment and broker removal, with Kafka's semantics
// (KIP-455 and the KRaft controller's PartitionChangeBuilder):
//
//   - A reassignment sets a partition's target replicas. While it is in
//     progress the partition's Replicas are the target followed by the
//     replicas being removed, Adding holds the target replicas not yet in
//     the old set and Removing the old replicas not in the target (both in
//     id order). The target may name fenced brokers, even only those. The ISR
//     is left alone: the new replicas start fetching (every node holds the
//     replicas the image names) and the leader adds them to the ISR with
//     AlterPartition once they catch up.
//   - The reassignment completes in the same change that makes every
//     target replica an ISR member: Replicas become the target, the
//     removed replicas leave the ISR, and if the leader was one of them a
//     new one is elected from the target (its leader epoch bumps). A
//     target already inside the ISR completes at once.
//   - A new reassignment of a partition being reassigned starts from the
//     union: replicas that were being added and are not in the new target
//     are now being removed. One that adds no replica keeps those being
//     added that its target keeps, so resubmitting the reassignment in
//     progress changes nothing.
//   - Cancelling returns to the replicas before the reassignment (Replicas
//     without Adding) and takes the added replicas out of the ISR.
//   - UnregisterBroker removes a broker from the image, after moving
//     leadership and ISR membership away from it as fencing does.

// UnregisterBroker removes a broker from the cluster (Kafka's
// UnregisterBrokerRecord). Epoch must be the broker's current epoch, so an
// unregistration decided before a re-registration does not remove the new
// incarnation.
type UnregisterBroker struct {
	ID    int32
	Epoch int64
}

func (*UnregisterBroker) recordType() recordType { return typeUnregisterBroker }

func (r *UnregisterBroker) encode(e *encoder) {
	e.i32(r.ID)
	e.varint(r.Epoch)
}

// encodeReassignments writes the snapshot section of partitions with a
// reassignment in progress, topics by name and partitions in order.
func encodeReassignments(e *encoder, img *Image) {
	type entry struct {
		id        [16]byte
		partition int32
		p         PartitionState
	}
	var in []entry
	for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			if p.Reassigning() {
				in = append(in, entry{t.ID, int32(i), p})
			}
		}
	}
	encodeList(e, in, func(e *encoder, x entry) {
		e.uuid(x.id)
		e.i32(x.partition)
		e.i32s(x.p.Adding)
		e.i32s(x.p.Removing)
	})
}

// decodeReassignments reads what encodeReassignments wrote into img's
// partitions, which decodeImage has just built and nothing shares yet.
func decodeReassignments(d *decoder, img *Image) error {
	for range d.count() {
		id, part, adding, removing := d.uuid(), d.i32(), d.i32s(), d.i32s()
		if d.err != nil {
			return d.err
		}
		t := img.TopicByID(id)
		if !t.HasPartition(part) {
			return corruptf("reassignment of unknown partition %x-%d", id, part)
		}
		t.Partitions[part].Adding, t.Partitions[part].Removing = adding, removing
	}
	return nil
}

// ReassignRequest asks for one partition's replicas to become Replicas;
// nil Replicas cancels the partition's reassignment.
type ReassignRequest struct {
	Topic     string
	Partition int32
	Replicas  []int32
	// KeepReplicationFactor refuses a target whose size differs from the
	// partition's replication factor (KIP-860's
	// allowReplicationFactorChange=false).
	KeepReplicationFactor bool
}

// Reassignment is a partition's reassignment in progress, as
// ListPartitionReassignments reports it.
type Reassignment struct {
	Topic     string
	Partition int32
	// Replicas is the current replica set: target and removing replicas.
	Replicas []int32
	Adding   []int32
	Removing []int32
}

// AlterPartitionReassignments decides an AlterPartitionReassignments
// request; errs[i] is the outcome of reqs[i]. A partition named twice
// fails both times, as the order would matter.
func (d *Decider) AlterPartitionReassignments(img *Image, reqs []ReassignRequest, unclean UncleanFunc) ([]Record, []error) {
	errs := make([]error, len(reqs))
	count := map[TopicPartition]int{}
	for _, r := range reqs {
		count[TopicPartition{r.Topic, r.Partition}]++
	}
	l := liveness{img: img}
	var recs []Record
	for i, r := range reqs {
		if count[TopicPartition{r.Topic, r.Partition}] > 1 {
			errs[i] = errorf(kerr.InvalidRequest, "Duplicate partition %s-%d in the request.", r.Topic, r.Partition)
			continue
		}
		t := img.Topic(r.Topic)
		if t == nil {
			errs[i] = errorf(kerr.UnknownTopicOrPartition, "Unable to find a topic named %s.", r.Topic)
			continue
		}
		if !t.HasPartition(r.Partition) {
			errs[i] = errorf(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", r.Topic, r.Partition)
			continue
		}
		old := t.Partitions[r.Partition]
		var next PartitionState
		var err error
		if r.Replicas == nil {
			next, err = cancelReassignment(t.Name, r.Partition, old, unclean.allowed(t.Name))
		} else {
			next, err = startReassignment(img, old, r.Replicas, r.KeepReplicationFactor)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		if rec := reassignRecord(t, r.Partition, old, next, l); rec != nil {
			recs = append(recs, rec)
		}
	}
	return recs, errs
}

// startReassignment returns the partition's state once a reassignment to
// target begins (before completion is tried). Unlike a new partition's
// assignment, the target may be all fenced brokers: the reassignment
// waits for them to come back and catch up, as in Kafka. keepRF refuses a
// target whose size differs from the replica set the partition has or is
// headed for; Kafka checks that after the target itself.
func startReassignment(img *Image, old PartitionState, target []int32, keepRF bool) (PartitionState, error) {
	if err := validateReplicas(img, target); err != nil {
		return PartitionState{}, err
	}
	if rf := len(old.TargetReplicas()); keepRF && len(target) != rf {
		return PartitionState{}, errorf(kerr.InvalidReplicationFactor, "The replication factor is changed from %d to %d", rf, len(target))
	}
	// As Kafka's controller lists them: the replicas being added and
	// removed in id order, and the replicas the target followed by those
	// being removed.
	next := old
	next.Adding = slices.Sorted(slices.Values(without(target, old.Replicas)))
	next.Removing = slices.Sorted(slices.Values(without(old.Replicas, target)))
	next.Replicas = slices.Concat(target, next.Removing)
	if len(next.Adding) == 0 {
		// Nothing new to add: replicas the reassignment in progress was
		// adding and the target keeps are still catching up (Kafka's
		// controller keeps the adding replicas when a request adds none).
		next.Adding = slices.DeleteFunc(slices.Clone(old.Adding), func(r int32) bool { return !slices.Contains(target, r) })
	}
	return next, nil
}

// cancelReassignment returns the partition's state once its reassignment
// is reverted. Reverting needs an ISR member among the original replicas;
// without one it would take an unclean election, which only a topic that
// allows it gets.
func cancelReassignment(topic string, partition int32, old PartitionState, unclean bool) (PartitionState, error) {
	if !old.Reassigning() {
		return PartitionState{}, errorf(kerr.NoReassignmentInProgress, "No partition reassignment is in progress.")
	}
	next := old
	next.Replicas = slices.Clone(old.OriginalReplicas())
	next.ISR = slices.DeleteFunc(slices.Clone(old.ISR), func(r int32) bool { return slices.Contains(old.Adding, r) })
	next.Adding, next.Removing = nil, nil
	if len(next.ISR) == 0 {
		if !unclean {
			return PartitionState{}, errorf(kerr.InvalidReplicaAssignment, "Unable to revert partition assignment for %s:%d because it would require an unclean leader election.", topic, partition)
		}
		next.ISR = []int32{next.Replicas[0]}
	}
	return next, nil
}

// completeReassignment finishes p's reassignment if every target replica
// is in the ISR, reporting whether it did.
func completeReassignment(p *PartitionState) bool {
	if !p.Reassigning() {
		return false
	}
	target := p.TargetReplicas()
	for _, r := range target {
		if !slices.Contains(p.ISR, r) {
			return false
		}
	}
	p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(p.Removing, r) })
	p.Replicas = slices.Clone(target)
	p.Adding, p.Removing = nil, nil
	return true
}

// reassignRecord completes next's reassignment if it can, elects a leader
// if the current one is no longer a replica in the ISR, and returns the
// record taking old to next (nil if nothing changed).
func reassignRecord(t *Topic, partition int32, old, next PartitionState, l liveness) *ChangePartition {
	completeReassignment(&next)
	w := partitionWork{p: next, reassigned: true}
	if !slices.Contains(next.Replicas, next.Leader) || !slices.Contains(next.ISR, next.Leader) {
		w.p.Leader = NoLeader
		w.elected = true
		w.elect(l, false)
	}
	return w.changeRecord(t, partition, old)
}

// stateAfter is p with rec applied, as Image.apply would apply it.
func stateAfter(p PartitionState, rec *ChangePartition) PartitionState {
	p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch = rec.ISR, rec.Leader, rec.LeaderEpoch, rec.PartitionEpoch
	if rec.Replicas != nil {
		p.Replicas, p.Adding, p.Removing = rec.Replicas, rec.Adding, rec.Removing
	}
	return p
}

// Reassignments lists the reassignments in progress of the given
// partitions, or of every partition when parts is nil, topics by name and
// partitions in order. Partitions that do not exist or are not being
// reassigned are left out, as Kafka's ListPartitionReassignments does.
func (img *Image) Reassignments(parts []TopicPartition) []Reassignment {
	if parts == nil {
		for _, name := range slices.Sorted(maps.Keys(img.Topics)) {
			for i := range img.Topics[name].Partitions {
				parts = append(parts, TopicPartition{name, int32(i)})
			}
		}
	}
	var out []Reassignment
	seen := map[TopicPartition]bool{}
	for _, tp := range parts {
		t := img.Topic(tp.Topic)
		if seen[tp] || !t.HasPartition(tp.Partition) {
			continue
		}
		seen[tp] = true
		p := t.Partitions[tp.Partition]
		if p.Reassigning() {
			out = append(out, Reassignment{Topic: tp.Topic, Partition: tp.Partition,
				Replicas: slices.Clone(p.Replicas), Adding: slices.Clone(p.Adding), Removing: slices.Clone(p.Removing)})
		}
	}
	slices.SortFunc(out, func(a, b Reassignment) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// UnregisterBroker decides the removal of a broker from the cluster:
// leadership and ISR membership move away from it (as when it is fenced)
// and it leaves the image, so DescribeCluster no longer lists it and
// placement never picks it. Replicas it still holds stay assigned to it;
// an operator moves them first (shoal cluster remove-broker does).
func (d *Decider) UnregisterBroker(img *Image, id int32, unclean UncleanFunc) ([]Record, error) {
	b, ok := img.Brokers[id]
	if !ok {
		return nil, errorf(kerr.BrokerIDNotRegistered, "Broker ID %d is not currently registered.", id)
	}
	l := liveness{img: img, down: map[int32]bool{id: true}}
	recs := removeBrokers(img, []int32{id}, l, unclean)
	return append(recs, &UnregisterBroker{ID: id, Epoch: b.Epoch}), nil
}

// AlterPartitionReassignments starts or cancels reassignments; the i-th
// error is the outcome of reqs[i].
func (c *Controller) AlterPartitionReassignments(ctx context.Context, reqs []ReassignRequest) []error {
	return c.decideEachAndPropose(ctx, len(reqs), false, func(img *Image) ([]Record, []error) {
		return c.d.AlterPartitionReassignments(img, reqs, c.unclean)
	})
}

// UnregisterBroker removes a broker from the cluster.
func (c *Controller) UnregisterBroker(ctx context.Context, id int32) error {
	return c.decideAndPropose(ctx, false, func(img *Image) ([]Record, error) {
		return c.d.UnregisterBroker(img, id, c.unclean)
	})
}
