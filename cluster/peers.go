package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/raftmeta"
)

// Lock order of the peer client: Pool.mu, then peerConn.mu. Pool.mu only
// guards the map of connections and is never held across I/O; a
// peerConn.mu is held for one whole round trip, so requests on one
// connection go one at a time and a response always pairs with its request.

// interBrokerClientPrefix starts the client id of every request one node
// sends another. A node never forwards such a request again, so two nodes
// that disagree on who the controller is cannot bounce a request between
// them.
const interBrokerClientPrefix = "shoal-broker-"

// IsInterBrokerClientID reports whether a request with this client id came
// from another shoal node (through a Pool).
func IsInterBrokerClientID(clientID string) bool {
	return strings.HasPrefix(clientID, interBrokerClientPrefix)
}

// ErrNoPeerAddress means the target node has no registered endpoint yet.
var ErrNoPeerAddress = errors.New("node has no registered endpoint")

// Lane separates the pool's connections to one node by purpose: requests
// on one lane wait for each other, requests on different lanes do not, so
// a share-state write never queues behind a slow admin request, and a
// heartbeat never behind either. (A follower's fetcher, whose long polls
// would hold up anything behind them, has a connection of its own: Dial.)
type Lane uint8

const (
	// LaneShare carries share-state RPCs to a share coordinator and
	// dead-letter writes to a partition leader.
	LaneShare Lane = iota

	// LaneTxn carries a transaction coordinator's WriteTxnMarkers to
	// partition leaders.
	LaneTxn

	// The controller lanes dial a voter's controller listener (its
	// address in controller.quorum.voters) instead of its broker
	// endpoint: the active controller need not be a broker.
	laneControllerAdmin
	laneControllerHeartbeat
	laneControllerISR

	// laneOwn marks a Conn's route: a broker endpoint, outside the map.
	laneOwn
)

// toController reports whether the lane dials controller listeners.
func (l Lane) toController() bool {
	return l == laneControllerAdmin || l == laneControllerHeartbeat || l == laneControllerISR
}

// PoolConfig is what the peer client needs to know about this node and
// where the others are.
type PoolConfig struct {
	NodeID int32
	// Voters are the controller listeners, from controller.quorum.voters.
	Voters map[int32]string
	// InterBrokerListener names the listener brokers reach each other on
	// (inter.broker.listener.name).
	InterBrokerListener string
	// Image returns the newest metadata image, where brokers' endpoints
	// are registered.
	Image func() *raftmeta.Image
	// MaxResponseBytes bounds a response frame (socket.request.max.bytes):
	// a corrupt or hostile size prefix must not make this node allocate
	// without bound.
	MaxResponseBytes int32
	// Broker and Controller are the TLS and SASL the inter-broker and the
	// controller listeners ask of a connection; zero is PLAINTEXT.
	Broker, Controller PeerSecurity
}

// Pool is this node's one Kafka-protocol client to other nodes: every
// runtime that reaches another node (follower fetchers, the share runtime,
// the controller client) sends through it. It keeps one connection per
// node and lane, dialled on first use and again after any failure, and
// hands out connections their owner alone uses (Dial).
type Pool struct {
	cfg PoolConfig
	// formatter frames requests with this node's inter-broker client id.
	formatter *kmsg.RequestFormatter

	mu    sync.Mutex
	conns map[route]*peerConn
	// now is the wall clock SASL session lifetimes are measured on, as
	// the server measures them (tests move it).
	now func() time.Time
}

// route names one connection of the pool.
type route struct {
	node int32
	lane Lane
}

// NewPool returns a pool with no connections yet.
func NewPool(cfg PoolConfig) *Pool {
	clientID := interBrokerClientPrefix + strconv.Itoa(int(cfg.NodeID))
	return &Pool{cfg: cfg, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)), conns: map[route]*peerConn{}, now: time.Now}
}

// Peers is one lane of a Pool. Runtimes hold a Peers and see only
// Request, which is the whole of what they need from the cluster to talk to
// another node.
type Peers struct {
	pool *Pool
	lane Lane
}

// Peers returns the lane's view of the pool.
func (p *Pool) Peers(lane Lane) Peers { return Peers{pool: p, lane: lane} }

