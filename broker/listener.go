package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmq/shoal/config"
)

// Accepting client connections: the accept loop survives the errors a busy
// or starved process sees (out of file descriptors, a peer that reset
// before accept), and the connection limits apply max.connections and
// max.connections.per.ip as Kafka's acceptor does (SocketServer's
// ConnectionQuotas.inc): at max.connections the listener's accept loop
// waits for a connection to close, holding the connection it accepted
// unread while later ones wait in the listen backlog; past its address's
// limit a connection is closed at once. The inter-broker listener of a
// broker with other listeners never waits (its connections still count),
// so a flood of clients cannot keep replication out.
//
// A listener's own listener.name.<l>.max.connections is checked first, on
// every listener (the inter-broker one too), as Kafka's
// connectionSlotAvailable: at it that listener's accept loop waits, while
// the other listeners go on.
//
// Deviation: when inter-broker connections take the total past
// max.connections Kafka closes the least recently used client connection,
// while shoal lets the clients' connections fall below it as they close.

// Backoff after a failed accept, as net/http's Server: 5 ms doubling to 1 s.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptRetryable reports whether a failed accept leaves the listener usable:
// the process or system ran out of file descriptors (which closing
// connections frees), or the connection was gone before it was accepted.
// Anything else (the listener closed) ends the loop.
func acceptRetryable(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}

// acceptLoop accepts connections from ln until it is closed, handing each to
// serve. A retryable accept error is logged, counted and retried after a
// backoff; sleep waits the backoff and reports false when the server is
// shutting down.
func acceptLoop(ln net.Listener, log *slog.Logger, m *connMetrics, sleep func(time.Duration) bool, serve func(net.Conn)) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !acceptRetryable(err) {
				if !errors.Is(err, net.ErrClosed) {
					log.Error("accept failed; the listener stops", "err", err)
				}
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			m.acceptErrors.Inc()
			log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			if !sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		serve(nc)
	}
}

// Reasons a connection is refused or closed by the broker, as metric
// labels.
const (
	refusedPerIP        = "max_connections_per_ip"
	refusedCreationRate = "connection_creation_rate"
	closedIdle          = "idle"
	closedReadTimeout   = "request_read_timeout"
)

// connLimits counts open client connections, overall, per listener and
// per IP: a new one waits while its listener's own max.connections
// (listener.name.<l>.max.connections) or the broker's max.connections is
// reached, and is refused past its IP's limit. The limits may change at
// runtime (set): connections already open are kept, even past a lowered
// limit, as Kafka keeps them.
//
// Invariant: total is the sum of byListener, and of byIP.
type connLimits struct {
	mu         sync.Mutex
	max, perIP int
	// overrides are per-IP limits (host names resolved when set).
	overrides map[string]int
	// listenerMax are the listeners' own limits, by lower-case name; a
	// listener not in it has none.
	listenerMax map[string]int
	total       int
	byIP        map[string]int
	byListener  map[string]int
	// freed, once a waiter asked for it, is closed when a slot may have
	// come free (a release, or new limits) and set to nil.
	freed chan struct{}
	// waiting holds the waiting episodes under way, by the limit reached
	// (maxConnections, or a listener's lower-case name): each lasts from
	// the first connection that had to wait for that limit until one
	// finds it has room on arrival, and counts the connections that
	// waited in it.
	waiting map[string]int
}

// maxConnections keys the broker-wide limit's waiting episode.
const maxConnections = "max.connections"

// admission is acquire's answer.
type admission struct {
	// wait, when not nil, says limit (maxConnections, or the listener's
	// lower-case name for its own limit) is reached: the caller waits for
	// it to be closed and asks again, with waited set.
	wait  <-chan struct{}
	limit string
	// refused is the reason the connection is refused ("" if counted).
	refused string
	// began: this connection's wait starts a waiting episode of limit.
	// ended: the connections that waited in the episodes this one ended
	// by finding room on arrival, by limit.
	began bool
	ended map[string]int
}

func newConnLimits() *connLimits {
	return &connLimits{byIP: map[string]int{}, byListener: map[string]int{}, waiting: map[string]int{}}
}

