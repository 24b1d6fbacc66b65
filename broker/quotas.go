package broker

// Client quota enforcement for the byte rates: producer_byte_rate on
// Produce (the request's size) and consumer_byte_rate on Fetch (the
// response's size), as Kafka's ClientQuotaManager. Each connection's user
// and client id pick a quota by Kafka's precedence (quota.Quotas.Lookup);
// bytes are recorded into that quota's sensor, and when the sensor's rate
// is over the quota the response carries throttle_time_ms and the
// connection is muted for that long once the response is handed to the
// writer (KIP-219: respond first, then stop reading the client's next
// requests). Follower fetches are never throttled by client quotas.

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/quota"
)

// quotaSensors holds one windowed rate per (quota key, sensor identity).
// Sensors idle for a whole window measure zero and are dropped, so the map
// holds only clients active within the last window span.
type quotaSensors struct {
	window quota.Window

	mu      sync.Mutex // guards sensors and pruned
	sensors map[sensorKey]*sensor
	pruned  time.Time
}

type sensorKey struct {
	key    string
	sensor quota.Entity
}

type sensor struct {
	rate *quota.Rate
	last time.Time
}

func newQuotaSensors(w quota.Window) *quotaSensors {
	return &quotaSensors{window: w, sensors: map[sensorKey]*sensor{}}
}

// span is how long a sample stays in a rate.
func (q *quotaSensors) span() time.Duration { return time.Duration(q.window.Samples) * q.window.Size }

// record adds bytes to the sensor of m and returns the throttle time.
func (q *quotaSensors) record(key string, m quota.Match, bytes int, now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Sub(q.pruned) > q.span() {
		for k, s := range q.sensors {
			if now.Sub(s.last) > q.span() {
				delete(q.sensors, k)
			}
		}
		q.pruned = now
	}
	k := sensorKey{key, m.Sensor}
	s := q.sensors[k]
	if s == nil {
		s = &sensor{rate: quota.NewRate(q.window)}
		q.sensors[k] = s
	}
	s.last = now
	return s.rate.ThrottleTime(float64(bytes), m.Value, now)
}

// throttle records a Produce or Fetch against the connection's quota and
// returns how long the client must back off (0 when it is within its
// quota, has none, or the request is not one client quotas cover).
// requestBytes is the request frame's size; responseBytes is the encoded
// response's size (Fetch).
func (c *conn) throttle(rc *reqCtx, req kmsg.Request, requestBytes, responseBytes int) time.Duration {
	var key string
	var bytes int
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		key, bytes = quota.ProducerByteRate, requestBytes
	case *kmsg.FetchRequest:
		if fetchReplica(r) >= 0 {
			return 0
		}
		key, bytes = quota.ConsumerByteRate, responseBytes
	default:
		return 0
	}
	quotas := c.srv.meta.Image().ClientQuotas
	if len(quotas) == 0 {
		return 0
	}
	m, ok := quotas.Lookup(c.principal.Name, rc.header.clientID, key)
	if !ok {
		return 0
	}
	return c.srv.quotas.record(key, m, bytes, c.srv.now())
}

// setThrottle writes throttle into an encoded Fetch response, whose body
// starts with throttle_time_ms after the response header (size,
// correlation id, and from v12 on an empty tagged-field section).
func setFetchThrottle(resp net.Buffers, flexible bool, throttle time.Duration) {
	off := 8
	if flexible {
		off = 9
	}
	binary.BigEndian.PutUint32(resp[0][off:], uint32(throttle.Milliseconds()))
}

// mute stops the connection's reader from taking further requests until
// throttle has passed.
func (c *conn) mute(throttle time.Duration) {
	until := time.Now().Add(throttle).UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= until || c.mutedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitMuted blocks while the connection is muted.
func (c *conn) waitMuted() error {
	for {
		d := time.Until(time.Unix(0, c.mutedUntil.Load()))
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return c.ctx.Err()
		}
	}
}

// quotaWindow is the sampling of quota rates, from quota.window.num and
// quota.window.size.seconds.
func quotaWindow(cfg *config.Broker) quota.Window {
	if cfg == nil {
		return quota.DefaultWindow
	}
	return quota.Window{Samples: int(cfg.Int("quota.window.num")), Size: time.Duration(cfg.Int("quota.window.size.seconds")) * time.Second}
}