// Request sends req, at the version it carries, to node and returns the
// response. Any failure closes the connection; the next request dials
// again. When ctx ends, a blocked request returns ctx's error.
func (p Peers) Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	return p.pool.conn(route{node: node, lane: p.lane}).request(ctx, p.pool, req)
}

// Close drops every connection. A later request dials again.
func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[route]*peerConn{}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.mu.Lock()
		pc.dropLocked()
		pc.mu.Unlock()
	}
}

// Conn is a connection to one node's inter-broker endpoint that its owner
// alone uses: a follower's fetcher, whose long-polling fetches must wait
// behind nothing and must hold up nothing. It dials on first use and again
// after a failure.
type Conn struct {
	pool *Pool
	pc   peerConn
}

// Dial returns a connection of the caller's own to node; nothing is dialled
// before its first request. The caller closes it.
func (p *Pool) Dial(node int32) *Conn {
	return &Conn{pool: p, pc: peerConn{route: route{node: node, lane: laneOwn}}}
}

// Request sends req, at the version it carries, and returns the response,
// as Peers.Request does.
func (c *Conn) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.pc.request(ctx, c.pool, req)
}

// Close drops the connection.
func (c *Conn) Close() {
	c.pc.mu.Lock()
	defer c.pc.mu.Unlock()
	c.pc.dropLocked()
}

func (p *Pool) conn(r route) *peerConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.conns[r]
	if pc == nil {
		pc = &peerConn{route: r}
		p.conns[r] = pc
	}
	return pc
}

// target is where a route dials: the controller listener of a voter, or the
// inter-broker endpoint of a broker.
func (p *Pool) target(r route) (string, error) {
	if r.lane.toController() {
		if a, ok := p.cfg.Voters[r.node]; ok {
			return a, nil
		}
		return "", fmt.Errorf("node %d is not in controller.quorum.voters: %w", r.node, ErrNoPeerAddress)
	}
	return BrokerAddr(p.cfg.Image(), r.node, p.cfg.InterBrokerListener)
}

// BrokerAddr is the inter-broker endpoint of node id in img.
func BrokerAddr(img *raftmeta.Image, id int32, interBrokerListener string) (string, error) {
	b := img.Brokers[id]
	if b != nil {
		if addr, ok := EndpointAddr(b.Endpoints, interBrokerListener); ok {
			return addr, nil
		}
	}
	return "", fmt.Errorf("node %d: %w", id, ErrNoPeerAddress)
}

// EndpointAddr picks the inter-broker endpoint among a broker's endpoints:
// the one on interBrokerListener, else the first. It answers false when
// there is none.
func EndpointAddr(eps []raftmeta.Endpoint, interBrokerListener string) (string, bool) {
	if len(eps) == 0 {
		return "", false
	}
	ep := eps[0]
	for _, e := range eps {
		if e.Listener == interBrokerListener {
			ep = e
		}
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))), true
}

// peerConn is one connection of the pool. mu is held for a whole round
// trip.
type peerConn struct {
	route route

	mu   sync.Mutex
	nc   net.Conn
	r    *bufio.Reader
	addr string
	corr int32
	// wbuf is reused for every request frame sent on the connection.
	wbuf []byte
	// renewAt is when the connection's SASL session must be renewed
	// (KIP-368); zero never.
	renewAt time.Time
}

func (pc *peerConn) dropLocked() {
	if pc.nc != nil {
		pc.nc.Close()
		pc.nc, pc.r = nil, nil
	}
}

// peerDialTimeout bounds connecting to another node.
const peerDialTimeout = 2 * time.Second

// security is what the listener r dials asks of a connection.
func (p *Pool) security(r route) PeerSecurity {
	if r.lane.toController() {
		return p.cfg.Controller
	}
	return p.cfg.Broker
}

