package broker

// The transaction coordinator's view of this node: the producer ids it hands
// out (the blocks the controller allocates, shared with idempotent
// producers) and the marker sender, which writes a transaction's markers to
// the leaders of its partitions.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
)

// txnNode adapts the Server to the transaction coordinator's ProducerIDs and
// MarkerWriter.
type txnNode struct{ s *Server }

// producerIDWait bounds how long the coordinator waits for a new block of
// producer ids from the controller.
const producerIDWait = 10 * time.Second

func (n txnNode) NextProducerID() (int64, error) {
	ctx, cancel := context.WithTimeout(n.s.ctx, producerIDWait)
	defer cancel()
	return n.s.producerIDs.Next(ctx)
}

// markerWriteTimeout bounds one round of marker writes; what is not done by
// then is retried.
const markerWriteTimeout = 10 * time.Second

// WriteMarkers groups the job's partitions by leader and writes each group:
// those this node leads directly, the others with one WriteTxnMarkers per
// leader, all leaders at once. A partition whose topic is gone (or was
// recreated) is done; one without a leader waits for the next round.
func (n txnNode) WriteMarkers(ctx context.Context, job coordinator.TxnMarkers) []coordinator.TxnPartition {
	ctx, cancel := context.WithTimeout(ctx, markerWriteTimeout)
	defer cancel()
	img := n.s.meta.Image()
	var (
		mu   sync.Mutex
		done []coordinator.TxnPartition
		wg   sync.WaitGroup
	)
	byLeader := map[int32][]coordinator.TxnPartition{}
	for _, tp := range job.Partitions {
		t := img.Topics[tp.Topic]
		switch {
		case !t.HasPartition(tp.Partition):
			done = append(done, tp)
		case t.Partitions[tp.Partition].Leader >= 0:
			leader := t.Partitions[tp.Partition].Leader
			byLeader[leader] = append(byLeader[leader], tp)
		}
	}
	write := func(leader int32, tps []coordinator.TxnPartition) []coordinator.TxnPartition {
		if leader == n.s.cfg.NodeID {
			return n.writeLocal(ctx, job, tps)
		}
		return n.writeRemote(ctx, leader, job, tps)
	}
	if len(byLeader) == 1 {
		// One leader, the common case: no goroutine to hand off to.
		for leader, tps := range byLeader {
			done = append(done, write(leader, tps)...)
		}
		return done
	}
	for leader, tps := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := write(leader, tps)
			mu.Lock()
			done = append(done, ok...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return done
}

// writeLocal writes the markers of partitions this node leads: all are
// appended, then each awaited.
func (n txnNode) writeLocal(ctx context.Context, job coordinator.TxnMarkers, tps []coordinator.TxnPartition) []coordinator.TxnPartition {
	marker := log.EndTxnMarker{Commit: job.Commit, CoordinatorEpoch: job.CoordinatorEpoch}
	finish := make([]func() error, len(tps))
	for i, tp := range tps {
		finish[i] = n.s.startTxnMarker(ctx, tp.Topic, tp.Partition, job.ProducerID, job.ProducerEpoch, marker)
	}
	var ok []coordinator.TxnPartition
	for i, tp := range tps {
		if err := finish[i](); err == nil {
			ok = append(ok, tp)
		} else {
			n.s.log.Debug("writing transaction marker", "topic", tp.Topic, "partition", tp.Partition, "producer_id", job.ProducerID, "err", err)
		}
	}
	return ok
}

func (n txnNode) writeRemote(ctx context.Context, leader int32, job coordinator.TxnMarkers, tps []coordinator.TxnPartition) []coordinator.TxnPartition {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.SetVersion(n.s.peerVersion(req.Key()))
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = job.ProducerID, job.ProducerEpoch, job.Commit, job.CoordinatorEpoch
	for _, tp := range tps {
		if len(m.Topics) == 0 || m.Topics[len(m.Topics)-1].Topic != tp.Topic {
			m.Topics = append(m.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: tp.Topic})
		}
		last := &m.Topics[len(m.Topics)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	kresp, err := n.s.peers.Peers(cluster.LaneTxn).Request(ctx, leader, req)
	if err != nil {
		n.s.log.Debug("sending transaction markers", "leader", leader, "producer_id", job.ProducerID, "err", err)
		return nil
	}
	var ok []coordinator.TxnPartition
	for _, rm := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode == 0 {
					ok = append(ok, coordinator.TxnPartition{Topic: rt.Topic, Partition: rp.Partition})
				}
			}
		}
	}
	return ok
}

// startTxnMarker appends one marker to a partition this node leads and
// returns the function that waits until it is committed. On
// __consumer_offsets the marker also decides the producer's pending
// transactional offsets on the group shard, once committed. Every marker of
// a request or job is started before the first is finished, so their
// replication waits overlap instead of adding up.
func (s *Server) startTxnMarker(ctx context.Context, topic string, partition int32, producerID int64, epoch int16, marker log.EndTxnMarker) (finish func() error) {
	img := s.meta.Image()
	t := img.Topics[topic]
	p, ps, kerrv := s.replicas.LeaderPartition(t, partition)
	if kerrv != nil {
		return func() error { return kerrv }
	}
	la, err := s.replicas.AppendMarker(p, ps, producerID, epoch, marker, s.now())
	if err != nil {
		return func() error { return err }
	}
	return func() error {
		if err := s.replicas.AwaitAppend(ctx, la); err != nil {
			return err
		}
		if topic == coordruntime.OffsetsTopic {
			if kerrv := s.coord.Groups.CompleteTxnOffsets(partition, producerID, marker.Commit); kerrv != nil {
				return kerrv
			}
		}
		return nil
	}
}

// txnOffsetsFenced reports whether the producer of a transactional offset
// commit was fenced on the group's __consumer_offsets partition: a marker of
// a newer epoch of the producer id is there (the abort that fenced it).
func (s *Server) txnOffsetsFenced(t *raftmeta.Topic, group string, producerID int64, epoch int16) *kerr.Error {
	if t == nil || len(t.Partitions) == 0 {
		return nil
	}
	p := s.logs.Partition(t.Name, coordinator.GroupPartition(group, int32(len(t.Partitions))))
	if p == nil {
		return nil
	}
	for _, info := range p.Producers() {
		if info.ProducerID == producerID && info.Epoch > epoch {
			return kerr.InvalidProducerEpoch
		}
	}
	return nil
}
