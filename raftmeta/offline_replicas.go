package raftmeta

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Offline replicas: a broker whose log dir failed reports the replicas it
// held there (on the wire, Kafka's AssignReplicasToDirs naming the LOST
// directory, "unspecified offline dirs"). The controller treats those
// replicas as a controlled shutdown treats all of a broker's: leadership
// moves to another live ISR member and the broker leaves the ISR (unless it
// is the last member). The broker stays registered and unfenced, leading
// and following its partitions on other dirs. Kafka records each replica's
// directory in the metadata and so also keeps such replicas out of later
// elections; the image here has no directories, so a replica stays out
// because it is out of the ISR and the broker no longer fetches for it.

// TopicIDPartition names a partition by topic id.
type TopicIDPartition struct {
	TopicID   [16]byte
	Partition int32
}

// ReplicasOffline decides broker id's report that its replicas of parts
// are offline. The error is a request-level failure (unknown broker, stale
// epoch); errs holds one entry per part: nil, or UNKNOWN_TOPIC_ID /
// UNKNOWN_TOPIC_OR_PARTITION. A part the broker holds no replica of
// changes nothing.
func (d *Decider) ReplicasOffline(img *Image, id int32, epoch int64, parts []TopicIDPartition, unclean UncleanFunc) (recs []Record, errs []error, err error) {
	b, ok := img.Brokers[id]
	if !ok {
		return nil, nil, errorf(kerr.BrokerIDNotRegistered, "Broker %d is not registered.", id)
	}
	if b.Epoch != epoch {
		return nil, nil, errorf(kerr.StaleBrokerEpoch, "Expected broker epoch %d, but got broker epoch %d.", b.Epoch, epoch)
	}
	errs = make([]error, len(parts))
	offline := map[string]map[int32]bool{}
	for i, tp := range parts {
		t := img.TopicByID(tp.TopicID)
		switch {
		case t == nil:
			errs[i] = errorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
		case !t.HasPartition(tp.Partition):
			errs[i] = errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
		default:
			if offline[t.Name] == nil {
				offline[t.Name] = map[int32]bool{}
			}
			offline[t.Name][tp.Partition] = true
		}
	}
	l := liveness{img: img, down: map[int32]bool{id: true}}
	for _, name := range slices.Sorted(maps.Keys(offline)) {
		t := img.Topics[name]
		for _, i := range slices.Sorted(maps.Keys(offline[name])) {
			old := t.Partitions[i]
			w := partitionWork{p: old}
			w.removeReplica(id, l, unclean.allowed(name))
			if r := w.changeRecord(t, i, old); r != nil {
				recs = append(recs, r)
			}
		}
	}
	return recs, errs, nil
}

// ReplicasOffline applies a broker's report that its replicas of parts are
// on a failed log dir (see Decider.ReplicasOffline).
func (c *Controller) ReplicasOffline(ctx context.Context, id int32, epoch int64, parts []TopicIDPartition) ([]error, error) {
	img, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	recs, errs, err := c.d.ReplicasOffline(img, id, epoch, parts, c.unclean)
	if err != nil {
		return nil, err
	}
	if err := c.proposeAny(ctx, img, recs); err != nil {
		return nil, err
	}
	return errs, nil
}