// dial connects to addr, the target of r, bounded by peerDialTimeout.
func (p *Pool) dial(ctx context.Context, r route, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	if sec := p.security(r); sec.TLS != nil {
		return DialTLS(ctx, addr, sec.TLS)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return nc, nil
}

func (pc *peerConn) request(ctx context.Context, p *Pool, req kmsg.Request) (kmsg.Response, error) {
	addr, err := p.target(pc.route)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.nc != nil && pc.addr != addr {
		// The node registered again elsewhere.
		pc.dropLocked()
	}
	if pc.nc != nil && !pc.renewAt.IsZero() && p.now().After(pc.renewAt) {
		// The SASL session is near its end: log in afresh.
		pc.dropLocked()
	}
	if pc.nc == nil {
		if err := pc.connectLocked(ctx, p, addr); err != nil {
			return nil, err
		}
	}
	resp, err := pc.exchangeLocked(ctx, p, req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// connectLocked dials addr and, on a SASL listener, logs the connection
// in. pc.mu is held.
func (pc *peerConn) connectLocked(ctx context.Context, p *Pool, addr string) error {
	nc, err := p.dial(ctx, pc.route, addr)
	if err != nil {
		return err
	}
	pc.nc, pc.r, pc.addr, pc.renewAt = nc, bufio.NewReaderSize(nc, 64*1024), addr, time.Time{}
	mech := p.security(pc.route).SASL
	if mech == nil {
		return nil
	}
	// The login is bounded like a dial: a node that accepts the
	// connection but never answers must not hold the lane.
	authCtx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	nc.SetDeadline(time.Now().Add(peerDialTimeout))
	stop := context.AfterFunc(authCtx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	renew, err := pc.authenticateLocked(authCtx, p, mech)
	if err != nil {
		pc.dropLocked()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("logging in to node %d: %w", pc.route.node, err)
	}
	pc.renewAt = renew
	return nil
}

// exchangeLocked sends req and reads its response within ctx; a failure
// drops the connection. pc.mu is held.
func (pc *peerConn) exchangeLocked(ctx context.Context, p *Pool, req kmsg.Request) (kmsg.Response, error) {
	// Socket deadlines are on the wall clock (time.Now), whatever clock
	// the node is given: the kernel measures them so. The connection's
	// deadline is pulled to now when ctx ends, so a blocked read returns.
	nc := pc.nc
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	resp, err := pc.roundTrip(p, req)
	if err != nil {
		pc.dropLocked()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return resp, nil
}

func (pc *peerConn) roundTrip(p *Pool, req kmsg.Request) (kmsg.Response, error) {
	pc.corr++
	corr := pc.corr
	pc.wbuf = p.formatter.AppendRequest(pc.wbuf[:0], req, corr)
	if _, err := pc.nc.Write(pc.wbuf); err != nil {
		return nil, err
	}
	var sizeBuf [4]byte
	if _, err := io.ReadFull(pc.r, sizeBuf[:]); err != nil {
		return nil, err
	}
	node := pc.route.node
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 4 || size > p.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("response frame of %d bytes from node %d", size, node)
	}
	// A fresh frame per response: the decoded response's byte fields
	// (record batches) point into it.
	frame := make([]byte, size)
	if _, err := io.ReadFull(pc.r, frame); err != nil {
		return nil, err
	}
	resp, err := decodeResponse(req, frame, corr)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", node, err)
	}
	return resp, nil
}

// decodeResponse decodes a response frame (without its size) to req: the
// correlation id, which must be corr, the header's tagged fields, the body.
func decodeResponse(req kmsg.Request, frame []byte, corr int32) (kmsg.Response, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("a %d-byte response frame", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("answered correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	// Every flexible response header ends with tagged fields, except
	// ApiVersions' (KIP-511: a client must read it before it knows the
	// version).
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		// Each tag takes two bytes at least: a larger count is malformed,
		// and refusing it bounds SkipTags' loop by the frame.
		n, w := binary.Uvarint(body)
		tr := tagReader{b: body}
		if w > 0 && n <= uint64(len(body)) {
			kmsg.SkipTags(&tr)
		} else {
			tr.failed = true
		}
		if tr.failed {
			return nil, errors.New("malformed response header tags")
		}
		body = tr.b
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// tagReader reads a response header's tagged fields for kmsg.SkipTags.
type tagReader struct {
	b      []byte
	failed bool
}

func (t *tagReader) Uvarint() uint32 {
	v, n := binary.Uvarint(t.b)
	if n <= 0 || v > 1<<31 || t.failed {
		t.failed, t.b = true, nil
		return 0
	}
	t.b = t.b[n:]
	return uint32(v)
}

func (t *tagReader) Span(n int) []byte {
	if n < 0 || n > len(t.b) || t.failed {
		t.failed, t.b = true, nil
		return nil
	}
	s := t.b[:n]
	t.b = t.b[n:]
	return s
}
