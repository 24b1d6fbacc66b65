package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shoalmq/shoal/acl"
	"github.com/shoalmq/shoal/log"
	"github.com/shoalmq/shoal/raftmeta"
	"github.com/shoalmq/shoal/sasl"
)

// maxInFlight bounds how many requests of one connection are decoded and
// handled at once. Kafka clients pipeline a handful (kgo: 5 produce requests
// per broker, plus fetches and admin calls); past this the reader stops
// reading, which pushes back on the client through TCP.
const maxInFlight = 32

// requestHeader is the Kafka request header (v1 for non-flexible requests, v2
// with tagged fields for flexible ones).
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

// minHeaderBytes is the shortest request header: api key, version,
// correlation id and the client id's length.
const minHeaderBytes = 10

// errMalformed marks input that breaks the framing; the connection closes.
var errMalformed = errors.New("malformed request")

// errUnsupportedVersion marks a request for an API or version this broker
// does not serve; the connection closes, as in Kafka.
var errUnsupportedVersion = errors.New("unsupported version")

// parseHeader reads the fixed header fields and returns the rest of the
// frame: the tagged fields of a flexible header are skipped once the caller
// knows, from the API's version table, whether the request is flexible.
func parseHeader(frame []byte) (requestHeader, []byte, error) {
	var h requestHeader
	if len(frame) < minHeaderBytes {
		return h, nil, fmt.Errorf("%w: %d-byte frame is shorter than a request header", errMalformed, len(frame))
	}
	h.key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n > 0 {
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id length %d exceeds the frame", errMalformed, n)
		}
		h.clientID = string(rest[:n])
		rest = rest[n:]
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section (KIP-482): a uvarint count, then for
// each a uvarint tag, a uvarint size and that many bytes.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, fmt.Errorf("%w: bad tagged field count", errMalformed)
	}
	b = b[w:]
	for i := uint64(0); i < n; i++ {
		if _, w = binary.Uvarint(b); w <= 0 {
			return nil, fmt.Errorf("%w: bad tag", errMalformed)
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, fmt.Errorf("%w: bad tag size", errMalformed)
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// conn serves one client connection. One goroutine reads frames and runs
// their handlers in request order (see dispatch); the responses go out
// strictly in request order, as Kafka clients require. A response ready
// when nothing before it is still to be written is written by the reader
// itself (see answer); the others go to a second goroutine, the writer,
// which also runs the waiting tail of a request (a long poll, acks=all), so
// a long-polling fetch does not hold up the requests behind it.
type conn struct {
	srv *Server
	// listener is the name of the listener the client connected to.
	listener string
	// apis are the APIs served on that listener (see apiTables).
	apis   map[int16]api
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	// plainTCP is set (by serve, once any TLS handshake has replaced the
	// socket) on a TCP connection without TLS: fetch responses
	// go out with writev, and (sendFiles) their record sets from the
	// segment files with sendfile. TLS must seal every byte, so it gets
	// them copied.
	plainTCP, sendFiles bool

	// pending carries to the writer, in request order, the slot each
	// queued response is delivered to; its capacity is the in-flight
	// bound.
	pending chan *slot
	// out buffers the responses on their way to the socket. wmu guards it
	// and every write to the socket: the writer holds it while it writes,
	// the reader while it writes a response of its own (answer). Neither
	// holds it while waiting for anything but the socket; the only lock
	// taken under it is a segment's sendMu, as a sent response lets go of
	// its files.
	wmu sync.Mutex
	out *bufio.Writer

	// inFlight counts requests read and not yet answered (written, or
	// abandoned): while the reader handles a request, 1 means no earlier
	// response is still to be written. lastActive
	// (unix ns) is when a request last arrived or a response was last
	// written, by the wall clock the socket deadlines use. Together they
	// decide when the connection is idle.
	inFlight   atomic.Int64
	lastActive atomic.Int64
	// mutedUntil (unix ns, wall clock) is when a client throttled by its
	// quota may send again: the reader takes no request before it.
	mutedUntil atomic.Int64

	// heartbeatFrom is the broker whose heartbeats arrive on this
	// connection, if any: the controller checks that broker is still
	// running when the connection closes.
	heartbeatFrom atomic.Pointer[raftmeta.BrokerProbe]

	// auth is the listener's security. sasl is the connection's SASL
	// session on a SASL listener (reader goroutine only). principal is who
	// the connection authenticated as (ANONYMOUS without authentication);
	// it is set on the reader goroutine before any request that could
	// read it is dispatched, and re-authentication cannot change it.
	// host is the peer's IP, as ACLs name hosts.
	auth      *listenerAuth
	sasl      *sasl.Session
	principal acl.Principal
	host      string
	// authenticated is set once the first SASL exchange succeeds (the
	// authentication timer reads it).
	authenticated atomic.Bool
	// closeAfterAnswer asks dispatch to stop reading once the current
	// answer is delivered: a failed authentication.
	closeAfterAnswer bool
	// forwarded marks the connection a request carried in an Envelope
	// runs on (forwardedFor): it is handled here, never forwarded again.
	forwarded bool
}

// slot receives the outcome of one request queued for the writer: its
// encoded response (nil means no response: acks=0 produce), or the wait to
// run before the response is ready; a closed channel without value means
// close the connection.
type slot struct {
	done chan outcome
	// held is the request memory charged for the request (see reqmem.go),
	// released once its response is written or abandoned.
	held reservation
}

// outcome is what a slot receives: a response, or a wait that the writer
// runs when the slot's turn comes and that then delivers the response to
// the same slot.
type outcome struct {
	resp net.Buffers
	// files are record sets sent from their segment files, in the order
	// of the nil pieces of resp they stand for (fetchEncoder).
	files []log.FileSlice
	wait  func()
}

// release lets go of the segment files of an outcome once it is sent or
// will never be.
func (o *outcome) release() {
	for i := range o.files {
		o.files[i].Release()
	}
}

func newConn(s *Server, nc net.Conn, listener string) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		srv:      s,
		listener: listener,
		apis:     s.apis.forListener(s, listener),
		nc:       nc,
		log:      s.log.With("remote", nc.RemoteAddr().String()),
		ctx:      ctx,
		cancel:   cancel,
		pending:  make(chan *slot, maxInFlight),

		auth:      s.sec.listener(listener),
		principal: acl.Anonymous,
		host:      hostOf(nc),
	}
	c.newSASLSession()
	c.lastActive.Store(time.Now().UnixNano())
	return c
}

