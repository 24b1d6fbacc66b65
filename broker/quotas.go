package broker

// Client quota enforcement of the user/client-id quotas, as Kafka's
// ClientQuotaManager and ClientRequestQuotaManager: producer_byte_rate on
// Produce (the request's size), consumer_byte_rate on Fetch and ShareFetch
// (the response's size), request_percentage on the handling time of every
// request Kafka does not exempt. Each connection's user and client id pick
// a quota by Kafka's precedence (quota.Quotas.Lookup); the use is recorded
// into that quota's sensor (quota.Sensors), and when a sensor's rate is
// over its quota the response carries throttle_time_ms, the longest of
// the quotas' throttles, and the connection is muted for that long once
// the response is handed to the writer (KIP-219: respond first, then stop
// reading the client's next requests). Follower fetches are never
// throttled by client quotas. connection_creation_rate is enforced at
// accept (connquota.go).
//
// Handling time is what the request took on the connection's goroutines:
// the handler on the reader (less any time it spent waiting on another
// node, as a forwarded admin request does) plus the encoding of its
// response. The wait of a long poll or an acks=all produce is idle and not
// counted, as Kafka counts only its threads' time.

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/quota"
)

// requestTimeExempt reports whether a request's handling time is left out
// of request_percentage, as Kafka leaves it out: the cluster's own
// requests (the APIs Kafka marks clusterAction, replica fetches, and
// anything another shoal node sends), and what Kafka's authenticator
// answers before a SASL connection has authenticated (SaslHandshake,
// SaslAuthenticate, and ApiVersions before the login; after it, an
// ApiVersions counts as any request). Another node is known by its
// principal's CLUSTER_ACTION, as Kafka knows it, not by its client id
// alone: any client may call itself shoal-broker-N, and a user's quota
// must hold whatever client id it picks.
func (c *conn) requestTimeExempt(rc *reqCtx, req kmsg.Request) bool {
	if isInterBroker(rc) && c.mayClusterAction(req) {
		return true
	}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return fetchReplica(r) >= 0 && c.mayClusterAction(req)
	case *kmsg.ApiVersionsRequest:
		return c.sasl != nil && !c.authenticated.Load()
	}
	return clusterActionAPIs[req.Key()]
}

// clusterActionAPIs are the API keys Kafka marks clusterAction (one broker
// or controller asking another), plus the SASL exchange.
var clusterActionAPIs = map[int16]bool{
	17: true, // SaslHandshake
	27: true, // WriteTxnMarkers
	36: true, // SaslAuthenticate
	52: true, // Vote
	53: true, // BeginQuorumEpoch
	54: true, // EndQuorumEpoch
	56: true, // AlterPartition
	58: true, // Envelope
	62: true, // BrokerRegistration
	63: true, // BrokerHeartbeat
	67: true, // AllocateProducerIds
	83: true, // InitializeShareGroupState
	84: true, // ReadShareGroupState
	85: true, // WriteShareGroupState
	86: true, // DeleteShareGroupState
	87: true, // ReadShareGroupStateSummary
}

// percentOfThread is busy as Kafka's request quota counts it: percent of
// one thread for one second (request_percentage 100 is one whole thread).
func percentOfThread(busy time.Duration) float64 { return float64(busy) * 100 / float64(time.Second) }

// throttle records one request against every client quota of the
// connection's user and client id and returns how long the client must
// back off: the longest throttle of any quota it is over (0 when it is
// within them or has none), as Kafka takes the larger of the byte-rate and
// request throttles. Produce counts its request frame against
// producer_byte_rate; Fetch (not a replica's) and ShareFetch count their
// encoded response against consumer_byte_rate; every request not exempt
// counts busy, its handling time, against request_percentage.
func (c *conn) throttle(rc *reqCtx, req kmsg.Request, responseBytes int, busy time.Duration) time.Duration {
	quotas := c.srv.meta.Image().ClientQuotas
	if len(quotas) == 0 {
		return 0
	}
	now := c.srv.now()
	var d time.Duration
	use := func(key string, v float64) {
		if m, ok := quotas.Lookup(c.principal.Name, rc.header.clientID, key); ok {
			d = max(d, c.srv.quotas.Throttle(quota.SensorKey{Key: key, ID: m.Sensor}, v, m.Value, now))
		}
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		use(quota.ProducerByteRate, float64(rc.size))
	case *kmsg.FetchRequest:
		if fetchReplica(r) < 0 {
			use(quota.ConsumerByteRate, float64(responseBytes))
		}
	case *kmsg.ShareFetchRequest:
		use(quota.ConsumerByteRate, float64(responseBytes))
	}
	if !c.requestTimeExempt(rc, req) {
		use(quota.RequestPercentage, percentOfThread(busy))
	}
	return d
}

// setFetchThrottle writes throttle into an encoded Fetch or ShareFetch
// response, whose body starts with throttle_time_ms after the response
// header (size, correlation id, and in a flexible version an empty
// tagged-field section).
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
