package raftmeta

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// recorder is a MessageHandler that records what a transport delivers.
type recorder struct {
	mu          sync.Mutex
	msgs        []*pb.Message
	unreachable map[int32]int
	snaps       map[int32][]bool
	gone        map[int32]int
	notify      chan struct{}
}

func newRecorder() *recorder {
	return &recorder{unreachable: map[int32]int{}, snaps: map[int32][]bool{}, gone: map[int32]int{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) Step(_ context.Context, m *pb.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.poke()
	return nil
}

func (r *recorder) ReportUnreachable(id int32) {
	r.mu.Lock()
	r.unreachable[id]++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) ReportSnapshot(id int32, ok bool) {
	r.mu.Lock()
	r.snaps[id] = append(r.snaps[id], ok)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) PeerGone(id int32) {
	r.mu.Lock()
	r.gone[id]++
	r.mu.Unlock()
	r.poke()
}

// waitFor waits until cond holds over the recorder, re-checking on every
// delivery or report.
func (r *recorder) waitFor(t *testing.T, ctx context.Context, what string, cond func(r *recorder) bool) {
	t.Helper()
	r.until(t, ctx, what, cond, nil, nil)
}

// until waits until cond holds over the recorder, re-checking on every
// delivery or report and every tick (nil: none); each, if set, runs before
// every wait.
func (r *recorder) until(t *testing.T, ctx context.Context, what string, cond func(r *recorder) bool, tick <-chan time.Time, each func()) {
	t.Helper()
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		if each != nil {
			each()
		}
		select {
		case <-tick:
		case <-r.notify:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func newTestTransport(t *testing.T, id int32, addr string, peers map[int32]string, h MessageHandler) *TCPTransport {
	t.Helper()
	return newTestTransportOn(t, id, addr, nil, peers, h)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newTestTransportOn(t *testing.T, id int32, addr string, ln net.Listener, peers map[int32]string, h MessageHandler) *TCPTransport {
	t.Helper()
	tr, err := NewTCPTransport(TCPTransportConfig{
		NodeID: id, ListenAddr: addr, Listener: ln, Peers: peers, Logger: testLogger(t),
		MaxFrameBytes: 4096, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		tr.SetNode(h)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// transportFunc makes the transport of node id on ln, which knows peers
// and hands what it receives to h.
type transportFunc func(id int32, ln net.Listener, peers map[int32]string, h MessageHandler) *TCPTransport

// transportPair starts nodes 1 and 2 with start, each on a listener of its
// own and knowing the other from the start, so no first message is lost to
// a hello the other side does not recognise yet. r1 and r2 record what
// each receives.
func transportPair(t *testing.T, start transportFunc) (t1, t2 *TCPTransport, r1, r2 *recorder) {
	t.Helper()
	r1, r2 = newRecorder(), newRecorder()
	ln1, ln2 := listen(t), listen(t)
	t1 = start(1, ln1, map[int32]string{2: ln2.Addr().String()}, r1)
	t2 = start(2, ln2, map[int32]string{1: ln1.Addr().String()}, r2)
	return t1, t2, r1, r2
}

// tcpPair is transportPair of newTestTransportOn's transports.
func tcpPair(t *testing.T) (t1, t2 *TCPTransport, r1, r2 *recorder) {
	t.Helper()
	return transportPair(t, func(id int32, ln net.Listener, peers map[int32]string, h MessageHandler) *TCPTransport {
		return newTestTransportOn(t, id, "", ln, peers, h)
	})
}

func heartbeat(from, to int32, term uint64) *pb.Message {
	return &pb.Message{Type: pb.MessageType_MsgHeartbeat.Enum(), From: new(raftID(from)), To: new(raftID(to)), Term: new(term)}
}

// rawConn dials tr and sends a hello claiming to be from.
func rawConn(t *testing.T, tr *TCPTransport, from, to int32) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var hello [helloLen]byte
	copy(hello[:], transportMagic[:])
	hello[4] = transportVersion
	binary.BigEndian.PutUint32(hello[5:], uint32(from))
	binary.BigEndian.PutUint32(hello[9:], uint32(to))
	if _, err := conn.Write(hello[:]); err != nil {
		t.Fatal(err)
	}
	return conn
}

func writeFrame(t *testing.T, conn net.Conn, m *pb.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := conn.Write(append(frame, b...)); err != nil {
		t.Fatal(err)
	}
}

// expectClosed waits for the transport to close conn without sending
// anything. A reset counts as closed: a socket closed with bytes of ours
// still unread (a refused TLS handshake reads only a record header) is
// reset by the kernel instead of ended.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	if err != nil || n != 0 {
		t.Fatalf("connection not closed cleanly: read %d bytes, %v", n, err)
	}
}

func TestTransportDelivers(t *testing.T) {
	ctx := testCtx(t)
	t1, t2, r1, r2 := tcpPair(t)

	t1.Send([]*pb.Message{heartbeat(1, 2, 5), heartbeat(1, 2, 6)})
	t2.Send([]*pb.Message{heartbeat(2, 1, 7)})
	r2.waitFor(t, ctx, "two messages at node 2", func(r *recorder) bool { return len(r.msgs) == 2 })
	r1.waitFor(t, ctx, "one message at node 1", func(r *recorder) bool { return len(r.msgs) == 1 })
	if r2.msgs[0].GetTerm() != 5 || r2.msgs[1].GetTerm() != 6 || r1.msgs[0].GetTerm() != 7 {
		t.Fatal("messages reordered or altered")
	}

	// A message to a node that is not a peer is dropped and reported.
	t1.Send([]*pb.Message{heartbeat(1, 9, 1)})
	r1.waitFor(t, ctx, "unreachable report", func(r *recorder) bool { return r.unreachable[9] == 1 })

	// A snapshot is reported once sent.
	snap := &pb.Message{Type: pb.MessageType_MsgSnap.Enum(), From: new(raftID(1)), To: new(raftID(2)), Term: new(uint64(8)),
		Snapshot: &pb.Snapshot{Data: []byte("image"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(10)), Term: new(uint64(8))}}}
	t1.Send([]*pb.Message{snap})
	r1.waitFor(t, ctx, "snapshot report", func(r *recorder) bool { return len(r.snaps[2]) == 1 })
	if !r1.snaps[2][0] {
		t.Fatal("snapshot reported as failed")
	}
	r2.waitFor(t, ctx, "snapshot at node 2", func(r *recorder) bool { return len(r.msgs) == 3 })
	if string(r2.msgs[2].GetSnapshot().GetData()) != "image" {
		t.Fatal("snapshot altered")
	}
}

func TestTransportRejectsUnknownPeersAndBadFrames(t *testing.T) {
	ctx := testCtx(t)
	r := newRecorder()
	tr := newTestTransport(t, 1, "127.0.0.1:0", map[int32]string{2: "127.0.0.1:1"}, r)

	// A hello from a node that is not a peer, or meant for another node,
	// closes the connection.
	expectClosed(t, rawConn(t, tr, 7, 1))
	expectClosed(t, rawConn(t, tr, 2, 3))

	// Not a hello at all.
	junk, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	junk.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	expectClosed(t, junk)

	// From a peer, messages claiming another sender or addressed to another
	// node are dropped; the rest are delivered.
	conn := rawConn(t, tr, 2, 1)
	writeFrame(t, conn, heartbeat(7, 1, 1))
	writeFrame(t, conn, heartbeat(2, 5, 2))
	writeFrame(t, conn, heartbeat(2, 1, 3))
	r.waitFor(t, ctx, "the good message", func(r *recorder) bool { return len(r.msgs) >= 1 })
	if r.count() != 1 || r.msgs[0].GetTerm() != 3 {
		t.Fatalf("delivered %v", r.msgs)
	}

	// A frame over MaxFrameBytes closes the connection before its body is
	// read.
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, 4097)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, conn)

	// An undecodable frame closes the connection too.
	conn = rawConn(t, tr, 2, 1)
	conn.Write(append(binary.BigEndian.AppendUint32(nil, 3), 0xff, 0xff, 0xff))
	expectClosed(t, conn)
	if r.count() != 1 {
		t.Fatalf("delivered %d messages", r.count())
	}
}

// A peer that restarts is reconnected to; while it is down, sends are
// dropped and reported unreachable.
func TestTransportReconnects(t *testing.T) {
	ctx := testCtx(t)
	r1, r2 := newRecorder(), newRecorder()
	ln1, ln2 := listen(t), listen(t)
	addr2 := ln2.Addr().String()
	t1 := newTestTransportOn(t, 1, "", ln1, map[int32]string{2: addr2}, r1)
	t2 := newTestTransportOn(t, 2, "", ln2, map[int32]string{1: ln1.Addr().String()}, r2)

	t1.Send([]*pb.Message{heartbeat(1, 2, 1)})
	r2.waitFor(t, ctx, "first message", func(r *recorder) bool { return len(r.msgs) == 1 })

	t2.Close()
	// Keep sending, as raft would, until the transport notices.
	sendUntil(t, ctx, t1, r1, "unreachable report", func(r *recorder) bool { return r.unreachable[2] > 0 })

	r2b := newRecorder()
	newTestTransport(t, 2, addr2, map[int32]string{1: t1.Addr().String()}, r2b)
	sendUntil(t, ctx, t1, r2b, "a message after the restart", func(r *recorder) bool { return len(r.msgs) > 0 })
}

// sendUntil sends heartbeats from 1 to 2 every few milliseconds until cond
// holds over rec.
func sendUntil(t *testing.T, ctx context.Context, tr *TCPTransport, rec *recorder, what string, cond func(*recorder) bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	rec.until(t, ctx, what, cond, tick.C, func() { tr.Send([]*pb.Message{heartbeat(1, 2, 2)}) })
}

// TestTransportReportsPeerGone: a peer whose process stops (its connection
// closes and its listener refuses) is reported gone; a running one is not.
func TestTransportReportsPeerGone(t *testing.T) {
	ctx := testCtx(t)
	t1, t2, r1, r2 := tcpPair(t)

	// Both directions connected, as between two running quorum members.
	t1.Send([]*pb.Message{heartbeat(1, 2, 1)})
	t2.Send([]*pb.Message{heartbeat(2, 1, 1)})
	r2.waitFor(t, ctx, "a message from 1", func(r *recorder) bool { return len(r.msgs) > 0 })
	r1.waitFor(t, ctx, "a message from 2", func(r *recorder) bool { return len(r.msgs) > 0 })
	r1.mu.Lock()
	early := r1.gone[2]
	r1.mu.Unlock()
	if early != 0 {
		t.Fatalf("running peer reported gone %d times", early)
	}

	t2.Close()
	r1.waitFor(t, ctx, "peer 2 reported gone", func(r *recorder) bool { return r.gone[2] > 0 })
}
