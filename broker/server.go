// Package broker is shoal's Kafka front end: it accepts connections, frames
// and decodes requests with kmsg, serves each listener its API table, bounds
// request memory, and answers each API by calling one runtime (replica/,
// coordruntime/, share/, cluster/) or reading the metadata image. Server
// also builds those runtimes when the node starts and closes them when it
// stops; the runtimes never see it.
//
// Lock order: the front end keeps no runtime state, and its locks are
// leaves (requestMemory.mu, connLimits.mu, logLimiter.mu), except
// Server.connMu, which only orders a connection's wg.Add before Close's
// wg.Wait. A handler holds none of them while it calls a runtime.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/cluster"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/coordruntime"
	"github.com/shoalmq/shoal/fetchsession"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/quota"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/replica"
	"github.com/shoalmq/shoal/share"
)

// Server is one shoal node: its metadata quorum member, its partition logs
// and its Kafka listeners.
type Server struct {
	cfg *config.Broker
	log *slog.Logger
	// requestLog and connLog are the request and connection loggers (see
	// requestlog.go); connLimit rate-limits connLog's close lines.
	requestLog *slog.Logger
	connLog    *slog.Logger
	connLimit  logLimiter
	logs       *log.Manager
	meta       *raftmeta.Node
	// applyMu serializes applyImage.
	applyMu sync.Mutex
	// metaStarted is meta once it has started, for what runs before:
	// the raft transport's logins read SCRAM credentials and ACLs
	// through it (nil: no image yet).
	metaStarted atomic.Pointer[raftmeta.Node]
	ctrl        *raftmeta.Controller
	now         func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	apis      apiTables
	listeners []net.Listener
	// advertised are the client listeners as clients should reach them.
	advertised []config.Listener
	metrics    *metrics
	// reqMem bounds the memory held by requests (queued.max.request.bytes).
	reqMem *requestMemory
	// limits counts client connections against max.connections and
	// max.connections.per.ip.
	limits *connLimits
	// appliedLimits are the limits last given to limits (guarded by
	// applyMu).
	appliedLimits config.ConnectionLimits
	// sec is the listeners' TLS and SASL and the authorizer.
	sec *security
	// fetchEncoder writes fetch responses with their record data in place.
	fetchEncoder *fetchEncoder
	// quotas measures clients against their quotas (quotas.go,
	// connquota.go).
	quotas *quota.Sensors
	// fetchSessions are the incremental fetch sessions (KIP-227) of
	// consumers and followers fetching from this node.
	fetchSessions *fetchsession.Cache
	// lastLeaderHint is when (unix ns) a client was last told that a
	// partition it asked for is led elsewhere (see leaderHints).
	lastLeaderHint hintClock
	admin          *adminServer
	// producerIDs hands out producer ids: to idempotent producers
	// (InitProducerID) and to the transaction coordinator.
	producerIDs *cluster.ProducerIDs
	// coord runs the group, share and transaction coordinators on their
	// internal topics.
	coord  *coordruntime.Runtime
	shares *share.Manager
	// transport carries raft messages to the other quorum members
	// (multi-node quorums only).
	transport *raftmeta.TCPTransport
	// peers is the one client this node reaches other nodes with.
	peers *cluster.Pool
	// controller is this node's client of the active controller.
	controller *cluster.ControllerClient
	// replicas is the replica manager: the local replicas, their
	// leadership, HW and ISR, the follower fetchers and the leader-append
	// path.
	replicas *replica.Manager
	// started is set once start succeeded; Close then shuts down in a
	// controlled way.
	started bool
	// ready is closed when start has succeeded: Kafka connections accepted
	// earlier (the listeners run during start, for the raft connections
	// they may carry) wait for it before their first request is read.
	ready chan struct{}
	// connMu orders s.wg.Add for connections handed over by the raft
	// transport before Close's s.wg.Wait (see serveKafka).
	connMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Options are the parts of a Server a caller may replace (tests use them).
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// Start opens the node's storage, joins the metadata quorum, registers as a
// broker and starts listening. With the default configuration it is a
// complete single-node cluster.
func Start(cfg *config.Broker, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		log: opts.Logger,
		now: opts.Now,

		requestLog: opts.Logger.With("component", "request"),
		connLog:    opts.Logger.With("component", "conn"),
		ctx:        ctx,
		cancel:     cancel,
		metrics:    newMetrics(),
		ready:      make(chan struct{}),

		fetchEncoder:  newFetchEncoder(),
		fetchSessions: fetchsession.New(int(cfg.Int("max.incremental.fetch.session.cache.slots"))),
	}
	s.metrics.reg.MustRegister(fetchSessionMetrics(s.fetchSessions)...)
	s.apis = s.newAPITables()
	s.quotas = quota.NewSensors(quotaWindow(cfg))
	s.reqMem = newRequestMemory(cfg.QueuedMaxRequestBytes, s.metrics.conns.queuedBytes)
	s.limits = newConnLimits()
	s.appliedLimits = cfg.ConnectionLimits()
	s.limits.set(s.appliedLimits, s.log)
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start brings the node up. The order matters:
//
//  0. the partition logs (taking the log dirs' locks);
//  1. the raft transport and the metadata node (a brand-new log is
//     bootstrapped with the voters; a broker-only node is no member yet);
//  2. a voter waits for a leader; a broker-only node cannot know one before
//     it joins;
//  3. the client listeners start accepting: raft connections they carry
//     are served at once, Kafka ones wait until start is done (ready);
//  4. a broker registers with the active controller. For a broker-only
//     node that is also how it joins the quorum as a learner, and it then
//     waits until its own log has caught up with its registration;
//  5. the background loops for its roles, then ready.
func (s *Server) start() error {
	for _, d := range s.cfg.LogDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("log.dirs: %w", err)
		}
	}
	// The partition logs open first: their lock files are what tells a
	// second process that this data directory is taken, before it opens
	// the metadata log or anything else in it.
	var err error
	s.logs, err = log.Open(log.ManagerConfig{Dirs: s.cfg.LogDirs, Logger: s.log.With("component", "log"), OwnDirs: s.ownDirs(), OnDirOffline: s.onDirOffline,
		MoveRate: func() int64 { return s.cfg.Int("replica.alter.log.dirs.io.max.bytes.per.second") }})
	if errors.Is(err, log.ErrDirInUse) {
		return err
	}
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	clusterID, err := s.clusterID()
	if err != nil {
		return err
	}
	bootstrap, err := bootstrapRecords(s.cfg.MetadataDir)
	if err != nil {
		return fmt.Errorf("metadata bootstrap: %w", err)
	}
	mcfg := raftmeta.Config{
		NodeID:    s.cfg.NodeID,
		Dir:       s.cfg.MetadataDir,
		Voters:    s.cfg.Voters,
		Logger:    s.log,
		ClusterID: clusterID,
		Bootstrap: bootstrap,
	}
	// Before the raft transport, the peer client and the listeners, which
	// take their TLS and SASL from it. The image it reads SCRAM
	// credentials and ACLs from is nil until the metadata node has
	// started: only the raft transport's logins can come that early.
	if s.sec, err = newSecurity(s.cfg, s.log, s.startedImage); err != nil {
		return err
	}
	if s.multiNode() {
		if s.transport, err = s.startTransport(); err != nil {
			return err
		}
		mcfg.Transport = s.transport
	}
	s.meta, err = raftmeta.Start(mcfg)
	if err != nil {
		return fmt.Errorf("metadata quorum: %w", err)
	}
	s.metaStarted.Store(s.meta)
	s.ctrl = raftmeta.NewController(s.meta, config.ValidateTopicConfig)
	s.ctrl.SetGroupConfigValidator(s.cfg.ValidateGroupConfig)
	s.ctrl.SetBrokerConfigValidator(config.ValidateDynamicBrokerConfig, config.IsSensitiveBrokerKey)
	s.ctrl.SetMaxBrokerPartitions(replica.MaxBrokerPartitions(s.cfg))
	s.startCluster()
	s.replicas = replica.New(s.ctx, replica.Config{
		Broker:     s.cfg,
		Logs:       s.logs,
		Meta:       s.meta,
		Controller: s.controller,
		Peers:      replicaPeers{s},
		Internal:   internalLogs{s},
		ISRChanged: s.metrics.isrChange,
		Logger:     s.log,
		Now:        s.now,
	})
	if s.coord, err = coordruntime.New(s.ctx, coordruntime.ConfigFrom(s.cfg), s.coordEnv(), txnNode{s}, txnNode{s}); err != nil {
		return err
	}
	s.shares = newShareRuntime(s)
	waitCtx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if s.isController() {
		if err := s.meta.WaitLeader(waitCtx); err != nil {
			return fmt.Errorf("metadata quorum has no leader: %w", err)
		}
	}
	// The dynamic listener configs (key stores, connection limits) the
	// image holds by now apply before the first connection is accepted;
	// those it learns later apply with the image (applyImage).
	s.applyMu.Lock()
	s.publishDynamicConfigs(s.meta.Image())
	s.applyDynamicListeners()
	s.applyMu.Unlock()
	// A controller-only node has no client listeners (config checks).
	bind, adv := s.cfg.ClientListeners()
	s.advertised = adv
	for _, l := range bind {
		ln, err := net.Listen("tcp", l.Addr())
		if err != nil {
			return fmt.Errorf("listeners: %w", err)
		}
		s.listeners = append(s.listeners, ln)
	}
	// With port 0 the advertised port is the one the OS picked.
	for i, ln := range s.listeners {
		if s.advertised[i].Port == 0 {
			s.advertised[i].Port = int32(ln.Addr().(*net.TCPAddr).Port)
		}
	}
	for i, ln := range s.listeners {
		s.wg.Add(1)
		go s.accept(ln, s.advertised[i].Name)
	}
	if s.isBroker() {
		if err := s.register(waitCtx); err != nil {
			return err
		}
		if !s.isController() {
			if err := s.waitCaughtUp(waitCtx); err != nil {
				return err
			}
		}
	}
	s.applyImage()
	s.wg.Add(2)
	go s.watchMetadata()
	go s.housekeeping()
	if s.multiNode() {
		if s.isController() {
			active := s.activeController()
			s.goBackground(active.RunSessions)
			s.goBackground(active.RunLeaderRebalance)
		}
		if s.isBroker() {
			s.goBackground(s.controller.RunHeartbeats)
			s.replicas.StartISRLoop()
		}
	}
	if s.cfg.AdminAddr != "" {
		if s.admin, err = startAdmin(s); err != nil {
			return fmt.Errorf("admin.addr: %w", err)
		}
	}
	s.started = true
	close(s.ready)
	s.logStarted()
	return nil
}

