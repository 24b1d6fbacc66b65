package quota

import (
	"sync"
	"time"
)

// Sensors are the windowed rates every client quota is measured by, one
// per (key, identity), as Kafka's quota managers keep one sensor per
// user/client-id (byte rates, request time) or per address (connection
// creation). They compute the throttle for every kind of quota, so a byte,
// a percent of a thread and a connection are throttled alike: recorded
// into the identity's rate, and, over the bound, held back by the excess
// as a share of the bound times the window (Rate.ThrottleTime).
//
// A sensor idle for a whole window span measures zero and is dropped, so
// the map holds only identities active within the last span. Safe for
// concurrent use.
type Sensors struct {
	window Window

	mu      sync.Mutex // guards sensors and pruned; a leaf lock
	sensors map[SensorKey]*sensor
	pruned  time.Time
}

// SensorKey names one sensor: the quota key it measures and the identity
// whose use it sums (Match.Sensor for user/client-id quotas, the address
// for connection_creation_rate, the zero Entity for a broker-wide bound).
type SensorKey struct {
	Key string
	ID  Entity
}

type sensor struct {
	rate *Rate
	last time.Time
}

// NewSensors returns empty sensors measuring over w.
func NewSensors(w Window) *Sensors {
	return &Sensors{window: w, sensors: map[SensorKey]*sensor{}}
}

// span is how long a sample stays in a rate.
func (s *Sensors) span() time.Duration { return time.Duration(s.window.Samples) * s.window.Size }

// get returns k's sensor, creating it, after dropping idle ones. s.mu held.
func (s *Sensors) get(k SensorKey, now time.Time) *sensor {
	if now.Sub(s.pruned) > s.span() {
		for key, sn := range s.sensors {
			if now.Sub(sn.last) > s.span() {
				delete(s.sensors, key)
			}
		}
		s.pruned = now
	}
	sn := s.sensors[k]
	if sn == nil {
		sn = &sensor{rate: NewRate(s.window)}
		s.sensors[k] = sn
	}
	sn.last = now
	return sn
}

// Throttle records v into k's sensor at now and returns how long the
// client must back off for its rate to come back to bound (0 within it).
func (s *Sensors) Throttle(k SensorKey, v, bound float64, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(k, now).rate.ThrottleTime(v, bound, now)
}

// Admit is Throttle for what a violation refuses rather than delays (a
// connection over its address's connection_creation_rate): when it returns
// a throttle, v is taken back out, as Kafka unrecords a refused
// connection, so refused attempts do not count against the rate.
func (s *Sensors) Admit(k SensorKey, v, bound float64, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.get(k, now)
	d := sn.rate.ThrottleTime(v, bound, now)
	if d > 0 {
		sn.rate.Record(-v, now)
	}
	return d
}

// Record adds v (negative: takes it back) to k's sensor without throttling.
func (s *Sensors) Record(k SensorKey, v float64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(k, now).rate.Record(v, now)
}

// Rates is every sensor's rate at now, for metrics: a copy, so a slow
// scrape never holds the lock the request path takes.
func (s *Sensors) Rates(now time.Time) map[SensorKey]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[SensorKey]float64, len(s.sensors))
	for k, sn := range s.sensors {
		out[k] = sn.rate.Measure(now)
	}
	return out
}