func (c *conn) serve() {
	defer c.nc.Close()
	if err := c.authenticateTLS(); err != nil {
		c.logClosed(err)
		c.cancel()
		return
	}
	// Only now is the socket final: a TLS listener's connection arrives
	// as TCP and authenticateTLS replaces it by the TLS one.
	_, c.plainTCP = c.nc.(*net.TCPConn)
	c.sendFiles = c.plainTCP && canSendFile
	c.out = bufio.NewWriterSize(c.nc, 64*1024)
	defer c.startAuthTimer()()
	// Closing the socket is what unblocks the reader when the server
	// shuts down (or the writer gives up).
	go func() {
		<-c.ctx.Done()
		c.nc.Close()
	}()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	// The peer may be gone: say so before waiting for the writer, which
	// may be behind a long poll.
	c.peerClosed()
	close(c.pending)
	c.logClosed(err)
	<-writerDone
	c.cancel()
	// A share session lives as long as the connection that opened it.
	if c.srv.shares != nil {
		c.srv.shares.OnConnClose(c)
	}

}

// readLoop reads frames and dispatches them until the connection fails or
// the broker ends it: past connections.max.idle.ms with nothing in flight,
// or when a frame takes longer than socket.request.read.timeout.ms to
// arrive. Each frame is charged to the broker's request memory before its
// body is read (see reqmem.go), and released when its response is written.
func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64*1024)
	cfg := c.srv.cfg
	for {
		if err := c.waitMuted(); err != nil {
			return err
		}
		size, started, err := c.readSize(r)
		if err != nil {
			return err
		}
		if size < 0 || size > cfg.SocketRequestMaxBytes {
			return fmt.Errorf("%w: frame of %d bytes exceeds socket.request.max.bytes (%d)", errMalformed, size, cfg.SocketRequestMaxBytes)
		}
		// Refuse what the header alone condemns (an API this listener
		// does not serve, a frame too large to decode safely) before
		// reserving or reading the body.
		c.nc.SetReadDeadline(started.Add(cfg.RequestReadTimeout))
		head, err := r.Peek(min(int(size), 10))
		if err == nil {
			err = c.checkHeader(head, size)
		}
		if err != nil {
			return c.readFailed(err, size)
		}
		var held reservation
		if err := c.srv.reqMem.acquire(c.ctx, &held, int64(size)); err != nil {
			return err
		}
		// The time spent waiting for memory is the broker's, not the
		// client's: the deadline counts from here.
		if now := time.Now(); now.After(started) {
			started = now
		}
		c.nc.SetReadDeadline(started.Add(cfg.RequestReadTimeout))
		frame, err := readFrame(r, int(size))
		if err == nil {
			var extra int64
			if extra, err = c.decodeCharge(frame); err == nil {
				err = c.srv.reqMem.acquire(c.ctx, &held, extra)
			}
		}
		if err != nil {
			c.srv.reqMem.release(&held)
			return c.readFailed(err, size)
		}
		// A throttle set while this frame arrived (a fetch answered
		// meanwhile) holds it back too.
		if err := c.waitMuted(); err != nil {
			c.srv.reqMem.release(&held)
			return err
		}
		c.lastActive.Store(time.Now().UnixNano())
		sl := &slot{done: make(chan outcome, 1), held: held}
		c.inFlight.Add(1)
		out, answered, err := c.dispatch(frame, sl)
		if !answered {
			// The writer writes what came before, then abandons the
			// connection at this slot.
			close(sl.done)
			if qerr := c.enqueue(sl); qerr != nil {
				return qerr
			}
			return err
		}
		if aerr := c.answer(r, sl, out); aerr != nil {
			return aerr
		}
		if err != nil {
			return err
		}
	}
}