// logStarted writes the start-up summary: what an operator needs to reach
// and identify this node, in one line.
func (s *Server) logStarted() {
	listeners := make([]string, 0, len(s.listeners)+1)
	for i, ln := range s.listeners {
		listeners = append(listeners, s.advertised[i].Name+"://"+ln.Addr().String())
	}
	controller := "in-process (single-node quorum)"
	if s.transport != nil {
		controller = s.cfg.Voters[s.cfg.NodeID]
		if controller == "" {
			controller = "none (learner)"
		}
	}
	admin := s.AdminAddr()
	if admin == "" {
		admin = "disabled"
	}
	s.log.Info("shoal started", "node.id", s.cfg.NodeID, "process.roles", s.cfg.Roles,
		"listeners", listeners, "controller.listener", controller, "log.dirs", s.cfg.LogDirs,
		"admin.addr", admin, "cluster.id", s.meta.Image().ClusterID)
}

// waitCaughtUp waits until this broker-only node's metadata log holds its
// own registration: it has joined the quorum as a learner and caught up at
// least that far, so it starts from a current image and knows the leader.
func (s *Server) waitCaughtUp(ctx context.Context) error {
	self, epoch := s.cfg.NodeID, s.controller.BrokerEpoch()
	_, err := s.meta.WaitFor(ctx, func(img *raftmeta.Image) bool {
		b := img.Brokers[self]
		return b != nil && b.Epoch >= epoch
	})
	if err == nil {
		err = s.meta.WaitLeader(ctx)
	}
	if err != nil {
		return fmt.Errorf("metadata log did not catch up after joining the quorum: %w", err)
	}
	return nil
}

