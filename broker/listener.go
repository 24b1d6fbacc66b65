package broker

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalmq/shoal/config"
)

// Accepting client connections: the accept loop survives the errors a busy
// or starved process sees (out of file descriptors, a peer that reset
// before accept), and the connection limits refuse what would exceed
// max.connections or max.connections.per.ip.

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
	refusedMaxConnections = "max_connections"
	refusedPerIP          = "max_connections_per_ip"
	refusedCreationRate   = "connection_creation_rate"
	closedIdle            = "idle"
	closedReadTimeout     = "request_read_timeout"
)

// connLimits counts open client connections, overall and per IP, and
// refuses one past max.connections or its IP's limit. The limits may
// change at runtime (set): connections already open are kept, even past a
// lowered limit, as Kafka keeps them.
type connLimits struct {
	mu         sync.Mutex
	max, perIP int
	// overrides are per-IP limits (host names resolved when set).
	overrides map[string]int
	total     int
	byIP      map[string]int
}

func newConnLimits() *connLimits {
	return &connLimits{byIP: map[string]int{}}
}

// set replaces the limits; host names in the overrides are resolved
// first, outside the lock.
func (l *connLimits) set(lim config.ConnectionLimits, log *slog.Logger) {
	ov := resolveOverrides(lim.Overrides, log)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perIP, l.overrides = lim.Max, lim.PerIP, ov
}

// acquire counts a new connection from ip, or returns the reason it is
// refused. A nil ip (not TCP) counts only towards max.connections.
func (l *connLimits) acquire(ip string) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return refusedMaxConnections
	}
	limit, ok := l.overrides[ip]
	if !ok {
		limit = l.perIP
	}
	if l.byIP[ip] >= limit {
		return refusedPerIP
	}
	l.total++
	l.byIP[ip]++
	return ""
}

// release uncounts a connection acquire admitted.
func (l *connLimits) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
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
	refused     *prometheus.CounterVec
	closed      *prometheus.CounterVec
	open        prometheus.Gauge
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_connections_refused_total", Help: "Client connections refused because a limit was reached, by limit (max_connections, max_connections_per_ip: closed at once; connection_creation_rate: the address's client quota, closed after the throttle time).",
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
	reg.MustRegister(m.acceptErrors, m.acceptDelay, m.refused, m.closed, m.open, m.queuedBytes)
	return m
}
