package raftmeta

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kgosasl "github.com/twmb/franz-go/pkg/sasl"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoalmq/shoal/sasl"
)

// TCPTransport carries raft messages between quorum members over TCP, on
// the controller listener.
//
// Each peer gets one outbound connection, fed by a bounded queue and written
// by its own goroutine, so a slow or dead peer never holds up the Ready loop
// or the other peers. A message is dropped, and raft told the peer is
// unreachable, when the queue is full or the peer is known to be down; raft
// retries on its own schedule. A lost connection is redialled with
// exponential backoff.
//
// Inbound, the listener accepts connections from peers and hands every
// message to Node.Step. The listener may be shared with the Kafka
// protocol: a connection that does not open with the hello's magic is
// handed to TCPTransportConfig.Foreign (the controller listener answers
// the brokers' controller RPCs that way). The other way round, a Kafka
// listener that sees a connection open with the magic (PeekHello) passes
// it to ServeConn: that is how a learner, which has no controller
// listener, receives the leader's messages on its broker listener. The
// magic cannot start a Kafka request: read as a request size it is far
// above any socket.request.max.bytes.
//
// Wire format. A connection opens with a hello from the dialling side:
//
//	magic    4 bytes "SRFT"
//	version  1 byte  (1)
//	from     int32 big endian: the sender's node id
//	to       int32 big endian: the node id it meant to reach
//
// followed by frames, each a uint32 big-endian length and that many bytes of
// a marshalled raftpb.Message. Connections from ids that are not peers, or
// meant for another node, are closed after the hello; frames whose message
// does not come from the hello's node or is not addressed to this node are
// dropped. A frame longer than MaxFrameBytes closes the connection: the
// length is checked before anything is allocated.
//
// On a SASL listener (SASL_PLAINTEXT, SASL_SSL) the hello is followed by
// the Kafka protocol's SASL login, SaslHandshake and SaslAuthenticate
// frames exactly as a Kafka client sends them, and the hello is accepted
// only once the receiving side's Login has authenticated the sender and
// found it allowed; the raft frames follow. The hello comes first so that
// the listener knows the connection for raft before anything else: a
// Kafka client's login opens with the same frames. A session with a
// lifetime (KIP-368, connections.max.reauth.ms) ends the connection when
// it runs out; the dialling side redials, logging in again, before then.
type TCPTransport struct {
	cfg TCPTransportConfig
	log *slog.Logger
	ln  net.Listener

	mu      sync.Mutex
	peers   map[int32]*peer
	inbound map[int32]net.Conn // latest accepted connection per peer
	conns   map[net.Conn]struct{}
	closed  bool

	handler atomic.Pointer[handlerBox]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// TCPTransportConfig configures a TCPTransport.
type TCPTransportConfig struct {
	// NodeID is this node's id.
	NodeID int32
	// ListenAddr is the host:port to accept peers on, e.g. the controller
	// listener. Port 0 picks a free port (see Addr). Empty, with no
	// Listener, means no listener of its own: inbound connections arrive
	// only through ServeConn.
	ListenAddr string
	// Listener, if set, is used instead of listening on ListenAddr; the
	// transport closes it.
	Listener net.Listener
	// Peers maps the other quorum members (voters and learners) to their
	// controller listener addresses. An entry for NodeID itself is ignored.
	Peers  map[int32]string
	Logger *slog.Logger
	// Foreign, if set, serves the listener's connections that do not open
	// with the transport's hello (Kafka requests on the controller
	// listener), replaying the bytes already read. It runs on the
	// connection's goroutine and should return when the connection is
	// closed; Close closes it. Without Foreign such connections are
	// closed.
	Foreign func(net.Conn)

	// ServerTLS, if set, is the TLS configuration of the listener: every
	// connection it accepts runs the handshake before its first byte is
	// looked at, so raft and the Kafka requests handed to Foreign both
	// travel encrypted (an SSL or SASL_SSL controller listener). Foreign
	// then gets the connection after the handshake; it implements
	// ConnectionState.
	ServerTLS *tls.Config
	// ClientTLS, if set, returns the TLS configuration for dialling peer
	// at host, or nil for plain TCP to that peer.
	ClientTLS func(peer int32, host string) *tls.Config

	// Login, if set, authenticates every connection that opens with the
	// hello on the transport's own listener (a SASL controller
	// listener); connections handed to ServeConn bring their own.
	Login Login
	// ClientSASL, if set, returns the mechanism, with this node's
	// credentials, that logs a connection to peer in after the hello, or
	// nil when the peer's listener has no SASL.
	ClientSASL func(peer int32) kgosasl.Mechanism

	// MaxFrameBytes bounds one inbound message, snapshots included.
	// Default 256 MiB.
	MaxFrameBytes int
	// QueueSize is the number of messages buffered per peer. Default 4096.
	QueueSize int
	// DialTimeout bounds one connection attempt. Default 2s.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one frame. Default 10s.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// to a peer. Defaults 20ms and 1s.
	MinBackoff, MaxBackoff time.Duration
}

// MessageHandler is what a TCPTransport delivers to: a Node.
type MessageHandler interface {
	Step(ctx context.Context, m *pb.Message) error
	ReportUnreachable(nodeID int32)
	ReportSnapshot(nodeID int32, ok bool)
	// PeerGone reports that the peer's process is gone: nothing is
	// connected from it and its listener refuses connections.
	PeerGone(nodeID int32)
}

type handlerBox struct{ h MessageHandler }

// Login authenticates the sender of a raft connection on a SASL listener:
// it serves the SaslHandshake and SaslAuthenticate requests read from
// conn (which follow the hello), answers them on conn, and returns nil
// once the sender has logged in and may speak raft, with the end of its
// session (zero: none). An error refuses the connection and says why, for
// the operator.
type Login func(conn net.Conn) (sessionEnd time.Time, err error)

const (
	defaultMaxFrameBytes = 256 << 20
	defaultPeerQueue     = 4096
	transportVersion     = 1
	helloLen             = 4 + 1 + 4 + 4
	helloTimeout         = 5 * time.Second
)

var transportMagic = [4]byte{'S', 'R', 'F', 'T'}

// NewTCPTransport starts listening on cfg.ListenAddr. Messages that arrive
// before SetNode are dropped; Start calls SetNode for the node it starts.
func NewTCPTransport(cfg TCPTransportConfig) (*TCPTransport, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = defaultMaxFrameBytes
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = defaultPeerQueue
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 20 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Second, cfg.MinBackoff)
	}
	ln := cfg.Listener
	if ln == nil && cfg.ListenAddr != "" {
		var err error
		ln, err = net.Listen("tcp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("raftmeta: controller listener: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCPTransport{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "raft-transport", "node", cfg.NodeID),
		ln:      ln,
		peers:   map[int32]*peer{},
		inbound: map[int32]net.Conn{},
		conns:   map[net.Conn]struct{}{},
		ctx:     ctx,
		cancel:  cancel,
	}
	for id, addr := range cfg.Peers {
		t.SetPeer(id, addr)
	}
	if ln != nil {
		t.wg.Add(1)
		go t.accept()
	}
	return t, nil
}