// clusterID returns the id a brand-new metadata log is created with: the
// configured cluster.id, one derived from the voters in a cluster, or ""
// on a single node (raftmeta makes one up). An existing log keeps its own,
// so a restart never sees a different id.
func (s *Server) clusterID() (string, error) {
	if s.cfg.ClusterID != "" {
		return s.cfg.ClusterID, nil
	}
	if s.multiNode() {
		return cluster.VotersClusterID(s.cfg.Voters), nil
	}
	// A single node: raftmeta makes up an id when it creates the metadata
	// log, and the log keeps it from then on.
	return "", nil
}

// ownDirs names the directories this node keeps inside its log dirs that
// are not partitions: the metadata log and the coordinator stores.
func (s *Server) ownDirs() []string {
	dirs := coordruntime.Dirs()
	for _, d := range s.cfg.LogDirs {
		if filepath.Dir(filepath.Clean(s.cfg.MetadataDir)) == filepath.Clean(d) {
			dirs = append(dirs, filepath.Base(s.cfg.MetadataDir))
		}
	}
	return dirs
}

// register records this broker and its advertised endpoints in the
// metadata log.
func (s *Server) register(ctx context.Context) error {
	var eps []raftmeta.Endpoint
	for _, l := range s.advertised {
		eps = append(eps, raftmeta.Endpoint{Listener: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol})
	}
	if err := s.controller.Register(ctx, eps); err != nil {
		return fmt.Errorf("broker registration: %w", err)
	}
	return nil
}