// answer sends a request's outcome on its way, in request order. A response
// that is ready (no wait) when every earlier response is written, and with
// no further request already read into the buffer, is written and flushed
// by the reader itself: handing it to the writer goroutine would cost a
// wake-up of that goroutine on the round trip of every request a client
// sends and awaits (on this loopback, about as long as the round trip
// itself). The rest is queued for the writer, which also puts the
// responses of pipelined requests into shared syscalls.
func (c *conn) answer(r *bufio.Reader, sl *slot, out outcome) error {
	if out.wait == nil && c.inFlight.Load() == 1 && r.Buffered() == 0 {
		c.wmu.Lock()
		err := c.writeOutcome(out)
		if err == nil {
			err = c.out.Flush()
		}
		c.wmu.Unlock()
		c.finished(sl)
		return err
	}
	sl.done <- out
	return c.enqueue(sl)
}

// enqueue hands a slot to the writer, waiting while the in-flight bound is
// reached.
func (c *conn) enqueue(sl *slot) error {
	select {
	case c.pending <- sl:
		return nil
	case <-c.ctx.Done():
		select {
		case out := <-sl.done:
			out.release()
		default:
		}
		c.finished(sl)
		return c.ctx.Err()
	}
}

// readFailed is the error that ends the connection when reading a frame of
// size bytes failed with err, counting a read timeout.
func (c *conn) readFailed(err error, size int32) error {
	if !isTimeout(err) {
		return err
	}
	c.srv.metrics.conns.closed.WithLabelValues(closedReadTimeout).Inc()
	return fmt.Errorf("%w: a %d-byte request did not arrive within socket.request.read.timeout.ms (%v)", errRequestReadTimeout, size, c.srv.cfg.RequestReadTimeout)
}

// checkHeader refuses a frame from its first bytes: an API or version this
// listener does not serve (decodeRequest would refuse it after reading it
// all) or, for APIs other than Produce, a size whose worst-case decode
// exceeds socket.request.max.bytes. ApiVersions is always let through: an
// unknown version of it gets an answer (KIP-511).
func (c *conn) checkHeader(head []byte, size int32) error {
	if len(head) < 4 || size < minHeaderBytes {
		return nil // too short for a header: decodeRequest says so
	}
	key, version := int16(binary.BigEndian.Uint16(head)), int16(binary.BigEndian.Uint16(head[2:]))
	if err := c.admitRequest(key, size); err != nil {
		return err
	}
	if key == apiVersionsKey {
		return nil
	}
	api, ok := c.apis[key]
	if !ok || version < api.min || version > api.max {
		return fmt.Errorf("%w: %s (key %d) v%d is not supported", errUnsupportedVersion, kmsg.NameForKey(key), key, version)
	}
	if key == produceKey {
		return nil // walked once read (see produceCharge)
	}
	// The frame's size bounds its body's.
	_, err := expansionCharge(key, int(size), int64(c.srv.cfg.SocketRequestMaxBytes))
	return err
}