// Addr returns the address the transport listens on, nil without a
// listener.
func (t *TCPTransport) Addr() net.Addr {
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// ServeConn serves an inbound connection accepted elsewhere whose first
// bytes are the transport's hello (see PeekHello), as if it had arrived on
// the transport's own listener; login, if set, authenticates it first (the
// listener it arrived on has SASL). It returns at once; Close closes the
// connection.
func (t *TCPTransport) ServeConn(conn net.Conn, login Login) {
	if !t.track(conn) {
		conn.Close()
		return
	}
	go t.serve(conn, false, login)
}

// track registers an inbound connection so Close closes it and waits for
// its goroutine; false once the transport is closed.
func (t *TCPTransport) track(conn net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[conn] = struct{}{}
	t.wg.Add(1)
	return true
}

// SetNode connects the transport to the node that receives inbound
// messages and outcome reports. Start calls it.
func (t *TCPTransport) SetNode(h MessageHandler) { t.handler.Store(&handlerBox{h}) }

func (t *TCPTransport) node() MessageHandler {
	if b := t.handler.Load(); b != nil {
		return b.h
	}
	return nil
}

// SetPeer adds a peer or changes its address; the connection to a changed
// address is re-established.
func (t *TCPTransport) SetPeer(id int32, addr string) {
	if id == t.cfg.NodeID || id < 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p, ok := t.peers[id]; ok {
		if p.addr == addr {
			return
		}
		p.stop()
	}
	p := &peer{
		t:     t,
		id:    id,
		addr:  addr,
		queue: make(chan outMsg, t.cfg.QueueSize),
		stopC: make(chan struct{}),
	}
	t.peers[id] = p
	t.wg.Add(1)
	go p.run()
}

// RemovePeer stops sending to id and refuses its connections.
func (t *TCPTransport) RemovePeer(id int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		p.stop()
		delete(t.peers, id)
	}
	if c, ok := t.inbound[id]; ok {
		c.Close()
		delete(t.inbound, id)
	}
}

