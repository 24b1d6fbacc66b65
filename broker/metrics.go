package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/console"
	"github.com/shoalmq/shoal/coordinator"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/sasl"
)

// metrics are the broker's Prometheus series. Each Server has its own
// registry so several servers can run in one process (tests).
type metrics struct {
	reg        *prometheus.Registry
	latency    *prometheus.HistogramVec
	bytesIn    *prometheus.CounterVec
	recordsIn  *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	dlq        *prometheus.CounterVec
	errors     *prometheus.CounterVec
	isr        *prometheus.CounterVec
	recordsOut *prometheus.CounterVec
	expired    prometheus.Counter
	replayed   *prometheus.CounterVec
	conns      *connMetrics
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_request_duration_seconds",
			Help:    "Time from decoding a request to its response being ready, by API.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18),
		}, []string{"api"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_topic_bytes_in_total", Help: "Record batch bytes appended, by topic.",
		}, []string{"topic"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_topic_records_in_total", Help: "Records appended, by topic.",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_topic_bytes_out_total", Help: "Record batch bytes returned by Fetch, by topic.",
		}, []string{"topic"}),
	}
	m.dlq = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_share_dead_lettered_records_total", Help: "Share records archived towards a dead-letter topic, by source topic.",
	}, []string{"topic"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_response_errors_total", Help: "Error codes in responses (top-level and per partition), by API and Kafka error code.",
	}, []string{"api", "code"})
	m.isr = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_isr_changes_total", Help: "ISR changes this node made as partition leader, by kind (shrink, expand).",
	}, []string{"kind"})
	m.recordsOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_topic_records_out_total", Help: "Records returned by Fetch, by topic (for record sets sent from segment files, the offsets their batches span).",
	}, []string{"topic"})
	m.expired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shoal_share_expired_locks_total", Help: "Share records whose acquisition lock expired before an acknowledgement.",
	})
	m.replayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_coordinator_load_replayed_records_total", Help: "Records coordinator loads replayed from the log tail above their materialized store, by internal topic.",
	}, []string{"topic"})
	m.reg.MustRegister(m.latency, m.bytesIn, m.recordsIn, m.bytesOut, m.dlq, m.errors, m.isr, m.recordsOut, m.expired, m.replayed,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.conns = newConnMetrics(m.reg)
	return m
}

func (m *metrics) observe(key int16, d time.Duration) {
	m.latency.WithLabelValues(kmsg.NameForKey(key)).Observe(d.Seconds())
}

func (m *metrics) produced(topic string, bytes, records int) {
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
}

func (m *metrics) responseErrors(resp kmsg.Response) {
	errorCodes(resp, func(code int16) {
		m.errors.WithLabelValues(kmsg.NameForKey(resp.Key()), strconv.Itoa(int(code))).Inc()
	})
}

// isrChange counts an ISR change this node made as leader: kind is
// "shrink" or "expand".
func (m *metrics) isrChange(kind string) {
	m.isr.WithLabelValues(kind).Inc()
}

// ExpiredLocks counts record locks that timed out (share.Metrics).
func (m *metrics) ExpiredLocks(n int64) {
	if n > 0 {
		m.expired.Add(float64(n))
	}
}

// coordinatorLoaded counts the records a coordinator load replayed from
// the log (the label exists from the first load on, even at zero).
func (m *metrics) coordinatorLoaded(topic string, records int) {
	if m != nil {
		m.replayed.WithLabelValues(topic).Add(float64(records))
	}
}

// DeadLettered counts records written to a dead-letter topic
// (share.Metrics).
func (m *metrics) DeadLettered(topic string, records int) {
	m.dlq.WithLabelValues(topic).Add(float64(records))
}

func (m *metrics) fetched(topic string, data []byte) {
	if len(data) == 0 {
		return
	}
	records := 0
	for b := data; len(b) >= log.BatchHeaderSize; {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		records += int(h.NumRecords)
		b = b[h.Size():]
	}
	m.fetchedCounted(topic, int64(len(data)), int64(records))
}

// fetchedCounted counts records sent whose bytes the broker never holds
// (a fetch sent from segment files: log.FileSlice).
func (m *metrics) fetchedCounted(topic string, size, records int64) {
	m.bytesOut.WithLabelValues(topic).Add(float64(size))
	m.recordsOut.WithLabelValues(topic).Add(float64(records))
}

// Contention sampling rates while admin.pprof.enable is set: one mutex
// contention event in mutexProfileFraction, and on average one blocking
// event per blockProfileRate of time blocked. Both are off by default
// because they cost a little on every contended lock; sampling this
// sparsely keeps that cost out of what they are asked to explain.
const (
	mutexProfileFraction = 20
	blockProfileRate     = int(50 * time.Microsecond)
)

// enableContentionProfiles makes /debug/pprof/mutex and /debug/pprof/block
// (with ?seconds=N for a window) record something: without it both are
// empty.
func enableContentionProfiles() {
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	runtime.SetBlockProfileRate(blockProfileRate)
}

// adminServer serves /metrics, /healthz, /readyz and the console (/ui/)
// over HTTP.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
	ui  *console.Console // nil on a node without a client listener
}

