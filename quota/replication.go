package quota

import (
	"sync"
	"time"
)

// Replication is a broker's replication throttle on one side (leader or
// follower), Kafka's ReplicationQuotaManager: one windowed rate of the
// bytes of throttled partitions, over every partition and peer, checked
// against a bound that may change at any time (a dynamic broker config).
// Safe for concurrent use.
type Replication struct {
	mu   sync.Mutex // guards rate
	rate *Rate
}

// NewReplication returns an empty replication throttle measured over w.
func NewReplication(w Window) *Replication { return &Replication{rate: NewRate(w)} }

// Record counts v bytes of throttled partitions at now. As in Kafka, the
// traffic of in-sync replicas of throttled partitions is counted too, so
// the total throttled traffic stays within the bound.
func (q *Replication) Record(v float64, now time.Time) {
	q.mu.Lock()
	q.rate.Record(v, now)
	q.mu.Unlock()
}

// Exceeded reports whether the measured rate is above bound at now.
func (q *Replication) Exceeded(bound float64, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate.Measure(now) > bound
}

// Delay is how long, with nothing more recorded, until the rate is back
// within bound: the excess over bound, as a share of it, times the window
// the rate is measured over (Kafka's QuotaUtils formula), capped at one
// sample's size so a waiter looks again at least once a sample (and a
// zero bound, which lets nothing through, is a sample's wait).
func (q *Replication) Delay(bound float64, now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	rate := q.rate.Measure(now)
	if rate <= bound {
		return 0
	}
	if bound <= 0 {
		// Nothing may pass while the rate is above zero.
		return q.rate.w.Size
	}
	d := time.Duration((rate - bound) / bound * float64(q.rate.windowSize(now)))
	return min(d, q.rate.w.Size)
}