// goBackground runs loop on its own goroutine until the node closes; Close
// waits for it.
func (s *Server) goBackground(loop func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		loop(s.ctx)
	}()
}

// Addrs returns the bound client listener addresses.
func (s *Server) Addrs() []string {
	out := make([]string, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr().String()
	}
	return out
}

// startedImage is the newest metadata image, nil before the metadata node
// has started.
func (s *Server) startedImage() *raftmeta.Image {
	if n := s.metaStarted.Load(); n != nil {
		return n.Image()
	}
	return nil
}

// AdminAddr returns the bound admin HTTP address, or "".
func (s *Server) AdminAddr() string {
	if s.admin == nil {
		return ""
	}
	return s.admin.addr()
}

// accept serves a client listener until it is closed (see acceptLoop).
func (s *Server) accept(ln net.Listener, listener string) {
	defer s.wg.Done()
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-s.ctx.Done():
			return false
		}
	}
	acceptLoop(ln, s.log.With("listener", listener), s.metrics.conns, sleep, func(nc net.Conn) {
		ip := remoteIP(nc)
		if !s.admitConnection(nc, listener, ip, sleep) {
			return
		}
		if !s.admit(nc, listener, ip) {
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s.metrics.conns.open.Inc()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.metrics.conns.open.Dec()
			defer s.limits.release(listener, ip)
			s.serveAccepted(nc, listener)
		}()
	})
}