// set replaces the limits; host names in the overrides are resolved
// first, outside the lock.
func (l *connLimits) set(lim config.ConnectionLimits, log *slog.Logger) {
	ov := resolveOverrides(lim.Overrides, log)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perIP, l.overrides, l.listenerMax = lim.Max, lim.PerIP, ov, lim.Listeners
	l.wakeLocked() // a raised limit frees slots
}

// acquire counts a new connection on listener from ip, or says why it is
// not counted: the listener's own limit is reached (wait), max.connections
// is reached (wait, unless protected: the inter-broker listener's
// connections never wait for it), or ip is at its limit (refused). The
// per-IP limit is checked only once a slot is free, as Kafka's inc does.
// waited says the connection has waited already (for the episodes'
// counts). An empty ip (not TCP) counts only towards the other limits.
func (l *connLimits) acquire(listener, ip string, protected, waited bool) (a admission) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := strings.ToLower(listener)
	if n, ok := l.listenerMax[key]; ok && l.byListener[key] >= n {
		return l.waitLocked(a, key, waited)
	}
	if !waited {
		l.endLocked(&a, key)
	}
	if !protected && l.total >= l.max {
		return l.waitLocked(a, maxConnections, waited)
	}
	if !waited && !protected {
		l.endLocked(&a, maxConnections)
	}
	limit, ok := l.overrides[ip]
	if !ok {
		limit = l.perIP
	}
	if l.byIP[ip] >= limit {
		a.refused = refusedPerIP
		return a
	}
	l.total++
	l.byIP[ip]++
	l.byListener[key]++
	return a
}

// waitLocked makes a wait for limit, counting it in limit's episode
// unless the connection waited already. mu held.
func (l *connLimits) waitLocked(a admission, limit string, waited bool) admission {
	if l.freed == nil {
		l.freed = make(chan struct{})
	}
	if !waited {
		n, ok := l.waiting[limit]
		a.began = !ok
		l.waiting[limit] = n + 1
	}
	a.wait, a.limit = l.freed, limit
	return a
}

// endLocked ends limit's waiting episode, if one is under way, into
// a.ended. mu held.
func (l *connLimits) endLocked(a *admission, limit string) {
	n, ok := l.waiting[limit]
	if !ok {
		return
	}
	delete(l.waiting, limit)
	if a.ended == nil {
		a.ended = map[string]int{}
	}
	a.ended[limit] = n
}

// release uncounts a connection acquire admitted and wakes a waiter.
func (l *connLimits) release(listener, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	key := strings.ToLower(listener)
	if l.byListener[key]--; l.byListener[key] <= 0 {
		delete(l.byListener, key)
	}
	l.wakeLocked()
}

// wakeLocked wakes the connections waiting for a slot. mu held.
func (l *connLimits) wakeLocked() {
	if l.freed != nil {
		close(l.freed)
		l.freed = nil
	}
}

// admit counts nc, just accepted on listener from ip, against the
// connection limits (see the top of this file) and reports whether it is
// to be served. While the listener's own limit or max.connections is
// reached it waits, counted in shoal_connection_slot_waits_total, with the
// listener's accept loop blocked; the first wait of an episode is logged
// with what to do, and so is its end. A connection past its IP's limit,
// or one that waited while the server closes, is closed.
func (s *Server) admit(nc net.Conn, listener, ip string) bool {
	protected := s.protectedListener(listener)
	var began time.Time
	for {
		a := s.limits.acquire(listener, ip, protected, !began.IsZero())
		if a.began {
			s.logLimitReached(listener, a.limit)
		}
		for _, limit := range slices.Sorted(maps.Keys(a.ended)) {
			s.log.Info(fmt.Sprintf("%s no longer reached; new connections on %s are accepted at once", limitKey(listener, limit), listener), "listener", listener, "waited", a.ended[limit])
		}
		if a.wait == nil {
			if !began.IsZero() {
				s.metrics.conns.slotWait.Add(time.Since(began).Seconds())
			}
			if a.refused != "" {
				// Closed at once, before a byte is read: a refused
				// client costs a file descriptor for microseconds.
				s.metrics.conns.refused.WithLabelValues(a.refused).Inc()
				nc.Close()
				return false
			}
			return true
		}
		if began.IsZero() {
			began = time.Now()
			s.metrics.conns.slotWaits.Inc()
		}
		select {
		case <-a.wait:
		case <-s.ctx.Done():
			nc.Close()
			return false
		}
	}
}

