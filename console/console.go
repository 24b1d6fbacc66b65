// Package console serves shoal's web console: a few static pages embedded
// in the binary plus a small JSON API under /ui/api/.
//
// The console reads the cluster the way an external console would: as a
// Kafka client of the node's own client listener (kadm/kgo), and from the
// node's Prometheus registry for rates, so it sees what the Kafka APIs
// expose, and only what its principal may see. When the listener it uses
// authenticates with SASL, each person logs in with their own Kafka
// credentials and the console acts as them (see session.go), so the
// broker's authorizer decides what each sees and may change; without SASL
// it connects without credentials and is whoever the listener makes of
// such a client (ANONYMOUS). The one exception is a share partition's
// records in flight, which no Kafka API exposes: the node hands them over
// through Config.ShareRecords, and the page shows them only for partitions
// the person's DescribeShareGroupOffsets answered.
package console

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

//go:embed ui
var assets embed.FS

// Config is what a Console needs from the node that serves it.
type Config struct {
	// Bootstrap is a client listener address of the node ("host:port").
	Bootstrap string
	// TLS dials the listener with TLS (SSL and SASL_SSL listeners).
	TLS *tls.Config
	// SASLMechanisms are the listener's SASL mechanisms, in the order the
	// console tries them at login; empty for a listener without SASL,
	// where the console needs no login.
	SASLMechanisms []string
	// Metrics is the node's registry, sampled for produce/consume rates.
	Metrics prometheus.Gatherer
	// Log records every state-changing action.
	Log *slog.Logger
	// AllowWrites enables delete records, offset resets and redrive
	// (admin.ui.allow.writes).
	AllowWrites bool
	// SampleEvery is the period of the rate and lag samples (default 2s).
	SampleEvery time.Duration
	// ShareRecords reports the unsettled records of a share partition
	// this node leads (false when it does not): who holds which records
	// until when and how often each was delivered. No Kafka API exposes
	// them; nil leaves them out of the share-group page.
	ShareRecords func(group, topic string, partition int32, max int) (ShareRecords, bool)
}

// ShareRecords are a share partition's records delivered at least once and
// not yet acknowledged or archived, in offset order.
type ShareRecords struct {
	Runs []UnsettledRun
	// DeliveryLimit is the partition's share.delivery.count.limit.
	DeliveryLimit int
}

// UnsettledRun is a run of records with one state, delivery count, holder
// and deadline.
type UnsettledRun struct {
	First, Last   int64
	State         string // "available" or "acquired"
	DeliveryCount int
	// Member holds the records while acquired.
	Member string
	// Deadline is when the acquisition lock expires (acquired) or the
	// release backoff ends (available); zero if none.
	Deadline time.Time
}

// requestTimeout bounds every Kafka round trip an API call makes, so a
// stuck broker makes the page show an error instead of hanging.
const requestTimeout = 10 * time.Second

// Console is an http.Handler for everything under /ui/.
type Console struct {
	cfg Config
	// base are the options that reach the listener (address, TLS); a
	// login adds its SASL mechanism.
	base []kgo.Opt
	// shared is the one connection of a console without login; nil when
	// each person logs in (sessions).
	shared   *kafkaConn
	sessions *sessions
	mux      *http.ServeMux
	assets   map[string]*asset
	hist     *history
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// startSampling starts the sampler on the first API call: a console
	// nobody opens costs nothing.
	startSampling sync.Once
	// lastSeen is the unix time of the latest API call; lag sampling
	// (which costs Kafka requests) pauses when nobody has looked for a
	// while.
	lastSeen atomic.Int64

	// redriveMu serializes this console's redrives (see redrive.go).
	redriveMu sync.Mutex
}