func (t *TCPTransport) isPeer(id int32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.peers[id]
	return ok
}

// Close stops the listener, every connection and every sender, and waits
// for their goroutines. Queued messages are dropped.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	var err error
	if t.ln != nil {
		err = t.ln.Close()
	}
	for _, p := range t.peers {
		p.stop()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

// Send implements Transport. It marshals each message on the caller's
// goroutine (the Ready loop), so nothing raft owns is read later, and queues
// the frame for its peer without blocking.
func (t *TCPTransport) Send(msgs []*pb.Message) {
	for _, m := range msgs {
		to := nodeID(m.GetTo())
		isSnap := m.GetType() == pb.MessageType_MsgSnap
		t.mu.Lock()
		p := t.peers[to]
		t.mu.Unlock()
		if p == nil {
			t.log.Debug("dropping message to unknown peer", "to", to, "type", m.GetType())
			t.unreachable(to, isSnap)
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.log.Error("cannot marshal raft message", "to", to, "type", m.GetType(), "err", err)
			t.unreachable(to, isSnap)
			continue
		}
		if !p.enqueue(outMsg{frame: b, snap: isSnap}) {
			t.unreachable(to, isSnap)
		}
	}
}

// unreachable reports a message that was not delivered.
func (t *TCPTransport) unreachable(to int32, snap bool) {
	h := t.node()
	if h == nil {
		return
	}
	h.ReportUnreachable(to)
	if snap {
		h.ReportSnapshot(to, false)
	}
}

type outMsg struct {
	frame []byte
	snap  bool
}

// peer is the outbound side of one peer.
type peer struct {
	t     *TCPTransport
	id    int32
	addr  string
	queue chan outMsg
	stopC chan struct{}
	once  sync.Once
	// down is set while the peer cannot be reached; Send drops rather than
	// queueing stale messages behind a dead connection.
	down atomic.Bool
}

func (p *peer) stop() { p.once.Do(func() { close(p.stopC) }) }

func (p *peer) enqueue(m outMsg) bool {
	if p.down.Load() {
		return false
	}
	select {
	case p.queue <- m:
		return true
	default:
		return false
	}
}

func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := p.t.cfg.MinBackoff
	for {
		conn, renewAt, err := p.dial()
		if err != nil {
			if !p.down.Swap(true) {
				p.t.log.Info("metadata peer unreachable", "peer", p.id, "addr", p.addr, "err", err)
			}
			p.dropQueued()
			p.reportGone(err)
			if !p.wait(backoff) {
				return
			}
			backoff = min(2*backoff, p.t.cfg.MaxBackoff)
			continue
		}
		if p.down.Swap(false) {
			p.t.log.Info("metadata peer reachable again", "peer", p.id)
		}
		backoff = p.t.cfg.MinBackoff
		err = p.write(conn, renewAt)
		conn.Close()
		if err == nil { // stopped
			return
		}
		if errors.Is(err, errSessionRenewal) {
			// What is queued goes on the new connection.
			continue
		}
		p.down.Store(true)
		p.t.log.Info("metadata peer connection lost", "peer", p.id, "err", err)
		if h := p.t.node(); h != nil {
			h.ReportUnreachable(p.id)
		}
		p.dropQueued()
		if !p.wait(p.t.cfg.MinBackoff) {
			return
		}
	}
}