func startAdmin(s *Server) (*adminServer, error) {
	s.metrics.reg.MustRegister(newStateCollector(s))
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() && !s.cfg.AdminAuth.Enabled() {
			s.log.Warn("admin.addr listens beyond loopback and its HTTP endpoints have no authentication: set admin.auth.bearer.token or admin.auth.basic.user and admin.auth.basic.password", "admin.addr", s.cfg.AdminAddr, "admin.pprof.enable", s.cfg.AdminPprof)
		}
	}
	// Profiles and heap dumps reveal memory contents and cost CPU: off
	// unless asked for.
	if s.cfg.AdminPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		// An execution trace is what attributes a latency tail
		// (scheduler delay, GC, syscalls, network waits).
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		enableContentionProfiles()
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.meta.LeaderID() < 0 {
			http.Error(w, "metadata quorum has no leader", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	a := &adminServer{ln: ln, srv: &http.Server{Handler: requireAdminAuth(s.cfg.AdminAuth, mux), ReadHeaderTimeout: 5 * time.Second}}
	if a.ui, err = startConsole(s, mux); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener", "err", err)
		}
	}()
	return a, nil
}

// requireAdminAuth answers 401 to a request for anything but the health
// probes (which orchestrators call without credentials and which reveal
// nothing) unless it carries a configured credential. Without credentials
// configured it is next.
func requireAdminAuth(auth config.AdminAuth, next http.Handler) http.Handler {
	if !auth.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || adminAuthorized(auth, r) {
			next.ServeHTTP(w, r)
			return
		}
		if auth.BasicUser != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="shoal admin"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal admin"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

// adminAuthorized compares in constant time, so the answer's timing does
// not tell how much of a guess was right.
func adminAuthorized(auth config.AdminAuth, r *http.Request) bool {
	same := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if auth.BearerToken != "" {
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && same(h, auth.BearerToken) {
			return true
		}
	}
	if auth.BasicUser != "" {
		if u, p, ok := r.BasicAuth(); ok && same(u, auth.BasicUser) && same(p, auth.BasicPassword) {
			return true
		}
	}
	return false
}

func (a *adminServer) addr() string { return a.ln.Addr().String() }

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.srv.Shutdown(ctx)
	if a.ui != nil {
		a.ui.Close()
	}
}

// startConsole mounts the web console on the admin mux. The console is a
// Kafka client of one of this node's client listeners (on loopback when it
// listens on every interface), so it sees what the Kafka APIs show to its
// principal. It prefers a listener with a SASL mechanism it can log in
// with (PLAIN, SCRAM): each person then logs in as themselves and the
// authorizer decides what they see. Otherwise a PLAINTEXT listener, else
// the first, without credentials. Over SSL it trusts exactly this node's
// own certificate.
func startConsole(s *Server, mux *http.ServeMux) (*console.Console, error) {
	if len(s.listeners) == 0 {
		return nil, nil
	}
	pick := consoleListener(s)
	ln, la := s.listeners[pick], s.sec.listener(s.advertised[pick].Name)
	bootstrap := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		bootstrap = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	cfg := console.Config{Bootstrap: bootstrap, Metrics: s.metrics.reg,
		Log: s.log.With("component", "console"), AllowWrites: s.cfg.AdminUIAllowWrites}
	if la.store != nil {
		cfg.TLS = la.store.SelfClientConfig()
	}
	cfg.SASLMechanisms = consoleMechanisms(la)
	if s.shares != nil {
		cfg.ShareRecords = func(group, topic string, partition int32, max int) (console.ShareRecords, bool) {
			t := s.meta.Image().Topic(topic)
			if t == nil {
				return console.ShareRecords{}, false
			}
			runs, limit, ok := s.shares.Unsettled(coordinator.ShareKey{Group: group, TopicID: t.ID, Partition: partition}, max)
			out := console.ShareRecords{DeliveryLimit: limit}
			for _, r := range runs {
				out.Runs = append(out.Runs, console.UnsettledRun{First: r.First, Last: r.Last, State: r.State.String(),
					DeliveryCount: int(r.DeliveryCount), Member: r.Owner, Deadline: r.Deadline})
			}
			return out, ok
		}
	}
	ui, err := console.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux.Handle("/ui/", ui)
	return ui, nil
}

// consoleListener is the index of the client listener the console uses.
func consoleListener(s *Server) int {
	plaintext := -1
	for i := range s.listeners {
		if len(consoleMechanisms(s.sec.listener(s.advertised[i].Name))) > 0 {
			return i
		}
		if plaintext < 0 && s.advertised[i].SecurityProtocol == "PLAINTEXT" {
			plaintext = i
		}
	}
	return max(plaintext, 0)
}

// consoleMechanisms are the listener's SASL mechanisms a person can log
// in to the console with, strongest first (OAUTHBEARER needs a token from
// an identity provider, not a password).
func consoleMechanisms(la *listenerAuth) []string {
	var out []string
	for _, name := range []string{sasl.SCRAMSHA512, sasl.SCRAMSHA256, sasl.PLAIN} {
		for _, m := range la.mechs {
			if m.Name() == name {
				out = append(out, name)
			}
		}
	}
	return out
}