// errIdleTimeout and errRequestReadTimeout mark a connection the broker
// ended for a limit: no request for connections.max.idle.ms, or a request
// that started arriving and did not finish within
// socket.request.read.timeout.ms.
var (
	errIdleTimeout        = errors.New("connection idle")
	errRequestReadTimeout = errors.New("request read timed out")
)

// readSize reads the next frame's 4-byte size. Before its first byte
// arrives the connection is idle: it is closed after connections.max.idle.ms
// with no request in flight and nothing written. Once a byte has arrived
// the frame has started, and the rest of it must arrive within
// socket.request.read.timeout.ms. started is when the first byte came.
func (c *conn) readSize(r *bufio.Reader) (size int32, started time.Time, err error) {
	cfg := c.srv.cfg
	var buf [4]byte
	n := 0
	for n < 4 {
		var deadline time.Time
		switch {
		case n > 0:
			deadline = started.Add(cfg.RequestReadTimeout)
		case cfg.ConnectionsMaxIdle > 0:
			deadline = time.Unix(0, c.lastActive.Load()).Add(cfg.ConnectionsMaxIdle)
		}
		c.nc.SetReadDeadline(deadline)
		m, err := r.Read(buf[n:])
		if m > 0 && n == 0 {
			started = time.Now()
		}
		n += m
		if err == nil {
			continue
		}
		if !isTimeout(err) {
			return 0, started, err
		}
		if n > 0 {
			c.srv.metrics.conns.closed.WithLabelValues(closedReadTimeout).Inc()
			return 0, started, fmt.Errorf("%w: a request did not arrive within socket.request.read.timeout.ms (%v)", errRequestReadTimeout, cfg.RequestReadTimeout)
		}
		// Idle only if nothing is in flight and nothing was written
		// meanwhile (a long poll answering counts as activity).
		idleSince := time.Unix(0, c.lastActive.Load())
		if c.inFlight.Load() == 0 && time.Since(idleSince) >= cfg.ConnectionsMaxIdle {
			c.srv.metrics.conns.closed.WithLabelValues(closedIdle).Inc()
			return 0, started, fmt.Errorf("%w for connections.max.idle.ms (%v)", errIdleTimeout, cfg.ConnectionsMaxIdle)
		}
		if c.inFlight.Load() > 0 {
			// Busy: look again after another idle period.
			c.lastActive.Store(time.Now().UnixNano())
		}
	}
	return int32(binary.BigEndian.Uint32(buf[:])), started, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readFrame reads a size-byte frame into a buffer that starts at 64 KiB and
// doubles as the bytes arrive, so a client that announces a large frame and
// sends little of it holds little memory (at most twice what it sent).
func readFrame(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, min(size, 64<<10))
	off := 0
	for {
		n, err := io.ReadFull(r, buf[off:])
		off += n
		if err != nil {
			return nil, err
		}
		if off == size {
			return buf, nil
		}
		grown := make([]byte, min(size, 2*len(buf)))
		copy(grown, buf)
		buf = grown
	}
}

// decodeCharge is what decoding frame may allocate beyond the frame (see
// reqmem.go). A frame too short for a header is left to the decoder.
func (c *conn) decodeCharge(frame []byte) (int64, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return 0, nil
	}
	api, ok := c.apis[h.key]
	if !ok || h.version < api.min || h.version > api.max {
		return 0, nil
	}
	if v, ok := flexibleSince()[h.key]; ok && h.version >= v {
		if body, err = skipTags(body); err != nil {
			return 0, err
		}
	}
	return decodeCharge(h.key, h.version, body, int64(c.srv.cfg.SocketRequestMaxBytes))
}

// flexibleSince maps each API key kmsg knows to its first flexible version
// (KIP-482), so charging a request needs no throwaway request struct.
var flexibleSince = sync.OnceValue(func() map[int16]int16 {
	m := make(map[int16]int16)
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		req := kmsg.RequestForKey(k)
		if req == nil {
			continue
		}
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				m[k] = v
				break
			}
		}
	}
	return m
})

// finished releases what a request held once its response is written or
// abandoned.
func (c *conn) finished(sl *slot) {
	c.srv.reqMem.release(&sl.held)
	c.inFlight.Add(-1)
	c.lastActive.Store(time.Now().UnixNano())
}