// reportGone tells the node the peer's process is gone when a dial was
// refused and no connection from the peer is open. A refusal proves that
// nothing listens on the peer's address, and a live process keeps its
// connection to this node open (it dials every peer), so the two together
// say the process died or stopped, not that the network is slow. A host
// that vanishes (timeouts, not refusals) is never reported: raft's election
// timeout handles it.
func (p *peer) reportGone(dialErr error) {
	if !errors.Is(dialErr, syscall.ECONNREFUSED) {
		return
	}
	p.t.mu.Lock()
	_, connected := p.t.inbound[p.id]
	p.t.mu.Unlock()
	if connected {
		return
	}
	if h := p.t.node(); h != nil {
		h.PeerGone(p.id)
	}
}

func (p *peer) wait(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-p.stopC:
		return false
	}
}

// dropQueued discards what was queued for a connection that failed, telling
// raft about snapshots among it.
func (p *peer) dropQueued() {
	for {
		select {
		case m := <-p.queue:
			if m.snap {
				p.t.unreachable(p.id, true)
			}
		default:
			return
		}
	}
}

// dial connects to the peer, runs the TLS handshake and the SASL login its
// listener asks for, and sends the hello. renewAt is when the SASL session
// must be renewed on a new connection (zero: never).
func (p *peer) dial() (conn net.Conn, renewAt time.Time, err error) {
	d := net.Dialer{Timeout: p.t.cfg.DialTimeout}
	ctx, cancel := context.WithCancel(p.t.ctx)
	defer cancel()
	go func() {
		select {
		case <-p.stopC:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err = d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, time.Time{}, err
	}
	if p.t.cfg.ClientTLS != nil {
		host, _, _ := net.SplitHostPort(p.addr)
		if cfg := p.t.cfg.ClientTLS(p.id, host); cfg != nil {
			tc := tls.Client(conn, cfg)
			hctx, hcancel := context.WithTimeout(ctx, p.t.cfg.DialTimeout)
			err := tc.HandshakeContext(hctx)
			hcancel()
			if err != nil {
				conn.Close()
				return nil, time.Time{}, fmt.Errorf("TLS handshake: %w", err)
			}
			conn = tc
		}
	}
	var hello [helloLen]byte
	copy(hello[:4], transportMagic[:])
	hello[4] = transportVersion
	binary.BigEndian.PutUint32(hello[5:9], uint32(p.t.cfg.NodeID))
	binary.BigEndian.PutUint32(hello[9:13], uint32(p.id))
	conn.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout))
	if _, err := conn.Write(hello[:]); err != nil {
		conn.Close()
		return nil, time.Time{}, err
	}
	renewAt, err = p.login(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, time.Time{}, err
	}
	return conn, renewAt, nil
}