// serveAccepted serves one connection of a client listener. A connection
// that opens with the raft transport's hello is a voter replicating the
// metadata log to this node (a learner's raft address is its inter-broker
// endpoint), handed to the transport; anything else is a Kafka client.
func (s *Server) serveAccepted(nc net.Conn, listener string) {
	if s.transport != nil {
		la := s.sec.listener(listener)
		stop := context.AfterFunc(s.ctx, func() { nc.Close() })
		raw := nc
		var isRaft bool
		var err error
		if la.tls != nil {
			// On a TLS listener raft arrives encrypted too: the hello
			// is looked for after the handshake (within the
			// authentication bound), and the connection handed on
			// keeps the handshake's outcome.
			var tc *tls.Conn
			if tc, err = s.handshakeTLS(s.ctx, raw, la); err == nil {
				raw.SetReadDeadline(time.Now().Add(s.sec.authTimeout))
				isRaft, nc, err = raftmeta.PeekHelloTLS(tc)
				raw.SetReadDeadline(time.Time{})
			}
		} else {
			isRaft, err = raftmeta.PeekHello(raw)
		}
		if !stop() || err != nil {
			if errors.Is(err, errAuthentication) {
				s.logConnClosed(raw, listener, err)
			}
			raw.Close()
			return
		}
		if isRaft {
			s.transport.ServeConn(nc, s.raftLogin(listener))
			return
		}
	}
	s.serveWhenReady(nc, listener)
}

// serveKafka serves a Kafka connection that arrived on the controller
// listener (brokers' controller RPCs and relayed admin requests), once
// start is done. It runs on the transport's goroutine for the connection;
// s.wg tracks it too, so Close waits for it before closing the logs.
func (s *Server) serveKafka(nc net.Conn, listener string) {
	s.connMu.Lock()
	if s.ctx.Err() != nil {
		s.connMu.Unlock()
		nc.Close()
		return
	}
	s.wg.Add(1)
	s.connMu.Unlock()
	defer s.wg.Done()
	s.serveWhenReady(nc, listener)
}

// serveWhenReady serves a Kafka connection once start is done (its first
// request must see registered listeners and loaded runtimes), or closes it
// if the node stops first.
func (s *Server) serveWhenReady(nc net.Conn, listener string) {
	select {
	case <-s.ready:
	case <-s.ctx.Done():
		nc.Close()
		return
	}
	newConn(s, nc, listener).serve()
}

// watchMetadata applies every new metadata image to the local replicas.
func (s *Server) watchMetadata() {
	defer s.wg.Done()
	for {
		ch := s.meta.Changed()
		s.applyImage()
		select {
		case <-ch:
		case <-s.replicas.CoordinatorRetry():
			// A partition's HW caught up: a coordinator may load now.
			s.replicas.CoordinatorRetried()
		case <-s.ctx.Done():
			return
		}
	}
}

// publishDynamicConfigs makes the image's dynamic broker configs (this
// broker's and the cluster default) the ones in effect, unless newer ones
// already are.
func (s *Server) publishDynamicConfigs(img *raftmeta.Image) {
	s.cfg.SetDynamic(img.Applied, img.BrokerConfig(strconv.Itoa(int(s.cfg.NodeID))), img.BrokerConfig(""))
}

// applyImage brings the dynamic broker configs, the local replicas, then
// the group coordinators they host, in line with the newest metadata image.
// Callers are serialized and the image is read under the lock, so images
// are applied in order: the metadata watcher and a coordinator that has
// just created its topic both call this, and an older image applied after
// a newer one would undo what the newer one set up (coordruntime's
// Reconcile also ignores it; the share runtime relies on this order).
func (s *Server) applyImage() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	img := s.meta.Image()
	// Dynamic broker configs first: Reconcile re-reads every partition's
	// log defaults through them.
	s.publishDynamicConfigs(img)
	s.applyDynamicListeners()
	s.replicas.Reconcile()
	s.coord.Reconcile(img)
	s.shares.Reconcile(img)
}