// New returns a console that connects lazily to cfg.Bootstrap.
func New(cfg Config) (*Console, error) {
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	static, _ := fs.Sub(assets, "ui")
	files, err := loadAssets(static)
	if err != nil {
		return nil, err
	}
	base := []kgo.Opt{kgo.SeedBrokers(cfg.Bootstrap)}
	if cfg.TLS != nil {
		base = append(base, kgo.DialTLSConfig(cfg.TLS))
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{
		cfg: cfg, base: base, sessions: newSessions(), mux: http.NewServeMux(), assets: files,
		hist: newHistory(historyPoints), ctx: ctx, cancel: cancel,
	}
	if !c.loginRequired() {
		shared, err := newKafkaConn("", base)
		if err != nil {
			cancel()
			return nil, err
		}
		c.shared = shared
	}
	c.mux.HandleFunc("GET /ui/", c.serveAsset)
	c.mux.HandleFunc("GET /ui/api/settings", c.settings)
	c.mux.HandleFunc("POST /ui/api/login", c.login)
	c.mux.HandleFunc("POST /ui/api/logout", c.logout)
	c.mux.HandleFunc("GET /ui/api/cluster", c.api(c.cluster))
	c.mux.HandleFunc("GET /ui/api/topics", c.api(c.topics))
	c.mux.HandleFunc("GET /ui/api/topic", c.api(c.topic))
	c.mux.HandleFunc("GET /ui/api/messages", c.api(c.messages))
	c.mux.HandleFunc("GET /ui/api/groups", c.api(c.groups))
	c.mux.HandleFunc("GET /ui/api/group", c.api(c.group))
	c.mux.HandleFunc("GET /ui/api/sharegroup", c.api(c.shareGroup))
	c.mux.HandleFunc("POST /ui/api/delete-records", c.write(c.deleteRecords))
	c.mux.HandleFunc("POST /ui/api/reset-offsets", c.write(c.resetOffsets))
	c.mux.HandleFunc("POST /ui/api/redrive", c.write(c.redrive))
	return c, nil
}

// ServeHTTP serves the pages and the API.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// Close stops the sampler and the Kafka clients.
func (c *Console) Close() {
	c.cancel()
	c.wg.Wait()
	if c.shared != nil {
		c.shared.close()
	}
	c.sessions.closeAll()
}

// settings tells the page what it may offer: actions, and whether to ask
// for a login (and as whom it is logged in).
func (c *Console) settings(w http.ResponseWriter, r *http.Request) {
	v := map[string]any{"allowWrites": c.cfg.AllowWrites, "login": c.loginRequired()}
	if c.loginRequired() {
		if k, err := c.conn(r); err == nil {
			v["user"] = k.user
		}
	}
	reply(w, v, nil)
}

// apiError is an error with the HTTP status the API answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) error { return &apiError{http.StatusBadRequest, msg} }

// nameParam is the name query parameter a page about one topic or group
// requires.
func nameParam(r *http.Request) (string, error) {
	name := r.URL.Query().Get("name")
	if name == "" {
		return "", badRequest("name is required")
	}
	return name, nil
}

// api wraps a read-only JSON endpoint.
func (c *Console) api(fn func(ctx context.Context, k *kafkaConn, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, err := c.conn(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		c.seen()
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		v, err := fn(ctx, k, r)
		reply(w, v, err)
	}
}

// maxWriteBody bounds the JSON body of a write action.
const maxWriteBody = 64 << 10

// write wraps a state-changing endpoint: refused unless writes are
// allowed, and only from the console's own pages. The custom header makes
// a cross-site form or fetch impossible without a CORS preflight, which
// this server never grants.
func (c *Console) write(fn func(ctx context.Context, k *kafkaConn, r *http.Request, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.seen()
		if !c.cfg.AllowWrites {
			reply(w, nil, &apiError{http.StatusForbidden, "writes are disabled: set admin.ui.allow.writes=true to allow them"})
			return
		}
		if r.Header.Get("X-Shoal-Console") != "1" {
			reply(w, nil, &apiError{http.StatusForbidden, "missing X-Shoal-Console header"})
			return
		}
		k, err := c.conn(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWriteBody))
		if err != nil {
			reply(w, nil, badRequest("request body: "+err.Error()))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		v, err := fn(ctx, k, r, body)
		reply(w, v, err)
	}
}

func (c *Console) seen() {
	c.lastSeen.Store(time.Now().Unix())
	c.startSampling.Do(func() {
		c.wg.Add(1)
		go c.sample()
	})
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status := http.StatusBadGateway
		var ae *apiError
		if errors.As(err, &ae) {
			status = ae.status
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// queryInt parses an integer query parameter, def when absent.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest(name + ": not an integer")
	}
	return n, nil
}

// errString is err's text, "" for nil: JSON carries errors as strings.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