// limitKey is the config key of a limit admission names.
func limitKey(listener, limit string) string {
	if limit == maxConnections {
		return maxConnections
	}
	return "listener.name." + strings.ToLower(listener) + ".max.connections"
}

// logLimitReached logs the start of a waiting episode with what to do.
func (s *Server) logLimitReached(listener, limit string) {
	key := limitKey(listener, limit)
	if limit == maxConnections {
		s.log.Warn(fmt.Sprintf("max.connections reached on %s: new client connections wait in the listen backlog until one closes. Raise max.connections (dynamic: shoal config set --cluster --set max.connections=N) or find the clients holding connections (shoal_client_connections, max.connections.per.ip)", listener),
			"listener", listener, "max.connections", s.limits.limit(""))
		return
	}
	s.log.Warn(fmt.Sprintf("%s reached: new connections on %s wait in its listen backlog until one of its connections closes; other listeners are unaffected. Raise it (dynamic: shoal config set --cluster --set %s=N) or find the clients holding connections (max.connections.per.ip)", key, listener, key),
		"listener", listener, key, s.limits.limit(limit))
}

// limit is max.connections now, or with a listener's lower-case name
// that listener's own limit.
func (l *connLimits) limit(listener string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if listener == "" {
		return l.max
	}
	return l.listenerMax[listener]
}

// remoteIP is a connection's peer IP in canonical form ("" if not TCP).
func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// connMetrics count what the connection layer refused or cut off.
type connMetrics struct {
	acceptErrors prometheus.Counter
	// acceptDelay is how long accept loops waited for
	// max.connection.creation.rate.
	acceptDelay prometheus.Counter
	// slotWaits counts connections that waited for a max.connections
	// slot, slotWait the time accept loops spent waiting (Kafka's
	// AcceptorBlockedPercent).
	slotWaits prometheus.Counter
	slotWait  prometheus.Counter
	refused   *prometheus.CounterVec
	closed    *prometheus.CounterVec
	open      prometheus.Gauge
	// queuedBytes is what requestMemory holds.
	queuedBytes prometheus.Gauge
}

func newConnMetrics(reg *prometheus.Registry) *connMetrics {
	m := &connMetrics{
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_accept_errors_total", Help: "Failed accepts of client connections that were retried (out of file descriptors, aborted connections).",
		}),
		acceptDelay: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_connection_accept_throttle_seconds_total", Help: "Time accept loops waited before taking a connection because max.connection.creation.rate was exceeded.",
		}),
		slotWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_connection_slot_waits_total", Help: "Client connections accepted while max.connections was reached, which waited unread (with the listener's later connections in the listen backlog) until a connection closed.",
		}),
		slotWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_connection_slot_wait_seconds_total", Help: "Time accept loops waited for a connection to close because max.connections was reached.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_connections_refused_total", Help: "Client connections refused because a limit was reached, by limit (max_connections_per_ip: closed at once; connection_creation_rate: the address's client quota, closed after the throttle time).",
		}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_connections_closed_by_broker_total", Help: "Client connections the broker closed, by reason (idle: connections.max.idle.ms; request_read_timeout: a frame slower than socket.request.read.timeout.ms; authentication_timeout: no TLS and SASL authentication within it).",
		}, []string{"reason"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_client_connections", Help: "Open client connections.",
		}),
		queuedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_queued_request_bytes", Help: "Bytes of request frames held at once, bounded by queued.max.request.bytes.",
		}),
	}
	reg.MustRegister(m.acceptErrors, m.acceptDelay, m.slotWaits, m.slotWait, m.refused, m.closed, m.open, m.queuedBytes)
	return m
}