// housekeeping runs retention, time-based flushes, compaction and producer
// expiry on their intervals.
func (s *Server) housekeeping() {
	defer s.wg.Done()
	retention := time.NewTicker(s.cfg.RetentionCheckInterval)
	producers := time.NewTicker(s.cfg.ProducerIDExpirationCheck)
	defer producers.Stop()
	flush := time.NewTicker(s.cfg.FlushCheckInterval)
	backoff := s.cfg.CleanerBackoff
	cleaner := time.NewTicker(backoff)
	defer retention.Stop()
	defer flush.Stop()
	defer cleaner.Stop()
	for {
		select {
		case <-cleaner.C:
			s.logs.Compact(s.now())
			// log.cleaner.backoff.ms may change at runtime (a dynamic
			// broker config): the next wait takes the new value.
			if b := s.cfg.Millis("log.cleaner.backoff.ms"); b != backoff {
				backoff = b
				cleaner.Reset(b)
			}
		case <-retention.C:
			s.logs.EnforceRetention(s.now())
		case <-flush.C:
			s.logs.FlushIfDue(s.now())
		case <-producers.C:
			s.logs.ExpireProducers(s.now(), s.cfg.ProducerIDExpiration)
		case <-s.ctx.Done():
			return
		}
	}
}

// Close stops listening, ends connections, and closes the logs (flushing
// and checkpointing them) and the metadata node.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.started && s.multiNode() && s.isBroker() {
			s.controlledShutdown(5 * time.Second)
		}
		s.cancel()
		// After this no serveKafka adds to s.wg (it checks s.ctx under
		// connMu), so the Wait below covers every connection.
		s.connMu.Lock()
		s.connMu.Unlock()
		for _, ln := range s.listeners {
			ln.Close()
		}
		if s.admin != nil {
			s.admin.close()
		}
		s.wg.Wait()
		if s.replicas != nil {
			s.replicas.Close()
		}
		var errs []error
		if s.shares != nil {
			s.shares.Close()
		}
		if s.coord != nil {
			errs = append(errs, s.coord.Close())
		}
		if s.peers != nil {
			// After the runtimes that send through it have stopped.
			s.peers.Close()
		}
		if s.logs != nil {
			errs = append(errs, s.logs.Close())
		}
		if s.meta != nil {
			errs = append(errs, s.meta.Close())
		}
		if s.transport != nil {
			errs = append(errs, s.transport.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// DataDir is the first log dir, for tools that want to look at files.
func (s *Server) DataDir() string { return filepath.Clean(s.cfg.LogDirs[0]) }

// api is one implemented Kafka API: its version range and handler.
type api struct {
	min, max int16
	// handle runs in connection order (see conn.dispatch). It returns the
	// response (nil: none), or, when the request must wait for something
	// that cannot reorder it against the connection's later requests, a
	// wait that produces the response concurrently.
	handle func(context.Context, *reqCtx, kmsg.Request) (kmsg.Response, waitFunc, error)
	// forwarded marks an admin API the active controller answers: a
	// broker relays it there and the controller's Envelope accepts it.
	// Only relayed and forwarding set it, and only they hand a handler
	// the means to forward, so the two sets cannot differ.
	forwarded bool
}

// waitFunc is the asynchronous tail of a request: it waits (for the ISR, a
// long poll, a rebalance) and returns the response.
type waitFunc func() (kmsg.Response, error)

// handler adapts a typed handler that answers without waiting to the api
// table.
func handler[R kmsg.Request](f func(context.Context, *reqCtx, R) (kmsg.Response, error)) func(context.Context, *reqCtx, kmsg.Request) (kmsg.Response, waitFunc, error) {
	return func(ctx context.Context, rc *reqCtx, req kmsg.Request) (kmsg.Response, waitFunc, error) {
		resp, err := f(ctx, rc, req.(R))
		return resp, nil, err
	}
}

// waiting adapts a typed handler that may hand back a wait to the api table.
func waiting[R kmsg.Request](f func(context.Context, *reqCtx, R) (kmsg.Response, waitFunc, error)) func(context.Context, *reqCtx, kmsg.Request) (kmsg.Response, waitFunc, error) {
	return func(ctx context.Context, rc *reqCtx, req kmsg.Request) (kmsg.Response, waitFunc, error) {
		return f(ctx, rc, req.(R))
	}
}