func (c *conn) writeLoop() {
	var err error
	// The slot being answered, whose outcome may not be taken yet when
	// the writer gives up.
	var sl *slot
	for {
		// Flush whenever the next thing to write is not ready yet, so a
		// response never waits in the buffer behind a slow one (a long
		// poll) while pipelined ready responses still share a syscall.
		sl = nil
		ok := true
		select {
		case sl, ok = <-c.pending:
		default:
			if err = c.flush(); err == nil {
				sl, ok = <-c.pending
			}
		}
		if err != nil || !ok {
			break
		}
		var out outcome
		select {
		case out, ok = <-sl.done:
		default:
			if err = c.flush(); err == nil {
				out, ok = <-sl.done
			}
		}
		if err == nil && ok && out.wait != nil {
			// The slot's request waits (a long poll, acks=all): run
			// the wait here, with what is buffered sent first, and
			// write its response as soon as it delivers. The writer
			// would block on this slot anyway, and a parked fetch
			// woken by an append goes straight to the socket instead
			// of through another goroutine.
			if err = c.flush(); err == nil {
				out.wait()
				out, ok = <-sl.done
			}
		}
		if err != nil || !ok {
			c.finished(sl)
			if err == nil {
				err = errAbandon
			}
			break
		}
		c.wmu.Lock()
		err = c.writeOutcome(out)
		c.wmu.Unlock()
		c.finished(sl)
		if err != nil {
			break
		}
	}
	if err == nil {
		c.flush()
		return
	}
	// Abandon the connection: unblock the reader and drain the slots it
	// already queued.
	c.cancel()
	c.nc.Close()
	dropped := []*slot{sl}
	for queued := range c.pending {
		c.finished(queued)
		dropped = append(dropped, queued)
	}
	// The reader has stopped (it closed pending), so what it answered is
	// in the slots now: let go of the files of fetch responses never sent.
	for _, d := range dropped {
		if d == nil {
			continue
		}
		select {
		case out := <-d.done:
			out.release()
		default:
		}
	}
}

// flush sends what is buffered for the socket.
func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.out.Flush()
}

// writeOutcome writes one response: into the buffer, or, for a fetch
// response with its record data in pieces of its own, what is buffered and
// then the pieces, with writev (plain TCP) or sendfile for the record sets
// that stay in their segment files. A TLS connection has no writev: each
// Write is sealed as records of its own and sent with a syscall of its
// own, so there the small pieces between the record data (a length, a
// partition header) go through the buffer to share records with their
// neighbours. c.wmu held.
func (c *conn) writeOutcome(out outcome) error {
	w := c.out
	switch resp := out.resp; {
	case len(out.files) > 0:
		defer out.release()
		if err := w.Flush(); err != nil {
			return err
		}
		return c.sendFrame(resp, out.files)
	case len(resp) == 0: // no response (acks=0)
		return nil
	case len(resp) == 1:
		_, err := w.Write(resp[0])
		return err
	case !c.plainTCP:
		for _, piece := range resp {
			if _, err := w.Write(piece); err != nil {
				return err
			}
		}
		return nil
	default:
		if err := w.Flush(); err != nil {
			return err
		}
		_, err := resp.WriteTo(c.nc)
		return err
	}
}

// errAbandon marks a handler that asked for the connection to be closed.
var errAbandon = errors.New("connection abandoned by handler")

