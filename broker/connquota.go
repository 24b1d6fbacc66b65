package broker

// Connection creation rates, as Kafka's ConnectionQuotas:
//
//   - max.connection.creation.rate bounds the connections a broker
//     accepts per second over its client listeners. Over it, the accept
//     loop waits out the throttle before taking the connection, so new
//     connections are accepted late, never refused (they wait in the
//     listen backlog). As in Kafka, the inter-broker listener is exempt
//     when the broker has other listeners. A dynamic broker config.
//   - connection_creation_rate, a client quota on an ip entity (an
//     address's own, else the default ip), bounds the connections one
//     address opens per second. Over it, the connection is not served: it
//     is held open, unread, for the throttle time and then closed, so a
//     client retrying at once is slowed down too; the refused connection
//     is not counted against either rate.
//
//   - listener.name.<l>.max.connection.creation.rate bounds the
//     connections one listener accepts per second, the inter-broker
//     listener too, as Kafka's listener-level rate. Over it, or the
//     broker-wide rate, the accept loop waits out the longer throttle.
//
// The rates are windowed as client quotas are (quota.window.num samples
// of quota.window.size.seconds), and a throttle is at most one sample.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/shoalmq/shoal/quota"
)

// maxConnectionCreationRate is the broker-wide rate's config key, also the
// key of its sensor.
const maxConnectionCreationRate = "max.connection.creation.rate"

// errConnectionThrottled marks a connection closed for its address's
// connection_creation_rate.
var errConnectionThrottled = errors.New("connection_creation_rate exceeded")

// admitConnection applies the connection creation rates to nc, just
// accepted on listener from ip, on the listener's accept loop. It waits
// (with sleep, false when the server is closing) while the broker-wide
// rate is exceeded, and reports false when the address is over its
// quota: nc is then closed after the throttle, and must not be served.
func (s *Server) admitConnection(nc net.Conn, listener, ip string, sleep func(time.Duration) bool) bool {
	now := s.now()
	// The listener's own rate, then the broker-wide one; the accept loop
	// waits out the longer throttle, as Kafka's
	// recordConnectionAndGetThrottleTimeMs.
	var counted []quota.SensorKey
	var d time.Duration
	throttle := func(key quota.SensorKey, bound int64) {
		if bound < math.MaxInt32 {
			counted = append(counted, key)
			d = max(d, s.quotas.Throttle(key, 1, float64(bound), now))
		}
	}
	throttle(quota.SensorKey{Key: "listener.name." + strings.ToLower(listener) + "." + maxConnectionCreationRate}, s.cfg.ListenerCreationRate(listener))
	if !s.protectedListener(listener) {
		throttle(quota.SensorKey{Key: maxConnectionCreationRate}, s.cfg.Int(maxConnectionCreationRate))
	}
	if d > 0 {
		began := time.Now()
		ok := sleep(d)
		s.metrics.conns.acceptDelay.Add(time.Since(began).Seconds())
		if !ok {
			nc.Close() // the server is closing
			return false
		}
		now = s.now()
	}
	img := s.startedImage()
	if img == nil || ip == "" {
		return true
	}
	bound, ok := img.ClientQuotas.LookupIP(ip)
	if !ok {
		return true
	}
	d = s.quotas.Admit(quota.SensorKey{Key: quota.ConnectionCreationRate, ID: quota.Entity{IP: quota.Named(ip)}}, 1, bound, now)
	if d == 0 {
		return true
	}
	for _, key := range counted {
		s.quotas.Record(key, -1, now)
	}
	s.metrics.conns.refused.WithLabelValues(refusedCreationRate).Inc()
	s.logConnClosed(nc, listener, fmt.Errorf("%w: over %v connections/s from %s; closing after %v", errConnectionThrottled, bound, ip, d))
	// Held open, unread, for the throttle: Kafka's delayed close.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer nc.Close()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
		}
	}()
	return false
}

// protectedListener reports whether listener is exempt from the
// broker-wide rate: the inter-broker listener of a broker with other
// listeners, so a flood of clients never keeps the cluster's own
// connections out.
func (s *Server) protectedListener(listener string) bool {
	return listener == s.cfg.InterBrokerListener && len(s.listeners) > 1
}