// login logs a new connection in after its hello when the peer's listener
// has SASL, bounded like a dial, and returns when the session must be
// renewed (zero: never).
func (p *peer) login(ctx context.Context, conn net.Conn) (time.Time, error) {
	if p.t.cfg.ClientSASL == nil {
		return time.Time{}, nil
	}
	mech := p.t.cfg.ClientSASL(p.id)
	if mech == nil {
		return time.Time{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.t.cfg.DialTimeout)
	defer cancel()
	conn.SetDeadline(time.Now().Add(p.t.cfg.DialTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	host, _, _ := net.SplitHostPort(p.addr)
	// The server writes nothing after the last SaslAuthenticate answer,
	// so the reader holds nothing the raft side would miss.
	rt := sasl.FrameRoundTrip(conn, bufio.NewReader(conn), fmt.Sprintf("raft-%d", p.t.cfg.NodeID))
	renewAt, err := sasl.Login(ctx, rt, mech, host, time.Now())
	if !stop() || err != nil {
		if err == nil {
			err = ctx.Err()
		}
		return time.Time{}, fmt.Errorf("SASL login: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return renewAt, nil
}

// errSessionRenewal ends a connection whose SASL session is due for
// renewal: the peer is redialled and logs in again.
var errSessionRenewal = errors.New("SASL session due for renewal")

// write sends queued frames until stopped (nil), the connection fails or
// renewAt (if set) comes. Frames are buffered and flushed when the queue
// runs dry.
func (p *peer) write(conn net.Conn, renewAt time.Time) error {
	var renew <-chan time.Time
	if !renewAt.IsZero() {
		tm := time.NewTimer(time.Until(renewAt))
		defer tm.Stop()
		renew = tm.C
	}
	// Detect a peer that closed its side, so that the next message is not
	// lost into a dead socket first.
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		if err == nil {
			err = io.EOF
		}
		readErr <- err
	}()
	bw := bufio.NewWriterSize(conn, 64<<10)
	var hdr [4]byte
	var snaps int // snapshots written but not yet flushed
	flush := func() error {
		if bw.Buffered() == 0 {
			return nil
		}
		conn.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		for ; snaps > 0; snaps-- {
			if h := p.t.node(); h != nil {
				h.ReportSnapshot(p.id, true)
			}
		}
		return nil
	}
	fail := func(err error) error {
		for ; snaps > 0; snaps-- {
			p.t.unreachable(p.id, true)
		}
		return err
	}
	for {
		var m outMsg
		select {
		case m = <-p.queue:
		default:
			if err := flush(); err != nil {
				return fail(err)
			}
			select {
			case m = <-p.queue:
			case err := <-readErr:
				return fail(err)
			case <-renew:
				return fail(errSessionRenewal)
			case <-p.stopC:
				return nil
			}
		}
		if m.snap {
			snaps++
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(len(m.frame)))
		conn.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout))
		if _, err := bw.Write(hdr[:]); err != nil {
			return fail(err)
		}
		if _, err := bw.Write(m.frame); err != nil {
			return fail(err)
		}
		if m.snap {
			// Report a snapshot once it has left this process.
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
}

func (t *TCPTransport) accept() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Warn("controller listener accept failed", "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		if !t.track(conn) {
			conn.Close()
			return
		}
		go t.serve(conn, true, t.cfg.Login)
	}
}

// serve reads one inbound connection; own says it was accepted on the
// transport's listener, whose TLS handshake it runs first. login, if set,
// authenticates the sender before its hello is accepted.
func (t *TCPTransport) serve(raw net.Conn, own bool, login Login) {
	defer t.wg.Done()
	defer func() {
		raw.Close()
		t.mu.Lock()
		delete(t.conns, raw)
		t.mu.Unlock()
	}()
	conn := raw
	raw.SetReadDeadline(time.Now().Add(helloTimeout))
	if own && t.cfg.ServerTLS != nil {
		tc := tls.Server(raw, t.cfg.ServerTLS)
		ctx, cancel := context.WithTimeout(t.ctx, helloTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			t.log.Debug("closing controller connection: TLS handshake failed", "remote", raw.RemoteAddr(), "err", err)
			return
		}
		conn = tc
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	if magic, err := br.Peek(len(transportMagic)); err != nil {
		return
	} else if [4]byte(magic) != transportMagic && t.cfg.Foreign != nil {
		raw.SetReadDeadline(time.Time{})
		t.cfg.Foreign(buffered(conn, br))
		return
	}
	var hello [helloLen]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return
	}
	from := int32(binary.BigEndian.Uint32(hello[5:9]))
	to := int32(binary.BigEndian.Uint32(hello[9:13]))
	if [4]byte(hello[:4]) != transportMagic || hello[4] != transportVersion {
		t.log.Warn("closing controller connection: not a raft transport hello", "remote", conn.RemoteAddr())
		return
	}
	var sessionEnd time.Time
	if login != nil {
		var err error
		if sessionEnd, err = login(buffered(conn, br)); err != nil {
			t.log.Warn("closing raft connection: its SASL login was refused; the sending node's controller credentials (sasl.mechanism.controller.protocol and its JAAS login) must be valid here and its principal allowed CLUSTER_ACTION on the cluster (super.users or an ACL)",
				"remote", conn.RemoteAddr(), "from", from, "err", err)
			return
		}
	}
	if to != t.cfg.NodeID || !t.isPeer(from) {
		t.log.Warn("closing controller connection from an unknown node", "remote", conn.RemoteAddr(), "from", from, "to", to)
		return
	}
	// A session with a lifetime ends the connection when it runs out
	// (KIP-368): the sender logs in again on a new one before then.
	conn.SetReadDeadline(sessionEnd)
	// A peer that reconnects replaces its previous connection.
	t.mu.Lock()
	if old, ok := t.inbound[from]; ok {
		old.Close()
	}
	t.inbound[from] = conn
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == conn {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
	}()

	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if !sessionEnd.IsZero() && isTimeout(err) {
				t.log.Info("closing raft connection: its SASL session expired (connections.max.reauth.ms) without the sender logging in again", "from", from)
			}
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if uint64(n) > uint64(t.cfg.MaxFrameBytes) {
			t.log.Warn("closing controller connection: frame too large", "from", from, "bytes", n, "max", t.cfg.MaxFrameBytes)
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(buf, m); err != nil {
			t.log.Warn("closing controller connection: undecodable frame", "from", from, "err", err)
			return
		}
		if m.GetFrom() != raftID(from) || m.GetTo() != raftID(t.cfg.NodeID) {
			t.log.Debug("dropping misaddressed raft message", "from", from, "msg_from", nodeID(m.GetFrom()), "msg_to", nodeID(m.GetTo()))
			continue
		}
		h := t.node()
		if h == nil {
			continue
		}
		if err := h.Step(t.ctx, m); err != nil {
			if t.ctx.Err() != nil {
				return
			}
			// The node is closed; keep draining so the peer's sender does
			// not stall, until the transport closes too.
		}
	}
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// bufferedTLSConn is a bufferedConn over TLS. It keeps the handshake's
// outcome visible to the server the connection is handed to, which must
// not run the handshake again and may take a principal from the client
// certificate.
type bufferedTLSConn struct {
	bufferedConn
	tc *tls.Conn
}

// ConnectionState is the TLS state of the connection, as tls.Conn's.
func (c *bufferedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// buffered wraps conn, whose first bytes r has read.
func buffered(conn net.Conn, r *bufio.Reader) net.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		return &bufferedTLSConn{bufferedConn: bufferedConn{Conn: tc, r: r}, tc: tc}
	}
	return &bufferedConn{Conn: conn, r: r}
}

// PeekHelloTLS reports whether a connection that has run its TLS
// handshake opens with the transport's hello, and returns the connection
// to hand on (to ServeConn or a Kafka server): the bytes looked at are
// buffered in it, and it implements ConnectionState. It waits for the
// first bytes; close tc or set a read deadline to stop it.
func PeekHelloTLS(tc *tls.Conn) (bool, net.Conn, error) {
	br := bufio.NewReaderSize(tc, 64<<10)
	magic, err := br.Peek(len(transportMagic))
	if err != nil {
		return false, nil, err
	}
	return [4]byte(magic) == transportMagic, buffered(tc, br), nil
}

// PeekHello reports whether conn opens with the transport's hello, without
// consuming anything: the connection is handed on intact either way. It
// waits for the first bytes; close conn or set a read deadline to stop
// it. Where peeking is not supported it reports false.
func PeekHello(conn net.Conn) (bool, error) { return peekHello(conn) }

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