// dispatch decodes one frame and runs its handler, on the reader goroutine.
// Decoding happens here so a malformed frame closes the connection before
// any later frame is read.
//
// Ordering rule. A connection's requests take effect in the order they were
// sent, and their responses go back in that order: Kafka processes one
// request of a connection at a time, and clients rely on it (an idempotent
// producer's pipelined batches, commits sent without awaiting the previous
// one, create-then-delete of a topic). So every handler runs here, one at a
// time; a handler that blocks blocks its connection, as in Kafka.
//
// A handler may instead return a wait function, which runs on the writer
// goroutine when the request's turn to be answered comes, while the reader
// moves on to the next request. (Kafka answers a connection's requests one
// at a time too: a wait could not end any sooner on a goroutine of its
// own, since its response is written after those before it.) A wait may only
// wait: for the replication or fsync of what the handler already appended
// (acks=all produce, share acknowledgements being persisted), for a
// rebalance to answer a JoinGroup or SyncGroup the handler already
// registered, or for data a long-polling Fetch or ShareFetch is parked on.
// It must not change state a later request of the connection can observe;
// the one exception is the long poll's own read, which sees what later
// requests appended (a produce behind a fetch wakes it) and, for a share
// fetch, acquires records only this response hands out. The response of a
// request with a wait still goes out in request order: the writer waits
// for its slot before writing later responses.
//
// dispatch returns the request's outcome (answered) or, when it has none,
// the error that ends the connection; an outcome may come with an error too
// (a failed authentication's answer), which ends the connection once the
// outcome is written.
func (c *conn) dispatch(frame []byte, sl *slot) (out outcome, answered bool, err error) {
	h, req, err := decodeRequest(c.apis, frame)
	if errors.Is(err, errUnsupportedApiVersions) {
		// KIP-511: answer an unknown ApiVersions version with v0 and the
		// error, so the client can retry with a version we know.
		return outcome{resp: net.Buffers{unsupportedApiVersions(h, c.apis)}}, true, nil
	}
	if err != nil {
		return outcome{}, false, err
	}
	rc := &reqCtx{conn: c, header: h, size: len(frame)}
	start, began := c.srv.now(), time.Now()
	resp, wait, err := c.process(rc, req)
	rc.busy += time.Since(began) - rc.remote
	if err != nil {
		// Stop reading: Kafka closes the connection without
		// processing what follows (an acks=0 produce that failed).
		return outcome{}, false, fmt.Errorf("%s: %w", kmsg.NameForKey(h.key), err)
	}
	if wait != nil {
		return outcome{wait: func() { c.finish(sl, rc, req, start, wait) }}, true, nil
	}
	out = c.deliver(rc, req, start, resp)
	if c.closeAfterAnswer {
		return out, true, errAuthentication
	}
	return out, true, nil
}

// process authorizes a request as the connection's principal (the whole
// request, then its items) and runs its handler on what is allowed. A
// refusal is the response, without a handler; a partly refused request's
// response gets the refused items' answers merged in, after the wait for
// Produce, Fetch and ShareFetch.
func (c *conn) process(rc *reqCtx, req kmsg.Request) (kmsg.Response, waitFunc, error) {
	if denied := c.authorizeRequest(rc, req); denied != nil {
		return denied, nil, nil
	}
	refused, merge := c.authorizeItems(req)
	if refused != nil {
		return refused, nil, nil
	}
	resp, wait, err := c.handle(rc, req)
	if merge == nil {
		return resp, wait, err
	}
	if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 && err == nil {
		// An acks=0 produce is never answered, so a topic the principal
		// may not write can only be refused by closing the connection,
		// as Kafka does; the topics it may write were appended.
		return nil, nil, errors.New("acks=0 produce to a topic the principal may not write; closing the connection")
	}
	if wait == nil && resp != nil {
		merge(resp)
	} else if wait != nil {
		handlerWait := wait
		wait = func() (kmsg.Response, error) {
			resp, err := handlerWait()
			if resp != nil {
				merge(resp)
			}
			return resp, err
		}
	}
	return resp, wait, err
}

// handle runs a request's handler; a panic becomes an error that closes the
// connection.
func (c *conn) handle(rc *reqCtx, req kmsg.Request) (resp kmsg.Response, wait waitFunc, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panic", "api", kmsg.NameForKey(req.Key()), "panic", r)
			resp, wait, err = nil, nil, fmt.Errorf("handler panic: %v", r)
		}
	}()
	return c.apis[rc.header.key].handle(c.ctx, rc, req)
}

// finish runs a request's wait and delivers the response to its slot; an
// error (or panic) closes the connection once the responses before it are
// written. It runs on the writer goroutine (see writeLoop), so a wait
// must never wait for a later request of its own connection to be
// answered.
func (c *conn) finish(sl *slot, rc *reqCtx, req kmsg.Request, start time.Time, wait waitFunc) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panic", "api", kmsg.NameForKey(req.Key()), "panic", r)
			close(sl.done)
		}
	}()
	resp, err := wait()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.log.Warn("request failed", "api", kmsg.NameForKey(req.Key()), "err", err)
		}
		close(sl.done)
		return
	}
	sl.done <- c.deliver(rc, req, start, resp)
}

// errUnsupportedApiVersions marks an ApiVersions request of a version we do
// not know, which gets an answer rather than a closed connection.
var errUnsupportedApiVersions = errors.New("unsupported ApiVersions version")

