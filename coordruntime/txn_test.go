package coordruntime

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/internal/testwait"
)

func (n *node) NextProducerID() (int64, error) { return n.nextPID.Add(1), nil }

// WriteMarkers records the job and reports every partition written, unless
// failMarkers is set.
func (n *node) WriteMarkers(_ context.Context, job coordinator.TxnMarkers) []coordinator.TxnPartition {
	if n.failMarkers.Load() {
		return nil
	}
	n.markersMu.Lock()
	n.markers = append(n.markers, job)
	n.markersMu.Unlock()
	return job.Partitions
}

func (n *node) sentMarkers() []coordinator.TxnMarkers {
	n.markersMu.Lock()
	defer n.markersMu.Unlock()
	return append([]coordinator.TxnMarkers(nil), n.markers...)
}

// txnsReady creates __transaction_state and waits for its coordinator.
func (n *node) txnsReady() {
	n.t.Helper()
	if err := n.rt.Txns.EnsureTopic(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	n.waitTxnsLoaded()
}

func (n *node) waitTxnsLoaded() {
	n.t.Helper()
	testwait.For(n.t, "transaction coordinator loaded", func() bool {
		return n.rt.Txns.Do("x", func(*coordinator.TxnShard) {}) == nil
	})
}

// initProducer runs InitProducerID for id and returns the producer id and
// epoch.
func (n *node) initProducer(id string) (int64, int16) {
	n.t.Helper()
	var pid int64
	var epoch int16
	var kerrv *kerr.Error
	if err := n.rt.Txns.Do(id, func(s *coordinator.TxnShard) {
		pid, epoch, kerrv = s.InitProducerID(time.Now(), coordinator.InitProducerIDRequest{TransactionalID: id, Timeout: time.Minute, ExpectedProducerID: -1, ExpectedEpoch: -1})
	}); err != nil || kerrv != nil {
		n.t.Fatalf("init: %v %v", err, kerrv)
	}
	return pid, epoch
}

func (n *node) txnState(id string) coordinator.TxnState {
	var d coordinator.TxnDescription
	if kerrv := n.rt.Txns.Do(id, func(s *coordinator.TxnShard) { d, _ = s.Describe(id) }); kerrv != nil {
		n.t.Fatalf("describe: %v", kerrv)
	}
	return d.State
}

// A commit is answered once its PrepareCommit record is committed; the
// markers follow, and their completion moves the transaction to
// CompleteCommit. Markers that could not be written when the coordinator's
// partition moved are resent by the next coordinator, which loads the
// Prepare record with the new leader epoch as its coordinator epoch.
func TestTxnCoordinatorMarkersAndFailover(t *testing.T) {
	n := newNode(t)
	n.txnsReady()
	run := func(id string, commit bool) (int64, int16) {
		t.Helper()
		pid, epoch := n.initProducer(id)
		if kerrv := n.addPartition(id, pid, epoch, 0); kerrv != nil {
			t.Fatalf("add: %v", kerrv)
		}
		var kerrv *kerr.Error
		if err := n.rt.Txns.Do(id, func(s *coordinator.TxnShard) {
			_, _, kerrv = s.EndTxn(time.Now(), coordinator.EndTxnRequest{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
		}); err != nil || kerrv != nil {
			t.Fatalf("end: %v %v", err, kerrv)
		}
		return pid, epoch
	}
	pid, epoch := run("a", true)
	testwait.For(t, "CompleteCommit", func() bool { return n.txnState("a") == coordinator.TxnCompleteCommit })
	if m := n.sentMarkers(); len(m) != 1 || !m[0].Commit || m[0].ProducerID != pid || m[0].ProducerEpoch != epoch || m[0].CoordinatorEpoch != 0 {
		t.Fatalf("markers %+v", m)
	}

	// The next abort's markers cannot be written: the transaction waits in
	// PrepareAbort, and a failover hands it to the next coordinator.
	n.failMarkers.Store(true)
	run("a", false)
	if st := n.txnState("a"); st != coordinator.TxnPrepareAbort {
		t.Fatalf("state %v, want PrepareAbort", st)
	}
	n.setLeader(TxnStateTopic, 0, 2)
	if kerrv := n.rt.Txns.Do("a", func(*coordinator.TxnShard) {}); kerrv != kerr.NotCoordinator {
		t.Fatalf("after losing the partition: %v", kerrv)
	}
	n.failMarkers.Store(false)
	n.setLeader(TxnStateTopic, 0, self)
	testwait.For(t, "CompleteAbort after failover", func() bool {
		return n.rt.Txns.Do("a", func(*coordinator.TxnShard) {}) == nil && n.txnState("a") == coordinator.TxnCompleteAbort
	})
	resent := false
	for _, m := range n.sentMarkers() {
		resent = resent || (!m.Commit && m.CoordinatorEpoch == 2)
	}
	if !resent {
		t.Fatalf("markers %+v, want an abort resent at coordinator epoch 2", n.sentMarkers())
	}
}

// End returns with the transaction complete when its markers are written
// at once; when they are not, it still returns (the Prepare record is
// committed, which is the answer), and the background sender completes
// the transaction once the markers can be written.
func TestTxnEndWritesMarkersBeforeReturning(t *testing.T) {
	n := newNode(t)
	n.txnsReady()
	pid, epoch := n.initProducer("a")
	end := func(commit bool) {
		t.Helper()
		var kerrv *kerr.Error
		if err := n.rt.Txns.Do("a", func(s *coordinator.TxnShard) {
			_, kerrv = s.AddPartitions(time.Now(), coordinator.AddPartitionsRequest{TransactionalID: "a", ProducerID: pid, ProducerEpoch: epoch,
				Partitions: []coordinator.TxnPartition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1}}})
		}); err != nil || kerrv != nil {
			t.Fatalf("add: %v %v", err, kerrv)
		}
		if err := n.rt.Txns.End("a", func(s *coordinator.TxnShard) {
			_, _, kerrv = s.EndTxn(time.Now(), coordinator.EndTxnRequest{TransactionalID: "a", ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
		}); err != nil || kerrv != nil {
			t.Fatalf("end: %v %v", err, kerrv)
		}
	}
	end(true)
	if st := n.txnState("a"); st != coordinator.TxnCompleteCommit {
		t.Fatalf("right after End: %v, want CompleteCommit", st)
	}
	if m := n.sentMarkers(); len(m) != 1 || !m[0].Commit || len(m[0].Partitions) != 2 {
		t.Fatalf("markers %+v, want one commit job for both partitions", m)
	}

	n.failMarkers.Store(true)
	end(false)
	if st := n.txnState("a"); st != coordinator.TxnPrepareAbort {
		t.Fatalf("after End with markers failing: %v, want PrepareAbort", st)
	}
	n.failMarkers.Store(false)
	testwait.For(t, "CompleteAbort from the background sender", func() bool { return n.txnState("a") == coordinator.TxnCompleteAbort })
}

// addPartition adds orders-part to id's transaction.
func (n *node) addPartition(id string, pid int64, epoch int16, part int32) *kerr.Error {
	var kerrv *kerr.Error
	if err := n.rt.Txns.Do(id, func(s *coordinator.TxnShard) {
		_, kerrv = s.AddPartitions(time.Now(), coordinator.AddPartitionsRequest{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch,
			Partitions: []coordinator.TxnPartition{{Topic: "orders", Partition: part}}})
	}); err != nil {
		return err
	}
	return kerrv
}

// failover moves the leadership of __transaction_state-0 away and back,
// and waits until the coordinator has loaded again.
func (n *node) failover() {
	n.t.Helper()
	n.setLeader(TxnStateTopic, 0, 2)
	n.setLeader(TxnStateTopic, 0, self)
	n.waitTxnsLoaded()
}

// A coordinator that lost its partition writes nothing more to it, not
// even a call that was already appending when the leadership moved: the
// next coordinator has loaded the log without that record, and, being its
// key's last, the record would win at every later load over what the live
// coordinator acknowledged. Here the leadership goes away and comes back
// while the previous coordinator's append waits; its call must fail, and a
// later load must find the transaction the live coordinator answered for.
func TestTxnStaleCoordinatorWritesNothingAfterFailover(t *testing.T) {
	n := newNode(t)
	n.txnsReady()
	pid, epoch := n.initProducer("a")

	hold := make(chan struct{})
	n.hold, n.entered = hold, make(chan struct{}, 1)
	stale := make(chan *kerr.Error, 1)
	go func() { stale <- n.addPartition("a", pid, epoch, 0) }()
	<-n.entered
	n.failover()
	if kerrv := n.addPartition("a", pid, epoch, 1); kerrv != nil {
		t.Fatalf("add on the new coordinator: %v", kerrv)
	}
	close(hold)
	if kerrv := <-stale; kerrv != kerr.NotCoordinator {
		t.Fatalf("the previous coordinator's add, appended after the failover: %v, want NOT_COORDINATOR", kerrv)
	}

	n.failover()
	var d coordinator.TxnDescription
	if err := n.rt.Txns.Do("a", func(s *coordinator.TxnShard) { d, _ = s.Describe("a") }); err != nil {
		t.Fatal(err)
	}
	if want := (coordinator.TxnPartition{Topic: "orders", Partition: 1}); d.State != coordinator.TxnOngoing ||
		len(d.Partitions) != 1 || d.Partitions[0] != want {
		t.Fatalf("reloaded transaction %+v, want Ongoing with %v alone", d, want)
	}
}