// decodeRequest parses a frame into its header and kmsg request. Any API or
// version outside the listener's api table, and any body kmsg cannot
// decode, is an error: the caller closes the connection, as Kafka does.
func decodeRequest(apis map[int16]api, frame []byte) (requestHeader, kmsg.Request, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	api, ok := apis[h.key]
	if !ok || h.version < api.min || h.version > api.max {
		if h.key == apiVersionsKey {
			return h, nil, errUnsupportedApiVersions
		}
		return h, nil, fmt.Errorf("%w: %s (key %d) v%d is not supported", errUnsupportedVersion, kmsg.NameForKey(h.key), h.key, h.version)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return h, nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return h, nil, fmt.Errorf("%w: decoding %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// deliver encodes a response (nil: no response) into its outcome. A request
// over a client quota gets throttle_time_ms set, and the connection is
// muted for that long (quotas.go): the reader takes no further request
// until then, while the response goes out at once, as in Kafka (KIP-219).
func (c *conn) deliver(rc *reqCtx, req kmsg.Request, start time.Time, resp kmsg.Response) outcome {
	latency := c.srv.now().Sub(start)
	c.srv.metrics.observe(req.Key(), latency)
	c.logRequest(rc, resp, latency)
	if resp == nil {
		c.mute(c.throttle(rc, req, 0, rc.busy))
		return outcome{}
	}
	encoding := time.Now()
	resp.SetVersion(req.GetVersion())
	c.srv.metrics.responseErrors(resp)
	var out net.Buffers
	var files []log.FileSlice
	// spliced: the response's record sets are pieces of out of their own.
	spliced := true
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		out, files = c.srv.fetchEncoder.encode(rc.header.correlationID, r, rc.fetchFiles)
		rc.fetchFiles = nil
	case *kmsg.ShareFetchResponse:
		out = c.srv.fetchEncoder.encodeShare(rc.header.correlationID, r)
	default:
		out, spliced = net.Buffers{encodeResponse(rc.header.correlationID, resp)}, false
	}
	size := 0
	for _, b := range out {
		size += len(b)
	}
	for _, fs := range files {
		size += int(fs.Size)
	}
	throttle := c.throttle(rc, req, size, rc.busy+time.Since(encoding))
	// A response may already carry a throttle (the controller's, on a
	// forwarded admin request): the client backs off for the longer.
	if t, ok := resp.(kmsg.ThrottleResponse); ok {
		if ms, _ := t.Throttle(); time.Duration(ms)*time.Millisecond >= throttle {
			throttle = time.Duration(ms) * time.Millisecond
		} else if spliced {
			setFetchThrottle(out, resp.IsFlexible(), throttle)
		} else {
			// Rare (the client is over its quota and about to be
			// muted): encoding again costs less than knowing each
			// response's layout.
			resp.(kmsg.SetThrottleResponse).SetThrottle(int32(throttle.Milliseconds()))
			out = net.Buffers{encodeResponse(rc.header.correlationID, resp)}
		}
	}
	o := outcome{resp: out, files: files}
	if c.ctx.Err() != nil {
		// The writer has given up on the connection and may already
		// have drained this slot: nothing will send the files.
		o.release()
		o.files = nil
	}
	c.mute(throttle)
	return o
}

// encodeResponse frames a response: size, correlation id, the tagged-field
// byte of a flexible response header (ApiVersions always uses header v0),
// then the body.
func encodeResponse(correlationID int32, resp kmsg.Response) []byte {
	buf := make([]byte, 8, 256)
	binary.BigEndian.PutUint32(buf[4:], uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

// remoteHost is the client's address without the port, as Kafka reports
// members' hosts.
func (c *conn) remoteHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return c.nc.RemoteAddr().String()
	}
	return "/" + host
}

// reqCtx is what a handler knows about the request besides its body.
type reqCtx struct {
	conn   *conn
	header requestHeader
	// size is the request frame's length, what a producer's quota
	// counts.
	size int
	// busy is the time the request took on the connection's goroutines
	// so far, what request_percentage counts; remote is the part of the
	// handler's time spent waiting on another node (forwardAdmin), left
	// out of busy.
	busy, remote time.Duration
	// fetchFiles are a Fetch response's record sets to send from their
	// segment files (finishFetch), handed to the encoder.
	fetchFiles []fileRecords
}

// peerClosed asks the controller to check on the broker whose heartbeats
// came over this connection: it may be gone.
func (c *conn) peerClosed() {
	if p := c.heartbeatFrom.Load(); p != nil && c.srv.ctrl != nil && c.srv.ctx.Err() == nil {
		c.srv.ctrl.Suspect(*p)
	}
}
